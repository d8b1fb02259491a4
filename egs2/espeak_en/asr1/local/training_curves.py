#!/usr/bin/env python3
"""Tabulate and plot ESPnet training runs side by side: a validation metric epoch by epoch, and the training time.

Reads the ``<N>epoch results`` lines of each run's training logs (ESPnet's trainer writes one per epoch into
``train.log``; a resumed run's earlier logs are ``train.<N>.log``), writes
``summary.md`` (a markdown table: one column per run, one row per epoch, then the run's training time) and
``<metric>.png`` (the curves) into ``--out_dir``, and prints the table.

    local/training_curves.py --out_dir exp/diag --metric acc attention=exp/asr_a prefix=exp/asr_b
"""
import argparse
import re
import sys
from pathlib import Path
from typing import Dict, List, NamedTuple, Sequence

import humanfriendly

from report_outputs import finish_axes, named_path, new_figure, publish

_EPOCH_LINE = re.compile(r"(\d+)epoch results: \[train\] (.*?), \[valid\] (.*?)(?:, \[att_plot\].*)?$")
_FIELD = re.compile(r"(\w+)=([-0-9.e+]+)")
# ESPnet logs a duration as humanfriendly.format_timespan writes it: "52.82 seconds", "1 minute and 35.83 seconds",
# "1 hour, 2 minutes and 5.5 seconds" (_FIELD alone would read the first number of those as seconds).
_DURATION_SEPARATOR = r", | and "
_DURATION_PART = r"[0-9.]+ (?:millisecond|second|minute|hour|day|week)s?"
_DURATION_FIELD = re.compile(rf"\btime=({_DURATION_PART}(?:(?:{_DURATION_SEPARATOR}){_DURATION_PART})*)")


class Epoch(NamedTuple):
    """One epoch of a run: its training time (s) and the validation metrics ESPnet logged."""

    number: int
    train_seconds: float
    valid: Dict[str, float]


def timespan_seconds(text: str) -> float:
    """Seconds in a duration as humanfriendly.format_timespan writes it ("1 minute and 35.83 seconds" -> 95.83)."""
    return sum(humanfriendly.parse_timespan(part) for part in re.split(_DURATION_SEPARATOR, text))


def report_fields(part: str) -> Dict[str, float]:
    """The numeric fields of one part ([train] or [valid]) of an epoch's report, its duration `time` in seconds."""
    fields = {key: float(value) for key, value in _FIELD.findall(part)}
    duration = _DURATION_FIELD.search(part)
    if duration:
        fields["time"] = timespan_seconds(duration.group(1))
    return fields


def train_logs(exp_dir: Path) -> List[Path]:
    """An experiment's training logs, oldest first: a resumed training's earlier logs are kept as train.<N>.log
    (the higher N, the older) beside its current train.log."""
    rotated = sorted(exp_dir.glob("train.*.log"), key=lambda path: -int(path.name.split(".")[1]))
    return [path for path in (*rotated, exp_dir / "train.log") if path.is_file()]


def read_epochs(exp_dir: Path) -> List[Epoch]:
    """The epochs of an ESPnet training, in order, from all its logs; an epoch run twice keeps its last report."""
    logs = train_logs(exp_dir)
    if not logs:
        raise FileNotFoundError(f"{exp_dir}/train.log not found: train that run first")
    epochs: Dict[int, Epoch] = {}
    for log in logs:
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            match = _EPOCH_LINE.search(line)
            if match:
                train, valid = (report_fields(part) for part in match.group(2, 3))
                epochs[int(match.group(1))] = Epoch(int(match.group(1)), train.get("time", 0.0), valid)
    return [epochs[number] for number in sorted(epochs)]


def epochs_within(exp_dir: Path, minutes: float) -> int:
    """The epochs that fit `minutes` of training at the time of the run's first epoch (training + validation)."""
    first = next((e for e in read_epochs(exp_dir) if e.number == 1), None)
    if first is None:
        raise ValueError(f"{exp_dir}: no report of epoch 1 in its training logs; train one epoch first")
    return max(1, round(minutes * 60 / (first.train_seconds + first.valid.get("time", 0.0))))


def summary_table(runs: Dict[str, List[Epoch]], metric: str) -> str:
    """A markdown table: the valid `metric` per epoch and run, then each run's summed training time."""
    names = list(runs)
    by_number = {name: {e.number: e for e in epochs} for name, epochs in runs.items()}
    lines = ["| epoch | " + " | ".join(names) + " |", "|---:|" + "---:|" * len(names)]
    for number in sorted({e.number for epochs in runs.values() for e in epochs}):
        cells = [f"{by_number[n][number].valid.get(metric, float('nan')):.3f}" if number in by_number[n] else ""
                 for n in names]
        lines.append(f"| {number} | " + " | ".join(cells) + " |")
    minutes = [f"{sum(e.train_seconds for e in epochs) / 60:.1f} min" for epochs in runs.values()]
    lines.append("| training time | " + " | ".join(minutes) + " |")
    return "\n".join(lines) + "\n"


def plot(runs: Dict[str, List[Epoch]], metric: str):
    """The curves of `metric`, one per run."""
    figure, axis = new_figure()
    for name, epochs in runs.items():
        axis.plot([e.number for e in epochs], [e.valid.get(metric, float("nan")) for e in epochs], marker="o",
                  markersize=3, label=name)
    finish_axes(axis, "epoch", f"validation {metric}")
    return figure


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=named_path, help="NAME=EXP_DIR (holding train.log)")
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--metric", default="acc", help="a validation field of ESPnet's log: acc, cer_ctc, loss...")
    args = parser.parse_args(argv)
    runs = {name: read_epochs(directory) for name, directory in args.runs}
    table = f"Validation {args.metric} per epoch\n\n" + summary_table(runs, args.metric)
    publish(args.out_dir, args.metric, table, plot(runs, args.metric))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except FileNotFoundError as error:
        sys.exit(f"{Path(__file__).name}: error: {error}")
