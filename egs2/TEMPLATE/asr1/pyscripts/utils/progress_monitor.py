#!/usr/bin/env python3
"""Print the progress of running jobs by counting what they have written so far.

Usage:
    progress_monitor.py --total N --label "decoding test_clean" [--pattern REGEX] [--interval S] "<glob>" ...

Counts the lines (or, with --pattern, the lines matching REGEX) of every file matching the globs, and prints
"<label>: <done>/<total> (<pct>%), elapsed H:MM:SS, ETA H:MM:SS" to stderr every --interval seconds while the
count changes. Exits when the count reaches the total or on SIGTERM (scripts/utils/run_with_progress.sh starts
and stops it around a job).
"""
import argparse
import glob
import re
import signal
import sys
import time
from typing import List, Optional, Pattern


def count(patterns: List[str], regex: Optional[Pattern]) -> int:
    total = 0
    for pattern in patterns:
        for path in glob.glob(pattern):
            try:
                with open(path, encoding="utf-8", errors="replace") as handle:
                    total += sum(1 for line in handle if regex is None or regex.search(line))
            except OSError:
                continue  # the file is being created or was removed; count it next time
    return total


def format_seconds(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def progress_line(label: str, done: int, total: int, elapsed: float) -> str:
    eta = format_seconds(elapsed / done * (total - done)) if done else "?"
    percent = 100.0 * done / total if total else 100.0
    return f"{label}: {done}/{total} ({percent:.1f}%), elapsed {format_seconds(elapsed)}, ETA {eta}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--total", type=int, required=True)
    parser.add_argument("--label", default="progress")
    parser.add_argument("--pattern", default=None, help="count only lines matching this regular expression")
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("globs", nargs="+")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    regex = re.compile(args.pattern) if args.pattern else None
    started = time.time()
    reported = -1
    while True:
        time.sleep(args.interval)
        done = min(count(args.globs, regex), args.total)
        if done != reported:
            print(progress_line(args.label, done, args.total, time.time() - started), file=sys.stderr, flush=True)
            reported = done
        if done >= args.total:
            return


if __name__ == "__main__":
    main()
