"""Kaldi filterbank features of a stream, computed chunk by chunk, equal to those of the whole signal.

Models trained with `asr.sh --feats_type fbank` have no frontend: the recipe computed their input offline with
Kaldi's `compute-fbank-feats` settings (torchaudio.compliance.kaldi.fbank on 16-bit-scale samples, the options of the
recipe's conf/fbank.conf; pyscripts/feats/compute_fbank_feats.py). To recognise raw audio with such a model, the
same features are computed here as the audio arrives.

With Kaldi's `snip_edges` (its default), frame t covers exactly the samples [t * shift, t * shift + window), and
everything Kaldi does to a frame (DC removal, pre-emphasis, the window, the FFT, the mel filters, the log) uses only
those samples; so a frame is emitted once its last sample has arrived, computed from its own samples, and the frames
of any chunking, concatenated, are those of the whole signal. Three options would need the future or randomness and
are refused: `snip_edges: false` (reflection beyond the signal's end), `subtract_mean` (the utterance's mean) and
`dither` (random noise per frame). Kept between chunks: fewer than window + shift samples.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Union

import torch
import torchaudio.compliance.kaldi as kaldi_compliance

FbankOptions = Dict[str, Union[int, float, bool, str]]

# compute_fbank_feats.py's defaults, which conf/fbank.conf overrides.
DEFAULT_FBANK_OPTIONS: FbankOptions = {"num_mel_bins": 80, "frame_length": 25.0, "frame_shift": 10.0, "dither": 0.0}
PCM16_SCALE = 32768.0  # Kaldi reads 16-bit samples as integers


def read_fbank_conf(path: Optional[Path]) -> FbankOptions:
    """Kaldi-style "--name=value" lines (conf/fbank.conf) as keyword arguments of torchaudio's kaldi.fbank.

    Raises:
        ValueError: a line that is not "--name=value" (comments after "#" and blank lines are skipped).
    """
    options: FbankOptions = dict(DEFAULT_FBANK_OPTIONS)
    if path is None:
        return options
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if not line.startswith("--") or "=" not in line:
            raise ValueError(f"{path}:{number}: expected '--option=value', got {line!r}")
        name, value = line[2:].split("=", 1)
        options[name.replace("-", "_")] = _parse_value(value)
    return options


def _parse_value(value: str) -> Union[int, float, bool, str]:
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


class StreamingKaldiFbank:
    """Kaldi fbank frames of one stream, fed samples chunk by chunk (see the module docstring).

    Args:
        options: torchaudio kaldi.fbank keyword arguments (`read_fbank_conf`), without `sample_frequency`.
        sample_rate: the audio's sampling rate in Hz (the recipe's --fs).

    Raises:
        ValueError: an option that cannot stream (snip_edges false, subtract_mean, dither), naming it.
    """

    def __init__(self, options: FbankOptions, sample_rate: int) -> None:
        refused = {
            "snip_edges": (False, "frames past the signal's end are filled by reflection, known only at its end"),
            "subtract_mean": (True, "every frame is shifted by the utterance's mean, known only at its end"),
        }
        for name, (value, reason) in refused.items():
            if options.get(name, not value) == value:
                raise ValueError(f"fbank option {name}={value} cannot stream: {reason}; recompute the training "
                                 "features without it")
        if options.get("dither", 0.0) != 0.0:
            raise ValueError(f"fbank option dither={options['dither']} adds random noise to every frame; decode with "
                             "dither 0 (--dither=0.0 in the fbank conf)")
        self.options = {**options, "sample_frequency": float(sample_rate)}
        self.sample_rate = sample_rate
        self.window = round(sample_rate * float(options.get("frame_length", 25.0)) / 1000)
        self.shift = round(sample_rate * float(options.get("frame_shift", 10.0)) / 1000)
        self.num_mel_bins = int(options.get("num_mel_bins", 23))
        self.reset()

    @property
    def frame_shift(self) -> float:
        """Seconds between frames."""
        return self.shift / self.sample_rate

    def reset(self) -> None:
        """Forget the stream: the next chunk starts a new one."""
        self._pending = torch.zeros(0)  # the samples from the next frame's first one on

    def __call__(self, samples: torch.Tensor) -> torch.Tensor:
        """The frames (T_new, num_mel_bins) the chunk's samples (N_chunk,) (floats in [-1, 1]) complete."""
        self._pending = torch.cat([self._pending, samples.detach().float().cpu()])
        if self._pending.numel() < self.window:
            return torch.zeros(0, self.num_mel_bins)
        frames = (self._pending.numel() - self.window) // self.shift + 1
        covered = (frames - 1) * self.shift + self.window
        feats = kaldi_compliance.fbank(self._pending[None, :covered] * PCM16_SCALE, **self.options)
        self._pending = self._pending[frames * self.shift :].clone()
        return feats
