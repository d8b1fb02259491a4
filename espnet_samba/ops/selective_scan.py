"""The selective scan: one interface over three backends.

CUDA tensors run mamba-ssm's kernels when they are built (inputs checked by `espnet_samba.ops.cuda_contract`);
CPU tensors the fused CPU kernels of `csrc/` when they build on this machine (`espnet_samba.ops.cpu_kernels`);
everything else, and any case a kernel does not cover, the chunked pure-PyTorch scan. All give the results of
`espnet_samba.ops.reference` to float tolerance, and the same contract for the final state (see `selective_scan`).
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F

from espnet_samba.ops.chunked_scan import chunked_selective_scan, softplus
from espnet_samba.ops.cpu_kernels import use_cpu_kernels
from espnet_samba.ops.cuda_contract import (
    selective_scan_kernel_arguments,
    selective_state_update_kernel_arguments,
)
from espnet_samba.ops.fused_scan import fused_selective_scan, fused_state_update
from espnet_samba.ops.kernels import load_cuda_kernels, use_cuda_kernels
from espnet_samba.ops.precision import compute_dtype

# Pre-softplus Δ for frames past a sequence's end: softplus(-1e4) underflows to exactly 0 in float32, bf16 and fp16.
_FROZEN_DELTA = -1e4


def _check_shape(
    op: str, name: str, tensor: Optional[torch.Tensor], expected: Tuple[int, ...], meaning: str,
    state_shape: Optional[torch.Size] = None,
) -> None:
    """Raise naming `op`, `name`, `meaning` (and `state_shape`, when given) unless `tensor` is None or `expected`.

    The message is formatted only when raising: a decoding step checks eight tensors per layer.
    """
    if tensor is not None and tensor.shape != expected:
        to_match = "" if state_shape is None else f" to match state {tuple(state_shape)}"
        raise ValueError(
            f"{op}: {name} must have shape {meaning}{to_match} = {expected}, got {tuple(tensor.shape)}"
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
    initial_state: Optional[torch.Tensor] = None,
    lengths: Optional[torch.Tensor] = None,
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
    _check_shape(op, "initial_state", initial_state, (batch, dim, d_state), "(batch, dim, d_state)")
    _check_shape(op, "lengths", lengths, (batch,), "(batch,)")


def freeze_past_lengths(
    delta: torch.Tensor, delta_bias: Optional[torch.Tensor], delta_softplus: bool, lengths: torch.Tensor
) -> Tuple[torch.Tensor, None]:
    """Δ input and bias for a backend without `lengths`: Δ = 0 from frame `lengths[b]` on (the state stays).

    Args:
        delta: (B, D, L). delta_bias: (D,) or None. lengths: (B,).

    Returns:
        The new delta (B, D, L), with the bias folded in, and None for the bias.
    """
    padding = torch.arange(delta.shape[2], device=delta.device)[None, :] >= lengths.to(delta.device)[:, None]
    biased = delta if delta_bias is None else delta + delta_bias[:, None].to(delta.dtype)
    return biased.masked_fill(padding[:, None, :], _FROZEN_DELTA if delta_softplus else 0.0), None


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
    initial_state: Optional[torch.Tensor] = None,
    lengths: Optional[torch.Tensor] = None,
) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
    """Selective scan with the signature of mamba-ssm's `selective_scan_fn`, plus a start state and lengths.

    `h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t u_t`, `y_t = C_t·h_t + D u_t`, `y *= silu(z)`, with Δ = softplus(delta +
    delta_bias) when `delta_softplus`. Computes in float64 for float64 inputs, in float32 otherwise. Where
    mamba-ssm's CUDA kernel runs, float64 is refused (it has none) and u, delta, B, C, z must share one dtype.

    The final state h_L is an inference output, the same on every backend: it carries no gradient (it is
    detached; a loss on it does not reach the inputs, as with mamba-ssm's kernel, whose backward ignores it), and
    it is a tensor of its own that nothing else reads, so updating it in place (a decoding step) cannot change
    y or the backward. Gradients do flow from y into `initial_state`.

    Args:
        u: (B, D, L). delta: (B, D, L). A: (D, N). B, C: (B, N, L). D: (D,). z: (B, D, L).
        delta_bias: (D,). delta_softplus: softplus on Δ + bias. return_last_state: also return h_L (B, D, N).
        initial_state: h before the first frame (B, D, N), e.g. the last state of the previous chunk of a
            stream; None: zeros. mamba-ssm's kernel has none, so CUDA tensors take the chunked scan then.
        lengths: valid frames per sequence (B,): from frame `lengths[b]` on Δ = 0, so the returned state is the
            one after the sequence's last valid frame, as if the padding were not there.

    Returns:
        y (B, D, L) in the dtype of `u`, and when asked h_L (B, D, N) in float32 (float64 for float64 inputs).
    """
    check_scan_inputs(u, delta, A, B, C, D, z, delta_bias, initial_state, lengths)
    scanned = _scan_on_backend(
        u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, initial_state, lengths
    )
    if not return_last_state:
        return scanned
    y, last_state = scanned
    return y, last_state.detach()


def _scan_on_backend(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: Optional[torch.Tensor],
    z: Optional[torch.Tensor],
    delta_bias: Optional[torch.Tensor],
    delta_softplus: bool,
    return_last_state: bool,
    initial_state: Optional[torch.Tensor],
    lengths: Optional[torch.Tensor],
) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
    """`selective_scan` on the backend these tensors take, its final state not yet detached."""
    if use_cpu_kernels(u):
        return fused_selective_scan(
            u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, initial_state, lengths
        )
    if lengths is not None:
        delta, delta_bias = freeze_past_lengths(delta, delta_bias, delta_softplus, lengths)
    if use_cuda_kernels(u) and initial_state is None:
        scanned = load_cuda_kernels().selective_scan_fn(
            **selective_scan_kernel_arguments(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
        )
        if not return_last_state:
            return scanned
        y, last_state = scanned
        # The kernel's final state is a view into the buffer its backward reads (x[:, :, -1, 1::2] of the
        # chunk states): a copy, so an in-place update of it cannot corrupt the backward, and the buffer is not
        # kept alive by a decoder's state.
        return y, last_state.clone()
    return chunked_selective_scan(
        u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, initial_state
    )


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

    Where mamba-ssm's CUDA kernel runs, float64 is refused: the Triton kernel computes in float32.

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
        _check_shape(op, name, tensor, expected, meaning, state.shape)
    if use_cuda_kernels(x):
        return load_cuda_kernels().selective_state_update(
            **selective_state_update_kernel_arguments(state, x, dt, A, B, C, D, z, dt_bias, dt_softplus)
        )
    if use_cpu_kernels(x):
        return fused_state_update(state, x, dt, A, B, C, D, z, dt_bias, dt_softplus)
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
