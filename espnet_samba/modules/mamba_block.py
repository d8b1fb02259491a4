"""The pre-norm residual Mamba block shared by the encoder and the decoder."""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
import torch.nn as nn

from espnet_samba.modules.mamba2_mixer import Mamba2Mixer
from espnet_samba.modules.mamba_mixer import MambaMixer, MambaState
from espnet_samba.modules.normalization import build_norm

MIXERS = {"mamba": MambaMixer, "mamba2": Mamba2Mixer}


def build_mixer(mixer_type: str, d_model: int, d_state: int, d_conv: int, expand: int) -> nn.Module:
    """The token mixer called `mixer_type`: "mamba" (`MambaMixer`) or "mamba2" (`Mamba2Mixer`)."""
    if mixer_type not in MIXERS:
        raise ValueError(f"mixer_type must be one of {sorted(MIXERS)}, got {mixer_type!r}")
    return MIXERS[mixer_type](d_model, d_state=d_state, d_conv=d_conv, expand=expand)


class MambaBlock(nn.Module):
    """`x + dropout(mixer(norm(x)))`: a residual block around one causal Mamba mixer.

    Args:
        d_model: feature size D.
        d_state, d_conv, expand: the mixer's sizes (see `MambaMixer`).
        dropout_rate: dropout on the mixer output.
        norm_type: "layer_norm" or "rms_norm".
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
        mixer_type: str = "mamba",
    ) -> None:
        super().__init__()
        self.norm = build_norm(norm_type, d_model)
        self.mixer = build_mixer(mixer_type, d_model, d_state, d_conv, expand)
        self.dropout = nn.Dropout(dropout_rate)

    def forward(
        self,
        x: torch.Tensor,
        lengths: Optional[torch.Tensor] = None,
        return_final_state: bool = False,
    ) -> Union[torch.Tensor, Tuple[torch.Tensor, MambaState]]:
        """x (B, L, D) -> (B, L, D), and the mixer's state after each sequence's `lengths` frames when asked."""
        mixed = self.mixer(self.norm(x), lengths=lengths, return_final_state=return_final_state)
        if return_final_state:
            mixed, state = mixed
            return x + self.dropout(mixed), state
        return x + self.dropout(mixed)

    def step(self, x: torch.Tensor, state: MambaState) -> torch.Tensor:
        """One frame x (B, D) -> (B, D), updating `state` in place."""
        return x + self.dropout(self.mixer.step(self.norm(x), state))

    def forward_chunk(self, x: torch.Tensor, state: MambaState) -> Tuple[torch.Tensor, MambaState]:
        """The next chunk x (B, L, D) -> (B, L, D) and the mixer's state after it (see `MambaMixer.forward_chunk`)."""
        mixed, state = self.mixer.forward_chunk(self.norm(x), state)
        return x + self.dropout(mixed), state
