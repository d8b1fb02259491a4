"""Single-step ops (`selective_state_update`, `causal_conv1d_update`) and the full causal convolution on CPU."""
from __future__ import annotations

import pytest
import torch

from espnet_samba.ops import causal_conv1d, causal_conv1d_update, selective_scan, selective_state_update
from espnet_samba.ops.reference import causal_conv1d_update_reference, selective_state_update_reference

# Every test on both CPU backends: the fused kernels and the pure-PyTorch fallback (conftest.cpu_backend).
pytestmark = pytest.mark.usefixtures("cpu_backend")

TOLERANCE = {torch.float32: dict(rtol=1e-5, atol=1e-6), torch.float64: dict(rtol=1e-12, atol=1e-12)}


def make_step_inputs(batch: int, dim: int, d_state: int, dtype: torch.dtype, with_options: bool, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=dtype)

    inputs = {
        "x": randn(batch, dim),
        "dt": randn(batch, dim) - 1.0 if with_options else 0.3 * randn(batch, dim).abs(),
        "A": -(0.1 + 3.0 * torch.rand(dim, d_state, generator=generator, dtype=dtype)),
        "B": randn(batch, d_state),
        "C": randn(batch, d_state),
    }
    if with_options:
        inputs.update(D=randn(dim), z=randn(batch, dim), dt_bias=0.5 * randn(dim))
    return inputs, randn(batch, dim, d_state)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("with_options", [True, False], ids=["D-z-bias-softplus", "plain"])
@pytest.mark.parametrize("d_state", [1, 16, 20, 64])
def test_state_update_matches_mamba_ssm_reference(mamba_reference, d_state, with_options, dtype):
    inputs, state = make_step_inputs(3, 7, d_state, dtype, with_options)
    expected_state = state.clone()
    expected = mamba_reference.selective_state_update_ref(expected_state, **inputs, dt_softplus=with_options)
    actual = selective_state_update(state, **inputs, dt_softplus=with_options)
    torch.testing.assert_close(actual, expected, **TOLERANCE[dtype])
    torch.testing.assert_close(state, expected_state, **TOLERANCE[dtype])


def test_state_update_matches_our_reference_with_float32_state_and_bf16_inputs():
    inputs, state = make_step_inputs(3, 7, 16, torch.float32, with_options=True)
    inputs = {name: tensor.to(torch.bfloat16) for name, tensor in inputs.items()}
    expected_state = state.clone()
    expected = selective_state_update_reference(expected_state, **inputs, dt_softplus=True)
    actual = selective_state_update(state, **inputs, dt_softplus=True)
    assert actual.dtype == torch.bfloat16 and state.dtype == torch.float32
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)
    torch.testing.assert_close(state, expected_state, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_stepping_equals_the_full_scan(dtype):
    batch, dim, d_state, length = 2, 5, 8, 11
    generator = torch.Generator().manual_seed(3)
    u, z = (torch.randn(batch, dim, length, generator=generator, dtype=dtype) for _ in range(2))
    delta = torch.randn(batch, dim, length, generator=generator, dtype=dtype) - 1.0
    B, C = (torch.randn(batch, d_state, length, generator=generator, dtype=dtype) for _ in range(2))
    A = -(0.1 + torch.rand(dim, d_state, generator=generator, dtype=dtype))
    D, bias = torch.randn(dim, generator=generator, dtype=dtype), torch.randn(dim, generator=generator, dtype=dtype)
    y_full, state_full = selective_scan(
        u, delta, A, B, C, D, z, delta_bias=bias, delta_softplus=True, return_last_state=True
    )
    state = torch.zeros(batch, dim, d_state, dtype=dtype)
    y_steps = torch.stack(
        [
            selective_state_update(
                state, u[..., t], delta[..., t], A, B[..., t], C[..., t], D, z[..., t], dt_bias=bias, dt_softplus=True
            )
            for t in range(length)
        ],
        dim=-1,
    )
    torch.testing.assert_close(y_steps, y_full, **TOLERANCE[dtype])
    torch.testing.assert_close(state, state_full, **TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("activation", [None, "silu"])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("width", [2, 4])
def test_causal_conv_and_its_gradients_match_causal_conv1d_reference(
    mamba_reference, width, with_bias, activation, dtype
):
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(2, 6, 9, generator=generator, dtype=dtype, requires_grad=True)
    weight = torch.randn(6, width, generator=generator, dtype=dtype, requires_grad=True)
    bias = torch.randn(6, generator=generator, dtype=dtype, requires_grad=True) if with_bias else None
    leaves = [t for t in (x, weight, bias) if t is not None]
    expected = mamba_reference.causal_conv1d_ref(x, weight, bias, activation=activation)
    actual = causal_conv1d(x, weight, bias, activation=activation)
    torch.testing.assert_close(actual, expected, **TOLERANCE[dtype])
    grad_out = torch.randn(expected.shape, generator=generator, dtype=dtype)
    actual_grads = torch.autograd.grad(actual, leaves, grad_out)
    for got, want in zip(actual_grads, torch.autograd.grad(expected, leaves, grad_out)):
        torch.testing.assert_close(got, want, **TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("activation", [None, "silu"])
@pytest.mark.parametrize("with_bias", [True, False])
def test_conv_update_matches_reference_and_stepping_equals_the_full_convolution(
    mamba_reference, with_bias, activation, dtype
):
    batch, dim, width, length = 3, 5, 4, 7
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(batch, dim, length, generator=generator, dtype=dtype)
    weight = torch.randn(dim, width, generator=generator, dtype=dtype)
    bias = torch.randn(dim, generator=generator, dtype=dtype) if with_bias else None
    state = torch.zeros(batch, dim, width, dtype=dtype)
    mamba_state, our_reference_state = state.clone(), state.clone()
    outputs = []
    for t in range(length):
        out = causal_conv1d_update(x[..., t], state, weight, bias, activation)
        expected = mamba_reference.causal_conv1d_update_ref(x[..., t], mamba_state, weight, bias, activation)
        ours = causal_conv1d_update_reference(x[..., t], our_reference_state, weight, bias, activation)
        torch.testing.assert_close(out, expected, **TOLERANCE[dtype])
        torch.testing.assert_close(out, ours, **TOLERANCE[dtype])
        torch.testing.assert_close(state, mamba_state, rtol=0, atol=0)
        outputs.append(out)
    torch.testing.assert_close(torch.stack(outputs, -1), causal_conv1d(x, weight, bias, activation), **TOLERANCE[dtype])


def in_wider_rows(tensor: torch.Tensor, offset: int = 3, extra: int = 5) -> torch.Tensor:
    """The same (B, X) values as a view into (B, offset + X + extra) rows, as a projection's output slices are."""
    rows = torch.full((tensor.shape[0], offset + tensor.shape[1] + extra), float("nan"), dtype=tensor.dtype)
    rows[:, offset:offset + tensor.shape[1]] = tensor
    return rows[:, offset:offset + tensor.shape[1]]


def test_step_ops_read_views_into_wider_rows_as_the_mixer_passes_them():
    inputs, state = make_step_inputs(3, 7, 16, torch.float32, with_options=True)
    views = {name: in_wider_rows(inputs[name]) if name in ("x", "dt", "B", "C", "z") else inputs[name]
             for name in inputs}
    assert not views["B"].is_contiguous()
    view_state = state.clone()
    torch.testing.assert_close(selective_state_update(view_state, **views, dt_softplus=True),
                               selective_state_update(state, **inputs, dt_softplus=True), rtol=0, atol=0)
    torch.testing.assert_close(view_state, state, rtol=0, atol=0)
    weight, conv_state = torch.randn(7, 4), torch.randn(3, 7, 4)
    view_conv_state = conv_state.clone()
    torch.testing.assert_close(causal_conv1d_update(views["x"], view_conv_state, weight, None, "silu"),
                               causal_conv1d_update(inputs["x"], conv_state, weight, None, "silu"), rtol=0, atol=0)
    torch.testing.assert_close(view_conv_state, conv_state, rtol=0, atol=0)


def test_bad_step_inputs_raise_clear_errors():
    inputs, state = make_step_inputs(3, 7, 16, torch.float32, with_options=True)
    with pytest.raises(ValueError, match=r"B must have shape \(batch, d_state\)"):
        selective_state_update(state, **{**inputs, "B": torch.zeros(3, 15)})
    with pytest.raises(ValueError, match="state must have shape"):
        selective_state_update(state[0], **inputs)
    with pytest.raises(ValueError, match="activation must be one of"):
        causal_conv1d(torch.zeros(1, 2, 3), torch.zeros(2, 4), activation="relu")
    with pytest.raises(ValueError, match="causal_conv1d_update: need x"):
        causal_conv1d_update(torch.zeros(1, 3), torch.zeros(1, 2, 4), torch.zeros(2, 4))
