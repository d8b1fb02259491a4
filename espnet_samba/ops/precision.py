"""The dtype the ops compute in: float64 when any input is float64, float32 otherwise (bf16/fp16 included)."""
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
