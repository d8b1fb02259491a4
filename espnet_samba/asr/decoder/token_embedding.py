"""Token embedding with absolute sinusoidal positions that can start at any position (for step-wise decoding)."""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn

POSITIONAL_ENCODINGS = ("sinusoidal", "none")


def sinusoidal_positions(positions: torch.Tensor, d_model: int) -> torch.Tensor:
    """The sinusoidal encodings of ESPnet's `PositionalEncoding` at arbitrary positions.

    Computed in float32 as ESPnet does, so position t gets the same vector whether it is reached by teacher
    forcing (positions 0..L-1) or by decoding step t.

    Args:
        positions: integer positions, any shape (...).
        d_model: encoding size D (even).

    Returns:
        (..., D) float32: sin at even features, cos at odd ones.
    """
    inverse_frequencies = torch.exp(
        torch.arange(0, d_model, 2, dtype=torch.float32, device=positions.device) * -(math.log(10000.0) / d_model)
    )
    angles = positions.to(torch.float32)[..., None] * inverse_frequencies
    return torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1).flatten(-2)


class TokenEmbedding(nn.Module):
    """`embed(y) * sqrt(D) + PE(position)` then dropout, like ESPnet's `Embedding` + `PositionalEncoding`.

    With `positional_encoding="none"` the embedding is used as is (a Mamba stack is causal and recurrent, so it
    sees the order of the tokens without any positional signal).

    Args:
        vocab_size: number of token ids V.
        d_model: embedding size D.
        positional_encoding: "sinusoidal" or "none".
        dropout_rate: dropout on the result.
    """

    def __init__(
        self, vocab_size: int, d_model: int, positional_encoding: str = "sinusoidal", dropout_rate: float = 0.1
    ) -> None:
        super().__init__()
        if positional_encoding not in POSITIONAL_ENCODINGS:
            raise ValueError(
                f"positional_encoding must be one of {POSITIONAL_ENCODINGS}, got {positional_encoding!r}"
            )
        if positional_encoding == "sinusoidal" and d_model % 2:
            raise ValueError(f"sinusoidal positions need an even model size, got {d_model}")
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.d_model = d_model
        self.positional_encoding = positional_encoding
        self.dropout = nn.Dropout(dropout_rate)

    def forward(self, tokens: torch.Tensor, start_positions: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Embed tokens (B, L) whose first token sits at `start_positions` (B,) (default 0).

        Args:
            tokens: token ids (B, L).
            start_positions: position of `tokens[:, 0]` per sequence (B,); decoding step t passes t.

        Returns:
            (B, L, D).
        """
        x = self.embedding(tokens)
        if self.positional_encoding == "none":
            return self.dropout(x)
        offsets = torch.arange(tokens.size(1), device=tokens.device)[None, :]
        positions = offsets if start_positions is None else start_positions.to(tokens.device)[:, None] + offsets
        encodings = sinusoidal_positions(positions, self.d_model).to(x.dtype)
        return self.dropout(x * math.sqrt(self.d_model) + encodings)
