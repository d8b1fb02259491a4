"""The Mamba (v1) mixer, state-dict compatible with `mamba_ssm.modules.mamba_simple.Mamba`."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from espnet_samba.ops import causal_conv1d, causal_conv1d_update, selective_scan, selective_state_update
from espnet_samba.ops.mixer_step import fused_mixer_step, fused_mixer_step_applies


def at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` in float32 if it is in a narrower float type (bf16/fp16 parameters), else unchanged (float64 stays
    float64, as gradient checks need)."""
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))


@dataclass
class MambaState:
    """Recurrent state of one mixer for a batch of sequences.

    Attributes:
        conv_state: the last `d_conv` inputs of the convolution, oldest first (B, d_inner, d_conv).
        ssm_state: the selective-scan state (B, d_inner, d_state), float32 (float64 for a float64 model).
    """

    conv_state: torch.Tensor
    ssm_state: torch.Tensor


def conv_with_history(
    conv_state: torch.Tensor, new_inputs: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]
) -> Tuple[torch.Tensor, torch.Tensor]:
    """The causal depthwise convolution (with SiLU) of a chunk that continues a sequence, and the conv_state after it.

    Args:
        conv_state: the last W inputs before the chunk (B, D, W), oldest first. new_inputs: the chunk (B, D, L).
        weight: (D, W). bias: (D,) or None.

    Returns:
        The outputs at the chunk's frames (B, D, L), equal to those of the convolution over the whole sequence,
        and the last W inputs after the chunk (B, D, W), a new tensor.
    """
    width = weight.size(1)
    conv_inputs = torch.cat([conv_state, new_inputs], dim=2)  # (B, D, W + L)
    # The convolution's first W - 1 outputs would read zero padding before the history: dropped.
    outputs = causal_conv1d(conv_inputs[:, :, 1:], weight, bias, activation="silu")[:, :, width - 1 :]
    return outputs, conv_inputs[:, :, -width:].clone()


def last_conv_inputs(conv_input: torch.Tensor, lengths: Optional[torch.Tensor], width: int) -> torch.Tensor:
    """The `width` convolution inputs ending at each sequence's last valid frame, zero-filled before t = 0: the
    conv_state after the sequence.

    Args:
        conv_input: (B, D, L). lengths: (B,) or None (all of length L). width: the convolution's width W.

    Returns:
        (B, D, W), oldest first.
    """
    batch, dim, length = conv_input.shape
    padded = F.pad(conv_input, (width, 0))
    ends = (
        torch.full((batch,), length, device=conv_input.device)
        if lengths is None else lengths.to(conv_input.device)
    )
    positions = ends[:, None] + torch.arange(width, device=conv_input.device)[None, :]  # (B, W)
    return padded.gather(2, positions[:, None, :].expand(-1, dim, -1))


class MambaMixer(nn.Module):
    """Selective state-space mixer (Gu & Dao, 2023), the token mixer of a Mamba block.

    Parameter names, shapes, defaults and initialisation are those of `mamba_ssm.modules.mamba_simple.Mamba`, so a
    state_dict moves both ways and a model trained with the CUDA kernels decodes on CPU.

    Args:
        d_model: input and output size D.
        d_state: SSM state size N per channel.
        d_conv: width of the causal depthwise convolution.
        expand: d_inner = expand * d_model.
        dt_rank: rank of the Δ projection; "auto" = ceil(d_model / 16).
        dt_min, dt_max: range of the initial step sizes (log-uniform).
        dt_init: "random" or "constant" initialisation of dt_proj.weight.
        dt_scale: scale of that initialisation.
        dt_init_floor: lower bound of the initial step sizes.
        conv_bias: bias in the convolution.
        bias: bias in the input and output projections.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: Union[int, str] = "auto",
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_init: str = "random",
        dt_scale: float = 1.0,
        dt_init_floor: float = 1e-4,
        conv_bias: bool = True,
        bias: bool = False,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        if dt_init not in ("random", "constant"):
            raise ValueError(f"dt_init must be 'random' or 'constant', got {dt_init!r}")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
        factory = {"device": device, "dtype": dtype}
        self.d_model = d_model
        self.d_state = d_state
        self.d_conv = d_conv
        self.expand = expand
        self.d_inner = int(expand * d_model)
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)

        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=bias, **factory)
        self.conv1d = nn.Conv1d(
            self.d_inner, self.d_inner, kernel_size=d_conv, groups=self.d_inner, padding=d_conv - 1,
            bias=conv_bias, **factory,
        )
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False, **factory)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True, **factory)
        self.A_log = nn.Parameter(torch.empty(self.d_inner, d_state, dtype=torch.float32, device=device))
        self.D = nn.Parameter(torch.empty(self.d_inner, device=device))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias, **factory)
        self._dt_init_options = (dt_init, dt_scale, dt_min, dt_max, dt_init_floor)
        self._init_state_space()
        # Excluded from weight decay, as in mamba-ssm (optimisers that honour the flag read it).
        self.A_log._no_weight_decay = True
        self.D._no_weight_decay = True
        # mamba-ssm's re-initialiser (`_init_weights`) skips biases flagged like this; ESPnet's `initialize()`
        # does not, which is what `espnet_initialization_fn` is for.
        self.dt_proj.bias._no_reinit = True
        # The scan reads dt_proj's weight and bias as tensors, the bias to be added in float32 inside the kernel
        # before the softplus (mamba-ssm's precision choice), so dt_proj must stay an nn.Linear: torch's eager
        # quantisation (`quantize_dynamic`, ESPnet's --quantize_asr_model) leaves a module whose qconfig is None
        # as it is. It costs about 2% of the mixer's projection multiply-adds (d_inner x dt_rank, dt_rank ~ D/16).
        self.dt_proj.qconfig = None

    def _init_state_space(self) -> None:
        """mamba-ssm's initialisation of the state-space parameters: A_log S4D-real (A = -(1..N) per channel),
        D ones, dt_proj weight uniform (or constant) at dt_rank^-1/2 * dt_scale, and a dt_proj bias that makes the
        initial step sizes softplus(bias) log-uniform in [dt_min, dt_max] (at least dt_init_floor)."""
        dt_init, dt_scale, dt_min, dt_max, dt_init_floor = self._dt_init_options
        with torch.no_grad():
            states = torch.arange(1, self.d_state + 1, dtype=torch.float32, device=self.A_log.device)
            self.A_log.copy_(torch.log(states).repeat(self.d_inner, 1))
            self.D.fill_(1.0)
        std = self.dt_rank**-0.5 * dt_scale
        if dt_init == "constant":
            nn.init.constant_(self.dt_proj.weight, std)
        else:
            nn.init.uniform_(self.dt_proj.weight, -std, std)
        log_dt = torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        dt = torch.exp(log_dt).clamp(min=dt_init_floor)
        inverse_softplus_dt = dt + torch.log(-torch.expm1(-dt))
        with torch.no_grad():
            self.dt_proj.bias.copy_(inverse_softplus_dt)

    def espnet_initialization_fn(self) -> None:
        """Called by ESPnet's `initialize()` (a config's `init:`) after it has redrawn every matrix and zeroed
        every bias (`chainer` also redraws the other vectors): restores `_init_state_space`, which no generic
        scheme reproduces. The projections and the convolution keep the scheme's initialisation."""
        self._init_state_space()

    def allocate_inference_cache(
        self, batch_size: int, device: Optional[torch.device] = None, dtype: Optional[torch.dtype] = None
    ) -> MambaState:
        """A zero state for `batch_size` sequences (the state before any input)."""
        device = device or self.A_log.device  # a plain Parameter: quantisation replaces the Linears' weights
        dtype = dtype or self.conv1d.weight.dtype
        return MambaState(
            conv_state=torch.zeros(batch_size, self.d_inner, self.d_conv, device=device, dtype=dtype),
            ssm_state=torch.zeros(
                batch_size, self.d_inner, self.d_state, device=device, dtype=torch.promote_types(dtype, torch.float32)
            ),
        )

    def _project_inputs(self, hidden_states: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """hidden_states (B, L, D) -> x, z (B, d_inner, L): transposed views of in_proj's (B, L, 2 d_inner).

        Split on the channel axis before transposing, so that autograd joins the two (B, L, d_inner) gradients
        the kernels return (channels last) into in_proj's gradient with one contiguous concatenation; split
        after the transpose, it concatenated along channels of (B, d_inner, L) views and then copied the result
        back to (B, L, 2 d_inner): two transposing copies, a large part of a training step (bench/bench_mixer.py).
        """
        x, z = self.in_proj(hidden_states).chunk(2, dim=-1)
        return x.transpose(1, 2), z.transpose(1, 2)

    def _A(self) -> torch.Tensor:
        """The state matrix A = -exp(A_log) (d_inner, N), in float32 at least (float64 for a float64 model)."""
        return -torch.exp(at_least_float32(self.A_log))

    def _split_projection(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (..., d_inner) -> dt (..., d_inner) before bias, B (..., N), C (..., N)."""
        dt, B, C = torch.split(self.x_proj(x), [self.dt_rank, self.d_state, self.d_state], dim=-1)
        return F.linear(dt, self.dt_proj.weight), B, C

    def _scan(
        self,
        x: torch.Tensor,
        z: torch.Tensor,
        return_last_state: bool,
        initial_state: Optional[torch.Tensor] = None,
        lengths: Optional[torch.Tensor] = None,
    ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        """The selective scan of the convolved inputs x, gated by z, both (B, d_inner, L).

        Returns:
            y (B, d_inner, L), and the state after the last frame (B, d_inner, N) when asked; `initial_state`
            and `lengths` as in `espnet_samba.ops.selective_scan`.
        """
        dt, B, C = self._split_projection(x.transpose(1, 2))
        return selective_scan(
            x, dt.transpose(1, 2), self._A(), B.transpose(1, 2), C.transpose(1, 2),
            at_least_float32(self.D), z, delta_bias=at_least_float32(self.dt_proj.bias), delta_softplus=True,
            return_last_state=return_last_state, initial_state=initial_state, lengths=lengths,
        )

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
        x, z = self._project_inputs(hidden_states)
        conv_input = x
        x = causal_conv1d(x, self.conv1d.weight[:, 0, :], self.conv1d.bias, activation="silu")
        scanned = self._scan(x, z, return_final_state, lengths=lengths if return_final_state else None)
        if not return_final_state:
            return self.out_proj(scanned.transpose(1, 2))
        y, ssm_state = scanned
        conv_state = last_conv_inputs(conv_input, lengths, self.d_conv)
        ssm_dtype = torch.promote_types(conv_state.dtype, torch.float32)
        return self.out_proj(y.transpose(1, 2)), MambaState(conv_state, ssm_state.to(ssm_dtype))

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
        conv_weight = self.conv1d.weight[:, 0, :]
        linears = (self.in_proj, self.x_proj, self.dt_proj, self.out_proj)
        parameters = (conv_weight, self.A_log, self.D) + (() if self.conv1d.bias is None else (self.conv1d.bias,))
        if fused_mixer_step_applies(frame, state.conv_state, state.ssm_state, linears, parameters):
            out = fused_mixer_step(
                frame, state.conv_state, state.ssm_state, self.in_proj, conv_weight, self.conv1d.bias, self.x_proj,
                self.dt_proj, self.A_log, self.D, self.out_proj,
            )
        else:
            out = self._unfused_step(frame, state)
        return out if squeeze else out[:, None]

    def _unfused_step(self, frame: torch.Tensor, state: MambaState) -> torch.Tensor:
        """`step` op by op, for every case the fused step does not take (gradients, quantised or LoRA projections,
        bf16, no kernels): frame (B, D) -> (B, D), `state` updated in place."""
        x, z = self.in_proj(frame).chunk(2, dim=-1)  # (B, d_inner) each
        x = causal_conv1d_update(
            x, state.conv_state, self.conv1d.weight[:, 0, :], self.conv1d.bias, activation="silu"
        )
        dt, B, C = self._split_projection(x)
        y = selective_state_update(
            state.ssm_state, x, dt, self._A(), B, C, at_least_float32(self.D), z=z,
            dt_bias=at_least_float32(self.dt_proj.bias), dt_softplus=True,
        )
        return self.out_proj(y)

    def forward_chunk(self, hidden_states: torch.Tensor, state: MambaState) -> Tuple[torch.Tensor, MambaState]:
        """Mix the next chunk of every sequence, continuing from the state after the frames before it.

        The outputs are those of `forward` over the whole sequence so far, at the chunk's frames: the causal
        convolution reads the chunk preceded by the previous `d_conv - 1` inputs kept in `state.conv_state`
        (zeros before the first frame, as `forward`'s padding) and the scan starts from `state.ssm_state`.

        Args:
            hidden_states: the chunk (B, L, D), L >= 1; every sequence advances by the same L frames.
            state: the state after the frames before the chunk, from `allocate_inference_cache` (none yet),
                `forward(..., return_final_state=True)`, `step` or a previous `forward_chunk`. Not modified.

        Returns:
            (B, L, D), and the state after the chunk (new tensors of the same shapes).
        """
        x, z = self._project_inputs(hidden_states)
        x, conv_state = conv_with_history(state.conv_state, x, self.conv1d.weight[:, 0, :], self.conv1d.bias)
        y, ssm_state = self._scan(x, z, True, initial_state=state.ssm_state)
        next_state = MambaState(conv_state, ssm_state.to(state.ssm_state.dtype))
        return self.out_proj(y.transpose(1, 2)), next_state
