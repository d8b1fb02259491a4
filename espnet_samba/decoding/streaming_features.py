"""The ASR model's input features for a stream, computed chunk by chunk, equal to the offline features.

Offline, `ESPnetASRModel.encode` turns a whole signal into features: the frontend (`frontend: default`: STFT, power,
log-mel) then `normalize`. Here the same modules run on chunks of any size, and the frames of the chunks,
concatenated, are the offline frames of the whole signal (to float rounding).

STFT bookkeeping. ESPnet's `Stft` calls `torch.stft`; its frame t covers the samples
[t * hop, t * hop + n_fft) of the signal extended by `pad = n_fft // 2` samples on each side with `center: true`
(none with `center: false`). torch.stft extends by reflection: the left extension is samples pad..1, known once
pad + 1 samples have arrived; the right one is samples N-2..N-1-pad of a signal of N samples, known only at its end.
A frame is therefore emitted as soon as every sample it covers has arrived, and the frames that reach into the right
extension when the stream ends, which also gives the offline frame count `(N + 2 pad - n_fft) // hop + 1`. Each
frame is computed from exactly its own samples by an ESPnet `Stft` with the frontend's settings and `center: false`
on the extended signal, then by the frontend's own `LogMel`. Kept between chunks: the samples of the frames not yet
emitted and the last pad + 1 samples, fewer than n_fft + hop + pad samples whatever the stream's length.

Without a frontend (`--feats_type fbank`), the chunks are the feature frames themselves, or, given a
`StreamingKaldiFbank` with the recipe's fbank options, samples turned into those frames as they arrive
(`espnet_samba.decoding.kaldi_fbank`). A model with `frontend: kaldi_fbank` streams the same way, with its
frontend's options.

Normalization. `global_mvn` subtracts and divides by the training set's statistics frame by frame, so it streams;
`utterance_mvn` uses the mean (and variance) of the whole utterance, which a stream does not know before it ends:
it is refused.
"""
from __future__ import annotations

from typing import Optional

import torch

from espnet2.asr.frontend.abs_frontend import AbsFrontend
from espnet2.asr.frontend.default import DefaultFrontend
from espnet2.layers.abs_normalize import AbsNormalize
from espnet2.layers.global_mvn import GlobalMVN
from espnet2.layers.stft import Stft

from espnet_samba.asr.frontend.kaldi_fbank import KaldiFbankFrontend
from espnet_samba.decoding.kaldi_fbank import StreamingKaldiFbank

# What a model without frontend needs to be given audio.
NEEDS_AUDIO_FEATURES = (
    "this model was trained on precomputed features (--feats_type fbank, no frontend): give the recipe's fbank "
    "options (--fbank_conf conf/fbank.conf, and --fs) to compute them from the audio"
)


def check_streamable_features(frontend: Optional[AbsFrontend], normalize: Optional[AbsNormalize]) -> None:
    """Raise a ValueError naming the frontend or normalization that cannot be computed chunk by chunk."""
    streamable = isinstance(frontend, KaldiFbankFrontend) or (
        isinstance(frontend, DefaultFrontend) and frontend.stft is not None
    )
    if frontend is not None and not streamable:
        raise ValueError(
            f"streaming computes the features of `frontend: default` (STFT + log-mel) and `frontend: kaldi_fbank` "
            f"incrementally; this model's frontend is {type(frontend).__name__}. Train with one of those, or with "
            "--feats_type fbank (no frontend)"
        )
    if normalize is not None and not isinstance(normalize, GlobalMVN):
        raise ValueError(
            f"normalize: {type(normalize).__name__} cannot stream: it normalises every frame with statistics of the "
            "whole utterance, which are unknown until it ends. Train the streaming model with global_mvn "
            "(asr.sh --feats_normalize global_mvn, the default) or without normalization"
        )


class StreamingFeatures:
    """Frontend and normalization of one stream, fed chunk by chunk (see the module docstring).

    With a frontend the chunks are waveform samples (N_chunk,); without one (`--feats_type fbank`) they are feature
    frames (T_chunk, F), which only the normalization touches, or samples again when `kaldi_fbank` computes the
    frames.

    Args:
        frontend: the model's `DefaultFrontend` or `KaldiFbankFrontend`, or None.
        normalize: the model's `GlobalMVN`, or None.
        dtype: dtype of the returned features (the model's).
        kaldi_fbank: for a model without frontend, the Kaldi fbank features it was trained on, computed from
            samples; None: the chunks are feature frames.

    Raises:
        ValueError: a frontend or normalization that cannot stream, or `kaldi_fbank` for a model with a frontend.
    """

    def __init__(
        self,
        frontend: Optional[AbsFrontend],
        normalize: Optional[AbsNormalize],
        dtype: torch.dtype,
        kaldi_fbank: Optional[StreamingKaldiFbank] = None,
    ) -> None:
        check_streamable_features(frontend, normalize)
        if frontend is not None and kaldi_fbank is not None:
            raise ValueError(
                f"this model computes its own features from audio (its frontend: {type(frontend).__name__}); Kaldi "
                "fbank options apply only to a model trained on precomputed features (--feats_type fbank): drop "
                "the fbank options"
            )
        if isinstance(frontend, KaldiFbankFrontend):  # its frames stream as the recipe's fbank features do
            kaldi_fbank, frontend = StreamingKaldiFbank(frontend.kaldi_options, frontend.sample_rate), None
        self.frontend = frontend
        self.kaldi_fbank = kaldi_fbank
        self.normalize = normalize
        self.dtype = dtype
        if frontend is not None:
            stft = frontend.stft
            self.n_fft, self.hop_length = stft.n_fft, stft.hop_length
            self.pad = stft.n_fft // 2 if stft.center else 0
            self._frame_stft = Stft(
                n_fft=stft.n_fft,
                win_length=stft.win_length,
                hop_length=stft.hop_length,
                center=False,
                window=stft.window,
                normalized=stft.normalized,
                onesided=stft.onesided,
            )
        self.reset()

    @property
    def takes_audio(self) -> bool:
        """The chunks are samples (a frontend, or `kaldi_fbank`), not feature frames."""
        return self.frontend is not None or self.kaldi_fbank is not None

    @property
    def sample_rate(self) -> Optional[int]:
        """The sampling rate in Hz of the samples taken, or None when the chunks are feature frames."""
        if self.kaldi_fbank is not None:
            return self.kaldi_fbank.sample_rate
        return None if self.frontend is None else int(self.frontend.logmel.mel_options["sr"])

    @property
    def frame_shift(self) -> Optional[float]:
        """Seconds between feature frames, or None when the chunks are feature frames (their shift unknown)."""
        if self.kaldi_fbank is not None:
            return self.kaldi_fbank.frame_shift
        return None if self.frontend is None else self.hop_length / self.sample_rate

    def reset(self) -> None:
        """Forget the stream: the next chunk starts a new one."""
        self._received = 0  # samples of the stream so far
        self._buffer: Optional[torch.Tensor] = None  # the extended signal from index _buffer_start on
        self._buffer_start = 0
        self._extended = False  # the left reflection is in the buffer
        self._next_frame = 0
        if self.kaldi_fbank is not None:
            self.kaldi_fbank.reset()

    def __call__(self, chunk: torch.Tensor, is_final: bool) -> torch.Tensor:
        """Features of the frames this chunk completes.

        Args:
            chunk: the stream's next samples (N_chunk,), or feature frames (T_chunk, F) without a frontend and
                `kaldi_fbank`; may be empty.
            is_final: the stream ends with this chunk.

        Returns:
            (1, T_new, F) normalised features, T_new >= 0.

        Raises:
            ValueError: the stream ends with at most n_fft // 2 samples, too few for the STFT's reflection
                (offline, torch.stft refuses such a signal too), or with fewer than one Kaldi fbank frame.
        """
        if self.kaldi_fbank is not None:
            self._received += chunk.numel()
            if is_final and self._received < self.kaldi_fbank.window:
                raise ValueError(f"the audio has {self._received} samples, fewer than one fbank frame "
                                 f"({self.kaldi_fbank.window})")
            feats = self.kaldi_fbank(chunk).to(self.dtype)[None]
        elif self.frontend is None:
            feats = chunk.to(self.dtype)[None]
        else:
            feats = self._spectral_features(chunk.to(self.dtype), is_final)
        if self.normalize is not None and feats.size(1) > 0:
            feats, _ = self.normalize(feats.clone(), feats.new_full((1,), feats.size(1), dtype=torch.long))
        return feats

    def _spectral_features(self, samples: torch.Tensor, is_final: bool) -> torch.Tensor:
        self._received += samples.numel()
        self._append(samples)
        if not self._extended:
            if is_final:
                raise ValueError(
                    f"the audio has {self._received} samples; the frontend's STFT (n_fft {self.n_fft}, center) "
                    f"needs more than {self.pad}"
                )
            return samples.new_zeros(1, 0, self.frontend.output_size())
        if is_final and self.pad:
            # torch.stft's right reflection: samples N-2 .. N-1-pad.
            self._buffer = torch.cat([self._buffer, self._buffer[-self.pad - 1 : -1].flip(0)])
        available = self._buffer_start + self._buffer.numel()
        frames_available = (available - self.n_fft) // self.hop_length + 1 if available >= self.n_fft else 0
        first, stop = self._next_frame, max(frames_available, self._next_frame)
        if stop > first:
            start = first * self.hop_length - self._buffer_start
            end = (stop - 1) * self.hop_length + self.n_fft - self._buffer_start
            feats = self._frames(self._buffer[start:end])
        else:
            feats = samples.new_zeros(1, 0, self.frontend.output_size())
        self._next_frame = stop
        keep_from = min(stop * self.hop_length, available - self.pad - 1)
        self._buffer = self._buffer[keep_from - self._buffer_start :].clone()
        self._buffer_start = keep_from
        return feats

    def _append(self, samples: torch.Tensor) -> None:
        """Add samples to the extended signal, and its left reflection once pad + 1 samples have arrived."""
        self._buffer = samples if self._buffer is None else torch.cat([self._buffer, samples])
        if not self._extended and self._received > self.pad:
            if self.pad:
                self._buffer = torch.cat([self._buffer[1 : self.pad + 1].flip(0), self._buffer])
            self._extended = True

    def _frames(self, extended: torch.Tensor) -> torch.Tensor:
        """Log-mel frames (1, T, F) of a stretch of the extended signal that starts at a frame."""
        spectrum, _ = self._frame_stft(extended[None], None)
        power = spectrum[..., 0] ** 2 + spectrum[..., 1] ** 2
        feats, _ = self.frontend.logmel(power, None)
        return feats
