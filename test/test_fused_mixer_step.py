"""The fused mixer step (`ops/mixer_step.py`): equal to the op-by-op step, and used only where it applies.

The oracle is the mixer's own unfused step (`MambaMixer._unfused_step`), itself held to mamba-ssm's step in
test_mamba_mixer.py: both do the same operations in the same order, so their results must be equal bit for bit.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from espnet_samba.modules.mamba_mixer import MambaMixer, MambaState
from espnet_samba.ops.cpu_kernels import load_cpu_kernels
from espnet_samba.ops.mixer_step import fused_mixer_step_applies

D_MODEL, D_STATE, BATCH, STEPS = 24, 16, 3, 9


@pytest.fixture(scope="module", autouse=True)
def kernels_built():
    kernels = load_cpu_kernels()
    if not kernels.available:
        pytest.fail(f"the fused CPU kernels did not build: {kernels.unavailable_reason}")


def make_mixer(dtype: torch.dtype = torch.float32, **options) -> MambaMixer:
    torch.manual_seed(0)
    mixer = MambaMixer(D_MODEL, d_state=D_STATE, **options).to(dtype)
    with torch.no_grad():  # a trained-looking state: no zero biases
        mixer.conv1d.bias.normal_()
        mixer.D.normal_()
    return mixer


def applies(mixer: MambaMixer, frame: torch.Tensor, state: MambaState) -> bool:
    linears = (mixer.in_proj, mixer.x_proj, mixer.dt_proj, mixer.out_proj)
    return fused_mixer_step_applies(frame, state.conv_state, state.ssm_state, linears,
                                    (mixer.conv1d.weight, mixer.A_log, mixer.D))


def copy_state(state: MambaState) -> MambaState:
    return MambaState(state.conv_state.clone(), state.ssm_state.clone())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("d_state", [1, 16, 20])
def test_fused_step_equals_the_unfused_step_bit_for_bit(dtype, d_state):
    torch.manual_seed(0)
    mixer = MambaMixer(D_MODEL, d_state=d_state).to(dtype)
    frames = torch.randn(STEPS, BATCH, D_MODEL, dtype=dtype)
    fused_state = mixer.allocate_inference_cache(BATCH)
    unfused_state = copy_state(fused_state)
    with torch.no_grad():
        assert applies(mixer, frames[0], fused_state)
        for frame in frames:
            torch.testing.assert_close(mixer.step(frame, fused_state), mixer._unfused_step(frame, unfused_state),
                                       rtol=0, atol=0)
    torch.testing.assert_close(fused_state.conv_state, unfused_state.conv_state, rtol=0, atol=0)
    torch.testing.assert_close(fused_state.ssm_state, unfused_state.ssm_state, rtol=0, atol=0)


def test_with_gradients_enabled_the_unfused_step_runs_and_agrees():
    mixer = make_mixer()
    frame, state = torch.randn(BATCH, D_MODEL), mixer.allocate_inference_cache(BATCH)
    fused_state = copy_state(state)
    assert not applies(mixer, frame, state)  # the fused op has no autograd formula
    with_gradients = mixer.step(frame, state)
    with torch.no_grad():
        torch.testing.assert_close(with_gradients.detach(), mixer.step(frame, fused_state), rtol=0, atol=0)


class LowRankAdaptedLinear(nn.Linear):
    """What LoRA does to a projection: a subclass of nn.Linear whose forward adds a path of its own."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + 1.0


def test_projections_that_are_not_plain_linears_take_the_unfused_step():
    mixer = make_mixer()
    adapted = LowRankAdaptedLinear(mixer.out_proj.in_features, mixer.out_proj.out_features, bias=False)
    adapted.load_state_dict(mixer.out_proj.state_dict())
    plain_state = mixer.allocate_inference_cache(BATCH)
    frame = torch.randn(BATCH, D_MODEL)
    with torch.no_grad():
        plain = mixer.step(frame, plain_state)
        mixer.out_proj = adapted
        adapted_state = mixer.allocate_inference_cache(BATCH)
        assert not applies(mixer, frame, adapted_state)
        torch.testing.assert_close(mixer.step(frame, adapted_state), plain + 1.0)

        quantized = torch.ao.quantization.quantize_dynamic(make_mixer(), {nn.Linear}, dtype=torch.qint8)
        quantized_state = quantized.allocate_inference_cache(BATCH)
        assert not applies(quantized, frame, quantized_state)
        assert quantized.step(frame, quantized_state).shape == (BATCH, D_MODEL)


def test_bf16_models_and_switched_off_kernels_take_the_unfused_step(monkeypatch):
    frame = torch.randn(BATCH, D_MODEL)
    with torch.no_grad():
        bf16 = make_mixer(torch.bfloat16)
        assert not applies(bf16, frame.bfloat16(), bf16.allocate_inference_cache(BATCH))
        mixer = make_mixer()
        state = mixer.allocate_inference_cache(BATCH)
        assert applies(mixer, frame, state)
        import espnet_samba.ops.mixer_step as mixer_step

        monkeypatch.setattr(mixer_step, "use_cpu_kernels", lambda tensor: False)
        assert not applies(mixer, frame, state)


def test_the_fused_op_names_a_mismatched_state():
    mixer = make_mixer()
    ops = load_cpu_kernels().ops
    state = mixer.allocate_inference_cache(BATCH)
    with pytest.raises(RuntimeError, match=r"ssm_state must be"):
        ops.mamba_mixer_step(
            torch.randn(BATCH, D_MODEL), state.conv_state, state.ssm_state[:, :, :-1].contiguous(),
            mixer.in_proj.weight, None, mixer.conv1d.weight[:, 0, :].contiguous(), mixer.conv1d.bias,
            mixer.x_proj.weight, mixer.dt_proj.weight, mixer.dt_proj.bias, mixer.A_log, mixer.D,
            mixer.out_proj.weight, None,
        )
