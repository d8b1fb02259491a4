"""`frontend: kaldi_fbank`: the recipes' Kaldi filterbank features, computed on the fly from raw audio.

A model trained on stage-3 features (`asr.sh --feats_type fbank`) has no frontend, so ESPnet's `Speech2Text`
cannot take a wav file: the user would have to compute the same features by hand. This frontend computes them
inside the model, from a padded batch of raw audio (`--feats_type raw`), so the packed model decodes audio
directly. Its features equal torchaudio's `compliance.kaldi.fbank` (what the recipes' make_fbank.sh writes,
Kaldi's `compute-fbank-feats`) utterance by utterance, on 16-bit-scale samples as Kaldi reads them; the whole
batch is framed, transformed and filtered at once, instead of one utterance at a time, so that it costs little
beside a training step.

Kaldi's per-frame pipeline, on frames [t * shift, t * shift + window) of each utterance (`snip_edges`): DC
removal, pre-emphasis (the frame's first sample is its own predecessor), the window, zero padding to a power of
two, the power spectrum, the mel filters of `torchaudio.compliance.kaldi.get_mel_banks`, and the log floored at
float32's epsilon. Options that change a frame with randomness (`dither`) or with the whole utterance
(`subtract_mean`, `snip_edges: false`), or that add an energy column or warp the frequencies, are not options of
this frontend: ESPnet refuses a config that sets them, naming the key.
"""
from __future__ import annotations

from typing import Tuple, Union

import humanfriendly
import torch
import torchaudio.compliance.kaldi as kaldi_compliance
from espnet2.asr.frontend.abs_frontend import AbsFrontend

PCM16_SCALE = 32768.0  # Kaldi reads 16-bit samples as integers
WINDOW_TYPES = ("povey", "hanning", "hamming", "rectangular")


def kaldi_window(window_type: str, length: int) -> torch.Tensor:
    """Kaldi's analysis window of `length` samples (feature-window.cc), float32 (length,)."""
    if window_type == "rectangular":
        return torch.ones(length)
    if window_type == "hamming":
        return torch.hamming_window(length, periodic=False, alpha=0.54, beta=0.46)
    hanning = torch.hann_window(length, periodic=False)
    return hanning.pow(0.85) if window_type == "povey" else hanning


def sample_rate_in_hz(fs: Union[int, str]) -> int:
    """16000 from 16000, "16000" or "16k" (asr.sh passes `--frontend_conf fs=16k`)."""
    return int(humanfriendly.parse_size(fs)) if isinstance(fs, str) else int(fs)


class KaldiFbankFrontend(AbsFrontend):
    """Kaldi log-mel filterbank features of raw mono audio (B, T_samples) -> (B, T_frames, num_mel_bins).

    Args:
        fs: sampling rate of the audio (Hz, or "16k").
        num_mel_bins, frame_length (ms), frame_shift (ms), preemphasis_coefficient, remove_dc_offset,
        round_to_power_of_two, low_freq (Hz), high_freq (Hz; <= 0 is relative to Nyquist), use_power,
        use_log_fbank, window_type: Kaldi's options of the same names (`--num-mel-bins=40` in a fbank.conf is
        `num_mel_bins: 40` here), with Kaldi's defaults except `num_mel_bins`, which has ESPnet's 80.
    """

    def __init__(
        self,
        fs: Union[int, str] = 16000,
        num_mel_bins: int = 80,
        frame_length: float = 25.0,
        frame_shift: float = 10.0,
        preemphasis_coefficient: float = 0.97,
        remove_dc_offset: bool = True,
        round_to_power_of_two: bool = True,
        low_freq: float = 20.0,
        high_freq: float = 0.0,
        use_power: bool = True,
        use_log_fbank: bool = True,
        window_type: str = "povey",
    ) -> None:
        super().__init__()
        if window_type not in WINDOW_TYPES:
            raise ValueError(f"kaldi_fbank: window_type must be one of {WINDOW_TYPES}, got {window_type!r}")
        self.sample_rate = sample_rate_in_hz(fs)
        self.window_length = int(self.sample_rate * frame_length * 0.001)  # Kaldi truncates, as torchaudio does
        self.window_shift = int(self.sample_rate * frame_shift * 0.001)
        if self.window_length < 2 or self.window_shift < 1:
            raise ValueError(f"kaldi_fbank: frame_length {frame_length} ms / frame_shift {frame_shift} ms at "
                             f"{self.sample_rate} Hz leave {self.window_length} / {self.window_shift} samples")
        self.fft_length = (
            1 << (self.window_length - 1).bit_length() if round_to_power_of_two else self.window_length
        )
        # The options as torchaudio.compliance.kaldi.fbank keyword arguments: forward reads them, streaming passes
        # them to kaldi.fbank.
        self.kaldi_options = {
            "num_mel_bins": num_mel_bins, "frame_length": frame_length, "frame_shift": frame_shift,
            "preemphasis_coefficient": preemphasis_coefficient, "remove_dc_offset": remove_dc_offset,
            "round_to_power_of_two": round_to_power_of_two, "low_freq": low_freq, "high_freq": high_freq,
            "use_power": use_power, "use_log_fbank": use_log_fbank, "window_type": window_type, "dither": 0.0,
        }
        self.register_buffer("window", kaldi_window(window_type, self.window_length), persistent=False)
        mel_banks, _ = kaldi_compliance.get_mel_banks(
            num_mel_bins, self.fft_length, float(self.sample_rate), low_freq, high_freq, 100.0, -500.0, 1.0
        )
        # (num_mel_bins, fft_length / 2 + 1): get_mel_banks leaves out the Nyquist bin, whose weight is zero.
        self.register_buffer("mel_banks", torch.nn.functional.pad(mel_banks, (0, 1)), persistent=False)

    def output_size(self) -> int:
        return self.kaldi_options["num_mel_bins"]

    def num_frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        """Frames of utterances of `num_samples` samples (B,) with Kaldi's snip_edges: whole windows only."""
        frames = torch.div(num_samples - self.window_length, self.window_shift, rounding_mode="floor") + 1
        return frames.clamp(min=0)

    def forward(self, input: torch.Tensor, input_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """input (B, T) samples in [-1, 1], padded; input_lengths (B,) -> feats (B, F, num_mel_bins), zero past
        each utterance's frames, and their lengths (B,)."""
        if input.dim() != 2:
            raise ValueError(
                f"kaldi_fbank takes mono audio (batch, samples), got shape {tuple(input.shape)}; mix or select a "
                "channel first (e.g. sox in.wav -c 1 out.wav)"
            )
        feats_lengths = self.num_frames(input_lengths)
        too_short = (feats_lengths == 0).nonzero().flatten().tolist()
        if too_short:
            raise ValueError(
                f"kaldi_fbank: utterance(s) {too_short} of the batch have {input_lengths[too_short].tolist()} "
                f"samples, fewer than one {self.window_length}-sample window: no frames (Kaldi's compute-fbank-feats "
                "drops them too); remove them from the data (asr.sh's --min_wav_duration)"
            )
        max_frames = int(feats_lengths.max()) if feats_lengths.numel() else 0
        samples = input.float() * PCM16_SCALE
        needed = (max_frames - 1) * self.window_shift + self.window_length
        if samples.shape[1] < needed:
            samples = torch.nn.functional.pad(samples, (0, needed - samples.shape[1]))
        options = self.kaldi_options
        frames = samples.unfold(1, self.window_length, self.window_shift)[:, :max_frames]  # (B, F, window)
        if options["remove_dc_offset"]:
            frames = frames - frames.mean(dim=-1, keepdim=True)
        if options["preemphasis_coefficient"] != 0.0:
            previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
            frames = frames - options["preemphasis_coefficient"] * previous
        spectrum = torch.fft.rfft(frames * self.window, n=self.fft_length).abs()  # (B, F, fft_length / 2 + 1)
        if options["use_power"]:
            spectrum = spectrum.pow(2.0)
        feats = torch.matmul(spectrum, self.mel_banks.t())
        if options["use_log_fbank"]:
            feats = feats.clamp(min=torch.finfo(torch.float32).eps).log()
        valid = torch.arange(max_frames, device=feats.device)[None, :] < feats_lengths[:, None]
        return feats.masked_fill(~valid[..., None], 0.0), feats_lengths
