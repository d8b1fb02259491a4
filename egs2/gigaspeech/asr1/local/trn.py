"""Rewrite the text of sclite ``trn`` files (``<text> (<utt-id>)`` per line), keeping the utterance ids.

Shared by the recipes' scoring normalisers (spgispeech links this file into its ``local/``).
"""

import sys
from pathlib import Path
from typing import Callable


def rewrite_trn(source: Path, target: Path, rewrite: Callable[[str], str]) -> None:
    """Write ``source`` to ``target`` with ``rewrite`` applied to each line's text.

    Args:
        source: trn file as written by ``asr.sh`` (``score_wer/ref.trn`` or ``hyp.trn``).
        target: output trn file.
        rewrite: text -> text, e.g. a normaliser.
    """
    with source.open(encoding="utf-8") as lines, target.open("w", encoding="utf-8") as out:
        for line_number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            text, _, utt_id = line.rstrip("\n").rpartition("(")
            if not utt_id.endswith(")"):
                sys.exit(f"error: {source}:{line_number}: expected '<text> (<utt-id>)'")
            out.write(f"{rewrite(text)}\t({utt_id}\n")
