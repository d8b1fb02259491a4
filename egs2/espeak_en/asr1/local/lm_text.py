#!/usr/bin/env python3
"""Write the language-model text of the espeak_en corpus: the fortune sentences that are not spoken in it.

The acoustic training transcripts cover a few thousand sentences; the fortune database holds about twice as many
usable ones. Like LibriSpeech's ``data/local/other_text``, this extra text trains the LM only (``run.sh`` passes
it with the training transcripts as ``--lm_train_text``). It holds every normalised sentence (any length) of
the chosen categories except

- the sentences already in the training transcripts (the LM reads those from ``data/<train>/text``), and
- every sentence of a fortune that contains a dev or test sentence: the LM never sees an evaluation sentence or
  the text around it.

Output: a Kaldi-style text file, ``other-<index> <TRANSCRIPT>`` per line, sorted, without duplicates.
"""
import argparse
import sys
from pathlib import Path
from typing import Iterable, List, Sequence, Set

from fortune_text import DEFAULT_CATEGORIES, DEFAULT_FORTUNE_DIR, iter_fortunes
from kaldi_data import read_table
from text_normalization import normalize_transcript


def read_transcripts(text_files: Iterable[Path]) -> Set[str]:
    """The transcripts of Kaldi ``text`` files."""
    return {transcript for path in text_files for transcript in read_table(path).values()}


def other_text(
    fortune_dir: Path, categories: Sequence[str], spoken: Set[str], held_out: Set[str]
) -> List[str]:
    """The sorted, de-duplicated normalised sentences of the fortunes, minus `spoken` and held-out fortunes.

    Args:
        fortune_dir: Directory of the fortune database.
        categories: Category file names to read.
        spoken: Transcripts left out one by one (the training transcripts).
        held_out: Transcripts whose whole fortune is left out (dev and test).
    """
    kept = set()
    for _, sentences in iter_fortunes(fortune_dir, categories):
        transcripts = [t for t in map(normalize_transcript, sentences) if t is not None]
        if held_out.intersection(transcripts):
            continue
        kept.update(t for t in transcripts if t not in spoken)
    return sorted(kept)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="the text file to write")
    parser.add_argument("--train_text", type=Path, nargs="+", required=True, help="Kaldi text of the training data")
    parser.add_argument(
        "--held_out_text", type=Path, nargs="+", required=True, help="Kaldi text of dev and test sets"
    )
    parser.add_argument("--fortune_dir", type=Path, default=DEFAULT_FORTUNE_DIR)
    parser.add_argument("--categories", nargs="+", default=list(DEFAULT_CATEGORIES))
    return parser


def main(argv: Sequence[str]) -> None:
    args = get_parser().parse_args(argv)
    for path in (*args.train_text, *args.held_out_text):
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: run local/data.sh's stages 1-2 first")
    spoken = read_transcripts(args.train_text)
    held_out = read_transcripts(args.held_out_text)
    sentences = other_text(args.fortune_dir, args.categories, spoken, held_out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as f:
        for index, sentence in enumerate(sentences):
            f.write(f"other-{index:06d} {sentence}\n")
    words = sum(len(sentence.split()) for sentence in sentences)
    print(f"{args.out}: {len(sentences)} sentences, {words} words of LM text", file=sys.stderr)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"{Path(__file__).name}: error: {error}")
