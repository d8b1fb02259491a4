"""What the Mamba and Speech-Mamba encoders share: front end, a stack of layers, final LayerNorm, inter-CTC."""
from __future__ import annotations

from typing import List, Optional, Tuple, Union

import torch
import torch.nn as nn

from espnet2.asr.ctc import CTC
from espnet2.asr.encoder.abs_encoder import AbsEncoder
from espnet_samba.asr.checkpoint_check import refuse_mismatched_checkpoints
from espnet_samba.asr.encoder.input_layers import (
    apply_input_layer,
    frame_stride,
    receptive_field,
    stream_input_layer,
)
from espnet_samba.asr.encoder.stream_state import EncoderStreamState
from espnet_samba.compat import LayerNorm

EncoderOutput = Union[torch.Tensor, Tuple[torch.Tensor, List[Tuple[int, torch.Tensor]]]]


class LayerStackEncoder(AbsEncoder):
    """`after_norm(layer_N(... layer_1(embed(x))))` with ESPnet's intermediate-CTC contract.

    Every layer is called as `layer(x (B, T', D), lengths (B,)) -> (B, T', D)`. Intermediate CTC follows
    `ConformerEncoder`: after each layer in `interctc_layer_idx` (1-based) the normalised output is returned beside
    the final one, and with `interctc_use_conditioning` its CTC posteriors, projected by `conditioning_layer`
    (set by `ESPnetASRModel`), are added to the input of the next layer.

    A stack of causal layers also runs chunk by chunk (`init_stream_state`, `forward_chunk`), with the offline
    outputs.

    Args:
        embed: the front end, from `build_input_layer`.
        encoders: the layers, bottom first.
        output_size: feature size D of the layers.
        interctc_layer_idx: layers after which to emit intermediate outputs, each in [1, len(encoders) - 1].
        interctc_use_conditioning: feed the intermediate CTC posteriors back (needs `ctc=` in `forward`).
    """

    def __init__(
        self,
        embed: nn.Module,
        encoders: nn.ModuleList,
        output_size: int,
        interctc_layer_idx: List[int],
        interctc_use_conditioning: bool,
    ) -> None:
        super().__init__()
        refuse_mismatched_checkpoints(self)
        num_blocks = len(encoders)
        invalid = [idx for idx in interctc_layer_idx if not 0 < idx < num_blocks]
        if invalid:
            raise ValueError(
                f"interctc_layer_idx {invalid} out of range: with num_blocks={num_blocks} each index must lie in "
                f"[1, {num_blocks - 1}] (1-based; the last layer's output is the encoder output itself)"
            )
        self._output_size = output_size
        self.embed = embed
        self.encoders = encoders
        self.after_norm = LayerNorm(output_size)
        self.interctc_layer_idx = interctc_layer_idx
        self.interctc_use_conditioning = interctc_use_conditioning
        self.conditioning_layer: Optional[nn.Module] = None

    def output_size(self) -> int:
        return self._output_size

    def forward(
        self,
        xs_pad: torch.Tensor,
        ilens: torch.Tensor,
        prev_states: Optional[torch.Tensor] = None,
        ctc: Optional[CTC] = None,
    ) -> Tuple[EncoderOutput, torch.Tensor, None]:
        """Encode a padded batch.

        Args:
            xs_pad: (B, T, F) features (or (B, T) token ids with input_layer "embed"), padding at the end.
            ilens: valid lengths (B,).
            prev_states: unused (ESPnet's interface).
            ctc: the model's CTC module; required when `interctc_use_conditioning` is on.

        Returns:
            (B, T', D) outputs, or `(outputs, [(layer_idx, (B, T', D)), ...])` when `interctc_layer_idx` is set;
            output lengths (B,) (the frames that see no padding, see `input_layers`); None.
        """
        self._check_ctc_given(ctc, "forward")
        xs, olens = apply_input_layer(self.embed, xs_pad, ilens)

        intermediate_outs = []
        for layer_idx, layer in enumerate(self.encoders, start=1):
            xs = layer(xs, olens)
            if layer_idx in self.interctc_layer_idx:
                intermediate = self.after_norm(xs)
                intermediate_outs.append((layer_idx, intermediate))
                if self.interctc_use_conditioning:
                    xs = xs + self.conditioning_layer(ctc.softmax(intermediate))
        xs = self.after_norm(xs)
        if intermediate_outs:
            return (xs, intermediate_outs), olens, None
        return xs, olens, None

    def _check_ctc_given(self, ctc: Optional[CTC], method: str) -> None:
        if self.interctc_use_conditioning and self.interctc_layer_idx and ctc is None:
            raise ValueError(f"interctc_use_conditioning needs the model's CTC module: call {method}(..., ctc=ctc)")

    def frame_stride(self) -> int:
        """Input frames between consecutive output frames (the front end's subsampling factor)."""
        return frame_stride(self.embed)

    def receptive_field(self) -> int:
        """Input frames the front end's output frame t sees, from input frame t * frame_stride() on."""
        return receptive_field(self.embed)

    def check_streamable(self) -> None:
        """Raise a ValueError saying why this encoder cannot run chunk by chunk, if a layer cannot."""
        for layer_idx, layer in enumerate(self.encoders, start=1):
            if layer.streaming_obstacle is not None:
                raise ValueError(
                    f"this encoder cannot run chunk by chunk: in layer {layer_idx} ({type(layer).__name__}), "
                    f"{layer.streaming_obstacle}. Streaming needs a causal encoder: encoder: mamba with "
                    "bidirectional: false (or speech_mamba with num_attention_blocks: 0)"
                )

    def init_stream_state(self, batch_size: int) -> EncoderStreamState:
        """The state of `batch_size` streams before their first chunk, for `forward_chunk`."""
        self.check_streamable()
        return EncoderStreamState(None, [layer.allocate_inference_cache(batch_size) for layer in self.encoders])

    def forward_chunk(
        self, xs_chunk: torch.Tensor, state: EncoderStreamState, ctc: Optional[CTC] = None
    ) -> Tuple[torch.Tensor, EncoderStreamState]:
        """Encode the next chunk of B streams, continuing from the state after their previous chunks.

        Every layer is causal and the front end waits for the input frames each output frame sees, so in eval
        mode the outputs of a stream's chunks, concatenated, are `forward`'s outputs for the whole stream (to
        float tolerance), for any chunk sizes, one frame included, and as many frames as its output length.
        Intermediate CTC outputs are not returned (they serve training losses), but with
        `interctc_use_conditioning` their posteriors are added back as in `forward`.

        Args:
            xs_chunk: the streams' next frames (B, T_chunk, F) (token ids (B, T_chunk) for input_layer "embed");
                T_chunk >= 0, the same for every stream.
            state: from `init_stream_state` or the previous call; not modified.
            ctc: the model's CTC module; required when `interctc_use_conditioning` is on.

        Returns:
            The output frames the chunk completes (B, T'_chunk, D), T'_chunk = 0 while the subsampling waits for
            input, and the state after the chunk.

        Raises:
            ValueError: a layer cannot run chunk by chunk (see `check_streamable`), or `ctc` is missing.
        """
        self.check_streamable()
        self._check_ctc_given(ctc, "forward_chunk")
        xs, pending_frames = stream_input_layer(self.embed, xs_chunk, state.pending_frames, self._output_size)
        if xs.size(1) == 0:
            return xs, EncoderStreamState(pending_frames, state.layer_states, state.offset)
        layer_states = []
        for layer_idx, (layer, layer_state) in enumerate(zip(self.encoders, state.layer_states), start=1):
            xs, layer_state = layer.forward_chunk(xs, layer_state)
            layer_states.append(layer_state)
            if self.interctc_use_conditioning and layer_idx in self.interctc_layer_idx:
                xs = xs + self.conditioning_layer(ctc.softmax(self.after_norm(xs)))
        return self.after_norm(xs), EncoderStreamState(pending_frames, layer_states, state.offset + xs.size(1))
