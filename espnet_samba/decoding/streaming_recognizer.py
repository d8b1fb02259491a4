"""Two-pass streaming recognition with a causal encoder: audio chunks in, partial and final hypotheses out.

chunk -> `StreamingFeatures` (the offline features, incrementally) -> `encoder.forward_chunk` (the offline encoder
outputs, incrementally) -> CTC log posteriors -> `CTCPrefixBeamSearch` (partial results after every chunk) -> at the
end of a segment, `AttentionRescorer` over the CTC n-best and the segment's encoder frames (U2's two passes).

What is kept while a stream runs: the feature and encoder states (fixed size), the beam (`beam_size` prefixes) and
the current segment's encoder frames, which the second pass needs; a segment ends when the stream does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import torch

from espnet2.asr.espnet_model import ESPnetASRModel

from espnet_samba.decoding.attention_rescoring import AttentionRescorer, ScoredHypothesis
from espnet_samba.decoding.ctc_prefix_search import CTCPrefix, CTCPrefixBeamSearch
from espnet_samba.decoding.streaming_features import StreamingFeatures


@dataclass(frozen=True)
class Segment:
    """A finished stretch of the stream and its rescored hypotheses.

    Attributes:
        hypotheses: best first (at most the recogniser's `nbest`).
        start_frame: the segment's first encoder frame, counted from the start of the stream.
        end_frame: one past its last encoder frame.
        log_probs: its CTC log posteriors (end_frame - start_frame, V), for aligning the tokens to frames.
    """

    hypotheses: List[ScoredHypothesis]
    start_frame: int
    end_frame: int
    log_probs: torch.Tensor


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
        rescorer: the second pass.
        nbest: hypotheses returned per segment and in partial results.
        feature_frame_shift: seconds between input feature frames when the model has no frontend (features
            given, e.g. 10 ms fbank); with a frontend it is hop_length / fs.
    """

    def __init__(
        self,
        asr_model: ESPnetASRModel,
        beam_size: int,
        rescorer: AttentionRescorer,
        nbest: int = 1,
        feature_frame_shift: float = 0.01,
    ) -> None:
        check_streamable_model(asr_model)
        self.asr_model = asr_model
        self.features = StreamingFeatures(asr_model.frontend, asr_model.normalize, next(asr_model.parameters()).dtype)
        self.search = CTCPrefixBeamSearch(beam_size, blank=asr_model.blank_id)
        self.rescorer = rescorer
        self.nbest = nbest
        shift = self.features.frame_shift
        self.frame_shift = (feature_frame_shift if shift is None else shift) * asr_model.encoder.frame_stride()
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next chunk starts a new one."""
        self.features.reset()
        self.encoder_state = self.asr_model.encoder.init_stream_state(1)
        self._start_segment()

    def _start_segment(self) -> None:
        self.search.reset()
        self._segment_start = self.encoder_state.offset
        self._segment_frames: List[torch.Tensor] = []
        self._segment_log_probs: List[torch.Tensor] = []

    @torch.no_grad()
    def accept(self, chunk: torch.Tensor, is_final: bool) -> List[Segment]:
        """Decode the stream's next chunk.

        Args:
            chunk: the next samples (N_chunk,) (feature frames (T_chunk, F) for a model without frontend),
                any size, empty included.
            is_final: the stream ends with this chunk; its last segment is rescored and returned, and the next
                chunk starts a new stream.

        Returns:
            The segments this chunk finished (the last one when `is_final`).
        """
        feats = self.features(chunk.to(self._device), is_final)
        encoded, self.encoder_state = self.asr_model.encoder.forward_chunk(
            feats, self.encoder_state, ctc=self.asr_model.ctc
        )
        log_probs = self.asr_model.ctc.log_softmax(encoded)[0]
        self._segment_frames.append(encoded[0])
        self._segment_log_probs.append(log_probs)
        self.search.step(log_probs)
        if not is_final:
            return []
        finished = [self._finish_segment()]
        self.reset()
        return finished

    @property
    def _device(self) -> torch.device:
        return next(self.asr_model.parameters()).device

    def partial(self) -> List[CTCPrefix]:
        """The current segment's `nbest` likeliest CTC prefixes (first pass only)."""
        return self.search.nbest(self.nbest)

    def _finish_segment(self) -> Segment:
        memory = torch.cat(self._segment_frames)
        if memory.size(0) == 0:
            hypotheses = [ScoredHypothesis((), 0.0, {"ctc": 0.0, "length_bonus": 0.0})]
        else:
            hypotheses = self.rescorer(self.search.nbest(self.search.beam_size), memory)[: self.nbest]
        return Segment(hypotheses, self._segment_start, self.encoder_state.offset, torch.cat(self._segment_log_probs))
