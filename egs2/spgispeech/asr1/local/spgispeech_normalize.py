#!/usr/bin/env python3
"""SPGISpeech's normalised text, as in ESPnet's recipe: ASCII punctuation removed, lower case.

Used twice: by ``prepare_spgispeech.py`` for the normalised data directories, and by ``local/score.sh`` to score
a model trained on the fully formatted text with the normalised WER too. ``"Q2 revenue was $1.5 billion."``
becomes ``"q2 revenue was 15 billion"``, exactly as ESPnet's ``tr``/``awk [[:punct:]]`` pipeline does.

Usage: spgispeech_normalize.py <in.trn> <out.trn>
"""

import argparse
import string
from pathlib import Path

from trn import rewrite_trn

_DELETE_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> str:
    """Normalise one transcript.

    Args:
        text: fully formatted transcript, e.g. ``"Yes. It's up 12%, we think."``.

    Returns:
        e.g. ``"yes its up 12 we think"``; words that were only punctuation disappear.
    """
    words = (word.translate(_DELETE_PUNCTUATION).lower() for word in text.split())
    return " ".join(word for word in words if word)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="input trn file")
    parser.add_argument("target", type=Path, help="output trn file")
    args = parser.parse_args()
    rewrite_trn(args.source, args.target, normalize)


if __name__ == "__main__":
    main()
