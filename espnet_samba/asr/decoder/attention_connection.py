"""Cross-connection "attention": Mamba over the text, cross-attention to the memory, feed-forward, per block."""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn as nn

from espnet_samba.asr.decoder.decoder_state import CrossAttentionMemory, MambaStackState
from espnet_samba.compat import MultiHeadedAttention, make_pad_mask
from espnet_samba.modules import MambaBlock, MambaState
from espnet_samba.modules.feed_forward import FeedForwardBlock
from espnet_samba.modules.normalization import build_norm


class MambaCrossAttentionLayer(nn.Module):
    """`MambaBlock` (in place of self-attention), then `x + dropout(attn(norm(x), memory))` with ESPnet's
    `MultiHeadedAttention`, then a residual feed-forward block (`FeedForwardBlock`, Swish activation).

    Args:
        d_model: feature size D.
        d_state, d_conv, expand: the mixer's sizes.
        attention_heads: heads H of the cross-attention (D divisible by H).
        linear_units: hidden size of the feed-forward block.
        dropout_rate: dropout on every residual branch.
        src_attention_dropout_rate: dropout on the attention weights.
        norm_type: "layer_norm" or "rms_norm".
    """

    def __init__(
        self,
        d_model: int,
        d_state: int,
        d_conv: int,
        expand: int,
        attention_heads: int,
        linear_units: int,
        dropout_rate: float,
        src_attention_dropout_rate: float,
        norm_type: str,
    ) -> None:
        super().__init__()
        self.mamba = MambaBlock(d_model, d_state, d_conv, expand, dropout_rate, norm_type)
        self.norm_src = build_norm(norm_type, d_model)
        self.src_attn = MultiHeadedAttention(attention_heads, d_model, src_attention_dropout_rate)
        self.dropout = nn.Dropout(dropout_rate)
        self.feed_forward = FeedForwardBlock(d_model, linear_units, dropout_rate, norm_type)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: text x (B, U, D), memory (B, T, D), memory_mask (B, 1, T) -> (B, U, D)."""
        x = self.mamba(x)
        x = x + self.dropout(self.src_attn(self.norm_src(x), memory, memory, memory_mask))
        return self.feed_forward(x)

    def project_memory(self, memory: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The attention's per-head keys and values of memory (B, T, D), each (B, H, T, d_k)."""
        attention = self.src_attn
        batch = memory.size(0)
        keys = attention.linear_k(memory).view(batch, -1, attention.h, attention.d_k).transpose(1, 2)
        values = attention.linear_v(memory).view(batch, -1, attention.h, attention.d_k).transpose(1, 2)
        return attention.k_norm(keys), values

    def step(
        self, x: torch.Tensor, state: MambaState, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """One token x (N, D) -> (N, D), updating the mixer `state` in place.

        Args:
            x: (N, D). state: the mixer's state (batch N).
            keys, values: from `project_memory`, (N, H, T, d_k). mask: (N, 1, T). When they are one utterance's
                memory expanded to N rows without copying (`CrossAttentionMemory.expand`: beam search), the N
                rows are attended as N queries of that one memory: one matrix product instead of N small ones
                over a broadcast that torch would copy N times.
        """
        attention = self.src_attn
        x = self.mamba.step(x, state)
        rows = x.size(0)
        query = attention.linear_q(self.norm_src(x))
        if rows > 1 and keys.stride(0) == 0 and values.stride(0) == 0 and mask.stride(0) == 0:
            keys, values, mask = keys[:1], values[:1], mask[:1]
            query = query.view(1, rows, attention.h, attention.d_k)  # the rows as query positions
        else:
            query = query.view(rows, 1, attention.h, attention.d_k)
        query = attention.q_norm(query.transpose(1, 2))  # (N, H, 1, d_k) or (1, H, N, d_k)
        scores = torch.matmul(query, keys.transpose(-2, -1)) / math.sqrt(attention.d_k)
        attended = attention.forward_attention(values, scores, mask).reshape(rows, -1)
        return self.feed_forward(x + self.dropout(attended))


class AttentionCrossConnection(nn.Module):
    """A stack of `MambaCrossAttentionLayer`s: the Mamba decoder of ESPnet-based papers (self-attention replaced
    by Mamba, cross-attention kept). A decoding step costs the same at any prefix length and O(T) in the audio
    length T (the memory's keys and values are projected once per utterance, in `absorb_memory`).

    Args:
        num_blocks: number of layers.
        d_model, d_state, d_conv, expand, attention_heads, linear_units, dropout_rate, src_attention_dropout_rate,
        norm_type: see `MambaCrossAttentionLayer`.
    """

    def __init__(
        self,
        num_blocks: int,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        attention_heads: int = 4,
        linear_units: int = 2048,
        dropout_rate: float = 0.0,
        src_attention_dropout_rate: float = 0.0,
        norm_type: str = "layer_norm",
    ) -> None:
        super().__init__()
        if d_model % attention_heads:
            raise ValueError(
                f"the decoder size ({d_model}) must be divisible by attention_heads ({attention_heads})"
            )
        self.blocks = nn.ModuleList(
            MambaCrossAttentionLayer(
                d_model, d_state, d_conv, expand, attention_heads, linear_units, dropout_rate,
                src_attention_dropout_rate, norm_type,
            )
            for _ in range(num_blocks)
        )

    def forward(
        self, text: torch.Tensor, text_lengths: torch.Tensor, memory: torch.Tensor, memory_lengths: torch.Tensor
    ) -> torch.Tensor:
        """Teacher forcing.

        Args:
            text: embedded tokens (B, U, D). text_lengths: (B,) (unused: the mixers are causal, so the padding at
                the end of the text never reaches a valid position).
            memory: encoder output in the decoder's size (B, T, D). memory_lengths: (B,).

        Returns:
            (B, U, D).
        """
        memory_mask = ~make_pad_mask(memory_lengths, maxlen=memory.size(1))[:, None, :].to(memory.device)
        x = text
        for block in self.blocks:
            x = block(x, memory, memory_mask)
        return x

    def absorb_memory(
        self, memory: torch.Tensor, memory_lengths: torch.Tensor
    ) -> Tuple[MambaStackState, Optional[CrossAttentionMemory]]:
        """Zero mixer states and every layer's keys/values of the memory.

        Args:
            memory: (B, T, D). memory_lengths: (B,).

        Returns:
            The stack's initial state (batch B) and the cross-attention memory (batch B).
        """
        batch = memory.size(0)
        states = [block.mamba.mixer.allocate_inference_cache(batch, dtype=memory.dtype) for block in self.blocks]
        keys, values = zip(*(block.project_memory(memory) for block in self.blocks))
        memory_mask = ~make_pad_mask(memory_lengths, maxlen=memory.size(1))[:, None, :].to(memory.device)
        return MambaStackState.stack_blocks(states), CrossAttentionMemory(
            torch.stack(keys), torch.stack(values), memory_mask
        )

    def step(
        self, x: torch.Tensor, state: MambaStackState, memory: Optional[CrossAttentionMemory] = None
    ) -> torch.Tensor:
        """Advance by one token x (N, D) -> (N, D), updating `state` (batch N) in place, attending to `memory`
        (batch N)."""
        if memory is None:
            raise ValueError("cross_connection 'attention' needs the memory from absorb_memory to take a step")
        for index, block in enumerate(self.blocks):
            x = block.step(x, state.block(index), memory.keys[index], memory.values[index], memory.mask)
        return x
