"""Readable reference implementations of every op: the definition that the fast paths are tested against.

They follow the equations of the Mamba and Mamba-2 papers one time step at a time and compute in float64 when an input
is float64, in float32 otherwise (bf16/fp16 included). They are slow by design (a Python loop over time): never
use them outside tests.
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F

from espnet_samba.ops.precision import compute_dtype


def selective_scan_reference(
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
    """Selective scan `h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t u_t`, `y_t = C_t·h_t + D u_t`, `y *= silu(z)`.

    Args:
        u: input (B, D, L).
        delta: step sizes Δ before bias/softplus (B, D, L).
        A: state matrix, diagonal per channel (D, N).
        B: input-dependent input matrix (B, N, L).
        C: input-dependent output matrix (B, N, L).
        D: skip connection (D,).
        z: gate (B, D, L).
        delta_bias: added to Δ before the softplus (D,).
        delta_softplus: apply softplus to Δ.
        return_last_state: also return h_L (B, D, N), in the compute dtype.

    Returns:
        y (B, D, L) in the dtype of `u`, and h_L when asked.
    """
    input_dtype = u.dtype
    dtype = compute_dtype(u, delta, A, B, C, D, z, delta_bias)
    u, delta, A, B, C = u.to(dtype), delta.to(dtype), A.to(dtype), B.to(dtype), C.to(dtype)
    if delta_bias is not None:
        delta = delta + delta_bias.to(dtype)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    batch, dim, length = u.shape
    state = u.new_zeros(batch, dim, A.shape[1])
    outputs = []
    for t in range(length):
        decay = torch.exp(delta[:, :, t, None] * A)
        state = decay * state + (delta[:, :, t] * u[:, :, t])[:, :, None] * B[:, None, :, t]
        outputs.append(torch.einsum("bdn,bn->bd", state, C[:, :, t]))
    y = torch.stack(outputs, dim=-1) if outputs else u.new_zeros(batch, dim, 0)
    if D is not None:
        y = y + u * D.to(dtype)[:, None]
    if z is not None:
        y = y * F.silu(z.to(dtype))
    y = y.to(input_dtype)
    return (y, state) if return_last_state else y


def selective_state_update_reference(
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
    """One step of the selective scan; updates `state` in place.

    Args:
        state: SSM state h_{t-1} (B, D, N), overwritten with h_t.
        x: input u_t (B, D).
        dt: step size Δ_t before bias/softplus (B, D).
        A: (D, N). B, C: (B, N). D: (D,). z: gate (B, D). dt_bias: (D,).

    Returns:
        y_t (B, D) in the dtype of `x`.
    """
    dtype = compute_dtype(state, x, dt, A, B, C, D, z, dt_bias)
    dt = dt.to(dtype)
    if dt_bias is not None:
        dt = dt + dt_bias.to(dtype)
    if dt_softplus:
        dt = F.softplus(dt)
    decay = torch.exp(dt[:, :, None] * A.to(dtype))
    new_state = decay * state.to(dtype) + (dt * x.to(dtype))[:, :, None] * B.to(dtype)[:, None, :]
    state.copy_(new_state)
    y = torch.einsum("bdn,bn->bd", new_state, C.to(dtype))
    if D is not None:
        y = y + x.to(dtype) * D.to(dtype)
    if z is not None:
        y = y * F.silu(z.to(dtype))
    return y.to(x.dtype)


def causal_conv1d_reference(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    activation: Optional[str] = None,
) -> torch.Tensor:
    """Depthwise causal convolution: `out_t = sum_k weight[:, k] * x_{t - W + 1 + k} + bias`.

    Args:
        x: (B, D, L). weight: (D, W). bias: (D,). activation: None or "silu".

    Returns:
        (B, D, L) in the dtype of `x`.
    """
    dtype = compute_dtype(x, weight, bias)
    width = weight.shape[1]
    out = F.conv1d(F.pad(x.to(dtype), (width - 1, 0)), weight.to(dtype)[:, None, :],
                   None if bias is None else bias.to(dtype), groups=x.shape[1])
    if activation == "silu":
        out = F.silu(out)
    return out.to(x.dtype)


def causal_conv1d_update_reference(
    x: torch.Tensor,
    conv_state: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    activation: Optional[str] = None,
) -> torch.Tensor:
    """One step of the causal convolution; shifts `x` into `conv_state` in place.

    Args:
        x: the new frame (B, D).
        conv_state: the last W inputs, oldest first (B, D, W); updated in place.
        weight: (D, W). bias: (D,). activation: None or "silu".

    Returns:
        (B, D) in the dtype of `x`.
    """
    dtype = compute_dtype(x, conv_state, weight, bias)
    conv_state.copy_(torch.cat([conv_state[:, :, 1:], x[:, :, None].to(conv_state.dtype)], dim=-1))
    out = (conv_state.to(dtype) * weight.to(dtype)).sum(dim=-1)
    if bias is not None:
        out = out + bias.to(dtype)
    if activation == "silu":
        out = F.silu(out)
    return out.to(x.dtype)


def ssd_scan_reference(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: Optional[torch.Tensor] = None,
    initial_state: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mamba-2's SSD recurrence, one frame at a time: per head h, `h_t = exp(Δ_t A_h) h_{t-1} + Δ_t x_t B_t^T`,
    `y_t = h_t C_t + D x_t`, head h reading group h // (H / G) of B and C.

    Args:
        x: (b, L, H, P). dt: Δ, biased and positive (b, L, H). A: (H,). B, C: (b, L, G, N). D: (H,) or (H, P).
        initial_state: h_0 (b, H, P, N); None: zeros.

    Returns:
        y (b, L, H, P) in the dtype of `x`, and h_L (b, H, P, N) in the compute dtype.
    """
    dtype = compute_dtype(x, dt, A, B, C, D, initial_state)
    batch, length, nheads, headdim = x.shape
    heads_per_group = nheads // B.shape[2]
    input_dtype = x.dtype
    x, dt, A = x.to(dtype), dt.to(dtype), A.to(dtype)
    B = B.to(dtype).repeat_interleave(heads_per_group, dim=2)  # (b, L, H, N)
    C = C.to(dtype).repeat_interleave(heads_per_group, dim=2)
    state = (
        x.new_zeros(batch, nheads, headdim, B.shape[-1]) if initial_state is None else initial_state.to(dtype)
    )
    outputs = []
    for t in range(length):
        decay = torch.exp(dt[:, t] * A)[:, :, None, None]
        state = decay * state + torch.einsum("bh,bhp,bhn->bhpn", dt[:, t], x[:, t], B[:, t])
        outputs.append(torch.einsum("bhpn,bhn->bhp", state, C[:, t]))
    y = torch.stack(outputs, dim=1)
    if D is not None:
        y = y + x * D.to(dtype).view(nheads, -1)
    return y.to(input_dtype), state
