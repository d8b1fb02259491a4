#!/usr/bin/env python3
"""Make a Kaldi-style data directory consistent: sort every table and keep only complete utterances.

Usage:
    utils/fix_data_dir.sh [--utt_extra_files "<file> ..."] <data-dir>

An utterance is kept when every utterance-level table present (utt2spk, text, wav.scp or segments, feats.scp,
utt2num_samples, ...) has it and, with segments, its recording is in wav.scp. Duplicate ids keep their first
line. wav.scp and the other recording tables keep only recordings still used; spk2utt is regenerated and
spk2gender filtered. The original files are moved to <data-dir>/.backup/; each removed utterance id is written,
with the reason, to <data-dir>/.backup/removed_utts.txt, and a summary is printed.
"""
import argparse
import shutil
import sys
from pathlib import Path
from typing import Dict, List, Set

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_dir import (  # noqa: E402
    RECORDING_FILES,
    SPEAKER_FILES,
    Entry,
    read_table,
    sort_key,
    spk2utt_from_utt2spk,
    utterance_tables,
    wav_is_recording_keyed,
    write_table,
)


def sorted_unique(entries: List[Entry]) -> List[Entry]:
    """Sort by key (LC_ALL=C order), keeping the first line of each duplicated key."""
    first: Dict[str, str] = {}
    for key, value in entries:
        first.setdefault(key, value)
    return sorted(first.items(), key=lambda entry: sort_key(entry[0]))


def fix_data_dir(data_dir: Path, extra_files: List[str] = ()) -> int:
    """Fix data_dir in place; return the number of utterances kept.

    Raises:
        FileNotFoundError: data_dir has no utt2spk.
    """
    if not (data_dir / "utt2spk").exists():
        raise FileNotFoundError(f"fix_data_dir.sh: {data_dir}/utt2spk does not exist")
    names = utterance_tables(data_dir, extra_files)
    tables = {name: sorted_unique(read_table(data_dir / name)) for name in names}
    all_ids: Set[str] = set()
    for entries in tables.values():
        all_ids.update(key for key, _ in entries)
    reasons: Dict[str, List[str]] = {}
    for name, entries in tables.items():
        present = {key for key, _ in entries}
        for missing in all_ids - present:
            reasons.setdefault(missing, []).append(f"missing from {name}")
    recordings: List[Entry] = []
    if wav_is_recording_keyed(data_dir) and (data_dir / "wav.scp").exists():
        recordings = sorted_unique(read_table(data_dir / "wav.scp"))
        known = {key for key, _ in recordings}
        for key, value in tables["segments"]:
            if value.split()[0] not in known:
                reasons.setdefault(key, []).append(f"recording {value.split()[0]} missing from wav.scp")
    kept = all_ids - set(reasons)

    backup = data_dir / ".backup"
    backup.mkdir(exist_ok=True)
    touched = names + ["spk2utt", "wav.scp", *RECORDING_FILES, *SPEAKER_FILES]
    for name in touched:
        if (data_dir / name).exists():
            shutil.copy(data_dir / name, backup / name)
    for name, entries in tables.items():
        write_table(data_dir / name, [entry for entry in entries if entry[0] in kept])
    if "segments" in tables:
        used = {value.split()[0] for key, value in tables["segments"] if key in kept}
        write_table(data_dir / "wav.scp", [entry for entry in recordings if entry[0] in used])
        for name in RECORDING_FILES:
            if (data_dir / name).exists():
                entries = sorted_unique(read_table(data_dir / name))
                write_table(data_dir / name, [entry for entry in entries if entry[0] in used])
    utt2spk = read_table(data_dir / "utt2spk")
    write_table(data_dir / "spk2utt", spk2utt_from_utt2spk(utt2spk))
    speakers = {value for _, value in utt2spk}
    for name in SPEAKER_FILES:
        if (data_dir / name).exists():
            entries = sorted_unique(read_table(data_dir / name))
            write_table(data_dir / name, [entry for entry in entries if entry[0] in speakers])

    removed = sorted(reasons, key=sort_key)
    write_table(backup / "removed_utts.txt", [(key, "; ".join(reasons[key])) for key in removed])
    message = f"fix_data_dir.sh: {data_dir}: kept {len(kept)} of {len(all_ids)} utterances"
    if removed:
        message += f"; removed {len(removed)}, listed with reasons in {backup}/removed_utts.txt"
    print(message, file=sys.stderr)
    return len(kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--utt_extra_files", "--utt-extra-files", default="",
                        help="more utterance-level tables to keep consistent, separated by spaces")
    parser.add_argument("data_dir", type=Path)
    args = parser.parse_args()
    try:
        kept = fix_data_dir(args.data_dir, args.utt_extra_files.split())
    except FileNotFoundError as error:
        sys.exit(str(error))
    if kept == 0:
        sys.exit(f"fix_data_dir.sh: no utterance of {args.data_dir} is complete; see {args.data_dir}/.backup/removed_utts.txt")


if __name__ == "__main__":
    main()
