"""Decoding states of `MambaDecoder`: fixed-size recurrent state per hypothesis, batched and split per step."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import torch
import torch.nn.functional as F

from espnet_samba.modules import MambaState


@dataclass
class MambaStackState:
    """Recurrent states of a stack of equally sized Mamba mixers, for a batch of B sequences.

    Attributes:
        conv_states: (num_blocks, B, d_inner, d_conv).
        ssm_states: (num_blocks, B, d_inner, d_state).
    """

    conv_states: torch.Tensor
    ssm_states: torch.Tensor

    @staticmethod
    def stack_blocks(block_states: List[MambaState]) -> "MambaStackState":
        """One `MambaState` (B, ...) per block, bottom block first -> the stack's state."""
        return MambaStackState(
            torch.stack([s.conv_state for s in block_states]), torch.stack([s.ssm_state for s in block_states])
        )

    @staticmethod
    def concat(states: List["MambaStackState"]) -> "MambaStackState":
        """Concatenate batches along the batch axis, in order; always copies, so stepping the result in place
        leaves the inputs untouched (hypotheses that share a parent state must not see each other's steps)."""
        return MambaStackState(
            torch.cat([s.conv_states for s in states], dim=1), torch.cat([s.ssm_states for s in states], dim=1)
        )

    def block(self, index: int) -> MambaState:
        """The state of block `index` as views: `MambaBlock.step` on it updates this stack in place."""
        return MambaState(self.conv_states[index], self.ssm_states[index])

    def row(self, index: int) -> "MambaStackState":
        """Sequence `index` as a batch of 1 (views)."""
        return MambaStackState(self.conv_states[:, index : index + 1], self.ssm_states[:, index : index + 1])


@dataclass
class CrossAttentionMemory:
    """The encoder memory as each block's cross-attention sees it, projected once per utterance.

    Attributes:
        keys: per-head keys (num_blocks, B, H, T, d_k).
        values: per-head values (num_blocks, B, H, T, d_k).
        mask: valid memory frames (B, 1, T), bool.
    """

    keys: torch.Tensor
    values: torch.Tensor
    mask: torch.Tensor

    def row(self, index: int) -> "CrossAttentionMemory":
        """Utterance `index` as a batch of 1 (views)."""
        return CrossAttentionMemory(
            self.keys[:, index : index + 1], self.values[:, index : index + 1], self.mask[index : index + 1]
        )

    def expand(self, batch_size: int) -> "CrossAttentionMemory":
        """A batch of 1 repeated `batch_size` times without copying (all hypotheses of one utterance)."""
        return CrossAttentionMemory(
            self.keys.expand(-1, batch_size, -1, -1, -1),
            self.values.expand(-1, batch_size, -1, -1, -1),
            self.mask.expand(batch_size, -1, -1),
        )

    @staticmethod
    def concat(memories: List["CrossAttentionMemory"]) -> "CrossAttentionMemory":
        """Batch memories of different lengths: each is padded at the end to the longest, and masked there."""
        length = max(m.mask.size(-1) for m in memories)

        def pad_time(x: torch.Tensor, time_axis: int) -> torch.Tensor:
            missing = length - x.size(time_axis)
            padding = [0, 0] * (x.dim() - 1 - time_axis) + [0, missing]
            return F.pad(x, padding)

        return CrossAttentionMemory(
            torch.cat([pad_time(m.keys, 3) for m in memories], dim=1),
            torch.cat([pad_time(m.values, 3) for m in memories], dim=1),
            torch.cat([pad_time(m.mask, 2) for m in memories], dim=0),
        )


@dataclass
class HypothesisState:
    """What `MambaDecoder` keeps per beam-search hypothesis; its size does not depend on the prefix length.

    Attributes:
        mamba: the recurrent state of every block after the prefix, batch of 1.
        position: how many tokens of the prefix the state has consumed (the next token's position).
        memory: the utterance's cross-attention keys/values (cross_connection "attention"), batch of 1 and shared
            by reference between all hypotheses of the utterance; None for cross_connection "prefix", whose
            state already contains the audio.
    """

    mamba: MambaStackState
    position: int
    memory: Optional[CrossAttentionMemory] = None


def batch_memories(states: List[HypothesisState]) -> Optional[CrossAttentionMemory]:
    """The cross-attention memory for a batch of hypotheses: free when they share one utterance (beam search).

    Args:
        states: N hypothesis states.

    Returns:
        A memory of batch N, or None when the states carry none (cross_connection "prefix").
    """
    first = states[0].memory
    if first is None:
        return None
    if all(s.memory is first for s in states):
        return first.expand(len(states))
    return CrossAttentionMemory.concat([s.memory for s in states])
