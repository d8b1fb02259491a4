#!/usr/bin/env python3
"""Write the language-model text of the espeak_en corpus: the sources' sentences that are not spoken in it.

The acoustic training transcripts cover a few thousand sentences; the text sources (``text_sources.py``:
fortunes, WordNet's examples) hold several times as many. Like LibriSpeech's ``data/local/other_text``, this
extra text trains the LM only (``run.sh`` passes it with the training transcripts as ``--lm_train_text``). It
holds every normalised sentence (any length) of the sources whose words all lie in the corpus's vocabulary limit
(``--vocab_size``, as ``make_plan.py`` applies it) except

- the sentences already in the training transcripts (the LM reads those from ``data/<train>/text``), and
- every sentence of a passage (a fortune, a synset) that contains a dev or test sentence: the LM never sees an
  evaluation sentence or the text around it.

Output: a Kaldi-style text file, ``other-<index> <TRANSCRIPT>`` per line, sorted, without duplicates.
"""
import argparse
import sys
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Set

from fortune_text import DEFAULT_CATEGORIES, DEFAULT_FORTUNE_DIR
from kaldi_data import read_table
from make_plan import collect_transcripts, frequent_words
from text_sources import SOURCES, Passage, iter_passages
from wordnet_text import DEFAULT_WORDNET_DIR


def read_transcripts(text_files: Iterable[Path]) -> Set[str]:
    """The transcripts of Kaldi ``text`` files."""
    return {transcript for path in text_files for transcript in read_table(path).values()}


def other_text(
    passages: Sequence[Passage], spoken: Set[str], held_out: Set[str], vocabulary: Optional[Set[str]] = None
) -> List[str]:
    """The sorted, de-duplicated transcripts of `passages` within `vocabulary`, minus `spoken` and held-out passages.

    Args:
        passages: The sources' passages (``text_sources.iter_passages``).
        spoken: Transcripts left out one by one (the training transcripts).
        held_out: Transcripts whose whole passage is left out (dev and test).
        vocabulary: Words a kept transcript may use; None: any.
    """
    kept = set()
    for passage in passages:
        if held_out.intersection(passage.transcripts):
            continue
        kept.update(
            t for t in passage.transcripts
            if t not in spoken and (vocabulary is None or all(word in vocabulary for word in t.split()))
        )
    return sorted(kept)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="the text file to write")
    parser.add_argument("--train_text", type=Path, nargs="+", required=True, help="Kaldi text of the training data")
    parser.add_argument(
        "--held_out_text", type=Path, nargs="+", required=True, help="Kaldi text of dev and test sets"
    )
    parser.add_argument("--text_sources", nargs="+", default=list(SOURCES), choices=SOURCES)
    parser.add_argument("--fortune_dir", type=Path, default=DEFAULT_FORTUNE_DIR)
    parser.add_argument("--categories", nargs="+", default=list(DEFAULT_CATEGORIES))
    parser.add_argument("--wordnet_dir", type=Path, default=DEFAULT_WORDNET_DIR)
    parser.add_argument("--vocab_size", type=int, default=0, help="as make_plan.py's; 0: no limit")
    parser.add_argument("--min_words", type=int, default=4, help="as make_plan.py's (for the vocabulary limit)")
    parser.add_argument("--max_words", type=int, default=12, help="as make_plan.py's (for the vocabulary limit)")
    return parser


def main(argv: Sequence[str]) -> None:
    args = get_parser().parse_args(argv)
    for path in (*args.train_text, *args.held_out_text):
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: run local/data.sh's stages 1-2 first")
    spoken = read_transcripts(args.train_text)
    held_out = read_transcripts(args.held_out_text)
    passages = list(iter_passages(args.text_sources, args.fortune_dir, args.categories, args.wordnet_dir))
    vocabulary = None
    if args.vocab_size > 0:
        vocabulary = frequent_words(collect_transcripts(passages, args.min_words, args.max_words), args.vocab_size)
    sentences = other_text(passages, spoken, held_out, vocabulary)
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
