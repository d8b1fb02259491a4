"""The selective scan: one interface, the CUDA kernel when it can run, a pure-PyTorch path otherwise."""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch

from espnet_samba.ops.kernels import load_cuda_kernels, use_cuda_kernels
from espnet_samba.ops.reference import selective_scan_reference, selective_state_update_reference


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

    Args:
        u: (B, D, L). delta: (B, D, L). A: (D, N). B, C: (B, N, L). D: (D,). z: (B, D, L).
        delta_bias: (D,). delta_softplus: softplus on Δ + bias. return_last_state: also return h_L (B, D, N).

    Returns:
        y (B, D, L), and h_L when asked.
    """
    if use_cuda_kernels(u):
        return load_cuda_kernels().selective_scan_fn(
            u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state
        )
    return selective_scan_reference(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)


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
        y (B, D).
    """
    if use_cuda_kernels(x):
        return load_cuda_kernels().selective_state_update(
            state, x, dt, A, B, C, D, z=z, dt_bias=dt_bias, dt_softplus=dt_softplus
        )
    return selective_state_update_reference(state, x, dt, A, B, C, D, z, dt_bias, dt_softplus)
