"""The pre-norm residual Mamba block shared by the encoder and the decoder."""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
import torch.nn as nn

from espnet_samba.modules.mamba_mixer import MambaMixer, MambaState
from espnet_samba.modules.normalization import build_norm


class MambaBlock(nn.Module):
    """`x + dropout(mixer(norm(x)))`: a residual block around one causal Mamba mixer.

    Args:
        d_model: feature size D.
        d_state, d_conv, expand: the mixer's sizes (see `MambaMixer`).
        dropout_rate: dropout on the mixer output.
        norm_type: "layer_norm" or "rms_norm".
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dropout_rate: float = 0.0,
        norm_type: str = "layer_norm",
    ) -> None:
        super().__init__()
        self.norm = build_norm(norm_type, d_model)
        self.mixer = MambaMixer(d_model, d_state=d_state, d_conv=d_conv, expand=expand)
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
