"""The dtype the ops compute in (float64 when any input is float64, float32 otherwise, bf16/fp16 included), and
the row layout in which the CPU kernels take decoding-step inputs."""
from __future__ import annotations

from typing import Optional

import torch


def compute_dtype(*tensors: Optional[torch.Tensor]) -> torch.dtype:
    """float64 if any given tensor is float64, else float32; `None` entries are ignored.

    Args:
        tensors: the op's inputs, any shapes.

    Returns:
        torch.float64 or torch.float32.
    """
    if any(t is not None and t.dtype == torch.float64 for t in tensors):
        return torch.float64
    return torch.float32


def as_rows(tensor: Optional[torch.Tensor], dtype: torch.dtype) -> Optional[torch.Tensor]:
    """A (B, X) decoding-step input in `dtype` as the CPU kernels read it: unit stride along X, any row stride
    (a view into a wider projection output passes without a copy). `None` stays `None`."""
    if tensor is None:
        return None
    tensor = tensor.to(dtype)
    return tensor if tensor.shape[-1] <= 1 or tensor.stride(-1) == 1 else tensor.contiguous()
