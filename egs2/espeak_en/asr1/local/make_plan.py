#!/usr/bin/env python3
"""Choose the sentences, voices, speaking rates and pitches of every utterance of the espeak_en corpus.

Writes one tab-separated plan per subset (``train.tsv``, ``dev.tsv``, ``test.tsv``) with the columns
``utt_id speaker voice rate pitch transcript``; ``synthesize.py`` turns a plan into audio and a Kaldi data dir.

Design:
- Sentences come from the fortune database (see ``fortune_text.py``), normalised with
  ``text_normalization.py``, kept when they have ``--min_words`` to ``--max_words`` words, de-duplicated.
- With ``--vocab_size K`` only sentences whose words all lie in the K most frequent words of the sentence
  pool are used, so that the training text repeats its words often enough for a small model to learn to spell
  them; ``--train_readings R`` has each training sentence read R times (by voices, rates and pitches drawn
  independently), since a limited vocabulary leaves fewer sentences than utterances wanted.
- Subsets never share a sentence. With ``--closed_vocabulary true`` (default) dev and test only take sentences
  whose words all occur in the training transcripts, like WSJ's closed-vocabulary test sets: a few thousand
  training sentences cannot cover the open vocabulary of the source, and a model without a lexicon cannot
  spell a word it has never seen from its sound alone.
- train and dev are spoken by ``--train_voices``; test by ``--test_voices``, which must not share a voice
  with them (held-out speakers). Rates and pitches are drawn uniformly per utterance.
- Everything is drawn from random generators seeded with ``--seed`` and the subset name, so a plan is
  reproducible and the train plan does not change when only ``--num_test`` changes.
"""
import argparse
import random
import sys
from collections import Counter
from pathlib import Path
from typing import Dict, List, NamedTuple, Sequence, Set, Tuple

from fortune_text import DEFAULT_CATEGORIES, DEFAULT_FORTUNE_DIR, iter_sentences
from text_normalization import normalize_transcript


class Utterance(NamedTuple):
    """One planned utterance: what is said, by which espeak-ng voice, how fast and how high."""

    utt_id: str
    speaker: str
    voice: str
    rate: int
    pitch: int
    transcript: str


def speaker_id(voice: str) -> str:
    """Kaldi speaker id of an espeak-ng voice name (``en-us+f2`` -> ``en-us_f2``)."""
    return voice.replace("+", "_")


def collect_transcripts(
    fortune_dir: Path, categories: Sequence[str], min_words: int, max_words: int
) -> List[str]:
    """Return the sorted, de-duplicated transcripts of ``min_words`` to ``max_words`` words."""
    transcripts = set()
    for _, sentence in iter_sentences(fortune_dir, categories):
        transcript = normalize_transcript(sentence)
        if transcript is not None and min_words <= len(transcript.split()) <= max_words:
            transcripts.add(transcript)
    return sorted(transcripts)


def limit_vocabulary(transcripts: Sequence[str], vocab_size: int) -> List[str]:
    """Keep the transcripts whose words all lie in the ``vocab_size`` most frequent words of ``transcripts``.

    Ties in frequency are broken alphabetically, so the result depends only on the input.
    """
    counts = Counter(word for transcript in transcripts for word in transcript.split())
    ranked = sorted(counts, key=lambda word: (-counts[word], word))
    vocabulary = set(ranked[:vocab_size])
    return [t for t in transcripts if all(word in vocabulary for word in t.split())]


def split_transcripts(
    transcripts: Sequence[str], sizes: Dict[str, int], closed_vocabulary: bool, seed: int, train_readings: int = 1
) -> Dict[str, List[str]]:
    """Draw disjoint transcript lists for train, dev and test.

    Args:
        transcripts: Candidate transcripts (sorted, so the draw depends only on ``seed``).
        sizes: Number of utterances wanted for ``train``, ``dev`` and ``test``.
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
            f"sentences, but the text source has {len(pool)} usable ones; lower --num_train, raise "
            "--train_readings or --vocab_size, or widen --min_words/--max_words or --categories"
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


def assign_voices(
    subset: str,
    transcripts: Sequence[str],
    voices: Sequence[str],
    rate_range: Tuple[int, int],
    pitch_range: Tuple[int, int],
    first_index: int,
    seed: int,
) -> List[Utterance]:
    """Give every transcript of a subset a voice (balanced round robin over a shuffled order), rate and pitch.

    Utterance ids are ``<speaker>-<index>`` with an index unique over the whole corpus, so ids are unique
    across subsets and the speaker id is a prefix of the utterance id, as Kaldi data dirs expect.
    """
    rng = random.Random(f"{seed}-{subset}-voices")
    slots = [voices[i % len(voices)] for i in range(len(transcripts))]
    rng.shuffle(slots)
    utterances = []
    for offset, (transcript, voice) in enumerate(zip(transcripts, slots)):
        speaker = speaker_id(voice)
        utterances.append(
            Utterance(
                utt_id=f"{speaker}-{first_index + offset:05d}",
                speaker=speaker,
                voice=voice,
                rate=rng.randint(*rate_range),
                pitch=rng.randint(*pitch_range),
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
            utt_id, speaker, voice, rate, pitch, transcript = fields
            utterances.append(Utterance(utt_id, speaker, voice, int(rate), int(pitch), transcript))
    return utterances


def parse_range(text: str) -> Tuple[int, int]:
    """Parse ``LOW-HIGH`` or ``VALUE`` into an inclusive integer range."""
    low, _, high = text.partition("-")
    try:
        bounds = (int(low), int(high or low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW-HIGH or VALUE (integers), got '{text}'") from None
    if bounds[0] > bounds[1]:
        raise argparse.ArgumentTypeError(f"empty range '{text}': LOW must not exceed HIGH")
    return bounds


def str2bool(text: str) -> bool:
    """Parse ESPnet-style boolean options (``true``/``false``)."""
    if text.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got '{text}'")
    return text.lower() == "true"


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out_dir", type=Path, required=True, help="where train.tsv, dev.tsv, test.tsv go")
    parser.add_argument("--fortune_dir", type=Path, default=DEFAULT_FORTUNE_DIR)
    parser.add_argument("--categories", nargs="+", default=list(DEFAULT_CATEGORIES))
    parser.add_argument("--num_train", type=int, default=3000)
    parser.add_argument("--num_dev", type=int, default=200)
    parser.add_argument("--num_test", type=int, default=300)
    parser.add_argument("--min_words", type=int, default=4)
    parser.add_argument("--max_words", type=int, default=12)
    parser.add_argument("--closed_vocabulary", type=str2bool, default=True)
    parser.add_argument(
        "--vocab_size", type=int, default=0, help="use only sentences within the K most frequent words; 0: all"
    )
    parser.add_argument("--train_readings", type=int, default=1, help="readings of each training sentence")
    parser.add_argument("--train_voices", nargs="+", required=True, help="espeak-ng voices of train and dev")
    parser.add_argument("--test_voices", nargs="+", required=True, help="held-out espeak-ng voices of test")
    parser.add_argument("--rate_range", type=parse_range, default=(150, 190), help="espeak-ng -s, words/min")
    parser.add_argument("--pitch_range", type=parse_range, default=(30, 70), help="espeak-ng -p, 0-99")
    parser.add_argument("--seed", type=int, default=0)
    return parser


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
    shared = sorted(set(map(speaker_id, args.train_voices)) & set(map(speaker_id, args.test_voices)))
    if shared:
        raise ValueError(f"--test_voices must be held out from --train_voices, both contain: {' '.join(shared)}")


def main(argv: Sequence[str]) -> None:
    args = get_parser().parse_args(argv)
    check_arguments(args)
    transcripts = collect_transcripts(args.fortune_dir, args.categories, args.min_words, args.max_words)
    if args.vocab_size > 0:
        transcripts = limit_vocabulary(transcripts, args.vocab_size)
    sizes = {"train": args.num_train, "dev": args.num_dev, "test": args.num_test}
    subsets = split_transcripts(transcripts, sizes, args.closed_vocabulary, args.seed, args.train_readings)
    voices = {"train": args.train_voices, "dev": args.train_voices, "test": args.test_voices}
    first_index = 0
    for subset, subset_transcripts in subsets.items():
        utterances = assign_voices(
            subset, subset_transcripts, voices[subset], args.rate_range, args.pitch_range, first_index, args.seed
        )
        write_plan(args.out_dir / f"{subset}.tsv", utterances)
        first_index += len(utterances)
        words = Counter(word for t in subset_transcripts for word in t.split())
        print(
            f"{subset}: {len(utterances)} utterances ({len(set(subset_transcripts))} sentences), "
            f"{sum(words.values())} words, {len(words)} distinct, "
            f"{len(voices[subset])} voices",
            file=sys.stderr,
        )
    limit = f" within the {args.vocab_size} most frequent words" if args.vocab_size > 0 else ""
    print(f"sentence pool: {len(transcripts)} normalised sentences{limit} from {args.fortune_dir}", file=sys.stderr)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"{Path(__file__).name}: error: {error}")
