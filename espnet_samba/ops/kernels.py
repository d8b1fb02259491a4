"""Lazy access to the compiled CUDA kernels of mamba-ssm and causal-conv1d.

Both packages import their compiled extension at module top level, so importing them on a machine without the
CUDA build raises. Nothing here imports them until a CUDA tensor actually asks for a kernel; the result (the
functions, or the reason they are unusable) is cached for the life of the process. What the kernels accept is
checked before each call by `espnet_samba.ops.cuda_contract`.
"""
from __future__ import annotations

import functools
import importlib
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import torch

# The kernels' Python wrappers that espnet_samba.ops calls: CudaKernels field -> (module, function).
KERNEL_WRAPPERS: Dict[str, Tuple[str, str]] = {
    "selective_scan_fn": ("mamba_ssm.ops.selective_scan_interface", "selective_scan_fn"),
    "selective_state_update": ("mamba_ssm.ops.triton.selective_state_update", "selective_state_update"),
    "causal_conv1d_fn": ("causal_conv1d", "causal_conv1d_fn"),
    "causal_conv1d_update": ("causal_conv1d", "causal_conv1d_update"),
}
# The functions of the compiled extensions that those wrappers call (mamba-ssm 2.3.2.post1's
# selective_scan_interface.py, causal-conv1d 1.7.0's cpp_functions.py).
EXTENSION_ENTRY_POINTS: Dict[str, Tuple[str, ...]] = {
    "selective_scan_cuda": ("fwd", "bwd"),
    "causal_conv1d_cuda": ("causal_conv1d_fwd", "causal_conv1d_bwd", "causal_conv1d_update"),
}
BUILD_HINT = "build them with `SAMBA_KERNELS=cuda tools/install.sh` (needs nvcc, not a GPU)"


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


def missing_entry_points() -> List[str]:
    """`module.function` for every entry point of `EXTENSION_ENTRY_POINTS` that does not import, with the error.

    An extension built from another release, or a stand-in module (as the tests register to reach the packages'
    reference functions), lacks them; the wrappers would then fail at the first call instead of at import.
    """
    missing = []
    for module_name, functions in EXTENSION_ENTRY_POINTS.items():
        try:
            module = importlib.import_module(module_name)
        except (ImportError, OSError) as error:
            missing.append(f"{module_name} ({error})")
            continue
        missing.extend(f"{module_name}.{name}" for name in functions if not callable(getattr(module, name, None)))
    return missing


@functools.lru_cache(maxsize=1)
def load_cuda_kernels() -> CudaKernels:
    """Import the CUDA kernels once; never raises."""
    if not torch.cuda.is_available():
        return CudaKernels(unavailable_reason="torch.cuda.is_available() is False")
    try:
        wrappers = {
            field: getattr(importlib.import_module(module), function)
            for field, (module, function) in KERNEL_WRAPPERS.items()
        }
    except Exception as error:  # noqa: BLE001 - any failure leaves the backend unavailable, for the reason given
        return CudaKernels(unavailable_reason=f"{type(error).__name__}: {error}; {BUILD_HINT}")
    missing = missing_entry_points()
    if missing:
        return CudaKernels(unavailable_reason=f"missing compiled functions {', '.join(missing)}; {BUILD_HINT}")
    return CudaKernels(**wrappers)


@functools.lru_cache(maxsize=None)
def warn_pytorch_path_on_cuda(reason: str) -> None:
    """Warn, once per process and reason, that CUDA tensors run the ops' pure-PyTorch path (correct, but many
    small kernels per chunk of the scan: far slower than mamba-ssm's)."""
    warnings.warn(
        f"espnet_samba.ops: CUDA tensors take the slow pure-PyTorch path because the CUDA kernels are "
        f"unavailable: {reason}",
        RuntimeWarning,
        stacklevel=3,
    )


def use_cuda_kernels(tensor: torch.Tensor) -> bool:
    """True when `tensor` lives on a CUDA device and the compiled kernels import; a CUDA tensor without them
    warns once (`warn_pytorch_path_on_cuda`)."""
    if not tensor.is_cuda:
        return False
    kernels = load_cuda_kernels()
    if not kernels.available:
        warn_pytorch_path_on_cuda(kernels.unavailable_reason)
    return kernels.available
