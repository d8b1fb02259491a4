"""The causal depthwise convolution of the Mamba mixer: full-sequence and single-step forms.

On CUDA with causal-conv1d built, its fused kernels run (inputs checked by `espnet_samba.ops.cuda_contract`: widths
2 to 4, float64 refused; other widths fall back to PyTorch with a warning); on CPU the fused kernels of
`csrc/causal_conv.cpp` when they build (channels last, the SiLU and its derivative fused, no transpose copies on
either side); elsewhere PyTorch's grouped `conv1d`.
"""
from __future__ import annotations

import warnings
from typing import Optional

import torch
import torch.nn.functional as F

from espnet_samba.ops.cpu_kernels import use_cpu_kernels
from espnet_samba.ops.cuda_contract import (
    causal_conv1d_kernel_arguments,
    causal_conv1d_update_kernel_arguments,
    conv_kernel_refusal,
)
from espnet_samba.ops.fused_conv import fused_causal_conv1d, fused_causal_conv1d_update
from espnet_samba.ops.kernels import load_cuda_kernels, use_cuda_kernels
from espnet_samba.ops.precision import compute_dtype

_ACTIVATIONS = (None, "silu")


def _check_activation(activation: Optional[str]) -> None:
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}")


def _cuda_kernel_takes(op: str, weight: torch.Tensor) -> bool:
    """Whether causal-conv1d's kernels take this weight; if not, warn (once per op and width) that PyTorch runs."""
    refusal = conv_kernel_refusal(weight)
    if refusal is not None:
        warnings.warn(f"{op}: {refusal}; running PyTorch's conv1d on the GPU instead", RuntimeWarning, stacklevel=3)
    return refusal is None


def causal_conv1d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    activation: Optional[str] = None,
) -> torch.Tensor:
    """Depthwise causal convolution over time.

    Args:
        x: (B, D, L).
        weight: (D, W).
        bias: (D,).
        activation: None or "silu".

    Returns:
        (B, D, L), output t depending on inputs t-W+1..t only.
    """
    _check_activation(activation)
    if use_cuda_kernels(x) and _cuda_kernel_takes("causal_conv1d", weight):
        return load_cuda_kernels().causal_conv1d_fn(**causal_conv1d_kernel_arguments(x, weight, bias, activation))
    if use_cpu_kernels(x):
        return fused_causal_conv1d(x, weight, bias, activation)
    width = weight.shape[1]
    out = F.conv1d(F.pad(x, (width - 1, 0)), weight[:, None, :], bias, groups=x.shape[1])
    return F.silu(out) if activation == "silu" else out


def causal_conv1d_update(
    x: torch.Tensor,
    conv_state: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    activation: Optional[str] = None,
) -> torch.Tensor:
    """One decoding step of `causal_conv1d`; shifts `x` into `conv_state` in place.

    Args:
        x: the new frame (B, D).
        conv_state: the last W inputs, oldest first (B, D, W).
        weight: (D, W). bias: (D,). activation: None or "silu".

    Returns:
        (B, D).
    """
    _check_activation(activation)
    if conv_state.dim() != 3 or x.shape != conv_state.shape[:2] or weight.shape != (x.shape[1], conv_state.shape[2]):
        raise ValueError(
            "causal_conv1d_update: need x (batch, dim), conv_state (batch, dim, width) and weight (dim, width), got "
            f"x {tuple(x.shape)}, conv_state {tuple(conv_state.shape)}, weight {tuple(weight.shape)}"
        )
    if use_cuda_kernels(x) and _cuda_kernel_takes("causal_conv1d_update", weight):
        out = load_cuda_kernels().causal_conv1d_update(
            **causal_conv1d_update_kernel_arguments(x, conv_state, weight, bias, activation)
        )
        return out.to(x.dtype)
    if use_cpu_kernels(x):
        return fused_causal_conv1d_update(x, conv_state, weight, bias, activation)
    dtype = compute_dtype(x, conv_state, weight, bias)
    conv_state.copy_(conv_state.roll(-1, dims=-1))
    conv_state[:, :, -1] = x
    out = torch.mul(conv_state, weight.to(dtype)).sum(dim=-1)
    if bias is not None:
        out.add_(bias.to(dtype))
    if activation == "silu":
        out = F.silu(out, inplace=True)
    return out.to(x.dtype)
