"""What mamba-ssm's and causal-conv1d's CUDA kernels accept, checked before they are called.

Each `*_kernel_arguments` function takes an op's inputs, refuses what the kernel cannot compute (naming the input
and the way out) instead of letting it fail inside the extension, adapts what it can take without loss (weights
to float32, a layout copy), and returns the keyword arguments of the kernel's Python wrapper. The ops call the
wrappers with exactly these, by name. They read only shapes, strides and dtypes, so the tests run them on CPU
tensors and bind their results to the installed wrappers' signatures (test/test_ops_cuda_contract.py).

The limits are those of mamba-ssm 2.3.2.post1 (`csrc/selective_scan/selective_scan.cpp`,
`ops/triton/selective_state_update.py`) and causal-conv1d 1.7.0 (`csrc/causal_conv1d.cpp`).
"""
from __future__ import annotations

import warnings
from typing import Any, Dict, Optional

import torch

KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
MAX_SCAN_STATE = 256  # selective_scan_cuda's MAX_DSTATE
CONV_WIDTHS = (2, 3, 4)  # every causal-conv1d kernel, channel-first and channel-last, full sequence and update
CHANNEL_LAST_ALIGNMENT = 8  # causal-conv1d's channel-last kernel: channels and x's batch/time strides, in elements


def refuse_float64(op: str, tensors: Dict[str, Optional[torch.Tensor]]) -> None:
    """Raise a TypeError naming the float64 inputs: none of the CUDA kernels has a float64 instantiation.

    Args:
        op: the op's name, for the message.
        tensors: the op's inputs by name; `None` entries are ignored.
    """
    names = [name for name, tensor in tensors.items() if tensor is not None and tensor.dtype == torch.float64]
    if names:
        raise TypeError(
            f"{op}: float64 CUDA tensors ({', '.join(names)}) are not supported: mamba-ssm's and causal-conv1d's "
            "CUDA kernels compute in float32 (inputs float32, float16 or bfloat16). Use float32 or autocast, "
            "or run float64 on the CPU."
        )


def selective_scan_kernel_arguments(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: Optional[torch.Tensor],
    z: Optional[torch.Tensor],
    delta_bias: Optional[torch.Tensor],
    delta_softplus: bool,
    return_last_state: bool,
) -> Dict[str, Any]:
    """Keyword arguments of `mamba_ssm.ops.selective_scan_interface.selective_scan_fn` for these inputs.

    The kernel takes u, delta, B, C and z in one dtype (float32, float16 or bfloat16) and A, D and delta_bias in
    float32; the latter are cast (exact from any of the three), a mismatch among the former is refused.

    Args:
        u, delta, z: (B, D, L). A: (D, N), N <= 256. B, C: (B, N, L). D, delta_bias: (D,).
    """
    op = "selective_scan"
    refuse_float64(op, dict(u=u, delta=delta, A=A, B=B, C=C, D=D, z=z, delta_bias=delta_bias))
    if u.dtype not in KERNEL_DTYPES:
        raise TypeError(f"{op}: the CUDA kernel takes float32, float16 or bfloat16 inputs, got u {u.dtype}")
    mismatched = [
        f"{name} {tensor.dtype}" for name, tensor in dict(delta=delta, B=B, C=C, z=z).items()
        if tensor is not None and tensor.dtype != u.dtype
    ]
    if mismatched:
        raise TypeError(
            f"{op}: the CUDA kernel takes u, delta, B, C and z in one dtype; u is {u.dtype} but "
            f"{', '.join(mismatched)}. Cast them to one dtype (autocast does)."
        )
    if A.shape[1] > MAX_SCAN_STATE:
        raise ValueError(f"{op}: the CUDA kernel supports d_state <= {MAX_SCAN_STATE}, got {A.shape[1]}")
    return dict(
        u=u, delta=delta, A=A.float(), B=B, C=C, D=None if D is None else D.float(), z=z,
        delta_bias=None if delta_bias is None else delta_bias.float().contiguous(),
        delta_softplus=delta_softplus, return_last_state=return_last_state,
    )


def selective_state_update_kernel_arguments(
    state: torch.Tensor,
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: Optional[torch.Tensor],
    z: Optional[torch.Tensor],
    dt_bias: Optional[torch.Tensor],
    dt_softplus: bool,
) -> Dict[str, Any]:
    """Keyword arguments of `mamba_ssm.ops.triton.selective_state_update.selective_state_update`.

    The Triton kernel computes in float32 whatever its inputs, so float64 would silently lose precision: refused.
    D and dt_bias are passed as zeros when absent (their meaning then), because the 2.3.2.post1 wrapper unpacks
    their strides unconditionally and fails on None.

    Args:
        state: (B, D, N), updated in place by the kernel. x, dt, z: (B, D). A: (D, N). B, C: (B, N).
        D, dt_bias: (D,).
    """
    refuse_float64(
        "selective_state_update", dict(state=state, x=x, dt=dt, A=A, B=B, C=C, D=D, z=z, dt_bias=dt_bias)
    )
    dim = state.shape[1]
    zeros = dict(device=state.device, dtype=torch.float32)
    return dict(
        state=state, x=x, dt=dt, A=A, B=B, C=C,
        D=torch.zeros(dim, **zeros) if D is None else D,
        z=z,
        dt_bias=torch.zeros(dim, **zeros) if dt_bias is None else dt_bias,
        dt_softplus=dt_softplus,
    )


def conv_kernel_refusal(weight: torch.Tensor) -> Optional[str]:
    """Why no causal-conv1d kernel takes this weight (D, W), or None when they do: they exist for W = 2, 3, 4."""
    width = weight.shape[1]
    if width not in CONV_WIDTHS:
        return f"causal-conv1d's CUDA kernels exist for widths {CONV_WIDTHS}, not d_conv = {width}"
    return None


def _misaligned_channel_last(x: torch.Tensor) -> Optional[str]:
    """Why causal-conv1d's channel-last kernel would refuse x (B, D, L), or None (also when x is channel-first)."""
    if not (x.stride(1) == 1 and x.stride(2) > 1):
        return None
    if x.shape[1] % CHANNEL_LAST_ALIGNMENT:
        return f"d_inner = {x.shape[1]} is not a multiple of {CHANNEL_LAST_ALIGNMENT}"
    if x.stride(0) % CHANNEL_LAST_ALIGNMENT or x.stride(2) % CHANNEL_LAST_ALIGNMENT:
        return f"x's batch and time strides {x.stride(0)}, {x.stride(2)} are not multiples of {CHANNEL_LAST_ALIGNMENT}"
    return None


def causal_conv1d_kernel_arguments(
    x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], activation: Optional[str]
) -> Dict[str, Any]:
    """Keyword arguments of `causal_conv1d.causal_conv1d_fn`; the width must pass `conv_kernel_refusal`.

    x in the channel-last layout the Mamba mixer passes (a (B, D, L) view of (B, L, D) data) goes to the
    channel-last kernel, which needs D and x's batch and time strides to be multiples of 8; otherwise x is copied
    to the channel-first layout, which the other kernel takes at any D, and a warning says so once.

    Args:
        x: (B, D, L). weight: (D, W). bias: (D,), cast to weight's dtype as the kernel requires.
    """
    refuse_float64("causal_conv1d", dict(x=x, weight=weight, bias=bias))
    misalignment = _misaligned_channel_last(x)
    if misalignment is not None:
        warnings.warn(
            f"causal_conv1d: {misalignment}, so causal-conv1d's channel-last CUDA kernel cannot read x in place; "
            "copying it to the channel-first layout for every call (make d_inner a multiple of 8 to avoid this)",
            RuntimeWarning,
            stacklevel=3,
        )
        x = x.contiguous()
    return dict(
        x=x, weight=weight, bias=None if bias is None else bias.to(weight.dtype), activation=activation
    )


def causal_conv1d_update_kernel_arguments(
    x: torch.Tensor,
    conv_state: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    activation: Optional[str],
) -> Dict[str, Any]:
    """Keyword arguments of `causal_conv1d.causal_conv1d_update`; the width must pass `conv_kernel_refusal`.

    The kernel needs x in conv_state's dtype and bias in weight's: both are cast (x is stored into conv_state
    and convolved from there on every backend, so this rounds nothing the other paths keep; the caller casts the
    output back to x's dtype).

    Args:
        x: (B, D). conv_state: (B, D, W), updated in place by the kernel. weight: (D, W). bias: (D,).
    """
    refuse_float64("causal_conv1d_update", dict(x=x, conv_state=conv_state, weight=weight, bias=bias))
    return dict(
        x=x.to(conv_state.dtype), conv_state=conv_state, weight=weight,
        bias=None if bias is None else bias.to(weight.dtype), activation=activation,
    )
