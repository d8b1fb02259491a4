#!/usr/bin/env python3
"""Keep (or, with --exclude, drop) the lines of a table whose id appears as the first field of an id list.

Usage:
    filter_scp.pl [--exclude] [-f <field>] <id-list> [<in.scp>] > <out.scp>

<in.scp> defaults to stdin. -f N compares field N (1-based, default 1) of each input line instead of the first.
Input order is kept.
"""
import argparse
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exclude", action="store_true", help="drop the listed ids instead of keeping them")
    parser.add_argument("-f", "--field", type=int, default=1, help="1-based field of the input to compare")
    parser.add_argument("id_list")
    parser.add_argument("input", nargs="?", default="-")
    args = parser.parse_args()
    if args.field < 1:
        parser.error("-f must be >= 1")
    with Path(args.id_list).open(encoding="utf-8") as id_file:
        ids = {line.split(maxsplit=1)[0] for line in id_file if line.strip()}
    source = sys.stdin if args.input == "-" else Path(args.input).open(encoding="utf-8")
    for line in source:
        fields = line.split()
        key = fields[args.field - 1] if len(fields) >= args.field else None
        if (key in ids) != args.exclude:
            sys.stdout.write(line if line.endswith("\n") else line + "\n")


if __name__ == "__main__":
    main()
