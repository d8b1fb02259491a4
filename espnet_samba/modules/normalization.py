"""Normalisation layers selectable by name in configs."""
from __future__ import annotations

import torch
import torch.nn as nn

from espnet_samba.compat import LayerNorm


class RMSNorm(nn.Module):
    """Root-mean-square normalisation (Zhang & Sennrich, 2019) over the last dimension.

    Args:
        size: feature size D.
        eps: added to the mean square.
    """

    def __init__(self, size: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(size))

    def espnet_initialization_fn(self) -> None:
        """Called by ESPnet's `initialize()`: its `chainer` scheme redraws every vector; the gain starts at one."""
        nn.init.ones_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., D) -> (..., D)."""
        scale = torch.rsqrt(x.float().pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return (x.float() * scale).to(x.dtype) * self.weight


NORMALIZATIONS = {"layer_norm": LayerNorm, "rms_norm": RMSNorm}


def build_norm(name: str, size: int) -> nn.Module:
    """The normalisation layer called `name` ("layer_norm" or "rms_norm") for features of `size`."""
    if name not in NORMALIZATIONS:
        raise ValueError(f"norm_type must be one of {sorted(NORMALIZATIONS)}, got {name!r}")
    return NORMALIZATIONS[name](size)
