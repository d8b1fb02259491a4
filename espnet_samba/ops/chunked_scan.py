"""The selective scan for CPU (and any device without the CUDA kernels): chunked, memory-bounded, hand-differentiated.

The recurrence `h_t = exp(Δ_t A) h_{t-1} + Δ_t u_t B_t`, `y_t = C_t·h_t` runs over time in chunks of K frames.
Within a chunk, the decays `exp(Δ_t A)` and inputs `Δ_t u_t B_t` of all K frames are built by vectorised ops into
(B, K, N, D) work buffers, the recurrence then runs one fused in-place multiply-add per frame over the whole
(B, N, D) state, and the outputs of the chunk come from one batched matmul with C. Work buffers are reused across
chunks, so memory beyond the (B, L, D) activations is O(B·K·N·D), never O(B·L·N·D). States are laid out (N, D),
channels last, so that every contraction over N or D is a contiguous, vectorised reduction.

Training saves only the state at each chunk start. The backward pass walks the chunks in reverse: it recomputes
the chunk's states from its saved start state, runs the adjoint recurrence `g_t = C_t dy_t + exp(Δ_{t+1} A) g_{t+1}`
(g_t = dLoss/dh_t) backwards through the chunk, and turns g and the recomputed states into the gradients of u, Δ,
A, B and C with batched reductions. The bias and softplus of Δ, the skip term D·u and the gate silu(z) are done
and differentiated in the same autograd function, so autograd keeps no intermediate of its own.

Internally tensors are (B, L, D) and (B, L, N), time before channels: the Mamba mixer produces them in that
memory layout, so the public (B, D, L) views it passes are used without copies.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F

from espnet_samba.ops.precision import compute_dtype

WORK_BUFFER_ELEMENTS = 1 << 20
"""Target size of one (B, K, N, D) work buffer (4 MiB in float32); the chunk length K follows from it."""

MAX_CHUNK_LENGTH = 256


def default_chunk_length(batch: int, dim: int, d_state: int) -> int:
    """The chunk length K that keeps one (B, K, N, D) work buffer near `WORK_BUFFER_ELEMENTS` elements."""
    return max(1, min(MAX_CHUNK_LENGTH, WORK_BUFFER_ELEMENTS // max(1, batch * dim * d_state)))


def softplus(x: torch.Tensor) -> torch.Tensor:
    """softplus(x) = max(x, 0) + log(1 + exp(-|x|)), as a new tensor.

    Equal to `F.softplus` to float rounding; PyTorch's CPU softplus (like log1p) is not vectorised and costs ~10x
    these four vectorised passes.
    """
    out = torch.exp(-x.abs())
    return out.add_(1).log_().add_(x.clamp(min=0))


def _chunk_decays_and_inputs(
    delta: torch.Tensor,
    delta_u: torch.Tensor,
    A_t: torch.Tensor,
    B: torch.Tensor,
    decay_out: torch.Tensor,
    state_out: torch.Tensor,
) -> None:
    """Fill `decay_out` with exp(Δ_t A) and `state_out` with Δ_t u_t B_t for the K frames of a chunk.

    Args:
        delta, delta_u: Δ_t and Δ_t·u_t (B, K, D).
        A_t: A transposed (N, D). B: (B, K, N).
        decay_out, state_out: (B, K, N, D), overwritten.
    """
    torch.mul(delta[:, :, None, :], A_t, out=decay_out).exp_()
    torch.mul(delta_u[:, :, None, :], B[..., None], out=state_out)


def _run_recurrence(decays: torch.Tensor, states: torch.Tensor, state_before: torch.Tensor) -> None:
    """Turn the inputs in `states` into the states h_t of the chunk, in place: h_t = decay_t·h_{t-1} + input_t.

    Args:
        decays: (B, K, N, D). states: inputs on entry, states on exit (B, K, N, D).
        state_before: the state before the chunk's first frame (B, N, D).
    """
    previous = state_before
    for decay, state in zip(decays.unbind(1), states.unbind(1)):
        state.addcmul_(decay, previous)
        previous = state


def _run_adjoint_recurrence(decays: torch.Tensor, adjoints: torch.Tensor, adjoint_after: torch.Tensor) -> None:
    """Turn the direct terms in `adjoints` into g_t = direct_t + decay_{t+1}·g_{t+1}, in place, from the last frame.

    Args:
        decays: (B, K, N, D).
        adjoints: C_t·dy_t on entry, dLoss/dh_t on exit (B, K, N, D).
        adjoint_after: decay_{t_end}·g_{t_end}, the part of dLoss/dh at the chunk's last frame that comes from
            later frames (B, N, D).
    """
    adjoint_steps = adjoints.unbind(1)
    decay_steps = decays.unbind(1)
    adjoint_steps[-1].add_(adjoint_after)
    for t in range(len(adjoint_steps) - 2, -1, -1):
        adjoint_steps[t].addcmul_(decay_steps[t + 1], adjoint_steps[t + 1])


def _chunk_bounds(length: int, chunk_length: int) -> List[Tuple[int, int]]:
    return [(start, min(start + chunk_length, length)) for start in range(0, length, chunk_length)]


def scan_forward(
    u: torch.Tensor,
    delta: torch.Tensor,
    A_t: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    chunk_length: int,
    save_chunk_starts: bool,
    initial_state: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """The core scan y_t = C_t·h_t, without autograd.

    Args:
        u, delta: (B, L, D), Δ after bias and softplus. A_t: A transposed (N, D). B, C: (B, L, N).
            All of one float dtype.
        chunk_length: K.
        save_chunk_starts: also return the state before each chunk, for `scan_backward`.
        initial_state: h_{-1}, the state before the first frame (B, N, D); None: zeros.

    Returns:
        y (B, L, D), the last state h_L (B, N, D), and the chunk start states (num_chunks, B, N, D) or None.
    """
    batch, length, dim = u.shape
    d_state = A_t.shape[0]
    bounds = _chunk_bounds(length, chunk_length)
    delta_u = delta * u
    y = u.new_empty(batch, length, dim)
    work_shape = (batch, min(chunk_length, length), d_state, dim)
    decays, states = u.new_empty(work_shape), u.new_empty(work_shape)
    chunk_starts = u.new_empty(len(bounds), batch, d_state, dim) if save_chunk_starts else None
    state = u.new_zeros(batch, d_state, dim) if initial_state is None else initial_state
    for index, (start, end) in enumerate(bounds):
        size = end - start
        chunk_decays, chunk_states = decays[:, :size], states[:, :size]
        if chunk_starts is not None:
            chunk_starts[index].copy_(state)
        _chunk_decays_and_inputs(
            delta[:, start:end], delta_u[:, start:end], A_t, B[:, start:end], chunk_decays, chunk_states
        )
        _run_recurrence(chunk_decays, chunk_states, state)
        y[:, start:end] = torch.matmul(C[:, start:end, None, :], chunk_states)[:, :, 0]
        state = chunk_states[:, -1].clone()
    return y, state.clone() if state is initial_state else state, chunk_starts


def scan_backward(
    grad_y: torch.Tensor,
    grad_last_state: Optional[torch.Tensor],
    u: torch.Tensor,
    delta: torch.Tensor,
    A_t: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    chunk_starts: torch.Tensor,
    chunk_length: int,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of the core scan, recomputing each chunk's states from its saved start state.

    Args:
        grad_y: dLoss/dy (B, L, D). grad_last_state: dLoss/dh_L (B, N, D) or None.
        u, delta, A_t, B, C, chunk_length: as given to `scan_forward`.
        chunk_starts: from `scan_forward(..., save_chunk_starts=True)` (num_chunks, B, N, D).

    Returns:
        Gradients of u (B, L, D), delta (B, L, D), A_t (N, D), B (B, L, N), C (B, L, N), and of the initial
        state h_{-1} (B, N, D).
    """
    batch, length, dim = u.shape
    d_state = A_t.shape[0]
    bounds = _chunk_bounds(length, chunk_length)
    delta_u = delta * u
    grad_delta_u = torch.empty_like(u)
    grad_delta_from_decay = torch.empty_like(u)
    grad_A_t = torch.zeros_like(A_t)
    grad_B, grad_C = torch.empty_like(B), torch.empty_like(C)
    work_shape = (batch, min(chunk_length, length), d_state, dim)
    decays, states, adjoints, products = (u.new_empty(work_shape) for _ in range(4))
    adjoint_after = u.new_zeros(batch, d_state, dim) if grad_last_state is None else grad_last_state.clone()
    for index in range(len(bounds) - 1, -1, -1):
        start, end = bounds[index]
        size = end - start
        chunk_decays, chunk_states = decays[:, :size], states[:, :size]
        chunk_adjoints, chunk_products = adjoints[:, :size], products[:, :size]
        chunk_delta, chunk_delta_u = delta[:, start:end], delta_u[:, start:end]
        chunk_B, chunk_C, chunk_grad_y = B[:, start:end], C[:, start:end], grad_y[:, start:end]
        state_before = chunk_starts[index]
        _chunk_decays_and_inputs(chunk_delta, chunk_delta_u, A_t, chunk_B, chunk_decays, chunk_states)
        _run_recurrence(chunk_decays, chunk_states, state_before)
        grad_C[:, start:end] = torch.mul(chunk_states, chunk_grad_y[:, :, None, :], out=chunk_products).sum(-1)

        torch.mul(chunk_grad_y[:, :, None, :], chunk_C[..., None], out=chunk_adjoints)
        _run_adjoint_recurrence(chunk_decays, chunk_adjoints, adjoint_after)
        adjoint_after = chunk_decays[:, 0] * chunk_adjoints[:, 0]
        grad_delta_u[:, start:end] = torch.matmul(chunk_B[:, :, None, :], chunk_adjoints)[:, :, 0]
        grad_B[:, start:end] = torch.mul(chunk_adjoints, chunk_delta_u[:, :, None, :], out=chunk_products).sum(-1)

        # dLoss/d(Δ_t A) = g_t · decay_t · h_{t-1}, built in the decay buffer, which is no longer needed.
        grad_exponent = chunk_decays.mul_(chunk_adjoints)
        grad_exponent[:, 1:].mul_(chunk_states[:, :-1])
        grad_exponent[:, 0].mul_(state_before)
        grad_A_t += torch.mul(grad_exponent, chunk_delta[:, :, None, :], out=chunk_products).sum((0, 1))
        grad_delta_from_decay[:, start:end] = grad_exponent.mul_(A_t).sum(2)
    grad_u = grad_delta_u * delta
    grad_delta = grad_delta_from_decay.addcmul_(grad_delta_u, u)
    return grad_u, grad_delta, grad_A_t, grad_B, grad_C, adjoint_after


def _silu_derivative(z: torch.Tensor) -> torch.Tensor:
    sigmoid = torch.sigmoid(z)
    return sigmoid * (1 + z * (1 - sigmoid))


class _ChunkedScanFunction(torch.autograd.Function):
    """The whole selective scan (bias, softplus, scan, skip, gate) with a hand-written backward.

    Inputs are (B, L, ·) as described in the module docstring, all of one float dtype; D, z, delta_bias may be None.
    """

    @staticmethod
    def forward(ctx, u, delta, A_t, B, C, D, z, delta_bias, initial_state, delta_softplus, chunk_length):  # noqa: D102
        u, delta, A_t, B, C = (t.contiguous() for t in (u, delta, A_t, B, C))
        pre_softplus = delta if delta_bias is None else delta + delta_bias
        step_sizes = softplus(pre_softplus) if delta_softplus else pre_softplus
        y, last_state, chunk_starts = scan_forward(
            u, step_sizes, A_t, B, C, chunk_length, save_chunk_starts=True, initial_state=initial_state
        )
        if D is not None:
            y.addcmul_(u, D)
        out = y if z is None else y * F.silu(z)
        ctx.save_for_backward(
            u, step_sizes, pre_softplus if delta_softplus else None, A_t, B, C, D, z, y if z is not None else None,
            chunk_starts,
        )
        ctx.chunk_length = chunk_length
        ctx.has_delta_bias = delta_bias is not None
        ctx.has_initial_state = initial_state is not None
        return out, last_state

    @staticmethod
    def backward(ctx, grad_out, grad_last_state):  # noqa: D102
        u, step_sizes, pre_softplus, A_t, B, C, D, z, pre_gate, chunk_starts = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        grad_z = None
        if z is not None:
            grad_z = grad_out * pre_gate * _silu_derivative(z)
            grad_out = grad_out * F.silu(z)
        grad_u, grad_delta, grad_A_t, grad_B, grad_C, grad_initial_state = scan_backward(
            grad_out, grad_last_state, u, step_sizes, A_t, B, C, chunk_starts, ctx.chunk_length
        )
        grad_D = None
        if D is not None:
            grad_D = (grad_out * u).sum((0, 1))
            grad_u.addcmul_(grad_out, D)
        if pre_softplus is not None:
            grad_delta.mul_(torch.sigmoid(pre_softplus))
        grad_delta_bias = grad_delta.sum((0, 1)) if ctx.has_delta_bias else None
        return (
            grad_u, grad_delta, grad_A_t, grad_B, grad_C, grad_D, grad_z, grad_delta_bias,
            grad_initial_state if ctx.has_initial_state else None, None, None,
        )


def chunked_selective_scan(
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
    chunk_length: Optional[int] = None,
):
    """Selective scan, semantics of mamba-ssm's `selective_scan_fn`, computed chunk by chunk (see module doc).

    Computes in float64 when any input is float64, in float32 otherwise.

    Args:
        u: (B, D, L). delta: (B, D, L). A: (D, N). B, C: (B, N, L). D: (D,). z: (B, D, L). delta_bias: (D,).
        delta_softplus: softplus on Δ + bias. return_last_state: also return h_L (B, D, N) in the compute dtype.
        initial_state: the state before the first frame (B, D, N); None: zeros.
        chunk_length: frames per chunk K; default: `default_chunk_length`.

    Returns:
        y (B, D, L) in the dtype of `u`, and h_L when asked.
    """
    if chunk_length is not None and chunk_length < 1:
        raise ValueError(f"chunked_selective_scan: chunk_length must be a positive frame count, got {chunk_length}")
    dtype = compute_dtype(u, delta, A, B, C, D, z, delta_bias)
    batch, dim, _ = u.shape
    chunk_length = chunk_length or default_chunk_length(batch, dim, A.shape[1])

    def cast(tensor: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        return None if tensor is None else tensor.to(dtype)

    def time_before_channels(tensor: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        return None if tensor is None else tensor.to(dtype).transpose(1, 2)

    inputs = (
        time_before_channels(u), time_before_channels(delta), A.to(dtype).t(), time_before_channels(B),
        time_before_channels(C), cast(D), time_before_channels(z), cast(delta_bias),
        None if initial_state is None else initial_state.to(dtype).transpose(1, 2).contiguous(),
    )
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in inputs):
        y, last_state = _ChunkedScanFunction.apply(*inputs, delta_softplus, chunk_length)
    else:
        y, last_state = _scan_without_autograd(*inputs, delta_softplus, chunk_length)
    y = y.transpose(1, 2).to(u.dtype)
    return (y, last_state.transpose(1, 2).contiguous()) if return_last_state else y


def _scan_without_autograd(u, delta, A_t, B, C, D, z, delta_bias, initial_state, delta_softplus, chunk_length):
    """`_ChunkedScanFunction.forward` for inference: same arguments, nothing saved, everything in place."""
    if delta_bias is not None:
        delta = delta + delta_bias
    if delta_softplus:
        delta = softplus(delta)
    u, delta, A_t, B, C = (t.contiguous() for t in (u, delta, A_t, B, C))
    y, last_state, _ = scan_forward(
        u, delta, A_t, B, C, chunk_length, save_chunk_starts=False, initial_state=initial_state
    )
    if D is not None:
        y.addcmul_(u, D)
    if z is not None:
        y.mul_(F.silu(z))
    return y, last_state
