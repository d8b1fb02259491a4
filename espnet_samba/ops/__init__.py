"""Kernels behind one interface each: the selective scan and the causal depthwise convolution.

Every op runs mamba-ssm's / causal-conv1d's CUDA kernel when its tensors are on CUDA and the kernels import, the
fused CPU kernels of `csrc/` on CPU tensors when they build (`cpu_kernels`), and a pure-PyTorch implementation
otherwise. `espnet_samba.ops.reference` holds the readable definitions that tests compare all three against.
This package imports nothing else of espnet_samba.
"""
from espnet_samba.ops.causal_conv import causal_conv1d, causal_conv1d_update
from espnet_samba.ops.kernels import load_cuda_kernels, use_cuda_kernels
from espnet_samba.ops.selective_scan import selective_scan, selective_state_update

__all__ = [
    "causal_conv1d",
    "causal_conv1d_update",
    "load_cuda_kernels",
    "selective_scan",
    "selective_state_update",
    "use_cuda_kernels",
]
