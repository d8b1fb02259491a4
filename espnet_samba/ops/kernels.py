"""Lazy access to the compiled CUDA kernels of mamba-ssm and causal-conv1d.

Both packages import their compiled extension at module top level, so importing them on a machine without the
CUDA build raises. Nothing here imports them until a CUDA tensor actually asks for a kernel; the result (the
functions, or the reason they are unusable) is cached for the life of the process.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Optional

import torch


@dataclass(frozen=True)
class CudaKernels:
    """The fused kernels, or `None` with the reason they could not be imported."""

    selective_scan_fn: Optional[Callable] = None
    selective_state_update: Optional[Callable] = None
    causal_conv1d_fn: Optional[Callable] = None
    causal_conv1d_update: Optional[Callable] = None
    unavailable_reason: Optional[str] = None

    @property
    def available(self) -> bool:
        return self.unavailable_reason is None


@functools.lru_cache(maxsize=1)
def load_cuda_kernels() -> CudaKernels:
    """Import the CUDA kernels once; never raises."""
    if not torch.cuda.is_available():
        return CudaKernels(unavailable_reason="torch.cuda.is_available() is False")
    try:
        from causal_conv1d import causal_conv1d_fn, causal_conv1d_update
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
        from mamba_ssm.ops.triton.selective_state_update import selective_state_update
    except ImportError as error:
        return CudaKernels(
            unavailable_reason=f"{error}; build them with tools/install.sh on a machine with nvcc and a GPU"
        )
    return CudaKernels(
        selective_scan_fn=selective_scan_fn,
        selective_state_update=selective_state_update,
        causal_conv1d_fn=causal_conv1d_fn,
        causal_conv1d_update=causal_conv1d_update,
    )


def use_cuda_kernels(tensor: torch.Tensor) -> bool:
    """True when `tensor` lives on a CUDA device and the compiled kernels import."""
    return tensor.is_cuda and load_cuda_kernels().available
