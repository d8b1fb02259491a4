#!/usr/bin/env python3
"""Tabulate and plot ESPnet training runs side by side: a validation metric epoch by epoch, and the training time.

Reads the ``<N>epoch results`` lines of each run's ``train.log`` (ESPnet's trainer writes one per epoch), writes
``summary.md`` (a markdown table: one column per run, one row per epoch, then the run's training time) and
``<metric>.png`` (the curves) into ``--out_dir``, and prints the table.

    local/training_curves.py --out_dir exp/diag --metric acc attention=exp/asr_a prefix=exp/asr_b
"""
import argparse
import re
import sys
from pathlib import Path
from typing import Dict, List, NamedTuple, Sequence

_EPOCH_LINE = re.compile(r"(\d+)epoch results: \[train\] (.*?), \[valid\] (.*?)(?:, \[att_plot\].*)?$")
_FIELD = re.compile(r"(\w+)=([-0-9.e+]+)")


class Epoch(NamedTuple):
    """One epoch of a run: its training time (s) and the validation metrics ESPnet logged."""

    number: int
    train_seconds: float
    valid: Dict[str, float]


def read_epochs(train_log: Path) -> List[Epoch]:
    """The epochs of an ESPnet ``train.log``, in order; a resumed run's repeated epochs keep their last report."""
    if not train_log.is_file():
        raise FileNotFoundError(f"{train_log} not found: train that run first")
    epochs: Dict[int, Epoch] = {}
    for line in train_log.read_text(encoding="utf-8", errors="replace").splitlines():
        match = _EPOCH_LINE.search(line)
        if match:
            train, valid = (dict((k, float(v)) for k, v in _FIELD.findall(part)) for part in match.group(2, 3))
            epochs[int(match.group(1))] = Epoch(int(match.group(1)), train.get("time", 0.0), valid)
    return [epochs[number] for number in sorted(epochs)]


def summary_table(runs: Dict[str, List[Epoch]], metric: str) -> str:
    """A markdown table: the valid `metric` per epoch and run, then each run's summed training time."""
    names = list(runs)
    lines = ["| epoch | " + " | ".join(names) + " |", "|---:|" + "---:|" * len(names)]
    for number in range(1, max(len(epochs) for epochs in runs.values()) + 1):
        cells = [f"{epochs[number - 1].valid.get(metric, float('nan')):.3f}" if number <= len(epochs) else ""
                 for epochs in runs.values()]
        lines.append(f"| {number} | " + " | ".join(cells) + " |")
    minutes = [f"{sum(e.train_seconds for e in epochs) / 60:.1f} min" for epochs in runs.values()]
    lines.append("| training time | " + " | ".join(minutes) + " |")
    return "\n".join(lines) + "\n"


def plot(runs: Dict[str, List[Epoch]], metric: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for name, epochs in runs.items():
        axis.plot([e.number for e in epochs], [e.valid.get(metric, float("nan")) for e in epochs], marker="o",
                  markersize=3, label=name)
    axis.set_xlabel("epoch")
    axis.set_ylabel(f"validation {metric}")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def parse_run(text: str) -> tuple:
    name, separator, directory = text.partition("=")
    if not separator:
        raise argparse.ArgumentTypeError(f"expected NAME=EXP_DIR, got '{text}'")
    return name, Path(directory)


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=parse_run, help="NAME=EXP_DIR (holding train.log)")
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--metric", default="acc", help="a validation field of ESPnet's log: acc, cer_ctc, loss...")
    args = parser.parse_args(argv)
    runs = {name: read_epochs(directory / "train.log") for name, directory in args.runs}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    table = f"Validation {args.metric} per epoch\n\n" + summary_table(runs, args.metric)
    (args.out_dir / f"{args.metric}.md").write_text(table, encoding="utf-8")
    plot(runs, args.metric, args.out_dir / f"{args.metric}.png")
    print(table)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except FileNotFoundError as error:
        sys.exit(f"{Path(__file__).name}: error: {error}")
