"""The final-state contract every backend shares, and what the ops check before calling a CUDA kernel.

The CUDA-side checks run here on CPU tensors (`espnet_samba.ops.cuda_contract` reads only shapes, strides and
dtypes), and the keyword arguments they build are bound to the installed mamba-ssm / causal-conv1d Python
wrappers' signatures, reached through conftest's stand-ins where the compiled extensions are absent. Whether the
compiled extensions have what those wrappers call is checked at the end, where they are built (marker
`cuda_build`); the kernels' results against the CPU path are test_ops_cuda.py's, on a GPU.
"""
from __future__ import annotations

import ast
import importlib
import importlib.machinery
import inspect
import re
import warnings
from pathlib import Path
from typing import Callable, Dict, List

import pytest
import torch

from espnet_samba.modules.mamba_mixer import MambaMixer
from espnet_samba.ops import selective_scan
from espnet_samba.ops.cuda_contract import (
    causal_conv1d_kernel_arguments,
    causal_conv1d_update_kernel_arguments,
    conv_kernel_refusal,
    selective_scan_kernel_arguments,
    selective_state_update_kernel_arguments,
)
from espnet_samba.ops.kernels import (
    EXTENSION_ENTRY_POINTS,
    KERNEL_WRAPPERS,
    CudaKernels,
    missing_entry_points,
    warn_pytorch_path_on_cuda,
)
from espnet_samba.ops.reference import selective_scan_reference

from test_ops_selective_scan import make_scan_inputs

BATCH, DIM, D_STATE, LENGTH, WIDTH = 2, 16, 4, 7, 4


def scan_tensors(dtype: torch.dtype = torch.float32) -> Dict[str, torch.Tensor]:
    return {name: t.detach() for name, t in make_scan_inputs(BATCH, DIM, D_STATE, LENGTH, dtype, True).items()}


def step_tensors(dtype: torch.dtype = torch.float32) -> Dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    shapes = dict(
        state=(BATCH, DIM, D_STATE), x=(BATCH, DIM), dt=(BATCH, DIM), A=(DIM, D_STATE), B=(BATCH, D_STATE),
        C=(BATCH, D_STATE), D=(DIM,), z=(BATCH, DIM), dt_bias=(DIM,),
    )
    return {name: torch.randn(shape, generator=generator, dtype=dtype) for name, shape in shapes.items()}


def channel_last_conv_input(dim: int) -> torch.Tensor:
    """x (B, D, L) as the Mamba mixer passes it: the first half of a (B, L, 2D) projection, transposed."""
    return torch.randn(BATCH, LENGTH, 2 * dim).transpose(1, 2).chunk(2, dim=1)[0]


# The calls espnet_samba.ops makes, one per CudaKernels field, built by the same functions the ops call.
KERNEL_CALLS: Dict[str, Callable[[], dict]] = {
    "selective_scan_fn": lambda: selective_scan_kernel_arguments(
        **scan_tensors(), delta_softplus=True, return_last_state=True
    ),
    "selective_state_update": lambda: selective_state_update_kernel_arguments(**step_tensors(), dt_softplus=True),
    "causal_conv1d_fn": lambda: causal_conv1d_kernel_arguments(
        channel_last_conv_input(DIM), torch.randn(DIM, WIDTH), torch.randn(DIM), "silu"
    ),
    "causal_conv1d_update": lambda: causal_conv1d_update_kernel_arguments(
        torch.randn(BATCH, DIM), torch.zeros(BATCH, DIM, WIDTH), torch.randn(DIM, WIDTH), torch.randn(DIM), "silu"
    ),
}


# --- The final state: no gradient, and a tensor of its own, on every CPU backend --------------------------------

@pytest.mark.usefixtures("cpu_backend")
@pytest.mark.parametrize("start", ["zeros", "initial_state"])
def test_the_final_state_carries_no_gradient_and_gradients_reach_the_start_state_through_y(start):
    inputs = make_scan_inputs(BATCH, 6, D_STATE, 19, torch.float64, with_options=True)
    initial_state = torch.randn(BATCH, 6, D_STATE, dtype=torch.float64, requires_grad=True)
    extra = dict(initial_state=initial_state) if start == "initial_state" else {}
    leaves = list(inputs.values()) + ([initial_state] if extra else [])
    y_weights = torch.randn(BATCH, 6, 19, dtype=torch.float64)

    y, state = selective_scan(**inputs, delta_softplus=True, return_last_state=True, **extra)
    assert not state.requires_grad and state.grad_fn is None
    grads_with_state_in_loss = torch.autograd.grad((y * y_weights).sum() + state.square().sum(), leaves)
    y_alone = selective_scan(**inputs, delta_softplus=True, **extra)
    for got, want in zip(grads_with_state_in_loss, torch.autograd.grad((y_alone * y_weights).sum(), leaves)):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    if extra:
        assert grads_with_state_in_loss[-1].abs().sum() > 0
    else:
        _, state_expected = selective_scan_reference(**inputs, delta_softplus=True, return_last_state=True)
        torch.testing.assert_close(state, state_expected, rtol=1e-10, atol=1e-10)


@pytest.mark.usefixtures("cpu_backend")
def test_updating_the_final_state_in_place_leaves_y_and_the_backward_unchanged():
    inputs = make_scan_inputs(BATCH, 6, D_STATE, 19, torch.float64, with_options=True)
    y_weights = torch.randn(BATCH, 6, 19, dtype=torch.float64)

    def gradients(update_state: bool) -> List[torch.Tensor]:
        y, state = selective_scan(**inputs, delta_softplus=True, return_last_state=True)
        y_before = y.detach().clone()
        if update_state:
            state.mul_(-3.0).add_(1.0)
        torch.testing.assert_close(y, y_before, rtol=0, atol=0)
        return torch.autograd.grad((y * y_weights).sum(), list(inputs.values()))

    for got, want in zip(gradients(update_state=True), gradients(update_state=False)):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


@pytest.mark.usefixtures("cpu_backend")
def test_a_decoding_step_on_the_mixers_final_state_leaves_the_training_backward_unchanged():
    torch.manual_seed(0)
    mixer = MambaMixer(8, d_state=4)
    x = torch.randn(2, 11, 8)

    def parameter_gradients(step: bool) -> List[torch.Tensor]:
        mixer.zero_grad()
        out, state = mixer(x, return_final_state=True)
        if step:
            mixer.step(torch.randn(2, 8), state)
        out.square().sum().backward()
        return [p.grad.clone() for p in mixer.parameters()]

    for got, want in zip(parameter_gradients(step=True), parameter_gradients(step=False)):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


# --- What the CUDA kernels accept, checked on CPU tensors ------------------------------------------------------

@pytest.mark.parametrize(
    "build, inputs, float64_name",
    [
        (selective_scan_kernel_arguments, lambda: {**scan_tensors(), "delta_softplus": True,
                                                   "return_last_state": False}, "delta"),
        (selective_state_update_kernel_arguments, lambda: {**step_tensors(), "dt_softplus": True}, "state"),
        (causal_conv1d_kernel_arguments,
         lambda: dict(x=torch.randn(BATCH, DIM, LENGTH), weight=torch.randn(DIM, WIDTH), bias=None,
                      activation=None), "weight"),
        (causal_conv1d_update_kernel_arguments,
         lambda: dict(x=torch.randn(BATCH, DIM), conv_state=torch.zeros(BATCH, DIM, WIDTH),
                      weight=torch.randn(DIM, WIDTH), bias=None, activation=None), "conv_state"),
    ],
    ids=["selective_scan", "selective_state_update", "causal_conv1d", "causal_conv1d_update"],
)
def test_float64_is_refused_naming_the_input(build, inputs, float64_name):
    arguments = inputs()
    arguments[float64_name] = arguments[float64_name].double()
    with pytest.raises(TypeError, match=rf"float64 CUDA tensors \({float64_name}\) are not supported.*float32"):
        build(**arguments)


def test_scan_inputs_in_different_dtypes_are_refused_naming_them():
    tensors = scan_tensors()
    tensors.update(delta=tensors["delta"].bfloat16(), z=tensors["z"].half())
    with pytest.raises(TypeError, match=r"u is torch.float32 but delta torch.bfloat16, z torch.float16"):
        selective_scan_kernel_arguments(**tensors, delta_softplus=True, return_last_state=False)


def test_scan_state_size_beyond_the_kernel_is_refused():
    tensors = scan_tensors()
    tensors.update(A=torch.zeros(DIM, 257), B=torch.zeros(BATCH, 257, LENGTH), C=torch.zeros(BATCH, 257, LENGTH))
    with pytest.raises(ValueError, match="d_state <= 256, got 257"):
        selective_scan_kernel_arguments(**tensors, delta_softplus=True, return_last_state=False)


def test_scan_weights_go_to_the_kernel_in_float32_activations_untouched():
    tensors = {name: t.bfloat16() for name, t in scan_tensors().items()}
    arguments = selective_scan_kernel_arguments(**tensors, delta_softplus=True, return_last_state=True)
    assert {name: arguments[name].dtype for name in ("A", "D", "delta_bias")} == dict.fromkeys(
        ("A", "D", "delta_bias"), torch.float32
    )
    assert all(arguments[name] is tensors[name] for name in ("u", "delta", "B", "C", "z"))


def test_state_update_gets_zero_skip_and_bias_when_absent():
    tensors = step_tensors()
    tensors.update(D=None, dt_bias=None)
    arguments = selective_state_update_kernel_arguments(**tensors, dt_softplus=False)
    for name in ("D", "dt_bias"):
        torch.testing.assert_close(arguments[name], torch.zeros(DIM), rtol=0, atol=0)
    assert arguments["state"] is tensors["state"]


@pytest.mark.parametrize("width", [1, 2, 3, 4, 5])
def test_conv_widths_outside_two_to_four_are_named(width):
    refusal = conv_kernel_refusal(torch.zeros(DIM, width))
    assert (refusal is None) == (width in (2, 3, 4))
    if refusal is not None:
        assert f"d_conv = {width}" in refusal


def test_channel_last_input_the_kernel_can_read_goes_in_place():
    x = channel_last_conv_input(DIM)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        arguments = causal_conv1d_kernel_arguments(x, torch.randn(DIM, WIDTH), None, "silu")
    assert arguments["x"] is x and arguments["activation"] == "silu"


def test_channel_last_input_with_d_inner_not_a_multiple_of_eight_is_copied_channel_first_with_a_warning():
    x = channel_last_conv_input(12)
    with pytest.warns(RuntimeWarning, match="d_inner = 12 is not a multiple of 8"):
        arguments = causal_conv1d_kernel_arguments(x, torch.randn(12, WIDTH), None, None)
    assert arguments["x"].stride(2) == 1
    torch.testing.assert_close(arguments["x"], x, rtol=0, atol=0)


def test_conv_bias_takes_the_weights_dtype_and_the_update_input_the_states():
    weight, bias = torch.randn(DIM, WIDTH), torch.randn(DIM).bfloat16()
    arguments = causal_conv1d_kernel_arguments(torch.randn(BATCH, DIM, LENGTH).bfloat16(), weight, bias, None)
    assert arguments["bias"].dtype == torch.float32 and arguments["x"].dtype == torch.bfloat16
    update = causal_conv1d_update_kernel_arguments(
        torch.randn(BATCH, DIM).bfloat16(), torch.zeros(BATCH, DIM, WIDTH), weight, bias, "silu"
    )
    assert update["x"].dtype == torch.float32 and update["bias"].dtype == torch.float32


def test_cuda_tensors_without_kernels_warn_once_per_reason():
    warn_pytorch_path_on_cuda.cache_clear()
    with pytest.warns(RuntimeWarning, match="slow pure-PyTorch path .*: no build here"):
        warn_pytorch_path_on_cuda("no build here")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_pytorch_path_on_cuda("no build here")
    warn_pytorch_path_on_cuda.cache_clear()


# --- The kernels' entry points against the installed packages ---------------------------------------------------

def test_every_kernel_the_ops_call_exists_and_takes_our_arguments_by_name(mamba_reference):
    assert set(KERNEL_CALLS) == set(KERNEL_WRAPPERS) == set(CudaKernels.__dataclass_fields__) - {"unavailable_reason"}
    for field, (module_name, function_name) in KERNEL_WRAPPERS.items():
        wrapper = getattr(importlib.import_module(module_name), function_name)
        try:
            inspect.signature(wrapper).bind(**KERNEL_CALLS[field]())
        except TypeError as error:
            pytest.fail(f"{module_name}.{function_name}{inspect.signature(wrapper)} does not take our call: {error}")


def extension_calls(module_name: str, extension: str) -> Dict[str, List[int]]:
    """The functions of the compiled `extension` that the Python module `module_name` calls, each with the
    numbers of arguments of its calls, read from the module's source without running it."""
    source_path = importlib.machinery.PathFinder.find_spec(module_name.split(".")[0]).submodule_search_locations[0]
    source = Path(source_path, *module_name.split(".")[1:]).with_suffix(".py").read_text()
    calls: Dict[str, List[int]] = {}
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name) and node.func.value.id == extension
        ):
            calls.setdefault(node.func.attr, []).append(len(node.args) + len(node.keywords))
    return calls


# Where the wrappers of KERNEL_WRAPPERS call their compiled extension.
EXTENSION_CALLERS = {
    "selective_scan_cuda": "mamba_ssm.ops.selective_scan_interface",
    "causal_conv1d_cuda": "causal_conv1d.cpp_functions",
}


def test_the_extension_entry_points_we_require_are_those_the_wrappers_call():
    assert set(EXTENSION_CALLERS) == set(EXTENSION_ENTRY_POINTS)
    for extension, caller in EXTENSION_CALLERS.items():
        assert set(extension_calls(caller, extension)) == set(EXTENSION_ENTRY_POINTS[extension]), caller


def test_stand_in_extensions_are_reported_as_missing_their_functions(mamba_reference):
    if all(importlib.machinery.PathFinder.find_spec(name) for name in EXTENSION_ENTRY_POINTS):
        pytest.skip("the compiled extensions are built here")
    assert "selective_scan_cuda.fwd" in missing_entry_points()


def built_extensions() -> List[str]:
    return [name for name in EXTENSION_ENTRY_POINTS if importlib.machinery.PathFinder.find_spec(name) is not None]


@pytest.mark.cuda_build
@pytest.mark.skipif(
    set(built_extensions()) != set(EXTENSION_ENTRY_POINTS),
    reason="mamba-ssm's / causal-conv1d's compiled extensions are not built (SAMBA_KERNELS=cuda tools/install.sh)",
)
@pytest.mark.parametrize("extension", sorted(EXTENSION_ENTRY_POINTS))
def test_compiled_extension_has_every_function_its_wrapper_calls_with_that_many_arguments(extension):
    module = importlib.import_module(extension)
    assert getattr(module, "__file__", None), f"{extension} is a stand-in, not the compiled extension"
    for function_name, arities in extension_calls(EXTENSION_CALLERS[extension], extension).items():
        function = getattr(module, function_name, None)
        assert callable(function), f"{extension}.{function_name} is missing"
        # pybind11 signature line: "fwd(arg0: torch.Tensor, ..., arg8: bool) -> list[torch.Tensor]"
        signature = (function.__doc__ or "").splitlines()[0]
        parameters = re.findall(r"\barg\d+\b", signature) or re.findall(r"(\w+):", signature.partition("->")[0])
        assert set(arities) == {len(parameters)}, f"{extension}.{function_name}: {signature} called with {arities}"
    assert not missing_entry_points()
