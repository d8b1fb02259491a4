"""The causal depthwise convolution (+ SiLU) on the fused CPU kernels (`csrc/causal_conv.cpp`), with autograd.

Channels last: the kernels read x as (B, L, D) with unit channel stride, which is how the Mamba mixer's input
projection lays it out, and write a contiguous (B, L, D) output. `fused_causal_conv1d` hands it back as the
(B, D, L) view of the op interface, so neither side of the convolution needs a transpose copy.
"""
from __future__ import annotations

from typing import Optional

import torch

from espnet_samba.ops.cpu_kernels import load_cpu_kernels
from espnet_samba.ops.precision import as_rows, compute_dtype


class _FusedConvFunction(torch.autograd.Function):
    """x (B, L, D), weight_t (W, D), bias (D,) or None, all of one float dtype -> (B, L, D)."""

    @staticmethod
    def forward(ctx, x, weight_t, bias, silu):  # noqa: D102
        ctx.save_for_backward(x, weight_t, bias)
        ctx.silu = silu
        return load_cpu_kernels().ops.causal_conv1d_forward(x, weight_t, bias, silu)

    @staticmethod
    def backward(ctx, grad_out):  # noqa: D102
        x, weight_t, bias = ctx.saved_tensors
        if grad_out.stride(2) != 1:
            grad_out = grad_out.contiguous()
        grad_x, grad_weight_t, grad_bias = load_cpu_kernels().ops.causal_conv1d_backward(
            grad_out, x, weight_t, bias, ctx.silu
        )
        return grad_x, grad_weight_t, grad_bias if bias is not None else None, None


def fused_causal_conv1d(
    x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], activation: Optional[str]
) -> torch.Tensor:
    """`causal_conv1d` on the fused kernels: x (B, D, L), weight (D, W), bias (D,) -> (B, D, L) in x's dtype.

    Computes in float64 for float64 inputs, in float32 otherwise.
    """
    dtype = compute_dtype(x, weight, bias)
    x_channels_last = x.to(dtype).transpose(1, 2)
    if x_channels_last.stride(2) != 1 and x_channels_last.shape[2] > 1:
        x_channels_last = x_channels_last.contiguous()
    weight_t = weight.to(dtype).t().contiguous()
    bias = None if bias is None else bias.to(dtype).contiguous()
    silu = activation == "silu"
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x_channels_last, weight_t, bias)):
        out = _FusedConvFunction.apply(x_channels_last, weight_t, bias, silu)
    else:
        out = load_cpu_kernels().ops.causal_conv1d_forward(x_channels_last, weight_t, bias, silu)
    return out.transpose(1, 2).to(x.dtype)


def fused_causal_conv1d_update(
    x: torch.Tensor,
    conv_state: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    activation: Optional[str],
) -> torch.Tensor:
    """`causal_conv1d_update` on the fused kernel: x (B, D), conv_state (B, D, W) updated in place -> (B, D)."""
    dtype = compute_dtype(x, conv_state, weight, bias)
    in_place = conv_state.dtype == dtype and conv_state.is_contiguous()
    work_state = conv_state if in_place else conv_state.to(dtype).contiguous()
    out = load_cpu_kernels().ops.causal_conv1d_update(
        as_rows(x, dtype), work_state, weight.to(dtype).contiguous(),
        None if bias is None else bias.to(dtype).contiguous(), activation == "silu",
    )
    if not in_place:
        conv_state.copy_(work_state)
    return out.to(x.dtype)
