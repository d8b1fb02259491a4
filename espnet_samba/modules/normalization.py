"""Normalisation layers selectable by name in configs, and the gated RMSNorm inside the Mamba-2 mixer."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

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


def gated_rms_norm(
    x: torch.Tensor, z: torch.Tensor, weight: torch.Tensor, eps: float, group_size: int, norm_before_gate: bool
) -> torch.Tensor:
    """RMS normalisation over groups of `group_size` channels, gated by silu(z): norm(x * silu(z)) * weight, or
    norm(x) * weight * silu(z) with `norm_before_gate` (mamba-ssm's `RMSNormGated`). Computes in float32
    (float64 for float64 inputs).

    Args:
        x, z: (..., D). weight: (D,). group_size: divides D.

    Returns:
        (..., D) in x's dtype.
    """
    dtype = torch.promote_types(x.dtype, torch.float32)
    gate = F.silu(z.to(dtype))
    normed = x.to(dtype) if norm_before_gate else x.to(dtype) * gate
    groups = normed.unflatten(-1, (-1, group_size))
    normed = (groups * torch.rsqrt(groups.pow(2).mean(dim=-1, keepdim=True) + eps)).flatten(-2) * weight.to(dtype)
    return (normed * gate if norm_before_gate else normed).to(x.dtype)


class GatedRMSNorm(nn.Module):
    """`gated_rms_norm` as a module: the parameter and attribute names of mamba-ssm's `RMSNormGated` (no bias).

    Args:
        size: feature size D.
        group_size: channels normalised together; D (None) for one group.
        norm_before_gate: gate after normalising instead of before.
        eps: added to the mean square.
    """

    def __init__(
        self,
        size: int,
        group_size: Optional[int] = None,
        norm_before_gate: bool = False,
        eps: float = 1e-5,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.eps = eps
        self.group_size = group_size or size
        self.norm_before_gate = norm_before_gate
        self.weight = nn.Parameter(torch.ones(size, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """x, z (..., D) -> (..., D)."""
        return gated_rms_norm(x, z, self.weight, self.eps, self.group_size, self.norm_before_gate)


NORMALIZATIONS = {"layer_norm": LayerNorm, "rms_norm": RMSNorm}


def build_norm(name: str, size: int) -> nn.Module:
    """The normalisation layer called `name` ("layer_norm" or "rms_norm") for features of `size`."""
    if name not in NORMALIZATIONS:
        raise ValueError(f"norm_type must be one of {sorted(NORMALIZATIONS)}, got {name!r}")
    return NORMALIZATIONS[name](size)
