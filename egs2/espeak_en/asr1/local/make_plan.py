#!/usr/bin/env python3
"""Choose the sentences, voices, speaking rates and pitches of every utterance of the corpus.

Writes one tab-separated plan per subset (``train.tsv``, ``dev.tsv``, one per test set) with the columns
``utt_id speaker voice tempo pitch transcript``; ``synthesize.py`` turns a plan into audio and a Kaldi data dir.
A voice is ``family:name`` (``flite:awb``, see ``synthesizers.py``); tempo and pitch are factors of the voice's
own speaking rate and fundamental frequency, drawn uniformly per utterance.

Design:
- Sentences come from the text sources (``text_sources.py``: fortunes, WordNet's examples), normalised,
  kept when they have ``--min_words`` to ``--max_words`` words, de-duplicated. With ``--vocab_size K`` only
  sentences whose words all lie in the K most frequent words of that pool are kept: everyday words, which a
  few hours of speech can teach a small model to spell.
- Subsets never share a sentence. With ``--closed_vocabulary true`` (default) dev and test only take sentences
  whose words all occur in the training transcripts, like WSJ's closed-vocabulary test sets: a model without a
  lexicon cannot spell a word it has never heard.
- train and dev are read by ``--train_voices``, the training families sharing the utterances equally (the
  voices of a family in turn), so that espeak-ng's many voices do not crowd out festival's few.
- Test sets read the same ``--num_test`` sentences, each set by its own voices: ``--test_set NAME VOICE...``
  by held-out voices of training families (never heard in train or dev), ``--unseen_test_set NAME VOICE...``
  by a family never used in training at all. ``--mixed_test_set NAME`` (the source of test_noisy) gives each
  test sentence one held-out voice of the ``--test_set`` sets, the families in turn.
- Everything is drawn from random generators seeded with ``--seed`` and the subset name, so a plan is
  reproducible and the train plan does not change when only the test sets change.
"""
import argparse
import random
import sys
from collections import Counter
from pathlib import Path
from typing import Dict, Iterable, List, NamedTuple, Sequence, Set, Tuple

from fortune_text import DEFAULT_CATEGORIES, DEFAULT_FORTUNE_DIR
from synthesizers import Voice
from text_sources import SOURCES, iter_passages
from wordnet_text import DEFAULT_WORDNET_DIR

TRAINING_SUBSETS = ("train", "dev")


class Utterance(NamedTuple):
    """One planned utterance: what is said, by which voice, how fast and how high."""

    utt_id: str
    speaker: str
    voice: str
    tempo: float
    pitch: float
    transcript: str


def collect_transcripts(passages: Iterable, min_words: int, max_words: int) -> List[str]:
    """Return the sorted, de-duplicated transcripts of ``min_words`` to ``max_words`` words of `passages`."""
    return sorted({
        transcript
        for passage in passages
        for transcript in passage.transcripts
        if min_words <= len(transcript.split()) <= max_words
    })


def frequent_words(transcripts: Sequence[str], vocab_size: int) -> Set[str]:
    """The ``vocab_size`` most frequent words of ``transcripts``, ties broken alphabetically (so the result depends
    only on the input)."""
    counts = Counter(word for transcript in transcripts for word in transcript.split())
    ranked = sorted(counts, key=lambda word: (-counts[word], word))
    return set(ranked[:vocab_size])


def limit_vocabulary(transcripts: Sequence[str], vocab_size: int) -> List[str]:
    """Keep the transcripts whose words all lie in the ``vocab_size`` most frequent words of ``transcripts``."""
    vocabulary = frequent_words(transcripts, vocab_size)
    return [t for t in transcripts if all(word in vocabulary for word in t.split())]


def split_transcripts(
    transcripts: Sequence[str], sizes: Dict[str, int], closed_vocabulary: bool, seed: int, train_readings: int = 1
) -> Dict[str, List[str]]:
    """Draw disjoint transcript lists for train, dev and test.

    Args:
        transcripts: Candidate transcripts (sorted, so the draw depends only on ``seed``).
        sizes: Number of utterances wanted for ``train`` and ``dev``, of sentences for ``test``.
        closed_vocabulary: Only draw dev/test transcripts whose words all occur in the train transcripts.
        seed: Random seed.
        train_readings: How many times each training sentence is read; ``sizes["train"]`` counts readings.

    Returns:
        The transcripts of each subset; a training transcript occurs ``train_readings`` times (the last
        sentences fewer times where ``sizes["train"]`` is not a multiple of it).
    """
    pool = list(transcripts)
    random.Random(f"{seed}-sentences").shuffle(pool)
    num_train_sentences = -(-sizes["train"] // train_readings)
    if num_train_sentences > len(pool):
        raise ValueError(
            f"--num_train {sizes['train']} with --train_readings {train_readings} needs {num_train_sentences} "
            f"sentences, but the text sources have {len(pool)} usable ones; lower --num_train, raise "
            "--train_readings or --vocab_size, widen --min_words/--max_words, or add --text_sources"
        )
    train, rest = pool[:num_train_sentences], pool[num_train_sentences:]
    if closed_vocabulary:
        vocabulary: Set[str] = {word for transcript in train for word in transcript.split()}
        rest = [t for t in rest if all(word in vocabulary for word in t.split())]
    wanted = sizes["dev"] + sizes["test"]
    if wanted > len(rest):
        kind = "closed-vocabulary " if closed_vocabulary else ""
        raise ValueError(
            f"--num_dev + --num_test = {wanted} exceeds the {len(rest)} {kind}sentences left after drawing "
            f"{sizes['train']} training sentences; lower them, raise --num_train"
            + (", or pass --closed_vocabulary false" if closed_vocabulary else "")
        )
    readings = [transcript for _ in range(train_readings) for transcript in train][: sizes["train"]]
    return {"train": readings, "dev": rest[: sizes["dev"]], "test": rest[sizes["dev"] : wanted]}


def family_balanced_voices(voices: Sequence[Voice], count: int, rng: random.Random) -> List[Voice]:
    """`count` voices in shuffled order, the families taking equal shares and each family's voices in turn."""
    families: Dict[str, List[Voice]] = {}
    for voice in voices:
        families.setdefault(voice.family, []).append(voice)
    order = sorted(families)
    slots = [
        families[order[i % len(order)]][(i // len(order)) % len(families[order[i % len(order)]])]
        for i in range(count)
    ]
    rng.shuffle(slots)
    return slots


def assign_voices(
    subset: str,
    transcripts: Sequence[str],
    voices: Sequence[Voice],
    tempo_range: Tuple[float, float],
    pitch_range: Tuple[float, float],
    first_index: int,
    seed: int,
) -> List[Utterance]:
    """Give every transcript of a subset a voice (family-balanced, see above), a tempo and a pitch.

    Utterance ids are ``<speaker>-<index>`` with ``first_index + position``: unique within a subset, and the
    speaker id is a prefix of the utterance id, as Kaldi data dirs expect.
    """
    rng = random.Random(f"{seed}-{subset}-voices")
    slots = family_balanced_voices(voices, len(transcripts), rng)
    utterances = []
    for offset, (transcript, voice) in enumerate(zip(transcripts, slots)):
        utterances.append(
            Utterance(
                utt_id=f"{voice.speaker}-{first_index + offset:05d}",
                speaker=voice.speaker,
                voice=voice.spec,
                tempo=round(rng.uniform(*tempo_range), 3),
                pitch=round(rng.uniform(*pitch_range), 3),
                transcript=transcript,
            )
        )
    return utterances


def write_plan(path: Path, utterances: Sequence[Utterance]) -> None:
    """Write a plan as TSV sorted by utterance id."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for utt in sorted(utterances):
            f.write("\t".join(str(field) for field in utt) + "\n")


def read_plan(path: Path) -> List[Utterance]:
    """Read a plan written by :func:`write_plan`."""
    utterances = []
    with path.open(encoding="utf-8") as f:
        for line_number, line in enumerate(f, 1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != len(Utterance._fields):
                raise ValueError(f"{path}:{line_number}: expected {len(Utterance._fields)} tab-separated fields")
            utt_id, speaker, voice, tempo, pitch, transcript = fields
            utterances.append(Utterance(utt_id, speaker, voice, float(tempo), float(pitch), transcript))
    return utterances


def parse_range(text: str) -> Tuple[float, float]:
    """Parse ``LOW-HIGH`` or ``VALUE`` into an inclusive range."""
    low, _, high = text.partition("-")
    try:
        bounds = (float(low), float(high or low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW-HIGH or VALUE, got '{text}'") from None
    if bounds[0] > bounds[1]:
        raise argparse.ArgumentTypeError(f"empty range '{text}': LOW must not exceed HIGH")
    return bounds


def voice_argument(spec: str) -> Voice:
    """A ``FAMILY:NAME`` option value, with the parse error as argparse's message."""
    try:
        return Voice.parse(spec)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def str2bool(text: str) -> bool:
    """Parse ESPnet-style boolean options (``true``/``false``)."""
    if text.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got '{text}'")
    return text.lower() == "true"


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out_dir", type=Path, required=True, help="where the plans (<subset>.tsv) go")
    parser.add_argument("--text_sources", nargs="+", default=list(SOURCES), choices=SOURCES)
    parser.add_argument("--fortune_dir", type=Path, default=DEFAULT_FORTUNE_DIR)
    parser.add_argument("--categories", nargs="+", default=list(DEFAULT_CATEGORIES))
    parser.add_argument("--wordnet_dir", type=Path, default=DEFAULT_WORDNET_DIR)
    parser.add_argument("--num_train", type=int, default=3000)
    parser.add_argument("--num_dev", type=int, default=200)
    parser.add_argument("--num_test", type=int, default=200, help="sentences, read by every test set")
    parser.add_argument("--min_words", type=int, default=4)
    parser.add_argument("--max_words", type=int, default=12)
    parser.add_argument("--closed_vocabulary", type=str2bool, default=True)
    parser.add_argument(
        "--vocab_size", type=int, default=0, help="use only sentences within the K most frequent words; 0: all"
    )
    parser.add_argument("--train_readings", type=int, default=1, help="readings of each training sentence")
    parser.add_argument("--train_voices", nargs="+", type=voice_argument, required=True,
                        help="FAMILY:NAME voices of train and dev")
    parser.add_argument("--test_set", nargs="+", action="append", default=[], metavar="NAME VOICE",
                        help="a test set of held-out voices of training families (repeatable)")
    parser.add_argument("--unseen_test_set", nargs="+", action="append", default=[], metavar="NAME VOICE",
                        help="a test set of a family never used in training (repeatable)")
    parser.add_argument("--mixed_test_set", default="",
                        help="also a test set giving each sentence one voice of the --test_set sets")
    parser.add_argument("--tempo_range", type=parse_range, default=(0.85, 1.15), help="speaking-rate factor")
    parser.add_argument("--pitch_range", type=parse_range, default=(0.85, 1.2), help="F0 factor")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def parse_test_sets(specs: Sequence[Sequence[str]], option: str) -> Dict[str, List[Voice]]:
    """``[[NAME, VOICE, ...], ...]`` -> {NAME: voices}, refusing sets without voices and repeated names."""
    test_sets: Dict[str, List[Voice]] = {}
    for name, *voices in specs:
        if not voices:
            raise ValueError(f"{option} {name} names no voice: write {option} NAME FAMILY:VOICE...")
        if name in test_sets or name in TRAINING_SUBSETS:
            raise ValueError(f"{option}: the subset name '{name}' is already taken")
        test_sets[name] = [Voice.parse(voice) for voice in voices]
    return test_sets


def check_voices(train: Sequence[Voice], held_out: Dict[str, List[Voice]], unseen: Dict[str, List[Voice]]) -> None:
    """Held-out voices must be new speakers of training families; unseen sets must be of new families."""
    training_speakers = {voice.speaker for voice in train}
    training_families = {voice.family for voice in train}
    for name, voices in held_out.items():
        shared = sorted(training_speakers & {voice.speaker for voice in voices})
        if shared:
            raise ValueError(f"--test_set {name} must hold voices out of --train_voices; both have: {' '.join(shared)}")
        new = sorted({voice.family for voice in voices} - training_families)
        if new:
            raise ValueError(
                f"--test_set {name}: family {' '.join(new)} reads none of the training data; "
                "use --unseen_test_set for a family never used in training"
            )
    for name, voices in unseen.items():
        seen = sorted({voice.family for voice in voices} & training_families)
        if seen:
            raise ValueError(
                f"--unseen_test_set {name}: family {' '.join(seen)} also reads the training data; "
                "use --test_set for held-out voices of a training family"
            )


def check_arguments(args: argparse.Namespace) -> None:
    """Reject option combinations that cannot make a valid corpus, saying which option to change."""
    for name in ("num_train", "num_dev", "num_test"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1, got {getattr(args, name)}")
    if not 1 <= args.min_words <= args.max_words:
        raise ValueError(f"need 1 <= --min_words <= --max_words, got {args.min_words} and {args.max_words}")
    if args.vocab_size < 0:
        raise ValueError(f"--vocab_size must be 0 (no limit) or positive, got {args.vocab_size}")
    if args.train_readings < 1:
        raise ValueError(f"--train_readings must be at least 1, got {args.train_readings}")
    if args.tempo_range[0] <= 0 or args.pitch_range[0] <= 0:
        raise ValueError("--tempo_range and --pitch_range are factors of the voice's own: they must be positive")


def main(argv: Sequence[str]) -> None:
    args = get_parser().parse_args(argv)
    check_arguments(args)
    held_out = parse_test_sets(args.test_set, "--test_set")
    unseen = parse_test_sets(args.unseen_test_set, "--unseen_test_set")
    check_voices(args.train_voices, held_out, unseen)
    if args.mixed_test_set and not held_out:
        raise ValueError("--mixed_test_set draws its voices from the --test_set sets: give at least one")
    passages = iter_passages(args.text_sources, args.fortune_dir, args.categories, args.wordnet_dir)
    transcripts = collect_transcripts(passages, args.min_words, args.max_words)
    if args.vocab_size > 0:
        transcripts = limit_vocabulary(transcripts, args.vocab_size)
    sizes = {"train": args.num_train, "dev": args.num_dev, "test": args.num_test}
    sentences = split_transcripts(transcripts, sizes, args.closed_vocabulary, args.seed, args.train_readings)
    subsets: Dict[str, Tuple[List[str], Sequence[Voice], int]] = {
        "train": (sentences["train"], args.train_voices, 0),
        "dev": (sentences["dev"], args.train_voices, len(sentences["train"])),
    }
    test_index = len(sentences["train"]) + len(sentences["dev"])  # the same sentence: the same index in every set
    for name, voices in {**held_out, **unseen}.items():
        subsets[name] = (sentences["test"], voices, test_index)
    if args.mixed_test_set:
        subsets[args.mixed_test_set] = (
            sentences["test"], [voice for voices in held_out.values() for voice in voices], test_index
        )
    for subset, (subset_transcripts, voices, first_index) in subsets.items():
        utterances = assign_voices(
            subset, subset_transcripts, voices, args.tempo_range, args.pitch_range, first_index, args.seed
        )
        write_plan(args.out_dir / f"{subset}.tsv", utterances)
        words = Counter(word for t in subset_transcripts for word in t.split())
        families = Counter(Voice.parse(u.voice).family for u in utterances)
        print(
            f"{subset}: {len(utterances)} utterances ({len(set(subset_transcripts))} sentences), "
            f"{sum(words.values())} words, {len(words)} distinct, {len(set(voices))} voices "
            f"({', '.join(f'{family} {n}' for family, n in sorted(families.items()))})",
            file=sys.stderr,
        )
    limit = f" within the {args.vocab_size} most frequent words" if args.vocab_size > 0 else ""
    print(f"sentence pool: {len(transcripts)} normalised sentences{limit} from {' and '.join(args.text_sources)}",
          file=sys.stderr)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"{Path(__file__).name}: error: {error}")
