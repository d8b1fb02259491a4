"""The CUDA kernels behind `espnet_samba.ops` against our CPU path (run only where the kernels are built)."""
from __future__ import annotations

import pytest
import torch

from espnet_samba.modules.mamba_mixer import MambaMixer
from espnet_samba.ops import (
    causal_conv1d,
    causal_conv1d_update,
    load_cuda_kernels,
    selective_scan,
    selective_state_update,
)

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        not load_cuda_kernels().available, reason=f"CUDA kernels unavailable: {load_cuda_kernels().unavailable_reason}"
    ),
]
CUDA = torch.device("cuda")


def scan_inputs(batch: int, dim: int, d_state: int, length: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return {
        "u": torch.randn(batch, dim, length, generator=generator),
        "delta": torch.randn(batch, dim, length, generator=generator) - 1.0,
        "A": -(0.1 + 3.0 * torch.rand(dim, d_state, generator=generator)),
        "B": torch.randn(batch, d_state, length, generator=generator),
        "C": torch.randn(batch, d_state, length, generator=generator),
        "D": torch.randn(dim, generator=generator),
        "z": torch.randn(batch, dim, length, generator=generator),
        "delta_bias": 0.5 * torch.randn(dim, generator=generator),
    }


def scan_with_gradients(inputs, device: torch.device):
    leaves = {name: tensor.to(device).requires_grad_(True) for name, tensor in inputs.items()}
    y, last_state = selective_scan(**leaves, delta_softplus=True, return_last_state=True)
    grad_y = torch.randn(y.shape, generator=torch.Generator().manual_seed(9)).to(device)
    grads = torch.autograd.grad(y, list(leaves.values()), grad_y)
    return y.cpu(), last_state.cpu(), {name: grad.cpu() for name, grad in zip(leaves, grads)}


@pytest.mark.parametrize("length", [1, 37, 700])
@pytest.mark.parametrize("d_state", [1, 16, 64])
def test_selective_scan_kernel_matches_cpu_path(length, d_state):
    inputs = scan_inputs(2, 24, d_state, length)
    y_gpu, state_gpu, grads_gpu = scan_with_gradients(inputs, CUDA)
    y_cpu, state_cpu, grads_cpu = scan_with_gradients(inputs, torch.device("cpu"))
    torch.testing.assert_close(y_gpu, y_cpu, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(state_gpu, state_cpu, rtol=1e-3, atol=1e-3)
    for name in grads_cpu:
        torch.testing.assert_close(grads_gpu[name], grads_cpu[name], rtol=5e-3, atol=5e-3, msg=name)


def test_selective_state_update_kernel_matches_cpu_path():
    generator = torch.Generator().manual_seed(1)
    batch, dim, d_state = 5, 32, 16
    step = {
        "x": torch.randn(batch, dim, generator=generator),
        "dt": torch.randn(batch, dim, generator=generator),
        "A": -(0.1 + torch.rand(dim, d_state, generator=generator)),
        "B": torch.randn(batch, d_state, generator=generator),
        "C": torch.randn(batch, d_state, generator=generator),
        "D": torch.randn(dim, generator=generator),
        "z": torch.randn(batch, dim, generator=generator),
        "dt_bias": torch.randn(dim, generator=generator),
    }
    state = torch.randn(batch, dim, d_state, generator=generator)
    state_gpu = state.to(CUDA)
    y_gpu = selective_state_update(state_gpu, **{k: v.to(CUDA) for k, v in step.items()}, dt_softplus=True)
    y_cpu = selective_state_update(state, **step, dt_softplus=True)
    torch.testing.assert_close(y_gpu.cpu(), y_cpu, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(state_gpu.cpu(), state, rtol=1e-4, atol=1e-4)


def test_causal_conv_kernels_match_cpu_path():
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(2, 64, 50, generator=generator)
    weight, bias = torch.randn(64, 4, generator=generator), torch.randn(64, generator=generator)
    on_gpu = causal_conv1d(x.to(CUDA), weight.to(CUDA), bias.to(CUDA), activation="silu")
    torch.testing.assert_close(on_gpu.cpu(), causal_conv1d(x, weight, bias, activation="silu"), rtol=1e-4, atol=1e-4)
    state, state_gpu = torch.zeros(2, 64, 4), torch.zeros(2, 64, 4, device=CUDA)
    for t in range(6):
        out_gpu = causal_conv1d_update(x[..., t].to(CUDA), state_gpu, weight.to(CUDA), bias.to(CUDA), "silu")
        out_cpu = causal_conv1d_update(x[..., t], state, weight, bias, "silu")
        torch.testing.assert_close(out_gpu.cpu(), out_cpu, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(state_gpu.cpu(), state, rtol=0, atol=0)


@pytest.mark.parametrize("autocast", [False, True], ids=["float32", "bf16-autocast"])
def test_mixer_on_kernels_matches_cpu_path(autocast):
    torch.manual_seed(0)
    mixer = MambaMixer(64)
    mixer_gpu = MambaMixer(64).to(CUDA)
    mixer_gpu.load_state_dict(mixer.state_dict())
    x = torch.randn(2, 300, 64, generator=torch.Generator().manual_seed(3))
    grad_out = torch.randn(x.shape, generator=torch.Generator().manual_seed(4))
    out_cpu, state_cpu = mixer(x, return_final_state=True)
    out_cpu.backward(grad_out)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
        out_gpu, state_gpu = mixer_gpu(x.to(CUDA), return_final_state=True)
    out_gpu.float().backward(grad_out.to(CUDA))
    tolerance = dict(rtol=5e-2, atol=5e-2) if autocast else dict(rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(out_gpu.float().cpu(), out_cpu, **tolerance)
    torch.testing.assert_close(state_gpu.ssm_state.cpu(), state_cpu.ssm_state, **tolerance)
    for (name, p_cpu), p_gpu in zip(mixer.named_parameters(), mixer_gpu.parameters()):
        scale = p_cpu.grad.abs().max().clamp(min=1e-6)
        torch.testing.assert_close(p_gpu.grad.cpu() / scale, p_cpu.grad / scale, **tolerance, msg=name)


def test_kernel_final_state_carries_no_gradient_and_is_not_the_kernels_buffer():
    leaves = {name: t.to(CUDA).requires_grad_(True) for name, t in scan_inputs(2, 24, 16, 300).items()}
    grad_y = torch.randn(2, 24, 300, device=CUDA)

    def gradients(update_state: bool):
        y, state = selective_scan(**leaves, delta_softplus=True, return_last_state=True)
        assert not state.requires_grad
        if update_state:
            state.mul_(-3.0).add_(1.0)
        return torch.autograd.grad(y, list(leaves.values()), grad_y)

    for got, want in zip(gradients(update_state=True), gradients(update_state=False)):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_float64_cuda_tensors_are_refused_with_the_way_out():
    inputs = {name: t.double().to(CUDA) for name, t in scan_inputs(1, 8, 4, 5).items()}
    with pytest.raises(TypeError, match="float64 CUDA tensors .* run float64 on the CPU"):
        selective_scan(**inputs, delta_softplus=True)
    with pytest.raises(TypeError, match="float64 CUDA tensors"):
        causal_conv1d(inputs["u"], torch.randn(8, 4, device=CUDA, dtype=torch.float64))


def test_state_update_kernel_without_skip_and_bias_matches_cpu_path():
    generator = torch.Generator().manual_seed(5)
    batch, dim, d_state = 3, 16, 8
    step = {name: torch.randn(*shape, generator=generator) for name, shape in
            dict(x=(batch, dim), dt=(batch, dim), B=(batch, d_state), C=(batch, d_state)).items()}
    step["A"] = -(0.1 + torch.rand(dim, d_state, generator=generator))
    state = torch.randn(batch, dim, d_state, generator=generator)
    state_gpu = state.to(CUDA)
    y_gpu = selective_state_update(state_gpu, **{k: v.to(CUDA) for k, v in step.items()}, dt_softplus=True)
    y_cpu = selective_state_update(state, **step, dt_softplus=True)
    torch.testing.assert_close(y_gpu.cpu(), y_cpu, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(state_gpu.cpu(), state, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "dim, width, warning",
    [(12, 4, "d_inner = 12 is not a multiple of 8"), (16, 5, "widths \\(2, 3, 4\\), not d_conv = 5")],
)
def test_conv_configs_the_kernel_cannot_take_warn_and_match_cpu_path(dim, width, warning):
    generator = torch.Generator().manual_seed(6)
    projection = torch.randn(2, 40, 2 * dim, generator=generator)

    def channel_last(xz: torch.Tensor) -> torch.Tensor:  # as MambaMixer passes x: half of in_proj's output
        return xz.transpose(1, 2).chunk(2, dim=1)[0]

    weight, bias = torch.randn(dim, width, generator=generator), torch.randn(dim, generator=generator)
    with pytest.warns(RuntimeWarning, match=warning):
        on_gpu = causal_conv1d(channel_last(projection.to(CUDA)), weight.to(CUDA), bias.to(CUDA), activation="silu")
    on_cpu = causal_conv1d(channel_last(projection), weight, bias, activation="silu")
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=1e-4, atol=1e-4)
