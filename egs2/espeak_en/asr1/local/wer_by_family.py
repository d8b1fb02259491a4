#!/usr/bin/env python3
"""WER per synthesizer family of scored decodings: sclite run again on each family's utterances.

A data dir of this corpus names its speakers ``<family>_<voice>`` (``espeak-ng_en-gb_f1``, ``flite_awb``), so
stage 13's ``score_wer/{ref,hyp}.trn`` can be split by family; each part is scored by sclite as stage 13 scores
the whole. Comparing the training voices (dev: unseen sentences, seen voices) with the held-out voices
(test_<family>: unseen sentences, unseen voices) of one family separates the two kinds of generalisation.
Writes ``wer_by_family.md`` into ``--out_dir`` and prints it.

    local/wer_by_family.py --out_dir exp/wer_by_family \\
        dev=exp/asr_x/decode_y/dev/score_wer test_flite=exp/asr_x/decode_y/test_flite/score_wer ...
"""
import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Sequence

from compare_models import sclite_wer
from report_outputs import named_path, publish_table

_TRN_ID = re.compile(r"\(([^()]+)\)\s*$")


def split_by_family(trn: Path) -> Dict[str, List[str]]:
    """The lines of a trn file grouped by the family its utterance id starts with (``flite`` of ``(flite_...)``)."""
    families = defaultdict(list)
    for line in trn.read_text(encoding="utf-8").splitlines():
        match = _TRN_ID.search(line)
        if match is None:
            raise ValueError(f"{trn}: '{line}' does not end with an utterance id in parentheses")
        families[match.group(1).split("_", 1)[0]].append(line)
    return dict(families)


def sclite_command() -> str:
    """sclite on PATH, or where Debian's sctk keeps it."""
    found = shutil.which("sclite") or "/usr/lib/sctk/bin/sclite"
    if not Path(found).is_file():
        raise FileNotFoundError("sclite not found: install SCTK (Debian/Ubuntu: apt-get install sctk)")
    return found


def family_wers(score_dir: Path) -> Dict[str, float]:
    """{family: WER %} of one scored decoding (a ``score_wer`` dir holding stage 13's ref.trn and hyp.trn)."""
    references, hypotheses = (split_by_family(score_dir / name) for name in ("ref.trn", "hyp.trn"))
    if references.keys() != hypotheses.keys():
        raise ValueError(f"{score_dir}: ref.trn and hyp.trn hold different families")
    sclite = sclite_command()
    wers = {}
    with tempfile.TemporaryDirectory() as scratch:
        for family in sorted(references):
            ref, hyp, result = (Path(scratch) / f"{family}.{kind}" for kind in ("ref.trn", "hyp.trn", "txt"))
            ref.write_text("\n".join(references[family]) + "\n", encoding="utf-8")
            hyp.write_text("\n".join(hypotheses[family]) + "\n", encoding="utf-8")
            with open(result, "w") as out:
                subprocess.run([sclite, "-r", str(ref), "trn", "-h", str(hyp), "trn", "-i", "rm",
                                "-o", "all", "stdout"], stdout=out, check=True)
            wers[family] = sclite_wer(result)
    return wers


def summary_table(results: Dict[str, Dict[str, float]]) -> str:
    """A markdown table: one row per decoding, one column per family."""
    families = sorted({family for wers in results.values() for family in wers})
    lines = ["| decoding | " + " | ".join(families) + " |", "|---|" + "---:|" * len(families)]
    for name, wers in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{wers[f]:.1f}" if f in wers else "" for f in families) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("decodings", nargs="+", type=named_path, help="NAME=SCORE_WER_DIR (stage 13's ref/hyp.trn)")
    parser.add_argument("--out_dir", type=Path, required=True)
    args = parser.parse_args(argv)
    table = "WER (%) per synthesizer family\n\n" + summary_table(
        {name: family_wers(score_dir) for name, score_dir in args.decodings})
    publish_table(args.out_dir, "wer_by_family", table)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"{Path(__file__).name}: error: {error}")
