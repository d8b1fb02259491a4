"""A whole Mamba mixer's decoding step as one fused CPU op (`csrc/mixer_step.cpp`), for inference.

The step's arithmetic at a beam's batch is a few tens of microseconds; the dozen Python-level op calls of the
mixer's unfused step cost as much again. The fused op does the same operations in the same order (the results
are equal to the unfused step's), so the mixer uses it wherever it applies and falls back otherwise: see
`fused_mixer_step_applies`.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn as nn

from espnet_samba.ops.cpu_kernels import load_cpu_kernels, use_cpu_kernels


def _is_plain_linear(module: nn.Module, dtype: torch.dtype) -> bool:
    """An unmodified nn.Linear in `dtype`: not a subclass (LoRA's adds a low-rank path to forward), not a
    quantised replacement (`--quantize_asr_model`), and without hooks that its forward would run."""
    return (
        type(module) is nn.Linear
        and module.weight.dtype == dtype
        and not module._forward_hooks
        and not module._forward_pre_hooks
    )


def fused_mixer_step_applies(
    hidden: torch.Tensor, conv_state: torch.Tensor, ssm_state: torch.Tensor, linears: Sequence[nn.Module],
    tensors: Sequence[torch.Tensor],
) -> bool:
    """Whether `fused_mixer_step` can replace the unfused step for these inputs.

    It applies to CPU float32/float64 inputs with the fused kernels built, no gradient wanted, states and every
    parameter in the input's dtype (contiguous states), and projections that are plain nn.Linear layers.

    Args:
        hidden: the frame (B, d_model). conv_state (B, d_inner, d_conv), ssm_state (B, d_inner, d_state).
        linears: in_proj, x_proj, dt_proj, out_proj. tensors: the conv weight, A_log and D.
    """
    dtype = hidden.dtype
    if dtype not in (torch.float32, torch.float64) or not use_cpu_kernels(hidden):
        return False
    if torch.is_grad_enabled() and (hidden.requires_grad or any(p.requires_grad for p in tensors)):
        return False
    return (
        conv_state.dtype == dtype and ssm_state.dtype == dtype
        and conv_state.is_contiguous() and ssm_state.is_contiguous()
        and all(_is_plain_linear(linear, dtype) for linear in linears)
        and all(tensor.dtype == dtype for tensor in tensors)
    )


def fused_mixer_step(
    hidden: torch.Tensor,
    conv_state: torch.Tensor,
    ssm_state: torch.Tensor,
    in_proj: nn.Linear,
    conv_weight: torch.Tensor,
    conv_bias: Optional[torch.Tensor],
    x_proj: nn.Linear,
    dt_proj: nn.Linear,
    A_log: torch.Tensor,
    D: torch.Tensor,
    out_proj: nn.Linear,
) -> torch.Tensor:
    """One mixer step: hidden (B, d_model) -> (B, d_model); conv_state (B, d_inner, d_conv) and ssm_state
    (B, d_inner, d_state) are updated in place. conv_weight (d_inner, d_conv), A_log (d_inner, d_state), D
    (d_inner,); dt_proj must have a bias (the mixer's always has). Only where `fused_mixer_step_applies`."""
    return load_cpu_kernels().ops.mamba_mixer_step(
        hidden.contiguous(), conv_state, ssm_state, in_proj.weight, in_proj.bias, conv_weight.contiguous(),
        conv_bias, x_proj.weight, dt_proj.weight, dt_proj.bias, A_log, D, out_proj.weight, out_proj.bias,
    )
