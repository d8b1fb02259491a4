"""Mamba-2 (Dao & Gu, 2024) through mamba-ssm's own module, which exists only as fused CUDA/Triton kernels."""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
import torch.nn as nn

from espnet_samba.modules.mamba_mixer import MambaState
from espnet_samba.ops import load_cuda_kernels


class Mamba2Mixer(nn.Module):
    """`mamba_ssm.modules.mamba2.Mamba2` behind the interface of `MambaMixer` (forward and step).

    Its parameters live in `self.mamba2`, exactly as mamba-ssm names them. Unlike `MambaMixer` there is no CPU
    implementation: building it without the compiled kernels raises a `RuntimeError` that says what to do.

    Args:
        d_model: input and output size D.
        d_state: SSM state size N (Mamba-2 uses larger states than Mamba-1; mamba-ssm's default is 128).
        d_conv: width of the causal depthwise convolution.
        expand: d_inner = expand * d_model.
        headdim: channels per SSM head (d_inner must be a multiple of it).
    """

    def __init__(self, d_model: int, d_state: int = 64, d_conv: int = 4, expand: int = 2, headdim: int = 64):
        super().__init__()
        kernels = load_cuda_kernels()
        if not kernels.available:
            raise RuntimeError(
                "mixer_type 'mamba2' runs only on mamba-ssm's CUDA kernels, which are unavailable here "
                f"({kernels.unavailable_reason}). Use mixer_type 'mamba' (it has a CPU path), or build the "
                "kernels on a GPU machine with tools/install.sh."
            )
        if (expand * d_model) % headdim:
            raise ValueError(f"expand * d_model = {expand * d_model} must be a multiple of headdim = {headdim}")
        from mamba_ssm.modules.mamba2 import Mamba2

        self.mamba2 = Mamba2(d_model, d_state=d_state, d_conv=d_conv, expand=expand, headdim=headdim)

    def forward(
        self, hidden_states: torch.Tensor, lengths: Optional[torch.Tensor] = None, return_final_state: bool = False
    ) -> Union[torch.Tensor, Tuple[torch.Tensor, MambaState]]:
        """x (B, L, D) -> (B, L, D). The final state is not available from mamba-ssm's fused Mamba-2 forward."""
        if return_final_state:
            raise ValueError(
                "mixer_type 'mamba2' cannot return the state after a sequence (mamba-ssm's Mamba2 forward does "
                "not expose it); use mixer_type 'mamba' where a decoder or streaming needs it"
            )
        return self.mamba2(hidden_states)

    def allocate_inference_cache(self, batch_size: int, **_: object) -> MambaState:
        conv_state, ssm_state = self.mamba2.allocate_inference_cache(batch_size, max_seqlen=1)
        return MambaState(conv_state, ssm_state)

    def step(self, hidden_states: torch.Tensor, state: MambaState) -> torch.Tensor:
        """One frame (B, 1, D) or (B, D), updating `state` in place."""
        squeeze = hidden_states.dim() == 2
        frame = hidden_states[:, None] if squeeze else hidden_states
        out, _, _ = self.mamba2.step(frame, state.conv_state, state.ssm_state)
        return out[:, 0] if squeeze else out
