"""Kernels behind one interface each: the selective scan, the causal depthwise convolution, Mamba-2's SSD scan, and
the CTC prefix score's recursion over frames (a joint CTC/attention beam search's costliest scorer on CPU).

The Mamba ops run mamba-ssm's / causal-conv1d's CUDA kernel when its tensors are on CUDA and the kernels import, the
fused CPU kernels of `csrc/` on CPU tensors when they build (`cpu_kernels`), and a pure-PyTorch implementation
otherwise. `espnet_samba.ops.reference` holds the readable definitions that tests compare all three against.
The SSD scan (`ssd`) is pure PyTorch: on CUDA, mamba-ssm's Mamba2 module runs its own fused kernels instead.
The CTC prefix recursion runs its fused CPU kernel on CPU tensors, or closed-form PyTorch scans (ESPnet's scorer
is its oracle).
This package imports nothing else of espnet_samba.
"""
from espnet_samba.ops.causal_conv import causal_conv1d, causal_conv1d_update
from espnet_samba.ops.ctc_prefix import ctc_prefix_forward
from espnet_samba.ops.kernels import load_cuda_kernels, use_cuda_kernels
from espnet_samba.ops.selective_scan import selective_scan, selective_state_update
from espnet_samba.ops.ssd import ssd_chunk_scan, ssd_state_update

__all__ = [
    "causal_conv1d",
    "causal_conv1d_update",
    "ctc_prefix_forward",
    "load_cuda_kernels",
    "selective_scan",
    "selective_state_update",
    "ssd_chunk_scan",
    "ssd_state_update",
    "use_cuda_kernels",
]
