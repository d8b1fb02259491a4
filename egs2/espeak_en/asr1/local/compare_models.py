#!/usr/bin/env python3
"""Tabulate trained and decoded models side by side: WER per test set (sclite's), parameters, epochs, training time.

For each ``NAME=EXP_DIR``: every decoding directory of the experiment (``decode_*``: the offline decoding, and a
streamed one as its own row) and, in it, every test set's ``score_wer/result.txt`` (sclite's ``Sum/Avg`` line);
the parameter count and the epochs with their train + validation time from ``train.log``. Writes
``wer.md`` and ``wer.png`` (WER per test set and model) into ``--out_dir`` and prints the table.

    local/compare_models.py --out_dir exp/compare_models --minutes 12 causal_prefix=exp/asr_compare_causal_prefix ...
"""
import argparse
import re
import sys
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence

from report_outputs import finish_axes, named_path, new_figure, publish
from training_curves import read_epochs

TEST_SETS = ("test_espeak", "test_flite", "test_festival", "test_unseen_pico", "test_noisy")
_SUM_LINE = re.compile(r"\|\s*Sum/Avg\s*\|\s*(\d+)\s+(\d+)\s*\|\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)")
_STREAMING = re.compile(r"_streaming_chunk(\d+)_")
_PARAMETERS = re.compile(r"Total Number of model parameters: ([\d.]+ [KMG]?)")


class Row(NamedTuple):
    """One decoded model: its name, size, training and WER per test set (None where not decoded)."""

    name: str
    parameters: str
    epochs: int
    train_minutes: float
    wer: Dict[str, Optional[float]]


def sclite_wer(result_txt: Path) -> float:
    """The WER (%) of sclite's ``Sum/Avg`` line in a ``result.txt``."""
    match = _SUM_LINE.search(result_txt.read_text(encoding="utf-8", errors="replace"))
    if match is None:
        raise ValueError(f"{result_txt}: no Sum/Avg line; was it written by sclite (stage 13)?")
    return float(match.group(7))


def decoding_name(decode_dir: Path, model: str) -> str:
    """The row name of a decoding: the model's, with the chunk of a streamed decoding (samples of 16 kHz)."""
    streamed = _STREAMING.search(decode_dir.name)
    return f"{model}, streamed {int(streamed.group(1)) // 16} ms" if streamed else model


def experiment_rows(name: str, exp_dir: Path) -> List[Row]:
    """One row per decoding directory of an experiment, the offline one first."""
    log = (exp_dir / "train.log").read_text(encoding="utf-8", errors="replace")
    parameters = _PARAMETERS.search(log)
    epochs = read_epochs(exp_dir)
    minutes = sum(e.train_seconds + e.valid.get("time", 0.0) for e in epochs) / 60
    decode_dirs = sorted(exp_dir.glob("decode_*"), key=lambda d: (_STREAMING.search(d.name) is not None, d.name))
    if not decode_dirs:
        raise FileNotFoundError(f"{exp_dir} has no decode_* directory: run stages 12-13 for it")
    rows = []
    for decode_dir in decode_dirs:
        wer = {}
        for test_set in TEST_SETS:
            result = decode_dir / test_set / "score_wer" / "result.txt"
            wer[test_set] = sclite_wer(result) if result.is_file() else None
        rows.append(Row(decoding_name(decode_dir, name), parameters.group(1) if parameters else "?", len(epochs),
                        minutes, wer))
    return rows


def summary_table(rows: Sequence[Row]) -> str:
    header = "| model | params | epochs | training | " + " | ".join(TEST_SETS) + " |"
    lines = [header, "|---|---:|---:|---:|" + "---:|" * len(TEST_SETS)]
    for row in rows:
        cells = [f"{row.wer[t]:.1f}" if row.wer[t] is not None else "" for t in TEST_SETS]
        lines.append(f"| {row.name} | {row.parameters} | {row.epochs} | {row.train_minutes:.1f} min | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: Sequence[Row]):
    """WER bars: the test sets side by side, one bar per model."""
    figure, axis = new_figure(9.0)
    width = 0.8 / len(rows)
    for index, row in enumerate(rows):
        positions = [i + (index - (len(rows) - 1) / 2) * width for i in range(len(TEST_SETS))]
        axis.bar(positions, [row.wer[t] or 0.0 for t in TEST_SETS], width, label=row.name)
    axis.set_xticks(range(len(TEST_SETS)), TEST_SETS)
    finish_axes(axis, "test set", "WER (%)", grid_axis="y", legend_size=7)
    return figure


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiments", nargs="+", type=named_path, help="NAME=EXP_DIR")
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--minutes", type=float, help="the training budget, for the table's title")
    args = parser.parse_args(argv)
    rows = [row for name, exp_dir in args.experiments for row in experiment_rows(name, exp_dir)]
    budget = f" at {args.minutes:g} minutes of training each" if args.minutes else ""
    text = f"WER (%) per test set{budget}, open vocabulary (no lexicon)\n\n" + summary_table(rows)
    publish(args.out_dir, "wer", text, plot(rows))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"{Path(__file__).name}: error: {error}")
