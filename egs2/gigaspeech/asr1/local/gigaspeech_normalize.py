#!/usr/bin/env python3
"""Apply GigaSpeech's scoring normalisation to sclite ``trn`` files (references and hypotheses alike).

The rules are those of the official scoring script (SpeechColab/GigaSpeech ``utils/gigaspeech_scoring.py``):
the text is upper-cased, hyphens become spaces (``E-COMMERCE`` -> ``E COMMERCE``), and the words that are not
scored are removed: conversational fillers (UH, UM, ...), ``<UNK>``, the punctuation tags and the garbage tags.

Usage: gigaspeech_normalize.py <in.trn> <out.trn>
"""

import argparse
from pathlib import Path

from trn import rewrite_trn

CONVERSATIONAL_FILLERS = (
    "UH", "UHH", "UM", "EH", "MM", "HM", "AH", "HUH", "HA", "ER", "OOF", "HEE", "ACH", "EEE", "EW",
)  # fmt: skip
UNKNOWN_TAGS = ("<UNK>", "<unk>")
PUNCTUATION_TAGS = ("<COMMA>", "<PERIOD>", "<QUESTIONMARK>", "<EXCLAMATIONPOINT>")
GARBAGE_TAGS = ("<SIL>", "<NOISE>", "<MUSIC>", "<OTHER>")
NON_SCORING_WORDS = frozenset(CONVERSATIONAL_FILLERS + UNKNOWN_TAGS + PUNCTUATION_TAGS + GARBAGE_TAGS)


def normalize(text: str) -> str:
    """Normalise one transcript for GigaSpeech scoring.

    Args:
        text: words separated by whitespace, e.g. ``"uh the state-of-the-art <COMMA> model"``.

    Returns:
        e.g. ``"THE STATE OF THE ART MODEL"``.
    """
    words = text.upper().replace("-", " ").split()
    return " ".join(word for word in words if word not in NON_SCORING_WORDS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="input trn file")
    parser.add_argument("target", type=Path, help="output trn file")
    args = parser.parse_args()
    rewrite_trn(args.source, args.target, normalize)


if __name__ == "__main__":
    main()
