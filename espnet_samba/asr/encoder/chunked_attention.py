"""Self-attention confined to fixed chunks of frames, so its cost grows linearly with the sequence length."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from espnet_samba.compat import (
    EncoderLayer,
    PositionwiseFeedForward,
    RelPositionalEncoding,
    RelPositionMultiHeadedAttention,
)


class ChunkedSelfAttentionLayer(nn.Module):
    """A pre-norm Transformer layer (ESPnet's, relative-position attention) run on chunks of `chunk_size` frames.

    Each sequence is cut into consecutive chunks starting at its first frame; a frame attends to the valid frames
    of its own chunk only, with relative positions inside the chunk. The chunks are folded into the batch
    dimension, so attention costs O(T * chunk_size) time and memory instead of O(T^2): a block-diagonal
    attention mask, without ever building the T x T matrix. Because chunks start at each sequence's own first
    frame and padded keys are masked, a sequence's valid outputs do not depend on the batch it is in.

    Args:
        d_model: feature size D.
        attention_heads: number of heads.
        linear_units: hidden size of the feed-forward network.
        chunk_size: frames per attention chunk.
        dropout_rate: dropout on the residual branches and inside the feed-forward network.
        attention_dropout_rate: dropout on the attention weights.
        positional_dropout_rate: dropout on the relative positional embeddings.
    """

    streaming_obstacle = "each frame attends to the later frames of its attention chunk, so it needs future input"

    def __init__(
        self,
        d_model: int,
        attention_heads: int,
        linear_units: int,
        chunk_size: int,
        dropout_rate: float = 0.0,
        attention_dropout_rate: float = 0.0,
        positional_dropout_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if chunk_size < 1:
            raise ValueError(f"attention_chunk_size must be a positive number of frames, got {chunk_size}")
        if d_model % attention_heads:
            raise ValueError(f"output_size ({d_model}) must be divisible by attention_heads ({attention_heads})")
        self.chunk_size = chunk_size
        self.pos_enc = RelPositionalEncoding(d_model, positional_dropout_rate)
        self.layer = EncoderLayer(
            d_model,
            RelPositionMultiHeadedAttention(attention_heads, d_model, attention_dropout_rate),
            PositionwiseFeedForward(d_model, linear_units, dropout_rate, nn.SiLU()),
            None,
            None,
            dropout_rate,
            normalize_before=True,
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x (B, T, D), valid lengths (B,) -> (B, T, D)."""
        batch, length, size = x.shape
        num_chunks = -(-length // self.chunk_size)
        padded_length = num_chunks * self.chunk_size
        chunks = F.pad(x, (0, 0, 0, padded_length - length)).reshape(batch * num_chunks, self.chunk_size, size)
        valid = torch.arange(padded_length, device=x.device)[None, :] < lengths.to(x.device)[:, None]
        masks = valid.reshape(batch * num_chunks, 1, self.chunk_size)
        # The encoding's first output (the input scaled by sqrt(D)) is not used: only the relative positions are.
        _, pos_emb = self.pos_enc(chunks.new_zeros(1, self.chunk_size, size))
        (chunks, _), _ = self.layer((chunks, pos_emb), masks)
        return chunks.reshape(batch, padded_length, size)[:, :length]
