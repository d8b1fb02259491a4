#!/usr/bin/env python3
"""Check that a Kaldi-style data directory is consistent before it is used.

Usage:
    utils/validate_data_dir.sh [--no-text] [--no-wav] [--no-feats] [--non-print] [--no-spk-sort]
        [--allow-empty-text] <data-dir>

Checks: utt2spk and spk2utt exist and agree; text exists (unless --no-text) with no empty transcript (unless
--allow-empty-text: asr.sh keeps them in test sets and removes them from training sets in stage 4); wav.scp
exists (unless --no-wav) and, with a "segments" file, holds every recording the segments name; every table is
sorted (LC_ALL=C) with unique ids; the utterance ids of all utterance-level tables are the same set; with
--non-print, text holds no non-printable characters. feats.scp is checked when present (--no-feats is accepted
for compatibility with Kaldi). Utterances must sort in the same order as their speakers (make the speaker id a
prefix of the utterance id) unless --no-spk-sort.
All problems are reported, then the exit status is 1; most are repaired by utils/fix_data_dir.sh <data-dir>.
"""
import argparse
import sys
from pathlib import Path
from typing import List

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_dir import (  # noqa: E402
    TableError,
    first_unsorted,
    read_table,
    sort_key,
    spk2utt_from_utt2spk,
    utterance_tables,
    wav_is_recording_keyed,
)

MAX_LISTED = 5


def listing(ids: List[str]) -> str:
    shown = " ".join(ids[:MAX_LISTED])
    return shown + (f" ... ({len(ids)} in all)" if len(ids) > MAX_LISTED else "")


def validate(
    data_dir: Path, need_text: bool, need_wav: bool, non_print: bool, speaker_sort: bool, allow_empty_text: bool
) -> List[str]:
    """Return the list of problems found in data_dir (empty when it is valid)."""
    problems: List[str] = []
    if not data_dir.is_dir():
        return [f"{data_dir} is not a directory"]
    required = ["utt2spk", "spk2utt"] + (["text"] if need_text else []) + (["wav.scp"] if need_wav else [])
    missing = [name for name in required if not (data_dir / name).exists()]
    if missing:
        return [f"{data_dir}: missing {', '.join(missing)} (spk2utt: utils/utt2spk_to_spk2utt.pl utt2spk > spk2utt)"]

    tables = {}
    names = utterance_tables(data_dir) + ["spk2utt"]
    if (data_dir / "wav.scp").exists() and wav_is_recording_keyed(data_dir):
        names.append("wav.scp")
    for name in names:
        try:
            entries = read_table(data_dir / name)
        except TableError as error:
            problems.append(str(error))
            continue
        tables[name] = entries
        index = first_unsorted(entries)
        if index is not None:
            problems.append(
                f"{data_dir}/{name}: not sorted (LC_ALL=C) or has duplicate ids at line {index + 1}: "
                f"{entries[index - 1][0]!r} then {entries[index][0]!r}"
            )
        if not entries:
            problems.append(f"{data_dir}/{name}: empty")
    if "utt2spk" not in tables:
        return problems

    utterances = [key for key, _ in tables["utt2spk"]]
    utterance_set = set(utterances)
    for name in utterance_tables(data_dir):
        if name not in tables or name == "utt2spk":
            continue
        ids = {key for key, _ in tables[name]}
        only_here = sorted(ids - utterance_set, key=sort_key)
        not_here = sorted(utterance_set - ids, key=sort_key)
        if only_here:
            problems.append(f"{data_dir}/{name}: {len(only_here)} ids not in utt2spk: {listing(only_here)}")
        if not_here:
            problems.append(f"{data_dir}/{name}: {len(not_here)} utt2spk ids missing: {listing(not_here)}")

    bad_utt2spk = [key for key, value in tables["utt2spk"] if len(value.split()) != 1]
    if bad_utt2spk:
        problems.append(f"{data_dir}/utt2spk: lines must be '<utt> <spk>': {listing(bad_utt2spk)}")
    elif "spk2utt" in tables and tables["spk2utt"] != spk2utt_from_utt2spk(tables["utt2spk"]):
        problems.append(f"{data_dir}/spk2utt does not match utt2spk (utils/utt2spk_to_spk2utt.pl utt2spk > spk2utt)")
    if speaker_sort and not bad_utt2spk:
        speakers = [value for _, value in tables["utt2spk"]]
        if any(sort_key(a) > sort_key(b) for a, b in zip(speakers, speakers[1:])):
            problems.append(
                f"{data_dir}/utt2spk: utterances are not sorted by speaker; make each utterance id start with its "
                "speaker id (or pass --no-spk-sort)"
            )

    if "text" in tables:
        empty = [key for key, value in tables["text"] if not value]
        if empty and not allow_empty_text:
            problems.append(
                f"{data_dir}/text: {len(empty)} empty transcripts: {listing(empty)}; write the missing transcripts "
                "or drop these utterances (utils/filter_scp.pl --exclude)"
            )
        if non_print:
            unprintable = [key for key, value in tables["text"] if not value.isprintable()]
            if unprintable:
                problems.append(f"{data_dir}/text: non-printable characters in: {listing(unprintable)}")

    if "segments" in tables and "wav.scp" in tables:
        recordings = {key for key, _ in tables["wav.scp"]}
        orphan = [key for key, value in tables["segments"] if value.split()[0] not in recordings]
        if orphan:
            problems.append(f"{data_dir}/segments: recordings missing from wav.scp for {listing(orphan)}")
        bad_times = []
        for key, value in tables["segments"]:
            fields = value.split()
            try:
                if len(fields) != 3 or not 0 <= float(fields[1]) < float(fields[2]):
                    bad_times.append(key)
            except ValueError:
                bad_times.append(key)
        if bad_times:
            problems.append(f"{data_dir}/segments: lines must be '<utt> <rec> <start> <end>', start < end: "
                            f"{listing(bad_times)}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-text", dest="need_text", action="store_false")
    parser.add_argument("--no-wav", dest="need_wav", action="store_false")
    parser.add_argument("--no-feats", action="store_true", help="accepted for Kaldi compatibility")
    parser.add_argument("--non-print", action="store_true", help="reject non-printable characters in text")
    parser.add_argument("--no-spk-sort", dest="speaker_sort", action="store_false")
    parser.add_argument("--allow-empty-text", action="store_true", help="accept utterances with empty text")
    parser.add_argument("data_dir", type=Path)
    args = parser.parse_args()
    problems = validate(
        args.data_dir, args.need_text, args.need_wav, args.non_print, args.speaker_sort, args.allow_empty_text
    )
    if problems:
        for problem in problems:
            print(f"validate_data_dir.sh: {problem}", file=sys.stderr)
        print(f"validate_data_dir.sh: {args.data_dir} is not valid (utils/fix_data_dir.sh {args.data_dir} sorts the "
              "tables and keeps the utterances complete in all of them)", file=sys.stderr)
        sys.exit(1)
    print(f"validate_data_dir.sh: {args.data_dir}: {sum(1 for _ in open(args.data_dir / 'utt2spk'))} utterances, OK",
          file=sys.stderr)


if __name__ == "__main__":
    main()
