#!/usr/bin/env python3
"""Copy a Kaldi-style data directory (its tables and plain files, not .backup/), then validate the copy.

Usage:
    utils/copy_data_dir.sh [--validate_opts "<options of validate_data_dir.sh>"] <src-dir> <dest-dir>
"""
import argparse
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_dir import PLAIN_FILES, RECORDING_FILES, SPEAKER_FILES, UTTERANCE_FILES  # noqa: E402

COPIED = (*UTTERANCE_FILES, "wav.scp", "spk2utt", *RECORDING_FILES, *SPEAKER_FILES, *PLAIN_FILES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--validate_opts", "--validate-opts", default="")
    parser.add_argument("source", type=Path)
    parser.add_argument("destination", type=Path)
    argv = sys.argv[1:]
    if len(argv) > 1 and argv[0] in ("--validate_opts", "--validate-opts"):
        argv[:2] = [f"--validate_opts={argv[1]}"]  # the value itself starts with "--", e.g. "--non-print"
    args = parser.parse_args(argv)
    if not (args.source / "utt2spk").exists():
        sys.exit(f"copy_data_dir.sh: {args.source}/utt2spk does not exist")
    args.destination.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        if (args.source / name).exists():
            shutil.copy(args.source / name, args.destination / name)
    validator = Path(__file__).resolve().parent / "validate_data_dir.py"
    result = subprocess.run([sys.executable, str(validator), *shlex.split(args.validate_opts), str(args.destination)])
    if result.returncode != 0:
        sys.exit(f"copy_data_dir.sh: the copy {args.destination} of {args.source} is not valid (see above)")


if __name__ == "__main__":
    main()
