"""The SSD scan of Mamba-2 (Dao & Gu, 2024) in pure PyTorch: chunked over the sequence, and its single step.

Per head h (scalar decay A_h; the heads of a group share B and C), with a (P, N) state per head:
    h_t = exp(Δ_t A_h) h_{t-1} + Δ_t x_t B_t^T,    y_t = h_t C_t + D x_t.
The sequence is cut into chunks of K frames. Within a chunk the state-space duality turns the recurrence into a
masked (K, K) matrix, (C_t·B_s) exp(Δ_{s+1} A + ... + Δ_t A) for s <= t, applied to the inputs Δ_s x_s; across
chunks only the state at each chunk start is carried, one multiply-add per chunk. That is O(L·K·(N + P)) work
and O(L·K) memory per head, in a few batched matmuls; autograd differentiates it.

The decays over a segment are sums of the segment's own terms (`segment_sums`), not differences of a running
sum, so a long chunk of strong decay loses no precision to cancellation.
mamba-ssm runs this scan as fused Triton kernels (`mamba_chunk_scan_combined`); `espnet_samba.ops.reference`
holds the frame-by-frame definition that the tests compare this one against.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from espnet_samba.ops.precision import compute_dtype


def check_ssd_inputs(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: Optional[torch.Tensor] = None,
    state: Optional[torch.Tensor] = None,
) -> None:
    """Raise a ValueError naming the first input whose shape does not fit x (..., H, P) and B (..., G, N).

    Args:
        x: (batch, [length,] H, P). dt: x's shape without P. A: (H,). B, C: (batch, [length,] G, N), G dividing
            H. D: (H,) or (H, P). state: (batch, H, P, N).
    """
    *leading, nheads, headdim = x.shape
    if B.dim() != x.dim() or tuple(B.shape[:-2]) != tuple(leading) or nheads % B.shape[-2]:
        raise ValueError(
            f"ssd: B must have shape {(*leading, 'ngroups', 'd_state')} with ngroups dividing nheads = {nheads}, "
            f"got {tuple(B.shape)}"
        )
    d_state = B.shape[-1]
    expected = {
        "dt": (dt, [(*leading, nheads)]),
        "A": (A, [(nheads,)]),
        "C": (C, [tuple(B.shape)]),
        "D": (D, [(nheads,), (nheads, headdim)]),
        "state": (state, [(leading[0], nheads, headdim, d_state)]),
    }
    for name, (tensor, shapes) in expected.items():
        if tensor is not None and tuple(tensor.shape) not in shapes:
            raise ValueError(f"ssd: {name} must have shape {' or '.join(map(str, shapes))}, got {tuple(tensor.shape)}")


def segment_sums(log_decay: torch.Tensor) -> torch.Tensor:
    """Log-decays between every two frames of a chunk: out[..., t, s] = a_{s+1} + ... + a_t for s <= t, else -inf.

    Args:
        log_decay: a_t = Δ_t A (..., K).

    Returns:
        (..., K, K); exp of it is the decay from frame s to frame t, 0 above the diagonal.
    """
    length = log_decay.shape[-1]
    ones = torch.ones(length, length, dtype=torch.bool, device=log_decay.device)
    terms = log_decay[..., :, None].expand(*log_decay.shape, length).masked_fill(~ones.tril(-1), 0.0)  # a_r, r > s
    return terms.cumsum(dim=-2).masked_fill(~ones.tril(), -torch.inf)  # [t, s]: sum over s < r <= t


def _carry_states(
    chunk_states: torch.Tensor, chunk_decays: torch.Tensor, initial_state: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """The state at the start of every chunk, and after the last one: h_{c+1} = decay_c h_c + chunk_states_c.

    Args:
        chunk_states: what each chunk adds to a zero state (b, G, R, c, P, N). chunk_decays: (b, G, R, c).
        initial_state: the state before the first chunk (b, G, R, P, N).

    Returns:
        starts (b, G, R, c, P, N) and the final state (b, G, R, P, N).
    """
    state, starts = initial_state, []
    for chunk in range(chunk_states.shape[3]):
        starts.append(state)
        state = chunk_decays[:, :, :, chunk, None, None] * state + chunk_states[:, :, :, chunk]
    return torch.stack(starts, dim=3), state


def ssd_chunk_scan(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    chunk_size: int,
    D: Optional[torch.Tensor] = None,
    initial_state: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """The SSD recurrence over whole sequences, K = min(chunk_size, L) frames per chunk.

    Heads are grouped in order: head h reads group h // (H / G) of B and C, as in mamba-ssm. A frame with Δ = 0
    leaves the state as it is (a padded frame past a sequence's end).

    Args:
        x: inputs (b, L, H, P), L >= 1.
        dt: step sizes Δ (b, L, H), already biased and made positive (softplus).
        A: the decay of each head (H,), negative.
        B, C: input and output matrices (b, L, G, N).
        chunk_size: frames per chunk; any value gives the same result (to rounding), it sets work and memory.
        D: skip connection per head (H,) or per channel (H, P).
        initial_state: the state before the first frame (b, H, P, N); None: zeros.

    Returns:
        y (b, L, H, P) in x's dtype, and the state after the last frame (b, H, P, N) in float32 (float64 for
        float64 inputs).
    """
    check_ssd_inputs(x, dt, A, B, C, D, initial_state)
    if chunk_size < 1 or x.shape[1] < 1:
        raise ValueError(f"ssd: need chunk_size >= 1 and length >= 1, got {chunk_size} and {x.shape[1]}")
    dtype = compute_dtype(x, dt, A, B, C, D, initial_state)
    batch, length, nheads, headdim = x.shape
    ngroups, d_state = B.shape[2:]
    per_group = nheads // ngroups
    chunk = min(chunk_size, length)
    padding = -length % chunk
    chunks = (length + padding) // chunk

    def in_chunks(tensor: torch.Tensor) -> torch.Tensor:
        """(b, L, ...) -> (b, c, K, ...) in the compute dtype, zero-padded at the end (Δ = 0 there)."""
        padded = F.pad(tensor.to(dtype), (0, 0) * (tensor.dim() - 2) + (0, padding))
        return padded.view(batch, chunks, chunk, *tensor.shape[2:])

    x_chunks = in_chunks(x).view(batch, chunks, chunk, ngroups, per_group, headdim).permute(0, 3, 4, 1, 2, 5)
    dt_chunks = in_chunks(dt).view(batch, chunks, chunk, ngroups, per_group).permute(0, 3, 4, 1, 2)
    B_chunks = in_chunks(B).permute(0, 3, 1, 2, 4)[:, :, None]  # (b, G, 1, c, K, N)
    C_chunks = in_chunks(C).permute(0, 3, 1, 2, 4)[:, :, None]
    log_decay = dt_chunks * A.to(dtype).view(ngroups, per_group, 1, 1)  # (b, G, R, c, K)
    inputs = x_chunks * dt_chunks[..., None]  # Δ_s x_s (b, G, R, c, K, P)

    decays = segment_sums(log_decay).exp()  # (b, G, R, c, K, K)
    y = (C_chunks @ B_chunks.transpose(-1, -2) * decays) @ inputs  # within each chunk (b, G, R, c, K, P)
    chunk_states = (inputs * decays[..., -1, :, None]).transpose(-1, -2) @ B_chunks  # (b, G, R, c, P, N)
    start = (
        x.new_zeros(batch, ngroups, per_group, headdim, d_state, dtype=dtype) if initial_state is None
        else initial_state.to(dtype).view(batch, ngroups, per_group, headdim, d_state)
    )
    cumulative = log_decay.cumsum(dim=-1)
    starts, final_state = _carry_states(chunk_states, cumulative[..., -1].exp(), start)
    y = y + (C_chunks @ starts.transpose(-1, -2)) * cumulative.exp()[..., None]  # from the chunks before
    y = y.permute(0, 3, 4, 1, 2, 5).reshape(batch, chunks * chunk, nheads, headdim)[:, :length]
    if D is not None:
        y = y + x.to(dtype) * D.to(dtype).view(nheads, -1)
    return y.to(x.dtype), final_state.reshape(batch, nheads, headdim, d_state)


def ssd_state_update(
    state: torch.Tensor,
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """One frame of the SSD recurrence, updating `state` in place.

    Args:
        state: h_{t-1} (b, H, P, N), overwritten with h_t.
        x: (b, H, P). dt: Δ_t (b, H), biased and positive. A: (H,). B, C: (b, G, N). D: (H,) or (H, P).

    Returns:
        y_t (b, H, P) in x's dtype.
    """
    check_ssd_inputs(x, dt, A, B, C, D, state)
    dtype = compute_dtype(state, x, dt, A, B, C, D)
    per_group = x.shape[1] // B.shape[1]
    B_heads = B.to(dtype).repeat_interleave(per_group, dim=1)  # (b, H, N)
    C_heads = C.to(dtype).repeat_interleave(per_group, dim=1)
    dt = dt.to(dtype)
    x_compute = x.to(dtype)
    decay = torch.exp(dt * A.to(dtype))[:, :, None, None]
    new_state = state.to(dtype) * decay + (dt[:, :, None] * x_compute)[..., None] * B_heads[:, :, None, :]
    state.copy_(new_state)
    y = (new_state @ C_heads[..., None])[..., 0]
    if D is not None:
        y = y + x_compute * D.to(dtype).view(x.shape[1], -1)
    return y.to(x.dtype)
