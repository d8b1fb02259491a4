#!/usr/bin/env python3
"""Compute Kaldi-compatible log-mel filterbank features of a wav.scp and write them as a Kaldi ark/scp.

Usage (one job of scripts/feats/make_fbank.sh):
    compute_fbank_feats.py --wav_scp wav.scp [--segments keys.3.scp] --fs 16000 [--fbank_conf conf/fbank.conf]
        --out_dir dump/fbank/org/train/data/fbank.3

Features come from torchaudio.compliance.kaldi.fbank (Kaldi's compute-fbank-feats) on the first channel, with
samples at 16-bit integer scale as Kaldi reads them. Defaults: 80 mel bins, 25 ms windows every 10 ms, no dither;
--fbank_conf overrides them with Kaldi-style lines such as "--num-mel-bins=80" or "--frame-shift=10".
Writes in out_dir: feats.ark, feats.scp, feats_shape ("<utt> <frames>,<dim>"), frame_shift (ms) and bad_audio.txt (utterances
whose audio is missing or unreadable, with the reason; they are left out of the other files).
"""
import argparse
import sys
from pathlib import Path

import kaldiio
import numpy as np
import torch
import torchaudio.compliance.kaldi as kaldi_compliance

from espnet_samba.decoding.kaldi_fbank import read_fbank_conf  # shared with streaming decoding of raw audio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "audio"))
from audio_io import iterate_utterances  # noqa: E402
from format_wav_scp import read_segments, read_table, resample  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wav_scp", type=Path, required=True)
    parser.add_argument("--segments", type=Path, default=None)
    parser.add_argument("--fs", type=int, required=True, help="sampling rate in Hz the audio is resampled to")
    parser.add_argument("--fbank_conf", type=Path, default=None)
    parser.add_argument("--out_dir", type=Path, required=True)
    args = parser.parse_args()
    options = read_fbank_conf(args.fbank_conf)
    options["sample_frequency"] = float(args.fs)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "frame_shift").write_text(f"{options['frame_shift']}\n", encoding="utf-8")
    ark_path = args.out_dir / "feats.ark"
    bad = 0
    with kaldiio.WriteHelper(f"ark,scp:{ark_path},{args.out_dir / 'feats.scp'}") as writer, \
            (args.out_dir / "feats_shape").open("w", encoding="utf-8") as shapes, \
            (args.out_dir / "bad_audio.txt").open("w", encoding="utf-8") as bad_out:
        for utterance, samples, rate, error in iterate_utterances(read_table(args.wav_scp),
                                                                  read_segments(args.segments)):
            if error is None and samples.ndim > 1:
                samples = samples[:, 0]
            if error is None:
                scale = 1.0 if samples.dtype == np.int16 else 32768.0
                waveform = torch.from_numpy(resample(samples, rate, args.fs).astype(np.float32) * scale)
                try:
                    feats = kaldi_compliance.fbank(waveform.unsqueeze(0), **options)
                except (RuntimeError, AssertionError) as failure:
                    error = f"{utterance}: too short for one {options['frame_length']} ms frame? {failure}"
            if error is not None:
                print(f"compute_fbank_feats.py: WARNING: skipping {error}", file=sys.stderr)
                bad_out.write(f"{utterance} {error}\n")
                bad_out.flush()
                bad += 1
                continue
            writer[utterance] = feats.numpy()
            shapes.write(f"{utterance} {feats.shape[0]},{feats.shape[1]}\n")
            shapes.flush()
    print(f"compute_fbank_feats.py: wrote features to {ark_path}, {bad} unreadable utterances "
          f"(listed in {args.out_dir}/bad_audio.txt)", file=sys.stderr)


if __name__ == "__main__":
    main()
