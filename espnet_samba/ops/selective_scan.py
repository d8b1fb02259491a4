"""The selective scan: one interface, the CUDA kernel when it can run, the chunked PyTorch scan otherwise."""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F

from espnet_samba.ops.chunked_scan import chunked_selective_scan, softplus
from espnet_samba.ops.kernels import load_cuda_kernels, use_cuda_kernels
from espnet_samba.ops.precision import compute_dtype


def _check_shape(op: str, name: str, tensor: Optional[torch.Tensor], expected: Tuple[int, ...], meaning: str) -> None:
    if tensor is not None and tuple(tensor.shape) != expected:
        raise ValueError(
            f"{op}: {name} must have shape {meaning} = {expected}, got {tuple(tensor.shape)}"
        )


def check_scan_inputs(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: Optional[torch.Tensor] = None,
    z: Optional[torch.Tensor] = None,
    delta_bias: Optional[torch.Tensor] = None,
) -> None:
    """Raise a ValueError naming the first input of `selective_scan` whose shape does not fit the others.

    Args:
        u: (B, D, L), sets B, D and L. A: (D, N), sets N. The others as in `selective_scan`.
    """
    op = "selective_scan"
    if u.dim() != 3:
        raise ValueError(f"{op}: u must have shape (batch, dim, length), got {tuple(u.shape)}")
    if A.dim() != 2:
        raise ValueError(f"{op}: A must have shape (dim, d_state), got {tuple(A.shape)}")
    batch, dim, length = u.shape
    d_state = A.shape[1]
    _check_shape(op, "delta", delta, (batch, dim, length), "(batch, dim, length) like u")
    _check_shape(op, "A", A, (dim, d_state), "(dim, d_state)")
    input_matrix_shape = "(batch, d_state, length); time-invariant or grouped B/C are not supported"
    _check_shape(op, "B", B, (batch, d_state, length), input_matrix_shape)
    _check_shape(op, "C", C, (batch, d_state, length), input_matrix_shape)
    _check_shape(op, "D", D, (dim,), "(dim,)")
    _check_shape(op, "z", z, (batch, dim, length), "(batch, dim, length) like u")
    _check_shape(op, "delta_bias", delta_bias, (dim,), "(dim,)")


def selective_scan(
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
) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
    """Selective scan with the signature of mamba-ssm's `selective_scan_fn`.

    `h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t u_t`, `y_t = C_t·h_t + D u_t`, `y *= silu(z)`, with Δ = softplus(delta +
    delta_bias) when `delta_softplus`. On CUDA with mamba-ssm built this is its fused kernel; elsewhere the chunked
    scan of `espnet_samba.ops.chunked_scan`, computing in float64 for float64 inputs and in float32 otherwise.

    Args:
        u: (B, D, L). delta: (B, D, L). A: (D, N). B, C: (B, N, L). D: (D,). z: (B, D, L).
        delta_bias: (D,). delta_softplus: softplus on Δ + bias. return_last_state: also return h_L (B, D, N).

    Returns:
        y (B, D, L) in the dtype of `u`, and h_L when asked.
    """
    check_scan_inputs(u, delta, A, B, C, D, z, delta_bias)
    if use_cuda_kernels(u):
        return load_cuda_kernels().selective_scan_fn(
            u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state
        )
    return chunked_selective_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)


def selective_state_update(
    state: torch.Tensor,
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: Optional[torch.Tensor] = None,
    z: Optional[torch.Tensor] = None,
    dt_bias: Optional[torch.Tensor] = None,
    dt_softplus: bool = False,
) -> torch.Tensor:
    """One recurrent step of the selective scan, updating `state` (B, D, N) in place.

    Args:
        state: (B, D, N). x: (B, D). dt: (B, D). A: (D, N). B, C: (B, N). D: (D,). z: (B, D). dt_bias: (D,).

    Returns:
        y (B, D) in the dtype of `x`.
    """
    op = "selective_state_update"
    if state.dim() != 3:
        raise ValueError(f"{op}: state must have shape (batch, dim, d_state), got {tuple(state.shape)}")
    batch, dim, d_state = state.shape
    for name, tensor, expected, meaning in (
        ("x", x, (batch, dim), "(batch, dim)"),
        ("dt", dt, (batch, dim), "(batch, dim)"),
        ("A", A, (dim, d_state), "(dim, d_state)"),
        ("B", B, (batch, d_state), "(batch, d_state)"),
        ("C", C, (batch, d_state), "(batch, d_state)"),
        ("D", D, (dim,), "(dim,)"),
        ("z", z, (batch, dim), "(batch, dim)"),
        ("dt_bias", dt_bias, (dim,), "(dim,)"),
    ):
        _check_shape(op, name, tensor, expected, f"{meaning} to match state {tuple(state.shape)}")
    if use_cuda_kernels(x):
        return load_cuda_kernels().selective_state_update(
            state, x, dt, A, B, C, D, z=z, dt_bias=dt_bias, dt_softplus=dt_softplus
        )
    return _state_update_in_place(state, x, dt, A, B, C, D, z, dt_bias, dt_softplus)


def _state_update_in_place(
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
    """`selective_state_update` in a handful of fused in-place PyTorch ops (shapes as there)."""
    dtype = compute_dtype(state, x, dt, A, B, C, D, z, dt_bias)
    x_compute = x.to(dtype)
    dt = dt.to(dtype)
    if dt_bias is not None:
        dt = dt + dt_bias.to(dtype)
    if dt_softplus:
        dt = softplus(dt)
    new_state = torch.mul(dt[:, :, None], A.to(dtype)).exp_()
    new_state.mul_(state).addcmul_((dt * x_compute)[:, :, None], B.to(dtype)[:, None, :])
    state.copy_(new_state)
    y = torch.mul(new_state, C.to(dtype)[:, None, :]).sum(-1)
    if D is not None:
        y.addcmul_(x_compute, D.to(dtype))
    if z is not None:
        y.mul_(F.silu(z.to(dtype)))
    return y.to(x.dtype)
