"""Packing each utterance's audio memory and text into one left-aligned sequence, reading the text back, and
reversing each utterance's valid memory frames."""
from __future__ import annotations

from typing import Tuple

import torch


def pack_memory_and_text(
    memory: torch.Tensor, memory_lengths: torch.Tensor, text: torch.Tensor, text_lengths: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Build `[memory[b, :memory_lengths[b]], text[b, :text_lengths[b]]]` per sequence, zero-padded at the end.

    Concatenating the padded tensors instead would leave the memory's padding frames between an utterance's
    audio and its text, where a recurrent mixer would read them; here padding only ever follows the text.

    Args:
        memory: (B, T, D). memory_lengths: (B,).
        text: (B, U, D). text_lengths: (B,).

    Returns:
        packed (B, L, D) with L = max(memory_lengths + text_lengths), and the packed lengths (B,).
    """
    batch, memory_frames, _ = memory.shape
    memory_lengths = memory_lengths.to(memory.device)
    text_lengths = text_lengths.to(memory.device)
    packed_lengths = memory_lengths + text_lengths
    positions = torch.arange(int(packed_lengths.max()), device=memory.device)[None, :].expand(batch, -1)
    in_memory = positions < memory_lengths[:, None]
    # Index into cat([memory, text], dim=1): the memory frame itself, or T + the text offset.
    source = torch.where(in_memory, positions, memory_frames + positions - memory_lengths[:, None])
    source = source.clamp(max=memory_frames + text.size(1) - 1)
    combined = torch.cat([memory, text], dim=1)
    packed = combined.gather(1, source[:, :, None].expand(-1, -1, combined.size(2)))
    valid = positions < packed_lengths[:, None]
    return packed * valid[:, :, None].to(packed.dtype), packed_lengths


def unpack_text(packed: torch.Tensor, memory_lengths: torch.Tensor, text_frames: int) -> torch.Tensor:
    """The outputs at the text positions of a sequence packed by `pack_memory_and_text`.

    Args:
        packed: (B, L, D).
        memory_lengths: (B,), as given to the packing.
        text_frames: U, the padded text length.

    Returns:
        (B, U, D); position u of sequence b is packed[b, memory_lengths[b] + u] (values past the text's own length
        are padding).
    """
    offsets = torch.arange(text_frames, device=packed.device)[None, :]
    index = (memory_lengths.to(packed.device)[:, None] + offsets).clamp(max=packed.size(1) - 1)
    return packed.gather(1, index[:, :, None].expand(-1, -1, packed.size(2)))


def reverse_valid_frames(memory: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each sequence's first `lengths[b]` frames in reverse order; the padding frames stay where they are.

    Reversing the padded tensor as a whole would move the padding to the front, where a recurrent mixer would
    read it before the audio; here frame t < lengths[b] of sequence b is memory[b, lengths[b] - 1 - t].

    Args:
        memory: (B, T, D).
        lengths: (B,), each at most T.

    Returns:
        (B, T, D), with frames t >= lengths[b] equal to memory's.
    """
    positions = torch.arange(memory.size(1), device=memory.device)[None, :]
    lengths = lengths.to(memory.device)[:, None]
    source = torch.where(positions < lengths, lengths - 1 - positions, positions)
    return memory.gather(1, source[:, :, None].expand(-1, -1, memory.size(2)))
