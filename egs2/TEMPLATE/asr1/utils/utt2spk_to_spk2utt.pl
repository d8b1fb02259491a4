#!/usr/bin/env python3
"""Convert utt2spk ("<utt> <spk>" lines) into spk2utt ("<spk> <utt1> <utt2> ..." lines).

Usage:
    utt2spk_to_spk2utt.pl [<utt2spk>] > <spk2utt>

Speakers appear in the order of their first utterance; utterances keep their input order.
"""
import sys
from pathlib import Path
from typing import Dict, List


def main() -> None:
    source = Path(sys.argv[1]).open(encoding="utf-8") if len(sys.argv) > 1 else sys.stdin
    speakers: Dict[str, List[str]] = {}
    for number, line in enumerate(source, 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            sys.exit(f"utt2spk_to_spk2utt.pl: line {number} must be '<utt> <spk>', got {line.strip()!r}")
        speakers.setdefault(fields[1], []).append(fields[0])
    for speaker, utterances in speakers.items():
        print(speaker, " ".join(utterances))


if __name__ == "__main__":
    main()
