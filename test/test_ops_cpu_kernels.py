"""The fused CPU kernels against mamba-ssm's / causal-conv1d's reference functions and against the fallback.

Beyond the shared op tests (test_ops_selective_scan.py, test_ops_step.py and test_mamba_mixer.py run on both
backends): every length across the kernels' own chunk boundaries, channel counts that leave a partial vector
block, the start state and per-sequence lengths, strided inputs as the mixer passes them, saved memory, thread
counts, and the fallback's single warning when the kernels cannot be built.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Dict

import pytest
import torch

from espnet_samba.ops import causal_conv1d, selective_scan
from espnet_samba.ops.chunked_scan import chunked_selective_scan
from espnet_samba.ops.cpu_kernels import load_cpu_kernels
from espnet_samba.ops.fused_scan import fused_chunk_length, fused_selective_scan
from espnet_samba.ops.reference import selective_scan_reference

from test_ops_selective_scan import (
    SCAN_INPUTS,
    largest_saved_tensor,
    assert_same_scan,
    make_scan_inputs,
    run_with_gradients,
)


@pytest.fixture(scope="module", autouse=True)
def kernels_built():
    kernels = load_cpu_kernels()
    if not kernels.available:
        pytest.fail(f"the fused CPU kernels did not build: {kernels.unavailable_reason}")


def lengths_around_chunks(d_state: int):
    chunk = fused_chunk_length(d_state)
    return (1, 2, chunk - 1, chunk, chunk + 1, 2 * chunk + 3)


@pytest.mark.parametrize("with_options", [True, False], ids=["D-z-bias-softplus", "plain"])
@pytest.mark.parametrize("d_state, length", [(n, length) for n in (1, 16, 64) for length in lengths_around_chunks(n)])
def test_scan_and_all_gradients_match_the_reference_in_float64(d_state, length, with_options):
    """Against our float64 reference: mamba-ssm's `selective_scan_ref` computes in float32 whatever its inputs
    (it is checked against ours in test_ops_selective_scan.py, and against the kernels in float32 below)."""
    inputs = make_scan_inputs(2, 37, d_state, length, torch.float64, with_options)  # 37: two full blocks and a part
    expected = run_with_gradients(selective_scan_reference, inputs, with_options)
    actual = run_with_gradients(fused_selective_scan, inputs, with_options)
    assert actual[0].dtype == torch.float64 and actual[1].dtype == torch.float64
    assert_same_scan(actual, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("d_state, length", [(n, length) for n in (8, 16) for length in lengths_around_chunks(n)])
def test_float32_with_start_state_and_lengths_matches_float64(d_state, length):
    """d_state 8 and 16 in float32 keep the state in vector registers (selective_scan.cpp's
    forward_block_in_registers): against the kernels' float64 path (libm exp, any d_state), itself checked against
    the reference and gradcheck above, with a start state, per-sequence lengths and a partial channel block."""
    inputs = make_scan_inputs(3, 37, d_state, length, torch.float32, with_options=True)
    generator = torch.Generator().manual_seed(7)
    inputs["initial_state"] = torch.randn(3, 37, d_state, generator=generator).requires_grad_(True)
    lengths = torch.tensor([length, max(1, length // 2), 1])
    in_float64 = {name: t.detach().double().requires_grad_(True) for name, t in inputs.items()}
    y, state, grads = run_with_gradients(fused_selective_scan, inputs, True, state_in_loss=False, lengths=lengths)
    assert y.dtype == torch.float32
    y64, state64, grads64 = run_with_gradients(fused_selective_scan, in_float64, True, state_in_loss=False,
                                               lengths=lengths)
    # float32 rounding over up to 259 frames from a unit-variance start state, and sums over batch and time in
    # the parameters' gradients: each tensor is held to 2e-4 of its own largest value (which the generic path,
    # d_state 7, 9 or 17, meets too); a wrong state row, chunk or start state is off by order 1.
    pairs = {"y": (y, y64), "last state": (state, state64), **{f"grad {n}": (grads[n], grads64[n]) for n in grads}}
    for name, (value, expected) in pairs.items():
        error = (value.double() - expected).abs().max().item()
        assert error <= 2e-4 * expected.abs().max().item() + 1e-6, f"{name}: max error {error:.3g}"


@pytest.mark.parametrize("with_options", [True, False], ids=["D-z-bias-softplus", "plain"])
@pytest.mark.parametrize("d_state", [8, 16])
def test_register_resident_forward_equals_the_generic_forward_bit_for_bit(d_state, with_options):
    """forward_block_in_registers (float32, d_state 8 and 16: its state in registers, the next frame's softplus
    computed a frame ahead and the gate before the state rows, on the AVX-512 forms of softplus and sigmoid)
    against forward_block, the path of every other d_state, on the portable forms that the backward and the
    decoding step use too: one more state row whose B, C and start state are zero adds exactly zero to every
    output and leaves the other rows alone, so the (d_state + 1)-row scan must give the same bits."""
    batch, dim, length = 3, 37, 150  # 37 channels: two full vector blocks and a partial one
    inputs = {name: t.detach() for name, t in make_scan_inputs(batch, dim, d_state, length, torch.float32,
                                                                with_options).items()}
    initial_state = torch.randn(batch, dim, d_state, generator=torch.Generator().manual_seed(3))
    widened = {**inputs, "A": torch.cat([inputs["A"], -torch.ones(dim, 1)], dim=1),
               "B": torch.cat([inputs["B"], torch.zeros(batch, 1, length)], dim=1),
               "C": torch.cat([inputs["C"], torch.zeros(batch, 1, length)], dim=1)}
    widened_initial_state = torch.cat([initial_state, torch.zeros(batch, dim, 1)], dim=2)
    options = dict(delta_softplus=with_options, return_last_state=True, lengths=torch.tensor([length, 77, 1]))
    with torch.no_grad():
        y, state = fused_selective_scan(**inputs, initial_state=initial_state, **options)
        y_generic, state_generic = fused_selective_scan(**widened, initial_state=widened_initial_state, **options)
    torch.testing.assert_close(y, y_generic, rtol=0, atol=0)
    torch.testing.assert_close(state, state_generic[..., :d_state], rtol=0, atol=0)


@pytest.mark.parametrize("d_state", [8, 16, 5])
def test_rows_off_the_cache_line_grid_give_the_bits_of_rows_on_it(d_state):
    """u, Δ and z as the first 32 channels of 40-channel channels-last tensors (rows at 32-byte offsets from the
    64-byte grid on every other frame) and as channels 1-32 of 48-channel ones (off it at 4-byte offsets on every
    frame), against the same values in tensors of exactly 32 channels (every row on the grid). The
    register-resident forward (d_state 8, 16) reads rows on the grid with one 512-bit load and rows off it with
    four 128-bit ones (csrc/cache_lines.h); the generic forward (5) and the backward read every row the latter
    way, which the reference tests hold. The values read, and so every bit of the outputs and gradients, must be
    the same."""
    batch, dim, length = 2, 32, 70
    values = {name: t.detach() for name, t in make_scan_inputs(batch, dim, d_state, length, torch.float32,
                                                                with_options=True).items()}
    per_frame = ("u", "delta", "z")

    def channels_last(tensor: torch.Tensor, width: int, first: int) -> torch.Tensor:
        """`tensor` (B, D, L) as a (B, D, L) view of channels [first, first + D) of a (B, L, width) tensor."""
        wide = torch.zeros(batch, length, width)
        wide[..., first:first + dim] = tensor.transpose(1, 2)
        return wide[..., first:first + dim].transpose(1, 2)

    def scan_of(width: int, first: int):
        inputs = {name: (channels_last(t, width, first) if name in per_frame else t.clone()).requires_grad_(True)
                  for name, t in values.items()}
        return run_with_gradients(fused_selective_scan, inputs, True)

    on_grid = scan_of(dim, 0)
    for width, first in ((40, 0), (48, 1)):
        assert_same_scan(scan_of(width, first), on_grid, rtol=0, atol=0)


@pytest.mark.parametrize("d_state, length", [(16, 1), (16, 200), (5, 77)])
def test_float32_matches_mamba_ssm_reference(mamba_reference, d_state, length):
    inputs = make_scan_inputs(3, 20, d_state, length, torch.float32, with_options=True)
    expected = run_with_gradients(mamba_reference.selective_scan_ref, inputs, True)
    actual = run_with_gradients(fused_selective_scan, inputs, True)
    assert_same_scan(actual, expected, rtol=2e-4, atol=2e-5)


def test_gradcheck_with_start_state_and_lengths():
    inputs = make_scan_inputs(2, 5, 3, 11, torch.float64, with_options=True)
    initial_state = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([11, 6])

    def scan(*tensors: torch.Tensor):
        return fused_selective_scan(
            *tensors[:5], D=tensors[5], z=tensors[6], delta_bias=tensors[7], delta_softplus=True,
            return_last_state=True, initial_state=tensors[8], lengths=lengths,
        )

    assert torch.autograd.gradcheck(scan, tuple(inputs[name] for name in SCAN_INPUTS) + (initial_state,))


def _split_in_time(inputs: Dict[str, torch.Tensor], start: int, end: int) -> Dict[str, torch.Tensor]:
    return {name: tensor[..., start:end] if tensor.dim() == 3 else tensor for name, tensor in inputs.items()}


@pytest.mark.usefixtures("cpu_backend")
def test_a_scan_continued_from_its_last_state_equals_one_longer_scan():
    inputs = make_scan_inputs(2, 19, 16, 150, torch.float64, with_options=True)
    y_whole, state_whole, grads_whole = run_with_gradients(selective_scan, inputs, True, state_in_loss=False)
    first, second = _split_in_time(inputs, 0, 70), _split_in_time(inputs, 70, 150)
    y_first, state_first = selective_scan(**first, delta_softplus=True, return_last_state=True)
    start = state_first.clone().requires_grad_(True)
    y_second, state_second = selective_scan(**second, delta_softplus=True, return_last_state=True, initial_state=start)
    torch.testing.assert_close(torch.cat([y_first, y_second], dim=-1), y_whole, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(state_second, state_whole, rtol=1e-10, atol=1e-10)
    # The final state carries no gradient, so the halves are cut apart at frame 70; the second half's frames get
    # the whole scan's gradients, and its start state one of its own.
    generator = torch.Generator().manual_seed(123)
    y_weights = torch.randn(y_whole.shape, generator=generator, dtype=torch.float64)
    loss = (torch.cat([y_first, y_second], dim=-1) * y_weights).sum()
    frame_inputs = [name for name, tensor in inputs.items() if tensor.dim() == 3]
    grads = torch.autograd.grad(loss, [inputs[name] for name in frame_inputs] + [start])
    for name, grad in zip(frame_inputs, grads):
        torch.testing.assert_close(
            grad[..., 70:], grads_whole[name][..., 70:], rtol=1e-10, atol=1e-10, msg=lambda m: f"grad {name}: {m}"
        )
    assert grads[-1].abs().sum() > 0


@pytest.mark.usefixtures("cpu_backend")
def test_padded_batch_with_lengths_equals_each_sequence_alone():
    lengths = [150, 64, 1]
    inputs = make_scan_inputs(3, 21, 8, max(lengths), torch.float64, with_options=True)
    y, state = selective_scan(**inputs, delta_softplus=True, return_last_state=True, lengths=torch.tensor(lengths))
    for b, length in enumerate(lengths):
        alone = {name: t[b:b + 1, :, :length] if t.dim() == 3 else t for name, t in inputs.items()}
        y_alone, state_alone = selective_scan(**alone, delta_softplus=True, return_last_state=True)
        torch.testing.assert_close(y[b:b + 1, :, :length], y_alone, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(state[b:b + 1], state_alone, rtol=1e-12, atol=1e-12)


def test_kernels_equal_the_fallback_on_the_mixers_strided_layout():
    """u, Δ, z as (B, D, L) views of channels-last projections (z with time stride 2D), as MambaMixer passes."""
    batch, dim, d_state, length = 3, 40, 16, 130
    generator = torch.Generator().manual_seed(5)
    xz = torch.randn(batch, length, 2 * dim, generator=generator)
    u, z = xz.transpose(1, 2).chunk(2, dim=1)
    projection = torch.randn(batch, length, 2 * d_state, generator=generator)
    B, C = projection.transpose(1, 2).chunk(2, dim=1)
    delta = torch.randn(batch, length, dim, generator=generator).transpose(1, 2) - 1.0
    A = -(0.1 + 3.0 * torch.rand(dim, d_state, generator=generator))
    inputs = {"u": u, "delta": delta, "A": A, "B": B, "C": C, "D": torch.randn(dim, generator=generator), "z": z,
              "delta_bias": torch.randn(dim, generator=generator)}
    inputs = {name: tensor.detach().requires_grad_(True) for name, tensor in inputs.items()}
    fused = run_with_gradients(fused_selective_scan, inputs, True)
    fallback = run_with_gradients(chunked_selective_scan, inputs, True)
    assert_same_scan(fused, fallback, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_inputs_are_computed_in_float32(dtype):
    inputs = {
        name: tensor.detach().to(dtype).requires_grad_(True)
        for name, tensor in make_scan_inputs(2, 20, 16, 90, torch.float32, with_options=True).items()
    }
    y, state, grads = run_with_gradients(fused_selective_scan, inputs, True)
    float32_inputs = {name: tensor.detach().float().requires_grad_(True) for name, tensor in inputs.items()}
    y_ref, state_ref, grads_ref = run_with_gradients(fused_selective_scan, float32_inputs, True)
    assert y.dtype == dtype and state.dtype == torch.float32
    assert all(grads[name].dtype == dtype for name in grads)
    torch.testing.assert_close(y, y_ref.to(dtype), rtol=0, atol=0)
    torch.testing.assert_close(state, state_ref, rtol=0, atol=0)


@pytest.mark.parametrize("batch, dim", [(2, 16), (64, 64)])
def test_training_saves_states_only_every_chunk_whatever_the_batch(batch, dim):
    """No K = 1 cliff: the saved states are B x D x N x ceil(L / K) at every batch size."""
    d_state, length = 16, 500
    inputs = make_scan_inputs(batch, dim, d_state, length, torch.float32, with_options=True)
    chunk = fused_chunk_length(d_state)
    saved_states = batch * dim * d_state * -(-length // chunk)
    largest_input = batch * max(dim, d_state) * length
    assert chunk >= 8
    saved = largest_saved_tensor(fused_selective_scan, inputs)
    assert saved == max(saved_states, largest_input) < batch * dim * d_state * length


@pytest.mark.parametrize("threads", [1, 2])
def test_results_do_not_depend_on_the_thread_count(threads):
    inputs = make_scan_inputs(1, 64, 16, 100, torch.float64, with_options=True)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = run_with_gradients(fused_selective_scan, inputs, True)
        torch.set_num_threads(threads)
        actual = run_with_gradients(fused_selective_scan, inputs, True)
    finally:
        torch.set_num_threads(previous)
    assert_same_scan(actual, single, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("width", [2, 3, 4])
@pytest.mark.parametrize("length", [1, 3, 31, 32, 33, 100])
def test_causal_conv_and_gradients_match_causal_conv1d_reference(mamba_reference, width, length):
    generator = torch.Generator().manual_seed(width * 1000 + length)
    # x as the mixer passes it: the (B, D, L) view of a channels-last projection.
    x = torch.randn(2, length, 37, generator=generator, dtype=torch.float64).transpose(1, 2).requires_grad_(True)
    weight = torch.randn(37, width, generator=generator, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(37, generator=generator, dtype=torch.float64, requires_grad=True)
    grad_out = torch.randn(2, 37, length, generator=generator, dtype=torch.float64)
    out = causal_conv1d(x, weight, bias, activation="silu")
    expected = mamba_reference.causal_conv1d_ref(x, weight, bias, activation="silu")
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    grads = torch.autograd.grad(out, (x, weight, bias), grad_out)
    expected_grads = torch.autograd.grad(expected, (x, weight, bias), grad_out)
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad, rtol=1e-12, atol=1e-12)


def test_causal_conv_gradcheck_without_bias_or_activation():
    x = torch.randn(2, 5, 9, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, w: causal_conv1d(a, w, None, None), (x, weight))


def _run_with_environment(environment: Dict[str, str], code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-W", "always::RuntimeWarning", "-c", textwrap.dedent(code)],
        env={**os.environ, **environment}, capture_output=True, text=True, timeout=300,
    )


SCAN_AGAINST_REFERENCE = """
    import torch
    from espnet_samba.ops import selective_scan
    from espnet_samba.ops.cpu_kernels import load_cpu_kernels
    from espnet_samba.ops.reference import selective_scan_reference
    u, delta, z = torch.randn(3, 2, 4, 9).unbind(0)
    A, (B, C) = -torch.rand(4, 3), torch.randn(2, 2, 3, 9).unbind(0)
    for _ in range(3):
        y = selective_scan(u, delta, A, B, C, z=z, delta_softplus=True)
    torch.testing.assert_close(y, selective_scan_reference(u, delta, A, B, C, z=z, delta_softplus=True))
    print("available" if load_cpu_kernels().available else "fallback:", load_cpu_kernels().unavailable_reason)
"""


def test_a_failed_build_warns_once_and_the_fallback_runs(tmp_path):
    done = _run_with_environment({"CXX": "/bin/false", "SAMBA_KERNEL_CACHE": str(tmp_path)}, SCAN_AGAINST_REFERENCE)
    assert done.returncode == 0, done.stderr
    assert "fallback:" in done.stdout and str(tmp_path) in done.stdout
    warnings = [line for line in done.stderr.splitlines() if "fused CPU kernels are unavailable" in line]
    assert len(warnings) == 1, done.stderr
    assert "pure-PyTorch selective scan runs instead" in warnings[0]


def test_switching_the_kernels_off_uses_the_fallback_without_a_warning(tmp_path):
    done = _run_with_environment({"SAMBA_CPU_KERNELS": "off", "SAMBA_KERNEL_CACHE": str(tmp_path)},
                                 SCAN_AGAINST_REFERENCE)
    assert done.returncode == 0, done.stderr
    assert "fallback: disabled by SAMBA_CPU_KERNELS=off" in done.stdout
    assert "unavailable" not in done.stderr
    assert not any(tmp_path.iterdir()), "nothing is built when the kernels are off"


def test_the_public_ops_run_the_kernels_on_cpu_tensors():
    inputs = {k: v.detach() for k, v in make_scan_inputs(1, 4, 2, 5, torch.float32, with_options=False).items()}
    with torch.profiler.profile() as profile:
        selective_scan(**inputs)
        causal_conv1d(inputs["u"], torch.randn(4, 4), None, "silu")
    names = {event.name for event in profile.events()}
    assert {"espnet_samba::selective_scan_forward", "espnet_samba::causal_conv1d_forward"} <= names
