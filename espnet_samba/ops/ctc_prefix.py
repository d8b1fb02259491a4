"""The forward recursion of the CTC prefix score over frames: one step of a joint CTC/attention beam search.

For hypotheses h and candidate tokens s, over the L frames after the prefix's first possible end (i = 0 .. L-1),

    r_n[i] = logaddexp(r_n[i-1], phi[i]) + x_token[i]      the prefix + s, its last frame emitting s
    r_b[i] = logaddexp(r_n[i-1], r_b[i-1]) + x_blank[i]    the prefix + s, its last frame blank
    psi    = logsumexp(r_n[-1], phi[i] + x_token[i] over i)  the prefix + s, summed over where s starts

On CPU tensors with the fused kernels built, `csrc/ctc_prefix.cpp` runs the recursion in one pass (a hypothesis per
work item, its candidates as vector lanes). Otherwise each recursion, a first-order linear recurrence in the log
semiring, is evaluated in closed form with cumulative sums and a `logcumsumexp` over the frames; those sums reach
magnitudes of L times a frame's log-probability, so that path computes in float64 and returns the input's dtype.
"""
from __future__ import annotations

from typing import Tuple

import torch

from espnet_samba.ops.cpu_kernels import load_cpu_kernels, use_cpu_kernels


def _log_linear_scan(initial: torch.Tensor, inputs: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    """All values of r[i] = logaddexp(r[i-1], inputs[i]) + gains[i], r[-1] = initial, in closed form.

    Args:
        initial: r[-1] (...), float64.
        inputs, gains: (L, ...), float64.

    Returns:
        r[0 .. L-1] (L, ...).
    """
    gain_sums = gains.cumsum(0)  # G[i] = gains[0] + ... + gains[i]
    # r[i] = G[i] + logaddexp(initial, logcumsumexp_j<=i (inputs[j] - G[j-1])), with G[-1] = 0
    scaled_inputs = inputs - (gain_sums - gains)
    return gain_sums + torch.logaddexp(initial.unsqueeze(0), scaled_inputs.logcumsumexp(0))


def _scanned_ctc_prefix_forward(
    r_start: torch.Tensor, phi: torch.Tensor, x_token: torch.Tensor, x_blank: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    start_token, start_blank = r_start[0].double(), r_start[1].double()
    phi64, token64 = phi.double(), x_token.double()
    r_token = _log_linear_scan(start_token, phi64, token64)
    r_token_before = torch.cat([start_token.unsqueeze(0), r_token[:-1]])
    r_blank = _log_linear_scan(start_blank, r_token_before, x_blank.double().unsqueeze(-1).expand_as(token64))
    psi = torch.logsumexp(torch.cat([start_token.unsqueeze(0), phi64 + token64]), dim=0)
    return torch.stack([r_token, r_blank], dim=1).to(phi.dtype), psi.to(phi.dtype)


def ctc_prefix_forward(
    r_start: torch.Tensor, phi: torch.Tensor, x_token: torch.Tensor, x_blank: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """The recursion above for L >= 1 frames.

    Args:
        r_start: r[-1], (2, H, S): [0] ending in the token, [1] in a blank.
        phi: (L, H, S) the prefix's forward probability before each frame, as the token may follow it.
        x_token: (L, H, S) each candidate's log-probability per frame.
        x_blank: (L, H) the blank's log-probability per frame.

    Returns:
        r (L, 2, H, S) and psi (H, S), in the inputs' dtype (float32 or float64).
    """
    if use_cpu_kernels(phi):
        r, psi = load_cpu_kernels().ops.ctc_prefix_forward(
            r_start.contiguous(), phi.contiguous(), x_token.contiguous(), x_blank.contiguous()
        )
        return r, psi
    return _scanned_ctc_prefix_forward(r_start, phi, x_token, x_blank)
