"""Bidirectional Mamba: a causal mixer over each sequence and a second one over each sequence read backwards."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn

from espnet_samba.modules.mamba_block import build_mixer
from espnet_samba.modules.normalization import build_norm


def reverse_within_lengths(x: torch.Tensor, lengths: Optional[torch.Tensor]) -> torch.Tensor:
    """Reverse each sequence of a left-aligned padded batch in time, leaving its padding where it is.

    Flipping the whole padded tensor would put the padding first, so a causal model reading the flipped
    sequence would see padding before the utterance and its output would depend on the batch it came in.
    Here frame t < lengths[b] of sequence b takes frame lengths[b] - 1 - t; padding frames stay in place.
    The permutation is its own inverse, so the same call maps the reversed sequences back.

    Args:
        x: (B, L, ...), padding at the end of each sequence.
        lengths: valid lengths (B,), each at most L; None means every sequence fills all L frames.

    Returns:
        (B, L, ...), the same shape.
    """
    length = x.size(1)
    if lengths is None:
        return x.flip(1)
    positions = torch.arange(length, device=x.device)[None, :]  # (1, L)
    ends = lengths.to(x.device)[:, None]  # (B, 1)
    source = torch.where(positions < ends, ends - 1 - positions, positions)  # (B, L)
    index = source.view(*source.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


class BidirectionalMambaBlock(nn.Module):
    """`x + dropout(fwd(norm(x)) + R(bwd(R(norm(x)))))`, R = `reverse_within_lengths`.

    The two directions are merged by a sum. Each mixer ends with its own output projection, so the sum equals a
    single linear layer over the concatenation of the two directions' inner features: concatenating and adding
    another linear would only stack a second linear map on top of that, and averaging is the sum scaled by a
    constant. The sum therefore loses nothing, adds no parameters, and keeps each direction a plain Mamba mixer
    whose state_dict loads into `mamba_ssm`'s `Mamba` (or `Mamba2`). Both directions read the same pre-normalised
    input.

    Args:
        d_model: feature size D.
        d_state, d_conv, expand: sizes of each direction's mixer (see `MambaMixer`).
        dropout_rate: dropout on the merged mixer output.
        norm_type: "layer_norm" or "rms_norm".
        mixer_type: "mamba" (Mamba-1) or "mamba2" (Mamba-2), for both directions.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dropout_rate: float = 0.0,
        norm_type: str = "layer_norm",
        mixer_type: str = "mamba",
    ) -> None:
        super().__init__()
        self.norm = build_norm(norm_type, d_model)
        self.forward_mixer = build_mixer(mixer_type, d_model, d_state, d_conv, expand)
        self.backward_mixer = build_mixer(mixer_type, d_model, d_state, d_conv, expand)
        self.dropout = nn.Dropout(dropout_rate)

    def forward(self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x (B, L, D) with valid lengths (B,) -> (B, L, D).

        Outputs at valid frames depend only on the valid frames of their own sequence.
        """
        normed = self.norm(x)
        past = self.forward_mixer(normed)
        future = reverse_within_lengths(self.backward_mixer(reverse_within_lengths(normed, lengths)), lengths)
        return x + self.dropout(past + future)
