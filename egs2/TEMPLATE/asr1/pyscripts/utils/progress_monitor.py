#!/usr/bin/env python3
r"""Print the progress of running jobs by counting what they have written so far.

Usage:
    progress_monitor.py --total N --label "decoding test_clean" [--pattern REGEX] [--interval S] "<glob>" ...

Counts the lines (or, with --pattern, the lines matching REGEX) of every file matching the globs, and prints
"<label>: <done>/<total> (<pct>%), elapsed H:MM:SS, ETA H:MM:SS" to stderr every --interval seconds while the
count changes. Exits when the count reaches the total or on SIGTERM (scripts/utils/run_with_progress.sh starts
and stops it around a job).

When REGEX has a group capturing a number (``(\d+)epoch results:``), done is the largest number captured
instead of a count: a training run resumed at epoch 27 writes a new log whose first line says 27, so it shows
27/28, not 1/28, and its ETA counts only the epochs done since the monitor started (those after the smallest
number seen minus one).
"""
import argparse
import glob
import re
import signal
import sys
import time
from typing import Iterator, List, Tuple


def matches(patterns: List[str], regex: re.Pattern) -> Iterator[re.Match]:
    """The match of `regex` in each line that has one, over every file matching the globs `patterns`."""
    for pattern in patterns:
        for path in glob.glob(pattern):
            try:
                with open(path, encoding="utf-8", errors="replace") as handle:
                    yield from filter(None, map(regex.search, handle))
            except OSError:
                continue  # the file is being created or was removed; count it next time


def progress(patterns: List[str], regex: re.Pattern) -> Tuple[int, int]:
    """(done, done before this run started): the count of matching lines and 0, or, for a regex with a group,
    the largest number captured and the smallest minus one."""
    if regex.groups == 0:
        return sum(1 for _ in matches(patterns, regex)), 0
    numbers = [int(match.group(1)) for match in matches(patterns, regex)]
    return (max(numbers), min(numbers) - 1) if numbers else (0, 0)


def format_seconds(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def progress_line(label: str, done: int, total: int, elapsed: float, done_before: int = 0) -> str:
    """The progress line; the ETA extrapolates the rate of the `done - done_before` items done in `elapsed`."""
    done_now = done - done_before
    eta = format_seconds(elapsed / done_now * (total - done)) if done_now > 0 else "?"
    percent = 100.0 * done / total if total else 100.0
    return f"{label}: {done}/{total} ({percent:.1f}%), elapsed {format_seconds(elapsed)}, ETA {eta}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--total", type=int, required=True)
    parser.add_argument("--label", default="progress")
    parser.add_argument(
        "--pattern", default=None, help="count only lines matching this regex; with a group: its largest number"
    )
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("globs", nargs="+")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    regex = re.compile(args.pattern or "")  # no pattern: every line matches
    started = time.time()
    reported = -1
    while True:
        time.sleep(args.interval)
        done, done_before = progress(args.globs, regex)
        done = min(done, args.total)
        if done != reported:
            line = progress_line(args.label, done, args.total, time.time() - started, done_before)
            print(line, file=sys.stderr, flush=True)
            reported = done
        if done >= args.total:
            return


if __name__ == "__main__":
    main()
