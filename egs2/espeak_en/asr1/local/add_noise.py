#!/usr/bin/env python3
"""Make a noisy copy of a Kaldi data dir: same utterance ids, speakers and texts, audio with additive noise.

The noise is white or pink (power falling as 1/f), scaled so that the signal-to-noise ratio over the whole
utterance is ``--snr`` dB: ``10 log10(sum(clean^2) / sum(noise^2)) = snr``. Each utterance's noise comes from a
generator seeded with ``--seed`` and the utterance id, so the copy is reproducible and independent of order.

For multi-condition training, ``--snr LOW-HIGH`` draws the SNR per utterance uniformly from the range, several
``--noise_type`` values draw the type per utterance, and ``--fraction`` noises only that share of the
utterances (drawn per utterance); the others keep their clean audio.
"""
import argparse
import sys
import zlib
from pathlib import Path
from typing import Sequence, Tuple

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


def parse_snr(text: str) -> Tuple[float, float]:
    """Parse ``VALUE`` or ``LOW-HIGH`` (dB) into an inclusive range; a negative VALUE is read as one number."""
    low, separator, high = text.partition("-") if not text.startswith("-") else (text, "", "")
    try:
        bounds = (float(low), float(high if separator else low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected VALUE or LOW-HIGH in dB, got '{text}'") from None
    if bounds[0] > bounds[1]:
        raise argparse.ArgumentTypeError(f"empty SNR range '{text}': LOW must not exceed HIGH")
    return bounds


def parse_fraction(text: str) -> float:
    """Parse the share of utterances to noise, a number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got '{text}'") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {value:g}")
    return value


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src_data_dir", type=Path, required=True)
    parser.add_argument("--dst_data_dir", type=Path, required=True)
    parser.add_argument("--wav_dir", type=Path, required=True, help="where the noisy wav files go")
    parser.add_argument(
        "--snr", type=parse_snr, default=(10.0, 10.0), help="signal-to-noise ratio in dB: VALUE or LOW-HIGH"
    )
    parser.add_argument(
        "--noise_type", choices=NOISE_TYPES, nargs="+", default=["white"], help="one is drawn per utterance"
    )
    parser.add_argument("--fraction", type=parse_fraction, default=1.0, help="share of utterances to noise")
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
    num_noisy = 0
    for utt_id, src_path in wav_scp.items():
        rng = utterance_rng(args.seed, utt_id)
        # Every draw happens for every utterance, so one utterance's noise does not depend on --fraction.
        noisy_share, snr, noise_type = rng.random(), rng.uniform(*args.snr), rng.choice(args.noise_type)
        if noisy_share >= args.fraction:
            entries.append(DataEntry(utt_id, utt2spk[utt_id], Path(src_path), texts[utt_id]))
            continue
        clean, fs = soundfile.read(src_path, dtype="float64")
        if clean.ndim != 1:
            raise ValueError(f"{src_path}: expected mono audio, got {clean.shape[1]} channels")
        try:
            noisy = add_noise(clean, snr, str(noise_type), rng)
        except ValueError as error:
            raise ValueError(f"{utt_id} ({src_path}): {error}") from None
        dst_path = wav_dir / f"{utt_id}.wav"
        soundfile.write(str(dst_path), noisy, fs, subtype="PCM_16")
        entries.append(DataEntry(utt_id, utt2spk[utt_id], dst_path, texts[utt_id]))
        num_noisy += 1
    write_data_dir(args.dst_data_dir, entries)
    snr_text = f"{args.snr[0]:g}" if args.snr[0] == args.snr[1] else f"{args.snr[0]:g}-{args.snr[1]:g}"
    print(
        f"[{args.dst_data_dir.name}] {num_noisy} of {len(entries)} utterances with {'/'.join(args.noise_type)} "
        f"noise at {snr_text} dB SNR",
        file=sys.stderr,
    )


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"{Path(__file__).name}: error: {error}")
