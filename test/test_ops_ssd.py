"""Mamba-2's chunked SSD scan and its step (`espnet_samba.ops.ssd`) against the frame-by-frame reference."""
from __future__ import annotations

from typing import Dict

import pytest
import torch
import torch.nn.functional as F

from espnet_samba.ops.reference import ssd_scan_reference
from espnet_samba.ops.ssd import segment_sums, ssd_chunk_scan, ssd_state_update

CHUNK = 8
HEADS, HEADDIM, D_STATE = 4, 3, 5
LENGTHS = (1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5)
FLOAT64 = dict(rtol=1e-10, atol=1e-10)


def random_inputs(length: int, ngroups: int, seed: int, batch: int = 2) -> Dict[str, torch.Tensor]:
    """x, dt (positive), A (negative), B, C, D per head, and an initial state, in float64."""
    generator = torch.Generator().manual_seed(seed)

    def draw(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    return dict(
        x=draw(batch, length, HEADS, HEADDIM),
        dt=F.softplus(draw(batch, length, HEADS) - 1),
        A=-torch.exp(draw(HEADS)),
        B=draw(batch, length, ngroups, D_STATE),
        C=draw(batch, length, ngroups, D_STATE),
        D=draw(HEADS),
        initial_state=draw(batch, HEADS, HEADDIM, D_STATE),
    )


@pytest.mark.parametrize("ngroups", [1, 2])
@pytest.mark.parametrize("length", LENGTHS)
def test_chunked_scan_equals_the_recurrence_across_chunk_boundaries(length, ngroups):
    inputs = random_inputs(length, ngroups, seed=length + 10 * ngroups)
    y, state = ssd_chunk_scan(chunk_size=CHUNK, **inputs)
    expected_y, expected_state = ssd_scan_reference(**inputs)
    torch.testing.assert_close(y, expected_y, **FLOAT64)
    torch.testing.assert_close(state, expected_state, **FLOAT64)


def test_any_chunk_size_gives_the_same_result():
    inputs = random_inputs(29, 2, seed=3)
    inputs.update(D=torch.randn(HEADS, HEADDIM, dtype=torch.float64), initial_state=None)
    expected_y, expected_state = ssd_scan_reference(**inputs)
    for chunk_size in (1, 4, 29, 256):
        y, state = ssd_chunk_scan(chunk_size=chunk_size, **inputs)
        torch.testing.assert_close(y, expected_y, **FLOAT64)
        torch.testing.assert_close(state, expected_state, **FLOAT64)


def test_float32_inputs_compute_in_float32():
    inputs = {k: v.float() for k, v in random_inputs(3 * CHUNK + 5, 2, seed=4).items()}
    y, state = ssd_chunk_scan(chunk_size=CHUNK, **inputs)
    expected_y, expected_state = ssd_scan_reference(**{k: v.double() for k, v in inputs.items()})
    assert y.dtype == state.dtype == torch.float32
    torch.testing.assert_close(y, expected_y.float(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(state, expected_state.float(), rtol=1e-5, atol=1e-5)


def test_frames_with_zero_step_size_leave_the_state_unchanged():
    inputs = random_inputs(CHUNK + 3, 1, seed=5)
    valid = 6
    truncated = {name: inputs[name][:, :valid] for name in ("x", "dt", "B", "C")}
    _, expected_state = ssd_chunk_scan(chunk_size=CHUNK, **{**inputs, **truncated})
    inputs["dt"][:, valid:] = 0.0
    _, state = ssd_chunk_scan(chunk_size=CHUNK, **inputs)
    torch.testing.assert_close(state, expected_state, **FLOAT64)


@pytest.mark.parametrize("ngroups", [1, 2])
def test_state_update_steps_the_recurrence(ngroups):
    inputs = random_inputs(5, ngroups, seed=6)
    state = inputs["initial_state"].clone()
    outputs = [
        ssd_state_update(state, inputs["x"][:, t], inputs["dt"][:, t], inputs["A"], inputs["B"][:, t],
                         inputs["C"][:, t], inputs["D"])
        for t in range(5)
    ]
    expected_y, expected_state = ssd_scan_reference(**inputs)
    torch.testing.assert_close(torch.stack(outputs, dim=1), expected_y, **FLOAT64)
    torch.testing.assert_close(state, expected_state, **FLOAT64)


def test_gradients_pass_gradcheck():
    inputs = random_inputs(7, 2, seed=7, batch=1)
    names = list(inputs)

    def scan(*tensors: torch.Tensor):
        return ssd_chunk_scan(chunk_size=3, **dict(zip(names, tensors)))

    leaves = [tensor.requires_grad_() for tensor in inputs.values()]
    assert torch.autograd.gradcheck(scan, leaves)


def test_segment_sums_are_the_sums_between_two_frames():
    a = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    inf = torch.inf
    expected = torch.tensor([[0.0, -inf, -inf], [-1.0, 0.0, -inf], [1.0, 2.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(segment_sums(a), expected, rtol=0, atol=0)


def test_shapes_that_do_not_fit_are_refused_by_name():
    inputs = random_inputs(4, 2, seed=8)
    with pytest.raises(ValueError, match="ssd: B must have shape"):
        ssd_chunk_scan(chunk_size=CHUNK, **{**inputs, "B": torch.randn(2, 4, 3, D_STATE, dtype=torch.float64)})
    with pytest.raises(ValueError, match=r"ssd: D must have shape \(4,\) or \(4, 3\)"):
        ssd_chunk_scan(chunk_size=CHUNK, **{**inputs, "D": torch.ones(5)})
    with pytest.raises(ValueError, match="need chunk_size >= 1 and length >= 1"):
        ssd_chunk_scan(chunk_size=0, **inputs)
