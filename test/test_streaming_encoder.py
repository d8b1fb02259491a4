"""Chunk by chunk: the chunks' outputs, concatenated, are the offline forward's.

Oracles: the mixer's offline `forward` and `MambaMixer.step` frame by frame.
"""
from __future__ import annotations

from typing import Iterator, List

import pytest
import torch

from espnet_samba.modules.mamba_mixer import MambaMixer, MambaState

MIXER_TOLERANCE = dict(rtol=1e-5, atol=1e-5)


def split(xs: torch.Tensor, sizes: List[int]) -> Iterator[torch.Tensor]:
    start = 0
    for size in sizes:
        yield xs[:, start : start + size]
        start += size


def random_mixer_input(batch: int, length: int, seed: int) -> torch.Tensor:
    return torch.randn(batch, length, 16, generator=torch.Generator().manual_seed(seed))


def assert_states_close(actual: MambaState, expected: MambaState) -> None:
    torch.testing.assert_close(actual.conv_state, expected.conv_state, **MIXER_TOLERANCE)
    torch.testing.assert_close(actual.ssm_state, expected.ssm_state, **MIXER_TOLERANCE)


@pytest.mark.parametrize("d_conv", [2, 4])
def test_mixer_chunk_after_forward_of_first_half_equals_forward_of_whole(d_conv):
    torch.manual_seed(0)
    mixer = MambaMixer(16, d_state=8, d_conv=d_conv)
    x = random_mixer_input(2, 40, seed=1)
    with torch.no_grad():
        whole, whole_state = mixer(x, return_final_state=True)
        first, state = mixer(x[:, :23], return_final_state=True)
        second, state = mixer.forward_chunk(x[:, 23:], state)
        from_start, start_state = mixer.forward_chunk(x[:, :23], mixer.allocate_inference_cache(2))
    torch.testing.assert_close(second, whole[:, 23:], **MIXER_TOLERANCE)
    assert_states_close(state, whole_state)
    torch.testing.assert_close(from_start, first, **MIXER_TOLERANCE)
    assert_states_close(start_state, mixer(x[:, :23], return_final_state=True)[1])


def test_mixer_chunks_equal_steps_frame_by_frame():
    torch.manual_seed(0)
    mixer = MambaMixer(16, d_state=8)
    x = random_mixer_input(2, 37, seed=2)
    sizes = [1, 2, 3, 5, 7, 19]
    with torch.no_grad():
        step_state = mixer.allocate_inference_cache(2)
        steps = torch.cat([mixer.step(x[:, t : t + 1], step_state) for t in range(x.size(1))], dim=1)
        chunk_state, chunks = mixer.allocate_inference_cache(2), []
        for chunk in split(x, sizes):
            before = MambaState(chunk_state.conv_state.clone(), chunk_state.ssm_state.clone())
            ys, next_state = mixer.forward_chunk(chunk, chunk_state)
            assert_states_close(chunk_state, before)
            chunks.append(ys)
            chunk_state = next_state
    torch.testing.assert_close(torch.cat(chunks, dim=1), steps, **MIXER_TOLERANCE)
    assert_states_close(chunk_state, step_state)
