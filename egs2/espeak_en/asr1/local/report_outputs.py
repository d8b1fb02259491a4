"""What the recipe's analysis scripts share: ``NAME=PATH`` arguments, and a table and a plot written side by side."""
import argparse
from pathlib import Path
from typing import Tuple


def named_path(text: str) -> Tuple[str, Path]:
    """An argparse type: ``NAME=PATH`` -> (NAME, Path(PATH))."""
    name, separator, path = text.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got '{text}'")
    return name, Path(path)


def new_figure(width: float = 7.0, height: float = 4.5):
    """A matplotlib figure and axis drawn without a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def finish_axes(axis, xlabel: str, ylabel: str, grid_axis: str = "both", legend_size: int = 8) -> None:
    """Label the axes, draw the grid lines of `grid_axis` ("x", "y" or "both") and the legend."""
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.grid(axis=grid_axis, alpha=0.3)
    axis.legend(fontsize=legend_size)


def publish_table(out_dir: Path, stem: str, table: str) -> None:
    """Write `table` to OUT_DIR/STEM.md and print it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{stem}.md").write_text(table, encoding="utf-8")
    print(table)


def publish(out_dir: Path, stem: str, table: str, figure) -> None:
    """Write `figure` to OUT_DIR/STEM.png beside the table of `publish_table`."""
    import matplotlib.pyplot as plt

    publish_table(out_dir, stem, table)
    figure.tight_layout()
    figure.savefig(out_dir / f"{stem}.png", dpi=110)
    plt.close(figure)
