"""Lexicon-constrained decoding (espnet_samba.decoding, espnet_samba.bin.asr_inference).

Oracles: a constraint written the obvious way on the detokenized text (split into words, every finished word in
the lexicon, the unfinished one a prefix of a lexicon word), checked exhaustively against the token tree and used as
a beam-search scorer beside `LexiconScorer` in ESPnet's own `BeamSearch`/`BatchBeamSearch`; and ESPnet's own
`espnet2.bin.asr_inference`, whose outputs the entry point must reproduce when no lexicon is given.
"""
from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any, List, Sequence, Tuple

import numpy as np
import pytest
import soundfile
import torch
from espnet.nets.batch_beam_search import BatchBeamSearch
from espnet.nets.batch_beam_search_online_sim import BatchBeamSearchOnlineSim
from espnet.nets.beam_search import BeamSearch
from espnet.nets.scorer_interface import BatchScorerInterface

from espnet_samba.bin import asr_inference as samba_asr_inference
from espnet_samba.decoding import LexiconScorer, LexiconTokenTree, constrain_to_lexicon, read_lexicon
from espnet_samba.decoding.lexicon import DEAD, DEFAULT_CACHE_SIZE
from test_asr_config_support import TINY_TRANSFORMER_ENCODER, write_asr_config

WORDS = ["A", "AT", "CAT", "CATS", "TEA"]
BPE_TOKENS = ["<blank>", "<unk>", "\u2581", "\u2581A", "\u2581CAT", "\u2581C", "\u2581T", "AT", "A", "T", "S", "E",
              "<sos/eos>"]
CHAR_TOKENS = ["<blank>", "<unk>", "<space>", "A", "C", "E", "S", "T", "<sos/eos>"]


def text_of(tokens: Sequence[str]) -> str:
    return "".join(" " if t == "<space>" else t.replace("\u2581", " ") for t in tokens)


def allowed_by_oracle(tokens: Sequence[str], words: Sequence[str], ended: bool) -> bool:
    """Whether `tokens` (then <sos/eos> if `ended`) spell words of `words` so far, decided on the text."""
    if any(t.startswith("<") and t != "<space>" for t in tokens):
        return False
    text = text_of(tokens)
    spelt = text.split()
    unfinished = "" if ended or text == "" or text.endswith(" ") else spelt.pop()
    return all(w in words for w in spelt) and any(w.startswith(unfinished) for w in words)


@pytest.mark.parametrize("token_list", [BPE_TOKENS, CHAR_TOKENS], ids=["bpe", "char"])
def test_token_tree_allows_exactly_what_the_text_oracle_allows(token_list):
    eos = len(token_list) - 1
    tree = LexiconTokenTree(WORDS, token_list, eos)
    checked = 0
    for length in range(0, 5):
        for sequence in itertools.product(range(eos), repeat=length):
            symbols = [token_list[t] for t in sequence]
            node = tree.walk_tokens(sequence)
            assert (node != DEAD) == allowed_by_oracle(symbols, WORDS, ended=False), symbols
            if node != DEAD:
                eos_score = tree.scores([node])[0, eos]
                assert (eos_score == 0) == allowed_by_oracle(symbols, WORDS, ended=True), symbols
                checked += 1
    assert checked > 50  # the constraint leaves real choices, not only the empty hypothesis


def test_special_symbols_are_never_allowed():
    tree = LexiconTokenTree(WORDS, BPE_TOKENS, len(BPE_TOKENS) - 1)
    scores = tree.scores([0])[0]
    assert scores[0] == scores[1] == float("-inf")  # <blank>, <unk>


def scores_by_rule(tree: LexiconTokenTree, node: int) -> torch.Tensor:
    """The score row the obvious way: `next_node` for every token."""
    allowed = [tree.next_node(node, token) != DEAD for token in range(len(tree.token_list))]
    return torch.tensor([0.0 if a else float("-inf") for a in allowed])


def random_lexicon(seed: int) -> Tuple[List[str], List[str]]:
    """300 words over 5 letters and a BPE-like token list: every letter with and without "▁", and 60 random
    pieces of 2-4 letters (some with "▁", some spelling no word)."""
    generator = random.Random(seed)
    letters = "ABCDE"
    words = sorted({"".join(generator.choices(letters, k=generator.randint(1, 7))) for _ in range(300)})
    pieces = {"".join(generator.choices(letters, k=generator.randint(2, 4))) for _ in range(60)}
    tokens = ["<blank>", "<unk>", "\u2581", *letters, *("\u2581" + c for c in letters)]
    tokens += sorted(p if generator.random() < 0.6 else "\u2581" + p for p in pieces) + ["<sos/eos>"]
    return words, tokens


@pytest.mark.parametrize("seed", range(3))
def test_scores_of_every_prefix_are_the_rule_token_by_token(seed):
    words, tokens = random_lexicon(seed)
    tree = LexiconTokenTree(words, tokens, len(tokens) - 1)
    letter = {t: i for i, t in enumerate(tokens)}
    nodes = {DEAD} | {tree.walk_tokens([letter[c] for c in w[:n]]) for w in words for n in range(len(w) + 1)}
    assert len(nodes) > 300
    for node in nodes:
        assert torch.equal(tree.scores([node])[0], scores_by_rule(tree, node)), node


@pytest.mark.parametrize("cache_size", [1, 2, 3, 7])
def test_a_bounded_cache_keeps_at_most_its_size_and_scores_the_same(cache_size):
    words, tokens = random_lexicon(0)
    bounded = LexiconTokenTree(words, tokens, len(tokens) - 1, cache_size=cache_size)
    letter = {t: i for i, t in enumerate(tokens)}
    nodes = sorted({bounded.walk_tokens([letter[c] for c in w[:n]]) for w in words for n in range(len(w) + 1)})
    generator = random.Random(cache_size)
    for _ in range(200):  # batches with repeats, and more distinct nodes than the cache holds
        batch = generator.choices(nodes[:40], k=generator.randint(1, 6))
        expected = torch.stack([scores_by_rule(bounded, node) for node in batch])
        assert torch.equal(bounded.scores(batch, torch.float64), expected.double()), batch
        assert bounded.cached_nodes() <= cache_size
    assert bounded.cached_nodes() == cache_size


def test_cache_size_must_hold_a_node():
    with pytest.raises(ValueError, match="cache_size must be at least 1 node, not 0"):
        LexiconTokenTree(WORDS, BPE_TOKENS, len(BPE_TOKENS) - 1, cache_size=0)


def test_read_lexicon_takes_first_fields_once_and_skips_symbols(tmp_path):
    path = tmp_path / "lexicon.txt"
    path.write_text("<blank>\nCAT k ae t\n\nCAT k a t\nA ah\n<unk>\nTEA\n")
    assert read_lexicon(path) == ["CAT", "A", "TEA"]


def test_read_lexicon_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"lexicon .*missing\.txt not found.*--use_lexicon"):
        read_lexicon(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("<blank>\n\n<unk>\n")
    with pytest.raises(ValueError, match=r"empty\.txt holds no words"):
        read_lexicon(empty)


def test_lexicon_in_another_case_is_rejected():
    with pytest.raises(ValueError, match=r"none of the 2 lexicon words.*'cat'.*transcripts' case"):
        LexiconTokenTree(["cat", "tea"], BPE_TOKENS, len(BPE_TOKENS) - 1)


def test_unspellable_words_are_reported(caplog):
    tree = LexiconTokenTree(["CAT", "DOG"], BPE_TOKENS, len(BPE_TOKENS) - 1)
    assert "1 of 2 lexicon words" in caplog.text and "DOG" in caplog.text
    assert tree.walk_tokens([BPE_TOKENS.index("\u2581CAT")]) != DEAD


class BigramScorer(BatchScorerInterface):
    """Fixed random log-probabilities of the next token given the last one (the last id is <sos/eos>): a stand-in
    for a decoder."""

    def __init__(self, vocabulary: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        logits = torch.randn(vocabulary, vocabulary, generator=generator, dtype=torch.float64)
        logits[:, -1] += 1.0  # <sos/eos> likelier than the rest: searches end within a few words
        self.table = logits.log_softmax(-1)

    def init_state(self, x: torch.Tensor) -> None:
        return None

    def score(self, y: torch.Tensor, state: Any, x: torch.Tensor) -> Tuple[torch.Tensor, Any]:
        return self.table[y[-1]], None

    def batch_score(self, ys: torch.Tensor, states: List[Any], xs: torch.Tensor) -> Tuple[torch.Tensor, List[Any]]:
        return self.table[ys[:, -1]], [None] * len(ys)


class TextOracleScorer(BatchScorerInterface):
    """The lexicon constraint recomputed from the text of each whole prefix: no state, no tree."""

    def __init__(self, token_list: Sequence[str], words: Sequence[str], eos: int) -> None:
        self.token_list, self.words, self.eos = token_list, words, eos

    def init_state(self, x: torch.Tensor) -> None:
        return None

    def score(self, y: torch.Tensor, state: Any, x: torch.Tensor) -> Tuple[torch.Tensor, Any]:
        prefix = [self.token_list[t] for t in y[1:].tolist()]
        allowed = [
            allowed_by_oracle(prefix, self.words, ended=True) if token == self.eos
            else allowed_by_oracle(prefix + [self.token_list[token]], self.words, ended=False)
            for token in range(len(self.token_list))
        ]
        return torch.tensor([0.0 if a else float("-inf") for a in allowed], dtype=x.dtype), None

    def batch_score(self, ys: torch.Tensor, states: List[Any], xs: torch.Tensor) -> Tuple[torch.Tensor, List[Any]]:
        return torch.stack([self.score(y, None, xs[0])[0] for y in ys]), [None] * len(ys)


MAX_LENGTH = 8  # tokens: with maxlenratio 0, ESPnet's search runs as many steps as the input has frames


def search(search_class, constraint, seed: int, beam_size: int = 4) -> List[Tuple[List[int], float]]:
    eos = len(BPE_TOKENS) - 1
    scorers = {"decoder": BigramScorer(len(BPE_TOKENS), seed)}
    weights = {"decoder": 1.0}
    if constraint is not None:
        scorers["lexicon"], weights["lexicon"] = constraint, 1.0
    beam_search = search_class(
        scorers=scorers, weights=weights, beam_size=beam_size, vocab_size=len(BPE_TOKENS), sos=eos, eos=eos,
        token_list=BPE_TOKENS,
    )
    hypotheses = beam_search(torch.zeros(MAX_LENGTH, 2, dtype=torch.float64), maxlenratio=0.0)
    return [(h.yseq.tolist(), float(h.score)) for h in hypotheses]


def spelt_words(yseq: List[int]) -> List[str]:
    return text_of([BPE_TOKENS[t] for t in yseq[1:-1]]).split()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("search_class", [BeamSearch, BatchBeamSearch])
def test_beam_search_with_lexicon_scorer_equals_search_with_text_oracle(search_class, seed):
    eos = len(BPE_TOKENS) - 1
    got = search(search_class, LexiconScorer(LexiconTokenTree(WORDS, BPE_TOKENS, eos)), seed)
    expected = search(search_class, TextOracleScorer(BPE_TOKENS, WORDS, eos), seed)
    assert [y for y, _ in got] == [y for y, _ in expected]
    assert [s for _, s in got] == pytest.approx([s for _, s in expected], abs=1e-9)
    ended_by_choice = [yseq for yseq, _ in got if len(yseq) < MAX_LENGTH + 2]  # not cut (<eos> forced) at 8 tokens
    assert ended_by_choice
    for yseq in ended_by_choice:
        assert all(w in WORDS for w in spelt_words(yseq)), spelt_words(yseq)


@pytest.mark.parametrize("cache_size", [1, 2])
@pytest.mark.parametrize("search_class", [BeamSearch, BatchBeamSearch])
def test_beam_search_with_a_tiny_cache_finds_what_the_default_cache_finds(search_class, cache_size):
    """Nodes dropped from the cache and scored again give the same hypotheses and scores."""
    eos = len(BPE_TOKENS) - 1
    for seed in range(6):
        default_tree = LexiconTokenTree(WORDS, BPE_TOKENS, eos)
        tiny_tree = LexiconTokenTree(WORDS, BPE_TOKENS, eos, cache_size=cache_size)
        expected = search(search_class, LexiconScorer(default_tree), seed)
        got = search(search_class, LexiconScorer(tiny_tree), seed)
        assert got == expected
        assert tiny_tree.cached_nodes() == cache_size < default_tree.cached_nodes()  # it did drop nodes


def test_the_constraint_changes_what_an_unconstrained_search_finds():
    """The seeds above are not vacuous: unconstrained, the same searches spell words outside the lexicon."""
    unconstrained = [search(BatchBeamSearch, None, seed)[0][0] for seed in range(6)]
    assert any(not all(w in WORDS for w in spelt_words(yseq)) for yseq in unconstrained)


def test_constrain_to_lexicon_keeps_the_search_settings():
    eos = len(BPE_TOKENS) - 1
    for pre_beam_ratio, beam_size in [(1.5, 4), (1.5, 5), (1.3, 7)]:
        original = BatchBeamSearch(
            scorers={"decoder": BigramScorer(len(BPE_TOKENS), 0)}, weights={"decoder": 0.7}, beam_size=beam_size,
            vocab_size=len(BPE_TOKENS), sos=eos, eos=eos, token_list=BPE_TOKENS, pre_beam_ratio=pre_beam_ratio,
            pre_beam_score_key="full", normalize_length=True,
        )
        constrained = constrain_to_lexicon(original, WORDS, cache_size=3)
        assert type(constrained) is BatchBeamSearch
        assert constrained.full_scorers["lexicon"].tree.cache_size == 3
        assert constrained.weights == {"decoder": 0.7, "lexicon": 1.0}
        assert isinstance(constrained.full_scorers["lexicon"], LexiconScorer)
        assert constrained.full_scorers["decoder"] is original.full_scorers["decoder"]
        for attribute in ("beam_size", "pre_beam_size", "pre_beam_score_key", "n_vocab", "sos", "eos",
                          "normalize_length"):
            assert getattr(constrained, attribute) == getattr(original, attribute), attribute


def test_constrain_to_lexicon_rejects_other_searches():
    eos = len(BPE_TOKENS) - 1
    streaming = BatchBeamSearch(
        scorers={"decoder": BigramScorer(len(BPE_TOKENS), 0)}, weights={"decoder": 1.0}, beam_size=2,
        vocab_size=len(BPE_TOKENS), sos=eos, eos=eos, token_list=BPE_TOKENS,
    )
    streaming.__class__ = BatchBeamSearchOnlineSim
    with pytest.raises(ValueError, match="not BatchBeamSearchOnlineSim"):
        constrain_to_lexicon(streaming, WORDS)


# ----- the entry point, against ESPnet's own asr_inference -----------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_char_model(tmp_path_factory) -> Path:
    """A dry-run ASR config (random weights) with the char tokens and a Mamba decoder."""
    root = tmp_path_factory.mktemp("lexicon_model")
    token_list = root / "tokens.txt"
    token_list.write_text("\n".join(CHAR_TOKENS) + "\n")
    mamba_decoder = ("mamba", "{'num_blocks': 1, 'd_state': 4, 'dropout_rate': 0.0}")
    write_asr_config(root, token_list, TINY_TRANSFORMER_ENCODER, mamba_decoder)
    wav_scp = root / "wav.scp"
    lines = []
    for i in range(3):
        wav = root / f"utt{i}.wav"
        soundfile.write(wav, np.random.RandomState(i).randn(6000) * 0.1, 16000)
        lines.append(f"utt{i} {wav}")
    wav_scp.write_text("\n".join(lines) + "\n")
    return root


def run_inference(main, model: Path, output_dir: Path, *options: str) -> dict:
    main([
        "--output_dir", str(output_dir),
        "--asr_train_config", str(model / "config.yaml"),
        "--data_path_and_name_and_type", f"{model / 'wav.scp'},speech,sound",
        "--beam_size", "3",
        "--ctc_weight", "0.3",
        *options,
    ])
    lines = (output_dir / "1best_recog" / "text").read_text().splitlines()
    return {line.split(" ", 1)[0]: line.split()[1:] for line in lines}


def test_entry_point_without_lexicon_is_espnets_inference(tiny_char_model, tmp_path):
    from espnet2.bin import asr_inference

    ours = run_inference(samba_asr_inference.main, tiny_char_model, tmp_path / "ours")
    espnets = run_inference(asr_inference.main, tiny_char_model, tmp_path / "espnet")
    assert ours == espnets and len(ours) == 3


def test_entry_point_with_lexicon_decodes_only_its_words(tiny_char_model, tmp_path):
    from espnet2.bin import asr_inference

    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("\n".join(WORDS) + "\n")
    unconstrained = run_inference(asr_inference.main, tiny_char_model, tmp_path / "espnet")
    constrained = run_inference(samba_asr_inference.main, tiny_char_model, tmp_path / "ours", "--lexicon", str(lexicon))
    assert len(constrained) == 3
    assert all(w in WORDS for words in constrained.values() for w in words), constrained
    assert any(w not in WORDS for words in unconstrained.values() for w in words), unconstrained
    assert asr_inference.Speech2Text.__name__ == "Speech2Text"  # ESPnet's module is left as it was


def test_entry_point_passes_the_cache_size_to_the_lexicon(tiny_char_model, tmp_path, monkeypatch):
    """--lexicon_cache_size reaches the tree; a cache of one node decodes what the default cache decodes."""
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("\n".join(WORDS) + "\n")
    sizes = []
    original_init = LexiconTokenTree.__init__

    def recording_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        sizes.append(self.cache_size)

    monkeypatch.setattr(LexiconTokenTree, "__init__", recording_init)
    default = run_inference(samba_asr_inference.main, tiny_char_model, tmp_path / "default", "--lexicon", str(lexicon))
    tiny = run_inference(samba_asr_inference.main, tiny_char_model, tmp_path / "tiny", "--lexicon", str(lexicon),
                         "--lexicon_cache_size", "1")
    assert tiny == default
    assert sizes == [DEFAULT_CACHE_SIZE, 1]


def test_entry_point_reports_a_missing_lexicon(tiny_char_model, tmp_path):
    with pytest.raises(FileNotFoundError, match="lexicon .*nowhere.txt not found"):
        run_inference(samba_asr_inference.main, tiny_char_model, tmp_path / "out", "--lexicon",
                      str(tmp_path / "nowhere.txt"))
