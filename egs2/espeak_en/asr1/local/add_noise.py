#!/usr/bin/env python3
"""Make a noisy copy of a Kaldi data dir: same utterance ids, speakers and texts, audio with additive noise.

The noise is white or pink (power falling as 1/f), scaled so that the signal-to-noise ratio over the whole
utterance is ``--snr`` dB: ``10 log10(sum(clean^2) / sum(noise^2)) = snr``. Each utterance's noise comes from a
generator seeded with ``--seed`` and the utterance id, so the copy is reproducible and independent of order.
"""
import argparse
import sys
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile

from kaldi_data import DataEntry, read_table, write_data_dir

NOISE_TYPES = ("white", "pink")


def make_noise(num_samples: int, noise_type: str, rng: np.random.Generator) -> np.ndarray:
    """Draw unit-variance noise.

    Args:
        num_samples: Length ``(T,)`` of the noise.
        noise_type: ``white`` (flat spectrum) or ``pink`` (power spectral density proportional to 1/f).
        rng: Random generator.

    Returns:
        Noise of shape ``(T,)`` with zero mean and unit variance.
    """
    white = rng.standard_normal(num_samples)
    if noise_type == "white":
        noise = white
    elif noise_type == "pink":
        spectrum = np.fft.rfft(white)
        frequencies = np.arange(len(spectrum), dtype=np.float64)
        frequencies[0] = 1.0  # leave the DC bin unscaled; it is removed below
        noise = np.fft.irfft(spectrum / np.sqrt(frequencies), n=num_samples)
    else:
        raise ValueError(f"noise type must be one of {', '.join(NOISE_TYPES)}, got '{noise_type}'")
    noise = noise - noise.mean()
    return noise / max(noise.std(), np.finfo(np.float64).tiny)


def add_noise(clean: np.ndarray, snr_db: float, noise_type: str, rng: np.random.Generator) -> np.ndarray:
    """Add noise to a waveform at a given SNR, rescaling both together if the sum would clip.

    Args:
        clean: Waveform ``(T,)`` in [-1, 1].
        snr_db: Signal-to-noise ratio in dB over the whole waveform.
        noise_type: See :func:`make_noise`.
        rng: Random generator.

    Returns:
        The noisy waveform ``(T,)`` in [-1, 1].
    """
    signal_power = float(np.mean(clean**2))
    if signal_power == 0.0:
        raise ValueError("cannot set an SNR for a silent waveform")
    noise = make_noise(len(clean), noise_type, rng) * np.sqrt(signal_power / 10 ** (snr_db / 10))
    noisy = clean + noise
    peak = float(np.max(np.abs(noisy)))
    # A common gain keeps the SNR exact where clipping would change it.
    return noisy * (0.99 / peak) if peak > 0.99 else noisy


def utterance_rng(seed: int, utt_id: str) -> np.random.Generator:
    """Random generator for one utterance, derived from the global seed and the utterance id."""
    return np.random.default_rng([seed, zlib.crc32(utt_id.encode())])


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src_data_dir", type=Path, required=True)
    parser.add_argument("--dst_data_dir", type=Path, required=True)
    parser.add_argument("--wav_dir", type=Path, required=True, help="where the noisy wav files go")
    parser.add_argument("--snr", type=float, default=10.0, help="signal-to-noise ratio in dB")
    parser.add_argument("--noise_type", choices=NOISE_TYPES, default="white")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str]) -> None:
    args = get_parser().parse_args(argv)
    wav_scp = read_table(args.src_data_dir / "wav.scp")
    texts = read_table(args.src_data_dir / "text")
    utt2spk = read_table(args.src_data_dir / "utt2spk")
    wav_dir = args.wav_dir.resolve()
    wav_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for utt_id, src_path in wav_scp.items():
        clean, fs = soundfile.read(src_path, dtype="float64")
        if clean.ndim != 1:
            raise ValueError(f"{src_path}: expected mono audio, got {clean.shape[1]} channels")
        try:
            noisy = add_noise(clean, args.snr, args.noise_type, utterance_rng(args.seed, utt_id))
        except ValueError as error:
            raise ValueError(f"{utt_id} ({src_path}): {error}") from None
        dst_path = wav_dir / f"{utt_id}.wav"
        soundfile.write(str(dst_path), noisy, fs, subtype="PCM_16")
        entries.append(DataEntry(utt_id, utt2spk[utt_id], dst_path, texts[utt_id]))
    write_data_dir(args.dst_data_dir, entries)
    print(
        f"[{args.dst_data_dir.name}] {len(entries)} utterances with {args.noise_type} noise at {args.snr:g} dB SNR",
        file=sys.stderr,
    )


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"{Path(__file__).name}: error: {error}")
