"""The CPU selective scan against mamba-ssm's `selective_scan_ref`, our reference, and finite differences."""
from __future__ import annotations

from typing import Dict

import pytest
import torch

from espnet_samba.ops import selective_scan
from espnet_samba.ops.chunked_scan import chunked_selective_scan, default_chunk_length
from espnet_samba.ops.reference import selective_scan_reference

# Every test on both CPU backends: the fused kernels and the pure-PyTorch fallback (conftest.cpu_backend).
pytestmark = pytest.mark.usefixtures("cpu_backend")

CHUNK = 8
LENGTHS = (1, 5, CHUNK, 19, 5 * CHUNK)  # a single frame, shorter than, equal to, between and a multiple of chunks
SCAN_INPUTS = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def make_scan_inputs(
    batch: int, dim: int, d_state: int, length: int, dtype: torch.dtype, with_options: bool, seed: int = 0
) -> Dict[str, torch.Tensor]:
    """Random inputs of a selective scan; Δ is positive when no softplus will be applied (`with_options` False)."""
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, dtype=dtype)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=dtype)

    inputs = {
        "u": randn(batch, dim, length),
        "delta": randn(batch, dim, length) - 1.0 if with_options else 0.5 * rand(batch, dim, length),
        "A": -(0.1 + 3.0 * rand(dim, d_state)),
        "B": randn(batch, d_state, length),
        "C": randn(batch, d_state, length),
    }
    if with_options:
        inputs.update(D=randn(dim), z=randn(batch, dim, length), delta_bias=0.5 * randn(dim))
    return {name: tensor.requires_grad_(True) for name, tensor in inputs.items()}


def run_with_gradients(
    scan, inputs: Dict[str, torch.Tensor], with_options: bool, *, state_in_loss: bool = True, **kwargs
):
    """Output, final state, and gradients of a fixed random functional of both (of y alone without
    `state_in_loss`: the public op's final state carries no gradient), for every input."""
    y, last_state = scan(**inputs, delta_softplus=with_options, return_last_state=True, **kwargs)
    generator = torch.Generator().manual_seed(123)
    y_weights = torch.randn(y.shape, generator=generator, dtype=torch.float64).to(y.dtype)
    state_weights = torch.randn(last_state.shape, generator=generator, dtype=torch.float64).to(last_state.dtype)
    loss = (y * y_weights).sum()
    if state_in_loss:
        loss = loss + (last_state * state_weights).sum()
    grads = torch.autograd.grad(loss, list(inputs.values()))
    return y, last_state, dict(zip(inputs, grads))


def assert_same_scan(actual, expected, **tolerance) -> None:
    y, state, grads = actual
    y_expected, state_expected, grads_expected = expected
    torch.testing.assert_close(y, y_expected, **tolerance)
    torch.testing.assert_close(state.to(state_expected.dtype), state_expected, **tolerance)
    for name in grads_expected:
        torch.testing.assert_close(grads[name], grads_expected[name], **tolerance, msg=lambda m: f"grad {name}: {m}")


@pytest.mark.parametrize("with_options", [True, False], ids=["D-z-bias-softplus", "plain"])
@pytest.mark.parametrize("d_state", [1, 16, 64])
@pytest.mark.parametrize("length", LENGTHS)
def test_float32_matches_mamba_ssm_reference(mamba_reference, length, d_state, with_options):
    inputs = make_scan_inputs(2, 6, d_state, length, torch.float32, with_options)
    expected = run_with_gradients(mamba_reference.selective_scan_ref, inputs, with_options)
    actual = run_with_gradients(chunked_selective_scan, inputs, with_options, chunk_length=CHUNK)
    assert_same_scan(actual, expected, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("with_options", [True, False], ids=["D-z-bias-softplus", "plain"])
@pytest.mark.parametrize("d_state", [1, 4, 64])
@pytest.mark.parametrize("length", LENGTHS)
def test_float64_matches_reference_tightly(length, d_state, with_options):
    inputs = make_scan_inputs(2, 5, d_state, length, torch.float64, with_options)
    expected = run_with_gradients(selective_scan_reference, inputs, with_options)
    actual = run_with_gradients(chunked_selective_scan, inputs, with_options, chunk_length=CHUNK)
    assert actual[0].dtype == torch.float64 and actual[1].dtype == torch.float64
    assert_same_scan(actual, expected, rtol=1e-12, atol=1e-12)


def test_our_reference_matches_mamba_ssm_reference(mamba_reference):
    inputs = make_scan_inputs(2, 6, 16, 19, torch.float32, with_options=True)
    expected = run_with_gradients(mamba_reference.selective_scan_ref, inputs, True)
    actual = run_with_gradients(selective_scan_reference, inputs, True)
    assert_same_scan(actual, expected, rtol=1e-5, atol=1e-6)


def test_gradients_match_finite_differences():
    inputs = make_scan_inputs(1, 2, 3, 5, torch.float64, with_options=True)

    def scan(*tensors: torch.Tensor):
        return chunked_selective_scan(
            *tensors[:5], D=tensors[5], z=tensors[6], delta_bias=tensors[7], delta_softplus=True,
            return_last_state=True, chunk_length=2,
        )

    assert torch.autograd.gradcheck(scan, tuple(inputs[name] for name in SCAN_INPUTS))


def test_public_op_with_default_chunks_matches_reference():
    batch, dim, d_state = 1, 8, 4
    length = default_chunk_length(batch, dim, d_state) + 3  # two chunks, the second of 3 frames
    inputs = make_scan_inputs(batch, dim, d_state, length, torch.float64, with_options=True)
    expected = run_with_gradients(selective_scan_reference, inputs, True, state_in_loss=False)
    actual = run_with_gradients(selective_scan, inputs, True, state_in_loss=False)
    assert_same_scan(actual, expected, rtol=1e-10, atol=1e-10)


def test_inference_path_equals_training_path():
    inputs = make_scan_inputs(2, 6, 16, 19, torch.float32, with_options=True)
    with_grad, state_with_grad = chunked_selective_scan(
        **inputs, delta_softplus=True, return_last_state=True, chunk_length=CHUNK
    )
    with torch.inference_mode():
        without_grad, state_without_grad = chunked_selective_scan(
            **inputs, delta_softplus=True, return_last_state=True, chunk_length=CHUNK
        )
    torch.testing.assert_close(without_grad, with_grad, rtol=0, atol=0)
    torch.testing.assert_close(state_without_grad, state_with_grad, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_inputs_are_computed_in_float32(dtype):
    inputs = {
        name: tensor.detach().to(dtype).requires_grad_(True)
        for name, tensor in make_scan_inputs(2, 6, 16, 19, torch.float32, with_options=True).items()
    }
    y, state, grads = run_with_gradients(chunked_selective_scan, inputs, True, chunk_length=CHUNK)
    y_ref, state_ref, grads_ref = run_with_gradients(selective_scan_reference, inputs, True)
    assert y.dtype == dtype and state.dtype == torch.float32
    assert all(grads[name].dtype == dtype for name in grads)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=0)
    torch.testing.assert_close(state, state_ref, rtol=1e-5, atol=1e-5)
    for name in grads:
        torch.testing.assert_close(grads[name].float(), grads_ref[name].float(), rtol=2e-2, atol=2e-2)


def largest_saved_tensor(scan, inputs: Dict[str, torch.Tensor], **kwargs) -> int:
    largest = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal largest
        largest = max(largest, tensor.numel())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        scan(**inputs, delta_softplus=True, return_last_state=True, **kwargs)
    return largest


def test_training_saves_states_only_at_chunk_boundaries(mamba_reference):
    batch, dim, d_state, length = 2, 4, 16, 8 * CHUNK
    inputs = make_scan_inputs(batch, dim, d_state, length, torch.float32, with_options=True)
    all_states = batch * dim * d_state * length
    largest_input = batch * max(dim, d_state) * length
    boundary_states = batch * dim * d_state * (length // CHUNK)
    assert largest_saved_tensor(mamba_reference.selective_scan_ref, inputs) >= all_states
    saved = largest_saved_tensor(chunked_selective_scan, inputs, chunk_length=CHUNK)
    assert saved == max(largest_input, boundary_states) < all_states


@pytest.mark.parametrize(
    "name, shape, message",
    [
        ("delta", (2, 6, 18), "delta must have shape"),
        ("A", (6, 16, 1), "A must have shape (dim, d_state)"),
        ("B", (2, 15, 19), "B must have shape (batch, d_state, length)"),
        ("C", (16, 6), "C must have shape (batch, d_state, length)"),
        ("D", (5,), "D must have shape (dim,)"),
        ("z", (2, 6, 20), "z must have shape"),
        ("delta_bias", (6, 1), "delta_bias must have shape (dim,)"),
    ],
)
def test_mismatched_shapes_raise_naming_the_input(name, shape, message):
    inputs = {k: v.detach() for k, v in make_scan_inputs(2, 6, 16, 19, torch.float32, with_options=True).items()}
    inputs[name] = torch.zeros(shape)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        selective_scan(**inputs)


def test_nonpositive_chunk_length_raises():
    inputs = make_scan_inputs(1, 2, 3, 4, torch.float32, with_options=False)
    with pytest.raises(ValueError, match="chunk_length must be a positive frame count"):
        chunked_selective_scan(**inputs, chunk_length=0)
