#!/usr/bin/env python3
"""Split a Kaldi-style table (one "<id> <value>" per line) into N contiguous, nearly equal parts.

Usage:
    split_scp.pl <in.scp> <out.1.scp> [<out.2.scp> ...]

Lines keep their order; the first (len % N) parts get one extra line. Every output gets at least one line, so
there must be at least as many lines as outputs (asr.sh uses min(nj, number of lines) outputs).
"""
import sys
from pathlib import Path


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit("usage: split_scp.pl <in.scp> <out.1.scp> [<out.2.scp> ...]")
    source, outputs = Path(sys.argv[1]), sys.argv[2:]
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    if len(lines) < len(outputs):
        sys.exit(
            f"split_scp.pl: {source} has {len(lines)} lines, fewer than the {len(outputs)} requested parts; "
            "use fewer jobs"
        )
    size, extra = divmod(len(lines), len(outputs))
    start = 0
    for index, output in enumerate(outputs):
        end = start + size + (1 if index < extra else 0)
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text("".join(lines[start:end]), encoding="utf-8")
        start = end


if __name__ == "__main__":
    main()
