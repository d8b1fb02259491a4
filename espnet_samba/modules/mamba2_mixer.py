"""The Mamba-2 mixer (Dao & Gu, 2024), state-dict compatible with `mamba_ssm.modules.mamba2.Mamba2`.

Where mamba-ssm's CUDA kernels import, the parameters live in mamba-ssm's own module, whose fused forward and step
run for CUDA tensors. Everywhere else (CPU tensors, or no kernels) the same parameters run through PyTorch: the
chunked SSD scan of `espnet_samba.ops.ssd`, which also gives the state after a sequence, so the mixer streams
chunk by chunk and decodes frame by frame on CPU as well.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from espnet_samba.modules.mamba_mixer import MambaState, conv_with_history, last_conv_inputs
from espnet_samba.modules.normalization import GatedRMSNorm, gated_rms_norm
from espnet_samba.ops import (
    causal_conv1d,
    causal_conv1d_update,
    load_cuda_kernels,
    ssd_chunk_scan,
    ssd_state_update,
)
from espnet_samba.ops.precision import compute_dtype

PYTORCH_MAX_CHUNK = 64
"""Longest chunk of the PyTorch scan. Its work within a chunk grows with the chunk length: at d_model 256,
d_state 64, batch 4 x 500 frames, one forward+backward on one CPU thread took 0.16 s with chunks of 32 or 64 frames
and 0.25 s with mamba-ssm's 256 (one run each, on a shared 2-core machine). Any length gives the same results, to
rounding."""


class InputProjection(NamedTuple):
    """in_proj's output split as mamba-ssm orders it, each (..., size)."""

    z0: torch.Tensor  # gate of the gated MLP (d_inner - d_ssm)
    x0: torch.Tensor  # input of the gated MLP (d_inner - d_ssm)
    z: torch.Tensor  # gate of the SSM output (d_ssm)
    xBC: torch.Tensor  # convolution input: x, B, C (d_ssm + 2 * ngroups * d_state)
    dt: torch.Tensor  # step sizes before bias and softplus (nheads)


class Mamba2Parameters(nn.Module):
    """The parameters of `mamba_ssm.modules.mamba2.Mamba2` under its names and shapes, for machines where mamba-ssm
    (Triton and CUDA kernels) does not import. It only holds them: `Mamba2Mixer` computes with them.

    Args:
        d_model: input and output size D.
        d_inner, d_ssm, nheads, ngroups, d_state, d_conv: sizes as in `Mamba2Mixer`.
        D_has_hdim, rmsnorm, norm_before_gate, bias, conv_bias: as in `Mamba2Mixer`.
    """

    def __init__(
        self,
        d_model: int,
        d_inner: int,
        d_ssm: int,
        nheads: int,
        ngroups: int,
        d_state: int,
        d_conv: int,
        D_has_hdim: bool,
        rmsnorm: bool,
        norm_before_gate: bool,
        bias: bool,
        conv_bias: bool,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        conv_dim = d_ssm + 2 * ngroups * d_state
        self.in_proj = nn.Linear(d_model, 2 * d_inner + 2 * ngroups * d_state + nheads, bias=bias, **factory)
        self.conv1d = nn.Conv1d(
            conv_dim, conv_dim, kernel_size=d_conv, groups=conv_dim, padding=d_conv - 1, bias=conv_bias, **factory
        )
        self.dt_bias = nn.Parameter(torch.empty(nheads, **factory))
        self.A_log = nn.Parameter(torch.empty(nheads, **factory))
        self.D = nn.Parameter(torch.ones(d_ssm if D_has_hdim else nheads, device=device))
        if rmsnorm:
            self.norm = GatedRMSNorm(d_ssm, d_ssm // ngroups, norm_before_gate, eps=1e-5, **factory)
        self.out_proj = nn.Linear(d_inner, d_model, bias=bias, **factory)


class Mamba2Mixer(nn.Module):
    """Mamba-2's selective state-space mixer with the interface of `MambaMixer` (forward, step, forward_chunk).

    in_proj gives [z0, x0, z, xBC, dt] (z0 and x0 a gated MLP on the d_inner - d_ssm channels outside the SSM); xBC
    goes through the causal depthwise convolution and SiLU and splits into x (d_ssm) and the grouped B, C
    (ngroups * d_state each); per head, `h_t = exp(Δ_t A) h_{t-1} + Δ_t x_t B_t^T`, `y_t = h_t C_t + D x_t`,
    Δ = softplus(dt + dt_bias), A = -exp(A_log); then the gated RMSNorm of y with z, and out_proj.

    The parameters live in `self.mamba2`, as mamba-ssm names them (`mamba2.in_proj.weight`, `mamba2.A_log`, ...),
    so a state_dict moves between a GPU machine (mamba-ssm's module) and a CPU one (`Mamba2Parameters`).
    mamba-ssm's fused module runs for CUDA tensors, except where a final state is asked for (its forward has
    none): then, and for every CPU tensor, the PyTorch path runs on the same parameters.

    Args:
        d_model: input and output size D.
        d_state: SSM state size N (mamba-ssm's default is 128).
        d_conv: width of the causal depthwise convolution.
        expand: d_inner = expand * d_model.
        headdim: channels P per SSM head; nheads = d_ssm / headdim.
        d_ssm: channels that go through the SSM (default d_inner); the rest form a gated MLP.
        ngroups: groups of heads sharing B and C; divides nheads.
        A_init_range: the initial -A of each head is drawn uniformly from this range.
        D_has_hdim: one skip weight D per channel instead of per head.
        rmsnorm: the gated RMSNorm on y (else y * silu(z)).
        norm_before_gate: normalise, then gate (mamba-ssm's default: gate, then normalise).
        dt_min, dt_max: range of the initial step sizes softplus(dt_bias) (log-uniform).
        dt_init_floor: lower bound of the initial step sizes.
        bias: bias in the input and output projections.
        conv_bias: bias in the convolution.
        chunk_size: frames per chunk of mamba-ssm's scan; the PyTorch path takes at most `PYTORCH_MAX_CHUNK`.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        d_conv: int = 4,
        expand: int = 2,
        headdim: int = 64,
        d_ssm: Optional[int] = None,
        ngroups: int = 1,
        A_init_range: Tuple[float, float] = (1.0, 16.0),
        D_has_hdim: bool = False,
        rmsnorm: bool = True,
        norm_before_gate: bool = False,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_init_floor: float = 1e-4,
        bias: bool = False,
        conv_bias: bool = True,
        chunk_size: int = 256,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.d_state = d_state
        self.d_conv = d_conv
        self.d_inner = expand * d_model
        self.d_ssm = self.d_inner if d_ssm is None else d_ssm
        self.headdim = headdim
        self.ngroups = ngroups
        self.D_has_hdim = D_has_hdim
        self.rmsnorm = rmsnorm
        self.chunk_size = chunk_size
        self._check_sizes()
        self.nheads = self.d_ssm // headdim
        if not 0 < A_init_range[0] <= A_init_range[1]:
            raise ValueError(f"need 0 < A_init_range[0] <= A_init_range[1], got {A_init_range}")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
        self._init_options = (A_init_range, dt_min, dt_max, dt_init_floor)
        options = dict(
            d_state=d_state, d_conv=d_conv, ngroups=ngroups, D_has_hdim=D_has_hdim, rmsnorm=rmsnorm,
            norm_before_gate=norm_before_gate, bias=bias, conv_bias=conv_bias, device=device, dtype=dtype,
        )
        if load_cuda_kernels().available:
            from mamba_ssm.modules.mamba2 import Mamba2

            self.mamba2 = Mamba2(
                d_model, expand=expand, headdim=headdim, d_ssm=d_ssm, A_init_range=A_init_range, dt_min=dt_min,
                dt_max=dt_max, dt_init_floor=dt_init_floor, chunk_size=chunk_size, **options,
            )
        else:
            self.mamba2 = Mamba2Parameters(d_model, self.d_inner, self.d_ssm, self.nheads, **options)
            self._init_state_space()
            for parameter in (self.mamba2.A_log, self.mamba2.D, self.mamba2.dt_bias):
                parameter._no_weight_decay = True  # as mamba-ssm flags them, for optimisers that read it

    def _check_sizes(self) -> None:
        """Raise a ValueError for sizes mamba-ssm's Mamba2 cannot split into heads and groups."""
        if not 0 < self.d_ssm <= self.d_inner or self.d_ssm % self.headdim:
            raise ValueError(
                f"d_ssm = {self.d_ssm} must be a multiple of headdim = {self.headdim} and at most "
                f"expand * d_model = {self.d_inner}"
            )
        if (self.d_ssm // self.headdim) % self.ngroups:
            raise ValueError(f"ngroups = {self.ngroups} must divide the number of heads {self.d_ssm // self.headdim}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {self.chunk_size}")

    def _init_state_space(self) -> None:
        """mamba-ssm's initialisation of the state-space parameters: -A uniform in A_init_range (A_log its log),
        softplus(dt_bias) log-uniform in [dt_min, dt_max] (at least dt_init_floor), D ones."""
        A_init_range, dt_min, dt_max, dt_init_floor = self._init_options
        device = self.mamba2.A_log.device
        step_sizes = torch.exp(
            torch.rand(self.nheads, device=device) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        ).clamp(min=dt_init_floor)
        decays = torch.empty(self.nheads, device=device).uniform_(*A_init_range)
        with torch.no_grad():
            self.mamba2.dt_bias.copy_(step_sizes + torch.log(-torch.expm1(-step_sizes)))  # inverse softplus
            self.mamba2.A_log.copy_(torch.log(decays))
            self.mamba2.D.fill_(1.0)

    def espnet_initialization_fn(self) -> None:
        """Called by ESPnet's `initialize()` (a config's `init:`) after its scheme: `chainer` redraws every vector,
        A_log, dt_bias, D and the norm's gain included. Restores those (the gain to ones); the projections and
        the convolution keep the scheme's initialisation."""
        self._init_state_space()
        if self.rmsnorm:
            nn.init.ones_(self.mamba2.norm.weight)

    def _runs_mamba_ssm(self, device: torch.device) -> bool:
        """Whether mamba-ssm's fused module computes for tensors on `device`: CUDA, with mamba-ssm's module built."""
        return device.type == "cuda" and not isinstance(self.mamba2, Mamba2Parameters)

    def allocate_inference_cache(
        self, batch_size: int, device: Optional[torch.device] = None, dtype: Optional[torch.dtype] = None
    ) -> MambaState:
        """A zero state for `batch_size` sequences: conv_state (B, conv_dim, d_conv), ssm_state (B, H, P, N)."""
        device = torch.device(device) if device is not None else self.mamba2.A_log.device
        if self._runs_mamba_ssm(device):
            return MambaState(*self.mamba2.allocate_inference_cache(batch_size, max_seqlen=1, dtype=dtype))
        dtype = dtype or self.mamba2.conv1d.weight.dtype
        conv_dim = self.mamba2.conv1d.weight.shape[0]
        return MambaState(
            conv_state=torch.zeros(batch_size, conv_dim, self.d_conv, device=device, dtype=dtype),
            ssm_state=torch.zeros(
                batch_size, self.nheads, self.headdim, self.d_state, device=device,
                dtype=torch.promote_types(dtype, torch.float32),
            ),
        )

    def _project(self, hidden_states: torch.Tensor) -> InputProjection:
        """(..., D) -> in_proj's output, split."""
        d_mlp = self.d_inner - self.d_ssm
        conv_dim = self.d_ssm + 2 * self.ngroups * self.d_state
        sizes = [d_mlp, d_mlp, self.d_ssm, conv_dim, self.nheads]
        return InputProjection(*torch.split(self.mamba2.in_proj(hidden_states), sizes, dim=-1))

    def _split_conv_output(self, xBC: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(..., d_ssm + 2 G N) -> x (..., H, P), B (..., G, N), C (..., G, N)."""
        x, B, C = torch.split(xBC, [self.d_ssm, self.ngroups * self.d_state, self.ngroups * self.d_state], dim=-1)
        return (
            x.unflatten(-1, (self.nheads, self.headdim)),
            B.unflatten(-1, (self.ngroups, self.d_state)),
            C.unflatten(-1, (self.ngroups, self.d_state)),
        )

    def _step_sizes(self, dt: torch.Tensor) -> torch.Tensor:
        """Δ = softplus(dt + dt_bias) (..., H), in float32 (float64 for a float64 model)."""
        dtype = compute_dtype(dt, self.mamba2.dt_bias)
        return F.softplus(dt.to(dtype) + self.mamba2.dt_bias.to(dtype))

    def _ssm_parameters(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """A (H,) in float32, as mamba-ssm computes it (a half-precision A_log would overflow), and D (H,) or
        (H, P)."""
        D = self.mamba2.D.view(self.nheads, self.headdim) if self.D_has_hdim else self.mamba2.D
        return -torch.exp(self.mamba2.A_log.float()), D

    def _output(self, y: torch.Tensor, projection: InputProjection) -> torch.Tensor:
        """The SSM output y (..., d_ssm), gated by z, beside the gated MLP of z0 and x0 -> out_proj -> (..., D)."""
        if self.rmsnorm:
            norm = self.mamba2.norm
            y = gated_rms_norm(y, projection.z, norm.weight, norm.eps, norm.group_size, norm.norm_before_gate)
        else:
            y = y * F.silu(projection.z)
        if projection.z0.shape[-1]:
            y = torch.cat([F.silu(projection.z0) * projection.x0, y], dim=-1)
        return self.mamba2.out_proj(y)

    def _scan_and_output(
        self,
        conv_output: torch.Tensor,
        projection: InputProjection,
        initial_state: Optional[torch.Tensor],
        lengths: Optional[torch.Tensor],
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The SSD scan of the convolved xBC (B, conv_dim, L), then the gated norm and out_proj.

        Args:
            conv_output: after the convolution and SiLU (B, d_ssm + 2 G N, L).
            projection: in_proj's output (B, L, ...).
            initial_state: the SSM state before the first frame (B, H, P, N), or None (zeros).
            lengths: (B,) or None; from frame lengths[b] on Δ = 0, so the final state is the one after the
                sequence's last valid frame.

        Returns:
            (B, L, D), and the SSM state after the last frame (B, H, P, N).
        """
        x, B, C = self._split_conv_output(conv_output.transpose(1, 2))
        step_sizes = self._step_sizes(projection.dt)
        if lengths is not None:
            positions = torch.arange(step_sizes.shape[1], device=step_sizes.device)
            padding = positions[None, :] >= lengths.to(step_sizes.device)[:, None]  # (B, L)
            step_sizes = step_sizes.masked_fill(padding[:, :, None], 0.0)
        A, D = self._ssm_parameters()
        chunk_size = min(self.chunk_size, PYTORCH_MAX_CHUNK)
        y, ssm_state = ssd_chunk_scan(x, step_sizes, A, B, C, chunk_size, D, initial_state)
        return self._output(y.flatten(-2), projection), ssm_state

    def forward(
        self,
        hidden_states: torch.Tensor,
        lengths: Optional[torch.Tensor] = None,
        return_final_state: bool = False,
    ) -> Union[torch.Tensor, Tuple[torch.Tensor, MambaState]]:
        """Mix a batch of sequences causally.

        Args:
            hidden_states: (B, L, D), each sequence left-aligned (padding at the end).
            lengths: valid lengths (B,); only used for the final state: the state returned for sequence b is the
                one after its last valid frame `lengths[b] - 1`, as if the padding were not there. Outputs at valid
                positions never depend on padding, since the mixer is causal.
            return_final_state: also return the state after the sequence, for decoding or streaming from there.

        Returns:
            (B, L, D), and the final `MambaState` when asked.
        """
        if self._runs_mamba_ssm(hidden_states.device) and not return_final_state:
            return self.mamba2(hidden_states)
        projection = self._project(hidden_states)
        conv_input = projection.xBC.transpose(1, 2)  # (B, conv_dim, L)
        conv_output = causal_conv1d(
            conv_input, self.mamba2.conv1d.weight[:, 0, :], self.mamba2.conv1d.bias, activation="silu"
        )
        out, ssm_state = self._scan_and_output(
            conv_output, projection, None, lengths if return_final_state else None
        )
        if not return_final_state:
            return out
        conv_state = last_conv_inputs(conv_input, lengths, self.d_conv)
        return out, MambaState(conv_state, ssm_state.to(torch.promote_types(conv_state.dtype, torch.float32)))

    def forward_chunk(self, hidden_states: torch.Tensor, state: MambaState) -> Tuple[torch.Tensor, MambaState]:
        """Mix the next chunk of every sequence, continuing from the state after the frames before it.

        The outputs are those of `forward` over the whole sequence so far, at the chunk's frames: the convolution
        reads the chunk after the `d_conv` inputs kept in `state.conv_state` and the scan starts from
        `state.ssm_state`.

        Args:
            hidden_states: the chunk (B, L, D), L >= 1; every sequence advances by the same L frames.
            state: the state after the frames before the chunk, from `allocate_inference_cache`,
                `forward(..., return_final_state=True)`, `step` or a previous `forward_chunk`. Not modified.

        Returns:
            (B, L, D), and the state after the chunk (new tensors of the same shapes and dtypes).
        """
        projection = self._project(hidden_states)
        new_inputs = projection.xBC.transpose(1, 2).to(state.conv_state.dtype)
        conv_output, conv_state = conv_with_history(
            state.conv_state, new_inputs, self.mamba2.conv1d.weight[:, 0, :], self.mamba2.conv1d.bias
        )
        out, ssm_state = self._scan_and_output(conv_output, projection, state.ssm_state, None)
        next_state = MambaState(conv_state, ssm_state.to(state.ssm_state.dtype))
        return out, next_state

    def step(self, hidden_states: torch.Tensor, state: MambaState) -> torch.Tensor:
        """Advance every sequence by one frame, updating `state` in place.

        Args:
            hidden_states: the new frame (B, 1, D) or (B, D).
            state: the states after the previous frames, as from `allocate_inference_cache` or `forward`.

        Returns:
            The mixer output for that frame, shaped like `hidden_states`.
        """
        squeeze = hidden_states.dim() == 2
        frame = hidden_states if squeeze else hidden_states[:, 0]
        if self._runs_mamba_ssm(frame.device):
            out = self.mamba2.step(frame[:, None], state.conv_state, state.ssm_state)[0][:, 0]
        else:
            out = self._step(frame, state)
        return out if squeeze else out[:, None]

    def _step(self, frame: torch.Tensor, state: MambaState) -> torch.Tensor:
        """`step` on the PyTorch path: frame (B, D) -> (B, D), `state` updated in place."""
        projection = self._project(frame)
        conv_output = causal_conv1d_update(
            projection.xBC, state.conv_state, self.mamba2.conv1d.weight[:, 0, :], self.mamba2.conv1d.bias,
            activation="silu",
        )
        x, B, C = self._split_conv_output(conv_output)
        A, D = self._ssm_parameters()
        y = ssd_state_update(state.ssm_state, x, self._step_sizes(projection.dt), A, B, C, D)
        return self._output(y.flatten(-2), projection)
