"""One layer of the Mamba encoder: a (bi)directional Mamba block, optionally with Conformer-style feed-forwards."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn

from espnet_samba.modules.bidirectional import BidirectionalMambaBlock
from espnet_samba.modules.feed_forward import FeedForwardBlock
from espnet_samba.modules.mamba_block import MambaBlock
from espnet_samba.modules.mamba_mixer import MambaState

FFN_TYPES = ("none", "linear", "macaron")


class MambaEncoderLayer(nn.Module):
    """A pre-norm residual Mamba block with an optional position-wise feed-forward.

    `ffn_type` arranges the layer:
      - "none": the Mamba block alone (the Samba-ASR encoder block).
      - "linear": Mamba block, then a feed-forward block (the Transformer layout, attention replaced by Mamba).
      - "macaron": half-step feed-forward, Mamba block, half-step feed-forward (the Conformer/ConMamba layout).

    Args:
        d_model: feature size D.
        d_state, d_conv, expand: the mixer's sizes (see `MambaMixer`).
        dropout_rate: dropout on each residual branch.
        norm_type: "layer_norm" or "rms_norm" for every pre-norm.
        bidirectional: a forward and a backward mixer (`BidirectionalMambaBlock`) instead of one causal mixer.
        ffn_type: "none", "linear" or "macaron".
        linear_units: hidden size of the feed-forward blocks; required unless ffn_type is "none".
        mixer_type: "mamba" (Mamba-1) or "mamba2" (mamba-ssm's Mamba-2), both on CPU and CUDA.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dropout_rate: float = 0.0,
        norm_type: str = "layer_norm",
        bidirectional: bool = False,
        ffn_type: str = "none",
        linear_units: Optional[int] = None,
        mixer_type: str = "mamba",
    ) -> None:
        super().__init__()
        if ffn_type not in FFN_TYPES:
            raise ValueError(f"ffn_type must be one of {list(FFN_TYPES)}, got {ffn_type!r}")
        if ffn_type != "none" and linear_units is None:
            raise ValueError(f"ffn_type {ffn_type!r} needs linear_units, the feed-forward hidden size")
        block_class = BidirectionalMambaBlock if bidirectional else MambaBlock
        self.mamba = block_class(
            d_model,
            d_state=d_state,
            d_conv=d_conv,
            expand=expand,
            dropout_rate=dropout_rate,
            norm_type=norm_type,
            mixer_type=mixer_type,
        )
        self.bidirectional = bidirectional
        half_step = ffn_type == "macaron"
        self.feed_forward_before = (
            FeedForwardBlock(d_model, linear_units, dropout_rate, norm_type, scale=0.5) if half_step else None
        )
        self.feed_forward = (
            FeedForwardBlock(d_model, linear_units, dropout_rate, norm_type, scale=0.5 if half_step else 1.0)
            if ffn_type != "none" else None
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x (B, L, D), valid lengths (B,) -> (B, L, D); valid frames never depend on padding."""
        if self.feed_forward_before is not None:
            x = self.feed_forward_before(x)
        x = self.mamba(x, lengths) if self.bidirectional else self.mamba(x)
        if self.feed_forward is not None:
            x = self.feed_forward(x)
        return x

    @property
    def streaming_obstacle(self) -> Optional[str]:
        """Why this layer cannot run chunk by chunk, or None when `forward_chunk` gives its `forward` outputs."""
        if self.bidirectional:
            return "the backward mixer (bidirectional: true) reads each utterance from its end: it needs the future"
        return None

    def allocate_inference_cache(self, batch_size: int) -> MambaState:
        """The mixer's state before any input, for `batch_size` streams (needs a causal layer)."""
        return self.mamba.mixer.allocate_inference_cache(batch_size)

    def forward_chunk(self, x: torch.Tensor, state: MambaState) -> Tuple[torch.Tensor, MambaState]:
        """The next chunk of every stream through a causal layer, continuing from the mixer's state.

        The feed-forwards and norms act on each frame alone, so with the mixer's `forward_chunk` the outputs are
        those of `forward` over the whole stream, at the chunk's frames.

        Args:
            x: the chunk (B, L, D), L >= 1.
            state: the mixer's state after the frames before the chunk; not modified.

        Returns:
            (B, L, D), and the mixer's state after the chunk.
        """
        if self.feed_forward_before is not None:
            x = self.feed_forward_before(x)
        x, state = self.mamba.forward_chunk(x, state)
        if self.feed_forward is not None:
            x = self.feed_forward(x)
        return x, state
