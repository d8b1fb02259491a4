"""The state a causal encoder carries from one chunk of a stream to the next."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import torch

from espnet_samba.modules import MambaState


@dataclass
class EncoderStreamState:
    """Everything `LayerStackEncoder.forward_chunk` needs from the frames before a chunk, for B streams.

    Its size does not grow with the stream: fewer than `receptive_field` pending input frames and one fixed-size
    `MambaState` per layer.

    Attributes:
        pending_frames: (B, P, F) input frames already received that output frames not yet emitted still see
            (P < the subsampling's receptive field), oldest first; None before the first chunk and for per-frame
            front ends ("linear", "embed", None).
        layer_states: each layer's mixer state after the frames emitted so far, bottom layer first.
        offset: output frames emitted so far: the index of the next chunk's first output frame.
    """

    pending_frames: Optional[torch.Tensor]
    layer_states: List[MambaState]
    offset: int = 0
