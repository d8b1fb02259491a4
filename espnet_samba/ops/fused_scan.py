"""The selective scan on the fused CPU kernels (`csrc/selective_scan.cpp`), with autograd.

The kernels read (B, L, D) and (B, L, N) sequences with unit channel stride and any batch and time strides, so
the (B, D, L) views the Mamba mixer passes (transposes of its (B, L, ·) projections) go in without copies. Only
the state before every K-th frame is saved for the backward (K from `fused_chunk_length`), never every state.
"""
from __future__ import annotations

from typing import Optional

import torch

from espnet_samba.ops.cpu_kernels import load_cpu_kernels
from espnet_samba.ops.precision import as_rows, compute_dtype


def fused_chunk_length(d_state: int) -> int:
    """Frames between saved states: a chunk's recomputed states and decays (K x N x one vector of channels each)
    stay within a core's L2 cache, so saved memory is 1/K of all states at no cost in speed."""
    return max(8, min(128, 1024 // max(1, d_state)))


def _channels_last(tensor: Optional[torch.Tensor], dtype: torch.dtype) -> Optional[torch.Tensor]:
    """(B, X, L) -> a (B, L, X) view in `dtype`, copied only where its X stride is not 1."""
    if tensor is None:
        return None
    view = tensor.to(dtype).transpose(1, 2)
    return view if view.stride(2) == 1 or view.shape[2] == 1 else view.contiguous()


def _dense(tensor: Optional[torch.Tensor], dtype: torch.dtype) -> Optional[torch.Tensor]:
    return None if tensor is None else tensor.to(dtype).contiguous()


class _FusedScanFunction(torch.autograd.Function):
    """Inputs in kernel layout: u, delta, z (B, L, D); B, C (B, L, N); A_t (N, D); initial_state (B, N, D)."""

    @staticmethod
    def forward(ctx, u, delta, A_t, B, C, D, z, delta_bias, initial_state, lengths, delta_softplus,
                chunk_length):  # noqa: D102
        out, last_state, chunk_states = load_cpu_kernels().ops.selective_scan_forward(
            u, delta, A_t, B, C, D, z, delta_bias, initial_state, lengths, delta_softplus, chunk_length, True
        )
        ctx.save_for_backward(u, delta, A_t, B, C, D, z, delta_bias, lengths, chunk_states)
        ctx.delta_softplus = delta_softplus
        ctx.chunk_length = chunk_length
        ctx.has = (D is not None, z is not None, delta_bias is not None, initial_state is not None)
        return out, last_state

    @staticmethod
    def backward(ctx, grad_out, grad_last_state):  # noqa: D102
        u, delta, A_t, B, C, D, z, delta_bias, lengths, chunk_states = ctx.saved_tensors
        if grad_out.stride(2) != 1:
            grad_out = grad_out.contiguous()
        if grad_last_state is not None:
            grad_last_state = grad_last_state.contiguous()
        (grad_u, grad_delta, grad_z, grad_A_t, grad_B, grad_C, grad_D, grad_delta_bias,
         grad_initial_state) = load_cpu_kernels().ops.selective_scan_backward(
            grad_out, grad_last_state, u, delta, A_t, B, C, D, z, delta_bias, lengths, chunk_states,
            ctx.delta_softplus, ctx.chunk_length,
        )
        has_D, has_z, has_delta_bias, has_initial_state = ctx.has
        return (
            grad_u, grad_delta, grad_A_t, grad_B, grad_C, grad_D if has_D else None, grad_z if has_z else None,
            grad_delta_bias if has_delta_bias else None, grad_initial_state if has_initial_state else None,
            None, None, None,
        )


def fused_selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: Optional[torch.Tensor] = None,
    z: Optional[torch.Tensor] = None,
    delta_bias: Optional[torch.Tensor] = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    initial_state: Optional[torch.Tensor] = None,
    lengths: Optional[torch.Tensor] = None,
):
    """Selective scan on the fused CPU kernels; arguments and results as `espnet_samba.ops.selective_scan`.

    Computes in float64 when any input is float64, in float32 otherwise (bf16/fp16 inputs included).

    Args:
        u, delta, z: (B, D, L). A: (D, N). B, C: (B, N, L). D, delta_bias: (D,). initial_state: (B, D, N).
        lengths: (B,) valid frames per sequence; later frames leave the state unchanged.

    Returns:
        y (B, D, L) in the dtype of `u`, and h_L (B, D, N) in the compute dtype when asked.
    """
    dtype = compute_dtype(u, delta, A, B, C, D, z, delta_bias, initial_state)
    inputs = (
        _channels_last(u, dtype), _channels_last(delta, dtype), _dense(A.t(), dtype), _channels_last(B, dtype),
        _channels_last(C, dtype), _dense(D, dtype), _channels_last(z, dtype), _dense(delta_bias, dtype),
        None if initial_state is None else _dense(initial_state.transpose(1, 2), dtype),
        None if lengths is None else lengths.to(device=u.device, dtype=torch.long).contiguous(),
    )
    chunk_length = fused_chunk_length(A.shape[1])
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in inputs):
        y, last_state = _FusedScanFunction.apply(*inputs, delta_softplus, chunk_length)
    else:
        y, last_state, _ = load_cpu_kernels().ops.selective_scan_forward(
            *inputs, delta_softplus, chunk_length, False
        )
    y = y.transpose(1, 2).to(u.dtype)
    return (y, last_state.transpose(1, 2).contiguous()) if return_last_state else y


def fused_state_update(
    state: torch.Tensor,
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: Optional[torch.Tensor],
    z: Optional[torch.Tensor],
    dt_bias: Optional[torch.Tensor],
    dt_softplus: bool,
) -> torch.Tensor:
    """`selective_state_update` on the fused kernel, shapes as there; `state` (B, D, N) is updated in place."""
    dtype = compute_dtype(state, x, dt, A, B, C, D, z, dt_bias)
    in_place = state.dtype == dtype and state.is_contiguous()
    work_state = state if in_place else state.to(dtype).contiguous()
    y = load_cpu_kernels().ops.selective_state_update(
        work_state, as_rows(x, dtype), as_rows(dt, dtype), _dense(A, dtype), as_rows(B, dtype), as_rows(C, dtype),
        _dense(D, dtype), as_rows(z, dtype), _dense(dt_bias, dtype), dt_softplus,
    )
    if not in_place:
        state.copy_(work_state)
    return y.to(x.dtype)

