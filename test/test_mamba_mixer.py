"""`MambaMixer` against `mamba_ssm.modules.mamba_simple.Mamba` and `mamba_inner_ref`, and against its own `step`."""
from __future__ import annotations

import math
import types

import pytest
import torch

from espnet_samba.modules.mamba_mixer import MambaMixer

# Every test on both CPU backends: the fused kernels and the pure-PyTorch fallback (conftest.cpu_backend).
pytestmark = pytest.mark.usefixtures("cpu_backend")

D_MODEL, D_STATE, LENGTH = 16, 8, 13
TOLERANCE = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture
def mamba_reference_path(mamba_reference, monkeypatch) -> types.SimpleNamespace:
    """mamba-ssm with every kernel entry point replaced by its reference function, or by None where `Mamba` then
    falls back to its own PyTorch code (convolution and state update)."""
    monkeypatch.setattr(mamba_reference.mamba_simple, "selective_scan_fn", mamba_reference.selective_scan_ref)
    monkeypatch.setattr(mamba_reference.mamba_simple, "causal_conv1d_fn", None)
    monkeypatch.setattr(mamba_reference.mamba_simple, "causal_conv1d_update", None)
    monkeypatch.setattr(mamba_reference.mamba_simple, "selective_state_update", None)
    interface = mamba_reference.selective_scan_interface
    monkeypatch.setattr(interface, "selective_scan_fn", mamba_reference.selective_scan_ref)
    monkeypatch.setattr(interface, "causal_conv1d_fn", mamba_reference.causal_conv1d_ref)
    return mamba_reference


def make_pair(mamba_reference_path, seed: int = 0):
    torch.manual_seed(seed)
    ours = MambaMixer(D_MODEL, d_state=D_STATE)
    theirs = mamba_reference_path.mamba_simple.Mamba(D_MODEL, d_state=D_STATE, use_fast_path=False)
    return ours, theirs


def random_input(batch: int = 2, length: int = LENGTH, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, length, D_MODEL, generator=torch.Generator().manual_seed(seed))


def test_state_dict_keys_and_shapes_equal_mamba_ssm(mamba_reference_path):
    ours, theirs = make_pair(mamba_reference_path)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}


@pytest.mark.parametrize("direction", ["mamba-ssm into ours", "ours into mamba-ssm"])
def test_loaded_weights_give_mamba_ssm_outputs(mamba_reference_path, direction):
    ours, theirs = make_pair(mamba_reference_path)
    source, target = (theirs, ours) if direction == "mamba-ssm into ours" else (ours, theirs)
    target.load_state_dict(source.state_dict())
    x = random_input()
    torch.testing.assert_close(ours(x), theirs(x), **TOLERANCE)


def test_forward_and_gradients_match_mamba_inner_ref(mamba_reference_path):
    ours, _ = make_pair(mamba_reference_path)
    x = random_input()
    xz = ours.in_proj(x).transpose(1, 2)
    expected = mamba_reference_path.mamba_inner_ref(
        xz, ours.conv1d.weight, ours.conv1d.bias, ours.x_proj.weight, ours.dt_proj.weight, ours.out_proj.weight,
        ours.out_proj.bias, -torch.exp(ours.A_log.float()), D=ours.D.float(),
        delta_bias=ours.dt_proj.bias.float(), delta_softplus=True,
    )
    actual = ours(x)
    torch.testing.assert_close(actual, expected, **TOLERANCE)
    params = list(ours.parameters())
    grad_out = torch.randn(actual.shape, generator=torch.Generator().manual_seed(2))
    actual_grads = torch.autograd.grad(actual, params, grad_out)
    for got, want in zip(actual_grads, torch.autograd.grad(expected, params, grad_out)):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_step_matches_mamba_ssm_step(mamba_reference_path):
    ours, theirs = make_pair(mamba_reference_path)
    theirs.load_state_dict(ours.state_dict())
    x = random_input()
    state = ours.allocate_inference_cache(2)
    conv_state, ssm_state = torch.zeros_like(state.conv_state), torch.zeros_like(state.ssm_state)
    with torch.no_grad():
        for t in range(LENGTH):
            expected, conv_state, ssm_state = theirs.step(x[:, t : t + 1], conv_state, ssm_state)
            torch.testing.assert_close(ours.step(x[:, t : t + 1], state), expected, **TOLERANCE)
    torch.testing.assert_close(state.ssm_state, ssm_state, **TOLERANCE)
    torch.testing.assert_close(state.conv_state, conv_state, **TOLERANCE)


def test_initialisation_statistics_match_mamba_ssm(mamba_reference_path):
    d_model, d_state, dt_min, dt_max = 128, 16, 0.002, 0.05
    torch.manual_seed(0)
    ours = MambaMixer(d_model, d_state=d_state, dt_min=dt_min, dt_max=dt_max)
    theirs = mamba_reference_path.mamba_simple.Mamba(d_model, d_state=d_state, dt_min=dt_min, dt_max=dt_max)
    for module in (ours, theirs):
        expected_A_log = torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).expand(2 * d_model, -1)
        torch.testing.assert_close(module.A_log, expected_A_log, rtol=0, atol=0)
        torch.testing.assert_close(module.D, torch.ones(2 * d_model), rtol=0, atol=0)
        dt = torch.nn.functional.softplus(module.dt_proj.bias)
        assert dt.min() >= dt_min * (1 - 1e-4) and dt.max() <= dt_max * (1 + 1e-4)
        bound = module.dt_rank**-0.5
        assert module.dt_proj.weight.abs().max() <= bound
    # Log-uniform Δ and uniform dt_proj.weight: compare the first two moments of both modules' draws.
    log_dt = [torch.log(torch.nn.functional.softplus(m.dt_proj.bias)) for m in (ours, theirs)]
    assert abs(log_dt[0].mean() - log_dt[1].mean()) < 0.25 * (math.log(dt_max) - math.log(dt_min))
    assert abs(log_dt[0].std() / log_dt[1].std() - 1) < 0.2
    weights = [m.dt_proj.weight for m in (ours, theirs)]
    assert abs(weights[0].std() / weights[1].std() - 1) < 0.2
    for name in ("in_proj.weight", "x_proj.weight", "out_proj.weight", "conv1d.weight"):
        stds = [dict(m.named_parameters())[name].std() for m in (ours, theirs)]
        assert abs(stds[0] / stds[1] - 1) < 0.1, name


def test_stepping_equals_forward_and_its_final_state():
    torch.manual_seed(0)
    mixer = MambaMixer(D_MODEL, d_state=D_STATE)
    x = random_input()
    with torch.no_grad():
        full, final = mixer(x, return_final_state=True)
        state = mixer.allocate_inference_cache(2)
        steps = torch.cat([mixer.step(x[:, t : t + 1], state) for t in range(LENGTH)], dim=1)
    torch.testing.assert_close(steps, full, **TOLERANCE)
    torch.testing.assert_close(final.ssm_state, state.ssm_state, **TOLERANCE)
    torch.testing.assert_close(final.conv_state, state.conv_state, **TOLERANCE)


def test_final_state_of_padded_batch_equals_state_after_stepping_each_sequence():
    torch.manual_seed(0)
    mixer = MambaMixer(D_MODEL, d_state=D_STATE)
    lengths = torch.tensor([LENGTH, 1, 6])
    x = random_input(batch=3)
    with torch.no_grad():
        out, final = mixer(x, lengths=lengths, return_final_state=True)
        unpadded = mixer(x)
        for b, length in enumerate(lengths.tolist()):
            state = mixer.allocate_inference_cache(1)
            for t in range(length):
                mixer.step(x[b : b + 1, t : t + 1], state)
            torch.testing.assert_close(final.ssm_state[b : b + 1], state.ssm_state, **TOLERANCE)
            torch.testing.assert_close(final.conv_state[b : b + 1], state.conv_state, **TOLERANCE)
            torch.testing.assert_close(out[b, :length], unpadded[b, :length], **TOLERANCE)


def test_continuing_from_a_final_state_equals_one_longer_forward():
    torch.manual_seed(0)
    mixer = MambaMixer(D_MODEL, d_state=D_STATE)
    x = random_input(length=LENGTH + 4)
    with torch.no_grad():
        full = mixer(x)
        _, state = mixer(x[:, :LENGTH], return_final_state=True)
        continued = torch.cat([mixer.step(x[:, t : t + 1], state) for t in range(LENGTH, LENGTH + 4)], dim=1)
    torch.testing.assert_close(continued, full[:, LENGTH:], **TOLERANCE)


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    mixer = MambaMixer(D_MODEL, d_state=D_STATE, bias=True)
    x = random_input().requires_grad_(True)
    mixer(x).square().mean().backward()
    for name, parameter in mixer.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert x.grad.abs().sum() > 0
