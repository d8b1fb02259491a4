#!/usr/bin/env python3
"""Combine several Kaldi-style data directories into one.

Usage:
    utils/combine_data.sh [--extra_files "<file> ..."] <dest-dir> <src-dir1> <src-dir2> ...

Each table that every source has (utt2spk, text, wav.scp, segments, feats.scp, utt2num_samples, spk2gender, ...)
is concatenated and sorted; a table only some sources have is skipped with a warning. An utterance id found in
two sources is an error (give each source distinct ids, e.g. a prefix). spk2utt is regenerated, then the result
is fixed as by utils/fix_data_dir.sh.
"""
import argparse
import sys
from pathlib import Path
from typing import List

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_dir import (  # noqa: E402
    PLAIN_FILES,
    RECORDING_FILES,
    SPEAKER_FILES,
    UTTERANCE_FILES,
    Entry,
    read_table,
    sort_key,
    write_table,
)
from fix_data_dir import fix_data_dir  # noqa: E402


def combine(destination: Path, sources: List[Path], extra_files: List[str]) -> None:
    """Write the combination of sources into destination (created if needed).

    Raises:
        ValueError: a source lacks utt2spk, or an utterance id appears in more than one source.
    """
    for source in sources:
        if not (source / "utt2spk").exists():
            raise ValueError(f"combine_data.sh: {source}/utt2spk does not exist")
    destination.mkdir(parents=True, exist_ok=True)
    names = [*UTTERANCE_FILES, "wav.scp", *RECORDING_FILES, *SPEAKER_FILES, *extra_files]
    with_segments = any((source / "segments").exists() for source in sources)
    # Recording and speaker tables may share keys across sources (the same speaker or recording); keep the first.
    shared_keys = {*RECORDING_FILES, *SPEAKER_FILES} | ({"wav.scp"} if with_segments else set())
    for name in names:
        present = [source for source in sources if (source / name).exists()]
        if not present:
            (destination / name).unlink(missing_ok=True)
            continue
        if len(present) < len(sources):
            absent = [str(source) for source in sources if source not in present]
            print(f"combine_data.sh: warning: {name} is missing from {', '.join(absent)}; not combining it",
                  file=sys.stderr)
            (destination / name).unlink(missing_ok=True)
            continue
        combined: List[Entry] = []
        owner = {}
        for source in present:
            for key, value in read_table(source / name):
                if key in owner:
                    if name in shared_keys:
                        continue
                    raise ValueError(
                        f"combine_data.sh: id {key} of {name} is in both {owner[key]} and {source}; "
                        "make the ids distinct (e.g. add a prefix per source)"
                    )
                owner[key] = source
                combined.append((key, value))
        write_table(destination / name, sorted(combined, key=lambda entry: sort_key(entry[0])))
    for name in PLAIN_FILES:
        values = {(source / name).read_text() for source in sources if (source / name).exists()}
        if len(values) == 1:
            (destination / name).write_text(values.pop())
    fix_data_dir(destination, extra_files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--extra_files", "--extra-files", default="",
                        help="more utterance-level tables to combine, separated by spaces")
    parser.add_argument("destination", type=Path)
    parser.add_argument("sources", type=Path, nargs="+")
    args = parser.parse_args()
    if args.destination in args.sources:
        sys.exit("combine_data.sh: the destination must not be one of the sources")
    try:
        combine(args.destination, args.sources, args.extra_files.split())
    except ValueError as error:
        sys.exit(str(error))
    print(f"combine_data.sh: combined {len(args.sources)} data directories into {args.destination}", file=sys.stderr)


if __name__ == "__main__":
    main()
