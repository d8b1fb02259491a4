"""The Samba-ASR encoder: convolutional subsampling, residual Mamba blocks, a final LayerNorm."""
from __future__ import annotations

from typing import Any, List, Optional

import torch.nn as nn
from typeguard import typechecked

from espnet_samba.asr.encoder.input_layers import build_input_layer
from espnet_samba.asr.encoder.layer_stack import LayerStackEncoder
from espnet_samba.asr.encoder.mamba_layer import MambaEncoderLayer
from espnet_samba.asr.encoder.options import reject_unsupported_options


def check_pre_norm(encoder_name: str, normalize_before: bool) -> None:
    """Reject `normalize_before: false`: the Mamba blocks are pre-norm only."""
    if not normalize_before:
        raise ValueError(
            f"encoder: {encoder_name} supports only normalize_before: true. Its blocks are pre-norm residual blocks "
            "x + f(norm(x)) followed by a final LayerNorm (Samba-ASR, section 4.2); the post-norm form "
            "norm(x + f(x)) that false selects in ESPnet's attention encoders is not implemented"
        )


class MambaEncoder(LayerStackEncoder):
    """Mamba encoder (Samba-ASR, section 4.2), registered in ESPnet's ASR task as `encoder: mamba`.

    features (B, T, F) -> ESPnet's convolutional subsampling (`input_layer`) -> `num_blocks` pre-norm residual Mamba
    blocks -> LayerNorm -> (B, T', output_size). No positional encoding: the Mamba mixer's causal convolution and
    recurrence already depend on frame order.

    With `bidirectional: false` (the paper's form) every block is causal, so the encoder streams: chunk by chunk
    through `init_stream_state` and `forward_chunk`, with the offline outputs (see `LayerStackEncoder`). With
    `bidirectional: true` each block has a second mixer that reads each utterance backwards, reversed within its
    own length so padding never comes first; the two directions are summed (see `BidirectionalMambaBlock`).
    The output for an utterance is the same alone or in a padded batch, in both directions.

    Args:
        input_size: input feature size F (vocabulary size with input_layer "embed").
        output_size: model size D.
        num_blocks: number of Mamba layers.
        dropout_rate: dropout after the front end and on every residual branch.
        input_layer: "conv2d" (T/4), "conv2d1", "conv2d2" (T/2), "conv2d6" (T/6), "conv2d8" (T/8) (ESPnet's
            Conv2dSubsampling classes), "linear", "embed" or None (inputs already of size D).
        normalize_before: must be true (pre-norm blocks); kept under ESPnet's name so Conformer configs read alike.
        d_state: SSM state size N per channel.
        d_conv: width of the mixer's causal depthwise convolution.
        expand: the mixer's inner size is expand * D.
        bidirectional: add a backward mixer to every block (offline use); false keeps the encoder causal.
        norm_type: "layer_norm" or "rms_norm" for the pre-norms (the final norm is a LayerNorm).
        ffn_type: "none" (Mamba blocks only), "linear" (Mamba then feed-forward) or "macaron" (half feed-forwards
            on both sides, as in the Conformer).
        linear_units: feed-forward hidden size; only with ffn_type linear or macaron, default 4 * output_size.
        mixer_type: "mamba" (Mamba-1) or "mamba2" (mamba-ssm's Mamba-2), both on CPU and CUDA.
        padding_idx: padding id for input_layer "embed".
        subsampling_channels: channels of a conv input_layer's Conv2d layers (default output_size, ESPnet's
            layer); fewer make the front end much cheaper (see `build_input_layer`).
        interctc_layer_idx: 1-based layers whose normalised outputs feed intermediate CTC losses.
        interctc_use_conditioning: add the projected intermediate CTC posteriors to the next layer's input
            (self-conditioned CTC); `ESPnetASRModel` sets `conditioning_layer` and passes `ctc=`.
        **unsupported: any other key is rejected with a ValueError that lists the keys this encoder accepts.
    """

    @typechecked
    def __init__(
        self,
        input_size: int,
        output_size: int = 256,
        num_blocks: int = 12,
        dropout_rate: float = 0.1,
        input_layer: Optional[str] = "conv2d",
        normalize_before: bool = True,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        bidirectional: bool = False,
        norm_type: str = "layer_norm",
        ffn_type: str = "none",
        linear_units: Optional[int] = None,
        mixer_type: str = "mamba",
        padding_idx: int = -1,
        subsampling_channels: Optional[int] = None,
        interctc_layer_idx: List[int] = [],
        interctc_use_conditioning: bool = False,
        **unsupported: Any,
    ) -> None:
        reject_unsupported_options("mamba", MambaEncoder.__init__, unsupported)
        check_pre_norm("mamba", normalize_before)
        if ffn_type == "none" and linear_units is not None:
            raise ValueError(
                "linear_units sizes the feed-forward blocks, but ffn_type is 'none'; "
                "set ffn_type to 'linear' or 'macaron', or remove linear_units"
            )
        if num_blocks < 1:
            raise ValueError(f"num_blocks must be at least 1, got {num_blocks}")
        layers = nn.ModuleList(
            MambaEncoderLayer(
                output_size,
                d_state=d_state,
                d_conv=d_conv,
                expand=expand,
                dropout_rate=dropout_rate,
                norm_type=norm_type,
                bidirectional=bidirectional,
                ffn_type=ffn_type,
                mixer_type=mixer_type,
                linear_units=linear_units or 4 * output_size,
            )
            for _ in range(num_blocks)
        )
        super().__init__(
            build_input_layer(
                input_layer, input_size, output_size, dropout_rate, padding_idx, subsampling_channels
            ),
            layers,
            output_size,
            interctc_layer_idx,
            interctc_use_conditioning,
        )
