#!/usr/bin/env python3
"""Convert spk2utt ("<spk> <utt1> <utt2> ..." lines) into utt2spk ("<utt> <spk>" lines).

Usage:
    spk2utt_to_utt2spk.pl [<spk2utt>] > <utt2spk>
"""
import sys
from pathlib import Path


def main() -> None:
    source = Path(sys.argv[1]).open(encoding="utf-8") if len(sys.argv) > 1 else sys.stdin
    for line in source:
        fields = line.split()
        for utterance in fields[1:]:
            print(utterance, fields[0])


if __name__ == "__main__":
    main()
