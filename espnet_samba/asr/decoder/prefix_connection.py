"""Cross-connection "prefix": each Mamba block reads the encoder memory, then the text, in one recurrence."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn

from espnet_samba.asr.decoder.decoder_state import CrossAttentionMemory, MambaStackState
from espnet_samba.asr.decoder.sequence_packing import pack_memory_and_text, reverse_valid_frames, unpack_text
from espnet_samba.modules import MambaBlock

MEMORY_ORDERS = ("forward", "reversed")


def check_memory_order(memory_order: str) -> None:
    """Raise a ValueError naming the valid orders unless `memory_order` is one of them."""
    if memory_order not in MEMORY_ORDERS:
        raise ValueError(f"memory_order must be one of {MEMORY_ORDERS}, got {memory_order!r}")


class PrefixCrossConnection(nn.Module):
    """A stack of Mamba blocks run over `[memory, text]` per utterance: the audio is absorbed into the recurrent
    state before the first token, so no attention is needed and a decoding step costs the same at any prefix
    length and any audio length.

    Args:
        num_blocks: number of Mamba blocks.
        d_model: feature size D of memory and text.
        d_state, d_conv, expand: the mixers' sizes.
        dropout_rate: dropout on each block's mixer output.
        norm_type: "layer_norm" or "rms_norm".
        memory_order: "forward" reads each utterance's memory frames first to last, "reversed" last to first, so
            that the frames the first tokens depend on are the freshest in the state (Sutskever et al., 2014).
            The order applies alike to teacher forcing and decoding; it adds no parameters.
    """

    def __init__(
        self,
        num_blocks: int,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dropout_rate: float = 0.0,
        norm_type: str = "layer_norm",
        memory_order: str = "forward",
    ) -> None:
        super().__init__()
        check_memory_order(memory_order)
        self.memory_order = memory_order
        self.blocks = nn.ModuleList(
            MambaBlock(d_model, d_state, d_conv, expand, dropout_rate, norm_type) for _ in range(num_blocks)
        )

    def forward(
        self, text: torch.Tensor, text_lengths: torch.Tensor, memory: torch.Tensor, memory_lengths: torch.Tensor
    ) -> torch.Tensor:
        """Teacher forcing.

        Args:
            text: embedded tokens (B, U, D). text_lengths: (B,).
            memory: encoder output in the decoder's size (B, T, D). memory_lengths: (B,).

        Returns:
            (B, U, D): the last block's output at the text positions.
        """
        x, _ = pack_memory_and_text(self._ordered(memory, memory_lengths), memory_lengths, text, text_lengths)
        for block in self.blocks:
            x = block(x)
        return unpack_text(x, memory_lengths, text.size(1))

    def absorb_memory(
        self, memory: torch.Tensor, memory_lengths: torch.Tensor
    ) -> Tuple[MambaStackState, Optional[CrossAttentionMemory]]:
        """The blocks' states after each utterance's memory, computed layer by layer: block i's input over the
        memory is block i-1's output over it, exactly as in teacher forcing.

        Args:
            memory: (B, T, D). memory_lengths: (B,).

        Returns:
            The stack's state (batch B) after `memory_lengths` frames, and None (no cross-attention memory).
        """
        block_states = []
        x = self._ordered(memory, memory_lengths)
        for block in self.blocks:
            x, state = block(x, lengths=memory_lengths, return_final_state=True)
            block_states.append(state)
        return MambaStackState.stack_blocks(block_states), None

    def _ordered(self, memory: torch.Tensor, memory_lengths: torch.Tensor) -> torch.Tensor:
        """memory (B, T, D) with each utterance's valid frames in `memory_order`, padding frames in place."""
        if self.memory_order == "reversed":
            return reverse_valid_frames(memory, memory_lengths)
        return memory

    def step(
        self, x: torch.Tensor, state: MambaStackState, memory: Optional[CrossAttentionMemory] = None
    ) -> torch.Tensor:
        """Advance by one token x (N, D) -> (N, D), updating `state` (batch N) in place; `memory` is unused (the
        audio is in the state)."""
        for index, block in enumerate(self.blocks):
            x = block.step(x, state.block(index))
        return x
