"""The residual position-wise feed-forward block that Conformer-style encoders put around their token mixer."""
from __future__ import annotations

import torch
import torch.nn as nn

from espnet_samba.compat import PositionwiseFeedForward
from espnet_samba.modules.normalization import build_norm


class FeedForwardBlock(nn.Module):
    """`x + scale * dropout(ffn(norm(x)))` with ESPnet's `PositionwiseFeedForward` and a Swish (SiLU) activation.

    Args:
        d_model: feature size D.
        linear_units: hidden size of the feed-forward network.
        dropout_rate: dropout inside the network and on its output.
        norm_type: "layer_norm" or "rms_norm".
        scale: residual scale; 0.5 for the two half-step blocks of a macaron layer (Conformer), 1.0 otherwise.
    """

    def __init__(
        self,
        d_model: int,
        linear_units: int,
        dropout_rate: float = 0.0,
        norm_type: str = "layer_norm",
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.norm = build_norm(norm_type, d_model)
        self.feed_forward = PositionwiseFeedForward(d_model, linear_units, dropout_rate, nn.SiLU())
        self.dropout = nn.Dropout(dropout_rate)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, L, D) -> (B, L, D); every frame independently."""
        return x + self.scale * self.dropout(self.feed_forward(self.norm(x)))
