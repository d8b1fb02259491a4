"""Two-pass streaming recognition with a causal encoder: audio chunks in, partial and final hypotheses out.

chunk -> `StreamingFeatures` (the offline features, incrementally) -> `encoder.forward_chunk` (the offline encoder
outputs, incrementally) -> CTC log posteriors -> `SegmentingSearch` (the CTC prefix beam search, partial results
after every chunk, cut into segments by the endpoint rules) -> at the end of each segment, the second pass over the
segment's encoder frames: `JointBeamSearchPass` (ESPnet's joint CTC/attention beam search, offline decoding's
result) or `AttentionRescorer` (the decoder and LM rescore the CTC n-best, U2's two passes).

What is kept while a stream runs: the feature and encoder states (fixed size), the beam (`beam_size` prefixes) and
the current segment's encoder frames and CTC posteriors, which the second pass and the token alignment need; with
`max_segment_length` set, none of it grows with the stream.

At an endpoint the search, the segment's frames and the endpoint counters start over, and (with the rules'
`restart_encoder`, the default) so does the encoder, at the input frame where the next speech begins (see
`espnet_samba.decoding.endpoint` and `espnet_samba.decoding.speech_onset`): the input frames since then, kept for
this, are encoded again from a fresh state, so each segment is encoded exactly as the offline encoder encodes the
audio from the segment's first input frame on. Its encoder frames then lie `Segment.grid_offset` after the
stream's frame grid; `Segment.start_time` and `time_of` give their times. (Without the restart the encoder state
runs on over the whole stream, beyond the utterance lengths a model was trained on; see
`espnet_samba.decoding.endpoint`.) The input frames kept are those of the current segment, bounded like its
encoder frames.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import torch

from espnet2.asr.espnet_model import ESPnetASRModel

from espnet_samba.decoding.attention_rescoring import ScoredHypothesis
from espnet_samba.decoding.ctc_prefix_search import CTCPrefix, CTCPrefixBeamSearch
from espnet_samba.decoding.endpoint import (
    NO_ENDPOINTS,
    SILENCE_WITHOUT_SPEECH,
    Endpoint,
    EndpointRules,
    SegmentingSearch,
)
from espnet_samba.decoding.kaldi_fbank import StreamingKaldiFbank
from espnet_samba.decoding.speech_onset import energy_onset
from espnet_samba.decoding.streaming_features import StreamingFeatures

ONSET_LOOKBACK_FRAMES = 2  # encoder frames before the first non-silent one where the speech may already begin


@dataclass(frozen=True)
class Segment:
    """A finished stretch of the stream and its rescored hypotheses.

    Attributes:
        hypotheses: best first (at most the recogniser's `nbest`).
        start_frame: the segment's first encoder frame, counted from the start of the stream.
        end_frame: one past its last encoder frame.
        rule: the endpoint rule that ended it (see `espnet_samba.decoding.endpoint`).
        log_probs: its CTC log posteriors (end_frame - start_frame, V), for aligning the tokens to frames.
        frame_shift: seconds between encoder frames.
        grid_offset: seconds by which its frames lie after the stream's frame grid: a segment whose encoder was
            restarted at its speech onset starts between two frames of the grid (see `StreamingRecognizer`).
    """

    hypotheses: List[ScoredHypothesis]
    start_frame: int
    end_frame: int
    rule: str
    log_probs: torch.Tensor
    frame_shift: float
    grid_offset: float = 0.0

    def time_of(self, frame: float) -> float:
        """Seconds from the start of the stream to the start of encoder frame `frame` (of the stream's count)."""
        return frame * self.frame_shift + self.grid_offset

    @property
    def start_time(self) -> float:
        return self.time_of(self.start_frame)

    @property
    def end_time(self) -> float:
        return self.time_of(self.end_frame)


def check_streamable_model(asr_model: ESPnetASRModel) -> None:
    """Raise a ValueError saying why `asr_model` cannot be decoded chunk by chunk, if it cannot."""
    if not hasattr(asr_model.encoder, "forward_chunk"):
        raise ValueError(
            f"streaming decoding needs an encoder that runs chunk by chunk; {type(asr_model.encoder).__name__} "
            "does not. Use encoder: mamba with bidirectional: false"
        )
    asr_model.encoder.check_streamable()
    for name in ("preencoder", "postencoder"):
        module = getattr(asr_model, name, None)
        if module is not None:
            raise ValueError(f"streaming decoding does not support a {name} ({type(module).__name__})")


class StreamingRecognizer:
    """Decodes one stream of an `ESPnetASRModel` with a causal encoder, chunk by chunk.

    Args:
        asr_model: the model, in eval mode, in the dtype to decode in.
        beam_size: prefixes kept by the CTC search; all of them are rescored at a segment's end.
        rescorer: the second pass: `AttentionRescorer` or `JointBeamSearchPass`, called with a segment's CTC
            n-best and encoder frames (T, D), returning its hypotheses best first.
        nbest: hypotheses returned per segment and in partial results.
        endpoint_rules: where segments end within the stream (default: only where the stream does).
        feature_frame_shift: seconds between input feature frames when the model has no frontend (features
            given, e.g. 10 ms fbank); with a frontend it is hop_length / fs, with `kaldi_fbank` its shift.
        kaldi_fbank: for a model without frontend, computes its Kaldi fbank input from samples (see
            `StreamingFeatures`); the chunks are then samples.
    """

    def __init__(
        self,
        asr_model: ESPnetASRModel,
        beam_size: int,
        rescorer: Callable[[Sequence[CTCPrefix], torch.Tensor], List[ScoredHypothesis]],
        nbest: int = 1,
        endpoint_rules: EndpointRules = NO_ENDPOINTS,
        feature_frame_shift: float = 0.01,
        kaldi_fbank: Optional[StreamingKaldiFbank] = None,
    ) -> None:
        check_streamable_model(asr_model)
        self.asr_model = asr_model
        dtype = next(asr_model.parameters()).dtype
        self.features = StreamingFeatures(asr_model.frontend, asr_model.normalize, dtype, kaldi_fbank)
        self.rescorer = rescorer
        self.nbest = nbest
        shift = self.features.frame_shift
        self.feature_shift = feature_frame_shift if shift is None else shift
        self._stride = asr_model.encoder.frame_stride()
        self._receptive_field = asr_model.encoder.receptive_field()
        self.frame_shift = self.feature_shift * self._stride
        search = CTCPrefixBeamSearch(beam_size, blank=asr_model.blank_id)
        self.segmenter = SegmentingSearch(search, endpoint_rules, self.frame_shift)
        self.restart_encoder = endpoint_rules.restart_encoder
        self._onset_margin = round(endpoint_rules.onset_margin / self.feature_shift)
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next chunk starts a new one."""
        self.features.reset()
        self.encoder_state = self.asr_model.encoder.init_stream_state(1)
        self.segmenter.reset()
        parameter = next(self.asr_model.parameters())
        self._memory = parameter.new_zeros(0, self.asr_model.encoder.output_size())
        self._log_probs = parameter.new_zeros(0, self.asr_model.ctc.ctc_lo.out_features)
        self._feats: Optional[torch.Tensor] = None  # with restart_encoder: the input frames since _feats_start
        self._feats_start = 0
        self._pause_start: Optional[int] = None  # with restart_encoder: where the pause after an endpoint began
        self._grid_offset = 0  # input frames: encoder frame t (of the segmenter's count) starts at t * stride + this

    @torch.no_grad()
    def accept(self, chunk: torch.Tensor, is_final: bool) -> List[Segment]:
        """Decode the stream's next chunk.

        Args:
            chunk: the next samples (N_chunk,) (feature frames (T_chunk, F) for a model without frontend and
                without `kaldi_fbank`), any size, empty included.
            is_final: the stream ends with this chunk; its last segment is rescored and returned, and the next
                chunk starts a new stream.

        Returns:
            The segments that ended within this chunk, in order (the last one of the stream when `is_final`);
            those dropped by the `silence_without_speech` rule are left out.
        """
        feats = self.features(chunk.to(self._memory.device), is_final)
        if self.restart_encoder:
            self._feats = feats[0] if self._feats is None else torch.cat([self._feats, feats[0]])
        encoded, self.encoder_state = self.asr_model.encoder.forward_chunk(
            feats, self.encoder_state, ctc=self.asr_model.ctc
        )
        segments = []
        while True:
            log_probs = self.asr_model.ctc.log_softmax(encoded)[0]
            if self._pause_start is not None:  # after an endpoint: the encoder runs on until the next speech
                encoded = self._await_onset(log_probs)
                if encoded is None:
                    break
                continue
            consumed, endpoint = self.segmenter.step_until_endpoint(log_probs)
            self._memory = torch.cat([self._memory, encoded[0, :consumed]])
            self._log_probs = torch.cat([self._log_probs, log_probs[:consumed]])
            if endpoint is None:
                break
            segments.append(self._segment(endpoint))
            encoded = encoded[:, consumed:]
            if self.restart_encoder:
                self._pause_start = endpoint.end_frame
        if is_final:
            segments.append(self._segment(self.segmenter.finish()))
            self.reset()
        return [segment for segment in segments if segment is not None]

    def _await_onset(self, log_probs: torch.Tensor) -> Optional[torch.Tensor]:
        """In a pause after an endpoint, the run-on encoder's posteriors (T, V) of the next frames: None while all
        are silence (they are left out); at the first that is not, the frames from the speech onset on (see
        `_speech_onset`), encoded again from a fresh state (1, T', D), and the pause is over."""
        first = self.segmenter.frames
        speech = (~self.segmenter.is_silence(log_probs)).nonzero()
        if speech.numel() == 0:
            self.segmenter.skip_to(first + log_probs.size(0))
            lookback = self.segmenter.frames - ONSET_LOOKBACK_FRAMES
            self._drop_features_before(self._input_frame(max(self._pause_start, lookback)) - self._onset_margin)
            return None
        onset = self._speech_onset(first + int(speech[0]))
        self._pause_start = None
        return self._restart_encoder(onset)

    def _input_frame(self, frame: int) -> int:
        """The first input frame that encoder frame `frame` (of the segmenter's count) sees."""
        return frame * self._stride + self._grid_offset

    def _speech_onset(self, frame: int) -> int:
        """The input frame to restart the encoder from, given the first encoder frame after the pause that is not
        silence: `onset_margin` before the energy onset (`energy_onset`) within that frame's window and the
        `ONSET_LOOKBACK_FRAMES` frames before it, never before the pause; that frame's first input frame where the
        window has no onset or no frame of the pause was silent (a segment cut by max_segment_length)."""
        pause_start = self._input_frame(self._pause_start)
        at_grid = self._input_frame(frame)
        if frame == self._pause_start:
            return at_grid
        first = max(pause_start, self._input_frame(frame - ONSET_LOOKBACK_FRAMES), self._feats_start)
        window = self._feats[first - self._feats_start : at_grid + self._receptive_field - self._feats_start]
        rise = energy_onset(window)
        return at_grid if rise is None else max(pause_start, self._feats_start, first + rise - self._onset_margin)

    def _drop_features_before(self, first: int) -> None:
        """Release the input frames before input frame `first`."""
        if first > self._feats_start:
            self._feats = self._feats[first - self._feats_start :].clone()
            self._feats_start = first

    def _restart_encoder(self, first: int) -> torch.Tensor:
        """Encode the stream again from input frame `first` on, from a fresh state; its frames so far (1, T, D).

        The segmenter's frame grid moves with it: encoder frame t of a fresh encoder fed the input frames from
        `first` on sees the input frames from first + t * stride on, so the segment goes on at frame
        first // stride with the grid offset first % stride (input frames) until the next restart.
        """
        self._drop_features_before(first)
        self._grid_offset = first % self._stride
        self.segmenter.skip_to(first // self._stride)
        self.encoder_state = self.asr_model.encoder.init_stream_state(1)
        encoded, self.encoder_state = self.asr_model.encoder.forward_chunk(
            self._feats[None], self.encoder_state, ctc=self.asr_model.ctc
        )
        return encoded

    def partial(self) -> List[CTCPrefix]:
        """The current segment's `nbest` likeliest CTC prefixes (first pass only)."""
        return self.segmenter.search.nbest(self.nbest)

    def _segment(self, endpoint: Endpoint) -> Optional[Segment]:
        """Rescore an ended segment, releasing its frames (None for a dropped one)."""
        frames = endpoint.end_frame - endpoint.start_frame
        memory, log_probs = self._memory[:frames], self._log_probs[:frames]
        self._memory, self._log_probs = self._memory[frames:].clone(), self._log_probs[frames:].clone()
        if endpoint.rule == SILENCE_WITHOUT_SPEECH:
            return None
        if frames == 0:
            hypotheses = [ScoredHypothesis((), 0.0, {"ctc": 0.0, "length_bonus": 0.0})]
        else:
            hypotheses = self.rescorer(endpoint.prefixes, memory)[: self.nbest]
        return Segment(
            hypotheses, endpoint.start_frame, endpoint.end_frame, endpoint.rule, log_probs, self.frame_shift,
            self._grid_offset * self.feature_shift,
        )
