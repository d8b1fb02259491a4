#!/usr/bin/env python3
"""Make a speed-perturbed copy of a Kaldi-style data directory (audio produced on the fly by "sox speed").

Usage:
    scripts/utils/perturb_data_dir_speed.sh <factor> <src-dir> <dest-dir>

Utterance, speaker and (with segments) recording ids get the prefix "sp<factor>-"; wav.scp entries become sox
pipelines ("sox <file> -t wav - speed <factor> |", or "<pipeline> sox -t wav - -t wav - speed <factor> |"), so
the audio is <factor> times faster (pitch shifted, as in Kaldi) at the original sampling rate; segment times and
utt2dur are divided by the factor; utt2uniq maps each new id to the original. Stage 3 of asr.sh writes the
perturbed audio to disk.
"""
import argparse
import shutil
import sys
from pathlib import Path
from typing import List

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_dir import Entry, read_table, sort_key, spk2utt_from_utt2spk, write_table  # noqa: E402


def perturbed_wav(value: str, factor: str) -> str:
    if value.endswith("|"):
        return f"{value[:-1].rstrip()} | sox -t wav - -t wav - speed {factor} |"
    return f"sox {value} -t wav - speed {factor} |"


def perturb(source: Path, destination: Path, factor: str) -> None:
    """Write the perturbed copy of source into destination.

    Raises:
        ValueError: the factor is not a positive number, or source lacks wav.scp or utt2spk.
    """
    if not float(factor) > 0:
        raise ValueError(f"perturb_data_dir_speed.sh: the factor must be positive, got {factor}")
    for name in ("wav.scp", "utt2spk"):
        if not (source / name).exists():
            raise ValueError(f"perturb_data_dir_speed.sh: {source}/{name} does not exist")
    prefix = f"sp{factor}-"
    destination.mkdir(parents=True, exist_ok=True)
    has_segments = (source / "segments").exists()

    def rekey(entries: List[Entry]) -> List[Entry]:
        return sorted(((prefix + key, value) for key, value in entries), key=lambda entry: sort_key(entry[0]))

    utt2spk = rekey([(key, prefix + value) for key, value in read_table(source / "utt2spk")])
    write_table(destination / "utt2spk", utt2spk)
    write_table(destination / "spk2utt", spk2utt_from_utt2spk(utt2spk))
    write_table(destination / "wav.scp", rekey([(key, perturbed_wav(value, factor))
                                                for key, value in read_table(source / "wav.scp")]))
    write_table(destination / "utt2uniq", [(key, key[len(prefix):]) for key, _ in utt2spk])
    for name in ("text", "utt2lang", "utt2category"):
        if (source / name).exists():
            write_table(destination / name, rekey(read_table(source / name)))
    if has_segments:
        segments = []
        for key, value in read_table(source / "segments"):
            recording, start, end = value.split()
            segments.append((key, f"{prefix}{recording} {float(start) / float(factor):.3f} "
                                  f"{float(end) / float(factor):.3f}"))
        write_table(destination / "segments", rekey(segments))
    for name in ("utt2dur", "reco2dur"):
        if (source / name).exists():
            write_table(destination / name, rekey([(key, f"{float(value) / float(factor):.3f}")
                                                   for key, value in read_table(source / name)]))
    if (source / "spk2gender").exists():
        write_table(destination / "spk2gender", rekey(read_table(source / "spk2gender")))
    for name in ("utt2num_samples", "feats.scp", "feats_shape"):
        (destination / name).unlink(missing_ok=True)  # stale for the new audio; stage 3 recomputes them
    if (source / "feats_type").exists():
        shutil.copy(source / "feats_type", destination / "feats_type")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("factor")
    parser.add_argument("source", type=Path)
    parser.add_argument("destination", type=Path)
    args = parser.parse_args()
    try:
        perturb(args.source, args.destination, args.factor)
    except ValueError as error:
        sys.exit(str(error))
    print(f"perturb_data_dir_speed.sh: {args.source} -> {args.destination} (speed {args.factor})", file=sys.stderr)


if __name__ == "__main__":
    main()
