"""Speech-Mamba: local self-attention layers at the bottom, Mamba layers above them."""
from __future__ import annotations

from typing import Any, List, Optional

import torch.nn as nn
from typeguard import typechecked

from espnet_samba.asr.encoder.chunked_attention import ChunkedSelfAttentionLayer
from espnet_samba.asr.encoder.input_layers import build_input_layer
from espnet_samba.asr.encoder.layer_stack import LayerStackEncoder
from espnet_samba.asr.encoder.mamba_encoder import check_pre_norm
from espnet_samba.asr.encoder.mamba_layer import MambaEncoderLayer
from espnet_samba.asr.encoder.options import reject_unsupported_options


class SpeechMambaEncoder(LayerStackEncoder):
    """Speech-Mamba hybrid (Gao & Chen), registered in ESPnet's ASR task as `encoder: speech_mamba`.

    Self-attention and selective state spaces split the work by range: the bottom `num_attention_blocks` layers
    are Transformer layers (ESPnet's `EncoderLayer` with relative-position multi-head attention) that build the
    lower-level, local representations; the remaining `num_blocks - num_attention_blocks` layers are Mamba
    layers that model the long-range context. Attention is confined to chunks of `attention_chunk_size` frames
    (after subsampling; 64 frames = 2.56 s at conv2d's 40 ms), a block-diagonal mask computed chunk by chunk
    (`ChunkedSelfAttentionLayer`), so every layer costs O(T) and the encoder scales linearly with the length;
    information crosses chunk borders through the Mamba layers. Front end, final LayerNorm, intermediate CTC and
    batch invariance are those of `MambaEncoder`. With attention layers it does not stream (`forward_chunk` refuses
    it), since a frame attends to the later frames of its attention chunk.

    Args:
        input_size: input feature size F (vocabulary size with input_layer "embed").
        output_size: model size D.
        num_blocks: total number of layers, attention layers included.
        num_attention_blocks: how many of them, at the bottom, are chunked self-attention layers.
        attention_heads: heads of the attention layers.
        linear_units: feed-forward hidden size of the attention layers (and of the Mamba layers' feed-forwards when
            ffn_type is not "none").
        attention_chunk_size: frames per attention chunk.
        dropout_rate: dropout after the front end and on every residual branch.
        attention_dropout_rate: dropout on the attention weights.
        positional_dropout_rate: dropout on the relative positional embeddings.
        input_layer: as in `MambaEncoder` ("conv2d", "conv2d1", "conv2d2", "conv2d6", "conv2d8", "linear",
            "embed", None).
        normalize_before: must be true (pre-norm layers).
        d_state, d_conv, expand: sizes of the Mamba mixers (see `MambaEncoder`).
        bidirectional: Mamba layers read forwards and backwards; false keeps them causal.
        norm_type: "layer_norm" or "rms_norm" for the Mamba layers' pre-norms.
        ffn_type: "none", "linear" or "macaron" feed-forwards in the Mamba layers.
        mixer_type: "mamba" (Mamba-1) or "mamba2" (mamba-ssm's Mamba-2), both on CPU and CUDA.
        padding_idx: padding id for input_layer "embed".
        subsampling_channels: channels of a conv input_layer's Conv2d layers (default output_size, ESPnet's
            layer); fewer make the front end much cheaper (see `build_input_layer`).
        interctc_layer_idx: 1-based layers (attention layers count first) feeding intermediate CTC losses.
        interctc_use_conditioning: self-conditioned CTC, as in `MambaEncoder`.
        **unsupported: any other key is rejected with a ValueError that lists the keys this encoder accepts.
    """

    @typechecked
    def __init__(
        self,
        input_size: int,
        output_size: int = 256,
        num_blocks: int = 12,
        num_attention_blocks: int = 2,
        attention_heads: int = 4,
        linear_units: int = 1024,
        attention_chunk_size: int = 64,
        dropout_rate: float = 0.1,
        attention_dropout_rate: float = 0.0,
        positional_dropout_rate: float = 0.1,
        input_layer: Optional[str] = "conv2d",
        normalize_before: bool = True,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        bidirectional: bool = False,
        norm_type: str = "layer_norm",
        ffn_type: str = "none",
        mixer_type: str = "mamba",
        padding_idx: int = -1,
        subsampling_channels: Optional[int] = None,
        interctc_layer_idx: List[int] = [],
        interctc_use_conditioning: bool = False,
        **unsupported: Any,
    ) -> None:
        reject_unsupported_options("speech_mamba", SpeechMambaEncoder.__init__, unsupported)
        check_pre_norm("speech_mamba", normalize_before)
        if not 0 <= num_attention_blocks <= num_blocks or num_blocks < 1:
            raise ValueError(
                f"need num_blocks >= 1 and 0 <= num_attention_blocks <= num_blocks, got num_blocks={num_blocks}, "
                f"num_attention_blocks={num_attention_blocks}"
            )
        attention_layers = [
            ChunkedSelfAttentionLayer(
                output_size,
                attention_heads,
                linear_units,
                attention_chunk_size,
                dropout_rate=dropout_rate,
                attention_dropout_rate=attention_dropout_rate,
                positional_dropout_rate=positional_dropout_rate,
            )
            for _ in range(num_attention_blocks)
        ]
        mamba_layers = [
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
                linear_units=linear_units,
            )
            for _ in range(num_blocks - num_attention_blocks)
        ]
        super().__init__(
            build_input_layer(
                input_layer, input_size, output_size, dropout_rate, padding_idx, subsampling_channels
            ),
            nn.ModuleList(attention_layers + mamba_layers),
            output_size,
            interctc_layer_idx,
            interctc_use_conditioning,
        )
