#!/usr/bin/env python3
"""Write the audio of a wav.scp (optionally cut by a segments file) as real audio files at one sampling rate.

Usage (one job of scripts/audio/format_wav_scp.sh):
    format_wav_scp.py --wav_scp wav.scp [--segments segments.3] --audio_format flac --fs 16000 --out_dir out.3

Writes, in out_dir: wav.scp (utterance id -> written file, or ark offset for the *.ark formats), utt2num_samples,
and bad_audio.txt (utterance id and the reason) for every utterance whose audio is missing or unreadable; those
utterances are left out of the outputs so that utils/fix_data_dir.sh removes them. Lines are flushed as they
are written, so progress can be followed by counting lines of out_dir/wav.scp.
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional, Tuple

import kaldiio
import numpy as np
import soundfile
from scipy.signal import resample_poly

sys.path.insert(0, str(Path(__file__).resolve().parent))
from audio_io import Segment, iterate_utterances  # noqa: E402

FORMATS = ("wav", "flac", "wav.ark", "flac.ark")


def resample(samples: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Resample (T,) or (T, C) samples along time with a polyphase filter; float64 output unless rates match."""
    if rate == target_rate:
        return samples
    divisor = np.gcd(rate, target_rate)
    return resample_poly(samples.astype(np.float64), target_rate // divisor, rate // divisor, axis=0)


def read_table(path: Path) -> List[Tuple[str, str]]:
    with path.open(encoding="utf-8") as table:
        return [tuple(line.rstrip("\n").split(maxsplit=1)) for line in table if line.strip()]


def read_segments(path: Optional[Path]) -> Optional[List[Segment]]:
    if path is None:
        return None
    segments = []
    for utterance, rest in read_table(path):
        recording, start, end = rest.split()
        segments.append((utterance, recording, float(start), float(end)))
    return segments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wav_scp", type=Path, required=True)
    parser.add_argument("--segments", type=Path, default=None)
    parser.add_argument("--audio_format", choices=FORMATS, default="flac")
    parser.add_argument("--fs", type=int, required=True, help="output sampling rate in Hz")
    parser.add_argument("--out_dir", type=Path, required=True)
    args = parser.parse_args()

    args.out_dir.mkdir(parents=True, exist_ok=True)
    audio_dir = args.out_dir / "data"
    audio_dir.mkdir(exist_ok=True)
    file_format = args.audio_format.split(".")[0]
    ark_path = audio_dir / f"format.{file_format}.ark"
    ark_path.unlink(missing_ok=True)
    ark = ark_path.open("wb") if args.audio_format.endswith(".ark") else None

    wav_scp = read_table(args.wav_scp)
    segments = read_segments(args.segments)
    bad = 0
    with (args.out_dir / "wav.scp").open("w", encoding="utf-8") as scp_out, \
            (args.out_dir / "utt2num_samples").open("w", encoding="utf-8") as lengths_out, \
            (args.out_dir / "bad_audio.txt").open("w", encoding="utf-8") as bad_out:
        for utterance, samples, rate, error in iterate_utterances(wav_scp, segments):
            if error is not None:
                print(f"format_wav_scp.py: WARNING: skipping {error}", file=sys.stderr)
                bad_out.write(f"{utterance} {error}\n")
                bad_out.flush()
                bad += 1
                continue
            samples = resample(samples, rate, args.fs)
            if samples.dtype != np.int16:
                samples = np.clip(samples, -1.0, 1.0)
            if ark is not None:
                # The scp offset points just after "<key> " in the ark, as Kaldi's writers do.
                location = f"{ark_path}:{ark.tell() + len(utterance.encode('utf-8')) + 1}"
                kaldiio.save_ark(
                    ark, {utterance: (args.fs, samples)},
                    write_function="soundfile", write_kwargs={"format": file_format, "subtype": "PCM_16"},
                )
                ark.flush()
            else:
                location = str(audio_dir / f"{utterance}.{file_format}")
                soundfile.write(location, samples, args.fs, subtype="PCM_16")
            scp_out.write(f"{utterance} {location}\n")
            scp_out.flush()
            lengths_out.write(f"{utterance} {len(samples)}\n")
    if ark is not None:
        ark.close()
    print(f"format_wav_scp.py: wrote {len(wav_scp if segments is None else segments) - bad} utterances to "
          f"{args.out_dir}, {bad} unreadable (listed in {args.out_dir}/bad_audio.txt)", file=sys.stderr)


if __name__ == "__main__":
    main()
