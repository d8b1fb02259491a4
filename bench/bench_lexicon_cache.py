"""Memory and time of the lexicon scorer's per-node caches with a LibriSpeech-size word list and 5000 BPE tokens.

The lexicon: `--words` distinct English-like words (syllables of weighted onsets, vowels and codas, some with a
suffix; reproducible from `--seed`; 1-5 syllables, 8.9 characters on average), in upper case as LibriSpeech's.
The tokens: a `--vocabulary`-piece sentencepiece BPE model trained (in a temporary directory) on
`--bpe_training_words` of those words (sentencepiece's BPE trainer needs minutes for all 200k on 2 cores), as an
ESPnet token list (`<blank>`, `<unk>`, the pieces, `<sos/eos>`).

The walk: `--utterances` beams of `--beam` hypotheses; each hypothesis is `--words_per_hypothesis` lexicon words
drawn with Zipf frequencies (1/rank, ranks shuffled by the seed), tokenised by the BPE model; a share
`--dead_end_rate` of them is cut after a random token drawn uniformly from the token list (mostly one that leaves
the lexicon, as the hypotheses a beam search scores and drops). A beam's hypotheses go through
`LexiconScorer.batch_score` step by step as ESPnet's `BatchBeamSearch` calls it (prefixes (n, L), the states of
the previous step), finished hypotheses leaving the batch. A hypothesis step is one next-node lookup and one score
row (V,).

Compared, each in a forked process that builds its own tree and then walks the same hypotheses:
- unbounded: the caches as they were, a score row (V floats) and a next-node list (V ints) per visited node,
  computed token by token (`LexiconTokenTree.next_node` for every token) and never dropped;
- bounded at each of `--cache_sizes`: `LexiconTokenTree(cache_size=...)`, a score row (V float16s) for each of
  the `cache_size` most recently scored nodes, found by a walk of the node's subtree; next nodes by the rule,
  not cached.

Memory: after a warm-up walk with a small lexicon (so that the code of the ops it runs is paged in) and building
the tree, the process hands the heap's free memory back (glibc's malloc_trim), resets the kernel's peak-RSS counter
(`echo 5 > /proc/self/clear_refs`, Linux >= 4.0; otherwise ru_maxrss, and the table says so) and reads the peak
(VmHWM) after the walks: what the caches (and the walks' transient tensors) added. Time: the seconds inside
`batch_score` per hypothesis step, as a ratio to the unbounded cache's in the same run; the hypotheses are walked
twice, the second time through nodes all seen before (all cached by the unbounded cache and a `cache_size` above
the nodes visited; a smaller LRU cache, walked through the same sequence again, drops each node before its turn
comes: its worst case). Every configuration must give the same nodes and the same allowed tokens at every step (a
hash of both); the script stops if one differs. Torch runs one thread.

Usage: tools/venv/bin/python bench/bench_lexicon_cache.py [--words 200000] [--vocabulary 5000]
           [--utterances 60] [--beam 10] [--words_per_hypothesis 8] [--cache_sizes 8192 4096 512] [--seed 0]
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import hashlib
import itertools
import json
import os
import random
import tempfile
import time
import traceback
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import sentencepiece
import torch

from espnet_samba.decoding import LexiconScorer, LexiconTokenTree
from espnet_samba.decoding.lexicon import DEAD, DEFAULT_CACHE_SIZE
from process_memory import PeakRssProbe

# relative frequencies of English-like spelling units (not measured on a corpus: a plausible shape only)
ONSETS = {"": 14, "B": 4, "BR": 1, "BL": 1, "C": 4, "CH": 2, "CL": 1, "CR": 1, "D": 4, "DR": 1, "F": 3, "FL": 1,
          "FR": 1, "G": 2, "GL": 0.5, "GR": 1, "H": 4, "J": 1, "K": 1, "L": 4, "M": 4, "N": 3, "P": 3, "PH": 0.3,
          "PL": 1, "PR": 2, "QU": 0.5, "R": 4, "S": 4, "SC": 0.5, "SH": 2, "SK": 0.5, "SL": 0.5, "SP": 1, "ST": 2,
          "STR": 0.5, "SW": 0.5, "T": 5, "TH": 3, "TR": 1, "V": 1, "W": 3, "WH": 1, "Y": 0.5, "Z": 0.2}
VOWELS = {"A": 8, "E": 10, "I": 7, "O": 6, "U": 3, "AI": 1, "AU": 0.3, "AY": 0.5, "EA": 1.5, "EE": 1, "IE": 0.5,
          "OI": 0.2, "OO": 1, "OU": 1.2, "OW": 0.6, "Y": 0.6}
CODAS = {"": 12, "B": 0.5, "CK": 1, "D": 3, "F": 0.5, "G": 0.5, "GHT": 0.4, "L": 3, "LD": 0.5, "LL": 1, "LT": 0.3,
         "M": 1.5, "N": 5, "NCE": 0.3, "ND": 1.5, "NG": 1, "NT": 1, "P": 0.8, "R": 5, "RD": 0.4, "RN": 0.3,
         "RS": 0.4, "RT": 0.5, "S": 3, "SH": 0.4, "SS": 0.6, "ST": 1, "T": 3, "TCH": 0.2, "TH": 0.6, "X": 0.2}
SUFFIXES = {"": 60, "'S": 3, "ED": 6, "ER": 4, "ES": 2, "ING": 6, "LY": 3, "NESS": 0.5, "S": 12, "TION": 2}
SYLLABLES = {1: 30, 2: 40, 3: 21, 4: 7, 5: 2}


def english_like_words(count: int, seed: int) -> List[str]:
    """`count` distinct words, the same for the same seed."""
    generator = random.Random(seed)

    def draw(units: Dict, k: int) -> List:
        return generator.choices(list(units), weights=list(units.values()), k=k)

    words: Dict[str, None] = {}
    while len(words) < count:
        syllables = draw(SYLLABLES, count)
        onsets, vowels, codas = (iter(draw(units, sum(syllables))) for units in (ONSETS, VOWELS, CODAS))
        for length, suffix in zip(syllables, draw(SUFFIXES, count)):
            word = "".join(next(onsets) + next(vowels) + next(codas) for _ in range(length)) + suffix
            words.setdefault(word, None)
    return list(itertools.islice(words, count))


def bpe_model(words: Sequence[str], vocabulary: int, training_words: int, seed: int, directory: Path):
    """A sentencepiece BPE model of `vocabulary` pieces trained on a sample of `words`, and its ESPnet token list."""
    sample = random.Random(seed).sample(list(words), min(training_words, len(words)))
    (directory / "words.txt").write_text("\n".join(sample) + "\n")
    sentencepiece.SentencePieceTrainer.train(
        input=str(directory / "words.txt"), model_prefix=str(directory / "bpe"), vocab_size=vocabulary,
        model_type="bpe", character_coverage=1.0, num_threads=1, minloglevel=2,
    )
    model = sentencepiece.SentencePieceProcessor(model_file=str(directory / "bpe.model"))
    pieces = [model.id_to_piece(i) for i in range(model.get_piece_size())]
    return model, ["<blank>", "<unk>"] + [p for p in pieces if p not in ("<unk>", "<s>", "</s>")] + ["<sos/eos>"]


def beams(words: Sequence[str], model, token_list: Sequence[str], args) -> List[List[List[int]]]:
    """`args.utterances` beams of token-id hypotheses, each beam longest first."""
    generator = random.Random(args.seed + 1)
    ranked = list(words)
    generator.shuffle(ranked)
    cumulative = list(itertools.accumulate(1.0 / rank for rank in range(1, len(ranked) + 1)))
    token_id = {token: i for i, token in enumerate(token_list)}
    result = []
    for _ in range(args.utterances):
        beam = []
        for _ in range(args.beam):
            text = " ".join(generator.choices(ranked, cum_weights=cumulative, k=args.words_per_hypothesis))
            tokens = [token_id[piece] for piece in model.encode(text, out_type=str)]
            if generator.random() < args.dead_end_rate:
                tokens = tokens[: generator.randrange(len(tokens))] + [generator.randrange(len(token_list))]
            beam.append(tokens)
        result.append(sorted(beam, key=len, reverse=True))
    return result


class UnboundedDenseTree(LexiconTokenTree):
    """The caches before they were bounded: per visited node its score row (V floats) and the node every token
    leads to (V ints), computed token by token and kept for ever."""

    def __init__(self, words: Sequence[str], token_list: Sequence[str], eos: int):
        super().__init__(words, token_list, eos)
        self._transitions: Dict[int, Tuple[torch.Tensor, List[int]]] = {}

    def _transitions_of(self, node: int) -> Tuple[torch.Tensor, List[int]]:
        cached = self._transitions.get(node)
        if cached is None:
            next_nodes = [super(UnboundedDenseTree, self).next_node(node, t) for t in range(len(self.token_list))]
            scores = torch.tensor([0.0 if n != DEAD else float("-inf") for n in next_nodes])
            cached = self._transitions[node] = (scores, next_nodes)
        return cached

    def next_node(self, node: int, token: int) -> int:
        return self._transitions_of(node)[1][token]

    def scores(self, nodes: Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.stack([self._transitions_of(node)[0] for node in nodes]).to(dtype)

    def cached_nodes(self) -> int:
        return len(self._transitions)


def _return_free_memory() -> None:
    """Hands the heap's free memory back to the system, so that later allocations show in RSS instead of reusing
    what building the tree freed (glibc; elsewhere nothing happens)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def walk(scorer: LexiconScorer, all_beams: List[List[List[int]]]) -> Dict:
    """The hypotheses through `scorer.batch_score`; seconds inside it, steps, nodes seen, a hash of the results."""
    eos = len(scorer.tree.token_list) - 1
    encoder_output = torch.zeros(1, 1, 1)
    seconds, steps, seen, digest = 0.0, 0, set(), hashlib.sha1()
    for beam in all_beams:
        ys = torch.full((len(beam), len(beam[0]) + 1), eos)
        for row, tokens in enumerate(beam):
            ys[row, 1 : len(tokens) + 1] = torch.tensor(tokens)
        states = [scorer.init_state(encoder_output) for _ in beam]
        for length in range(len(beam[0]) + 1):
            alive = sum(len(tokens) >= length for tokens in beam)
            start = time.perf_counter()
            scores, states = scorer.batch_score(ys[:alive, : length + 1], states[:alive], encoder_output)
            seconds += time.perf_counter() - start
            steps += alive
            seen.update(states)
            digest.update(json.dumps(states).encode() + (scores == 0).numpy().tobytes())
    return {"seconds": seconds, "steps": steps, "nodes": len(seen), "hash": digest.hexdigest()}


def _measure_here(cache_size: Optional[int], words, token_list, all_beams, writer: int) -> None:
    torch.set_num_threads(1)
    eos = len(token_list) - 1

    def make_tree(lexicon: Sequence[str]) -> LexiconTokenTree:
        if cache_size is None:
            return UnboundedDenseTree(lexicon, token_list, eos)
        return LexiconTokenTree(lexicon, token_list, eos, cache_size=cache_size)

    walk(LexiconScorer(make_tree(words[:100])), all_beams[:1])  # pages in the code of the ops the walk runs
    tree = make_tree(words)
    gc.collect()
    _return_free_memory()
    memory = PeakRssProbe()
    scorer = LexiconScorer(tree)
    result = walk(scorer, all_beams)
    result["again"] = walk(scorer, all_beams)
    result.update(peak_mib=memory.peak_mib(), exact_peak=memory.exact, kept=tree.cached_nodes())
    with os.fdopen(writer, "w") as out:
        json.dump(result, out)


def measure(cache_size: Optional[int], words, token_list, all_beams) -> Dict:
    """One configuration in a forked process (its peak RSS is its own); `None` is the unbounded dense cache."""
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(reader)
            _measure_here(cache_size, words, token_list, all_beams, writer)
            status = 0
        except BaseException:  # never return into the parent's code
            traceback.print_exc()
            status = 1
        os._exit(status)
    os.close(writer)
    with os.fdopen(reader) as results:
        text = results.read()
    _, status = os.waitpid(child, 0)
    if status != 0 or not text:
        raise SystemExit(f"the measurement of cache_size={cache_size} failed (wait status {status})")
    return json.loads(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--words", type=int, default=200_000, help="lexicon size (LibriSpeech's has ~200k)")
    parser.add_argument("--vocabulary", type=int, default=5000, help="BPE pieces")
    parser.add_argument("--bpe_training_words", type=int, default=20_000)
    parser.add_argument("--utterances", type=int, default=60, help="beams walked")
    parser.add_argument("--beam", type=int, default=10, help="hypotheses per beam")
    parser.add_argument("--words_per_hypothesis", type=int, default=8)
    parser.add_argument("--dead_end_rate", type=float, default=0.2)
    parser.add_argument("--cache_sizes", type=int, nargs="+", default=[8192, DEFAULT_CACHE_SIZE, 512])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start = time.perf_counter()
    words = english_like_words(args.words, args.seed)
    with tempfile.TemporaryDirectory() as directory:
        model, token_list = bpe_model(words, args.vocabulary, args.bpe_training_words, args.seed, Path(directory))
        all_beams = beams(words, model, token_list, args)
    steps = sum(len(tokens) + 1 for beam in all_beams for tokens in beam)
    print(f"{len(words)} words of {sum(map(len, words)) / len(words):.1f} characters on average, "
          f"{len(token_list)} tokens; {args.utterances} beams of {args.beam}, {steps} hypothesis steps "
          f"(set-up {time.perf_counter() - start:.0f} s)\n")

    configurations = [None, *args.cache_sizes]
    results = {size: measure(size, words, token_list, all_beams) for size in configurations}
    baseline = results[None]
    differing = [size for size, result in results.items()
                 if {result["hash"], result["again"]["hash"]} != {baseline["hash"]}]
    if differing:
        raise SystemExit(f"cache_size {differing} gave other nodes or allowed tokens than the unbounded cache")
    memory = "peak RSS growth" if baseline["exact_peak"] else "ru_maxrss growth (clear_refs not writable)"
    print(f"| cache | nodes visited | nodes kept | {memory} | us per hypothesis step, first pass | "
          "second pass (same hypotheses) |")
    print("|---|---:|---:|---:|---:|---:|")
    for size, result in results.items():
        name = "unbounded (dense rows, before)" if size is None else f"cache_size={size}"
        cells = [f"{result['peak_mib']:.1f} MiB ({result['peak_mib'] / baseline['peak_mib']:.2f}x)"]
        for this, base in ((result, baseline), (result["again"], baseline["again"])):
            cells.append(f"{this['seconds'] / this['steps'] * 1e6:.1f} ({this['seconds'] / base['seconds']:.2f}x)")
        print(f"| {name} | {result['nodes']} | {result['kept']} | " + " | ".join(cells) + " |")
    print(f"\nall configurations: the same nodes and allowed tokens at every step; "
          f"{time.perf_counter() - start:.0f} s in all")


if __name__ == "__main__":
    main()
