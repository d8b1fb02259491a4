"""The encoders' front ends: ESPnet's own subsampling layers, selected by ESPnet's `input_layer` names.

ESPnet's subsampling modules end in a positional-encoding slot. Mamba needs no positional encoding (its causal
convolution and recurrence see the order of the frames), so the slot holds a `Dropout(dropout_rate)`: the same
regularisation the Conformer applies after its positional encoding, without adding positions.

Output lengths are computed from each utterance's own length, not taken from the mask ESPnet's subsampling
returns. That mask is sliced from the padded batch's mask, so in a batch it also marks as valid the last one or
two output frames whose receptive field reaches into the padding (e.g. conv2d: 30 input frames give 6 output
frames alone but 8 "valid" ones beside a 40-frame utterance). A bidirectional or attention layer would read those
frames, and an utterance's output would depend on its batch. Here an output frame is valid exactly when all the
input frames it sees are valid, which is also the number of frames ESPnet gives the utterance alone.

Long inputs are subsampled in overlapping pieces of `SUBSAMPLING_CHUNK_FRAMES` output frames. The convolutions are
local, so each output frame is computed from exactly the same input frames as in one pass, but the
(B, D, T/2, F/2) feature map of the first convolution, 640 MB for 320 s of audio at D = 256, and the unfolded
input of the second never exist for the whole input at once: peak memory stays bounded and time linear.
"""
from __future__ import annotations

from typing import Callable, Dict, NamedTuple, Optional, Tuple, Type

import torch
import torch.nn as nn

from espnet_samba.compat import (
    Conv2dSubsampling,
    Conv2dSubsampling1,
    Conv2dSubsampling2,
    Conv2dSubsampling6,
    Conv2dSubsampling8,
    TooShortUttError,
    check_short_utt,
)


class Subsampling(NamedTuple):
    """An ESPnet subsampling class and the geometry of its valid convolutions over time.

    Attributes:
        module_class: the ESPnet module.
        output_length: number of output frames for an input of n frames.
        stride: input frames between consecutive output frames.
        receptive_field: input frames each output frame sees (output frame t sees [t * stride, t * stride + rf)).
    """

    module_class: Type[nn.Module]
    output_length: Callable[[torch.Tensor], torch.Tensor]
    stride: int
    receptive_field: int


CONV_SUBSAMPLING: Dict[str, Subsampling] = {
    "conv2d": Subsampling(Conv2dSubsampling, lambda n: ((n - 1) // 2 - 1) // 2, 4, 7),
    "conv2d1": Subsampling(Conv2dSubsampling1, lambda n: n - 4, 1, 5),
    "conv2d2": Subsampling(Conv2dSubsampling2, lambda n: (n - 1) // 2 - 2, 2, 7),
    "conv2d6": Subsampling(Conv2dSubsampling6, lambda n: ((n - 1) // 2 - 2) // 3, 6, 11),
    "conv2d8": Subsampling(Conv2dSubsampling8, lambda n: (((n - 1) // 2 - 1) // 2 - 1) // 2, 8, 15),
}
SUBSAMPLING_CHUNK_FRAMES = 1024
INPUT_LAYERS = (*CONV_SUBSAMPLING, "linear", "embed", None)


def build_input_layer(
    input_layer: Optional[str],
    input_size: int,
    output_size: int,
    dropout_rate: float,
    padding_idx: int = -1,
    subsampling_channels: Optional[int] = None,
) -> nn.Module:
    """The front end called `input_layer`, mapping inputs of `input_size` to frames of `output_size`.

    Args:
        input_layer: one of `INPUT_LAYERS`: a convolutional subsampling, "linear" (Linear + LayerNorm), "embed"
            (token ids through an Embedding; `input_size` is then the vocabulary size), or None (inputs already
            of `output_size`).
        input_size: feature size F of the inputs (B, T, F), or the vocabulary size for "embed".
        output_size: feature size D of the frames it returns.
        dropout_rate: dropout on its output.
        padding_idx: padding id of the Embedding for "embed".
        subsampling_channels: channels of a convolutional subsampling's Conv2d layers; None keeps ESPnet's
            layer as it is (output_size channels). Otherwise ESPnet's module is built with these channels and its
            output Linear maps them to output_size; the time geometry (stride, receptive field, streaming) is the
            same. The convolutions' cost grows with the square of the channels: on CPU the front end of a
            512-wide encoder costs as much as several Mamba blocks at 512 channels and a tenth of that at 128
            (bench/bench_streaming_rtf.py prints both); icefall's Zipformer front end uses 128.
    """
    if subsampling_channels is not None and input_layer not in CONV_SUBSAMPLING:
        raise ValueError(
            f"subsampling_channels sizes a convolutional input_layer ({', '.join(CONV_SUBSAMPLING)}), but "
            f"input_layer is {input_layer!r}; remove subsampling_channels or choose a conv input_layer"
        )
    if input_layer in CONV_SUBSAMPLING:
        module_class = CONV_SUBSAMPLING[input_layer].module_class
        channels = output_size if subsampling_channels is None else subsampling_channels
        if channels < 1:
            raise ValueError(f"subsampling_channels must be at least 1, got {channels}")
        module = module_class(input_size, channels, dropout_rate, nn.Dropout(dropout_rate))
        # ESPnet's output Linear maps the channels to output_size: out[0], or out itself in Conv2dSubsampling8
        if channels != output_size and isinstance(module.out, nn.Sequential):
            module.out[0] = nn.Linear(module.out[0].in_features, output_size)
        elif channels != output_size:
            module.out = nn.Linear(module.out.in_features, output_size)
        return module
    if input_layer == "linear":
        return nn.Sequential(
            nn.Linear(input_size, output_size), nn.LayerNorm(output_size), nn.Dropout(dropout_rate)
        )
    if input_layer == "embed":
        return nn.Sequential(nn.Embedding(input_size, output_size, padding_idx=padding_idx), nn.Dropout(dropout_rate))
    if input_layer is None:
        if input_size != output_size:
            raise ValueError(
                f"input_layer: null passes the inputs through unchanged, so input_size ({input_size}) must equal "
                f"output_size ({output_size}); choose a projecting input_layer such as 'linear' or 'conv2d'"
            )
        return nn.Dropout(dropout_rate)
    raise ValueError(f"unknown input_layer {input_layer!r}; choose one of {list(INPUT_LAYERS)}")


def _subsampling_of(embed: nn.Module) -> Optional[Subsampling]:
    for subsampling in CONV_SUBSAMPLING.values():
        if type(embed) is subsampling.module_class:
            return subsampling
    return None


def frame_stride(embed: nn.Module) -> int:
    """Input frames between consecutive output frames of a front end built by `build_input_layer` (1 for the
    per-frame ones)."""
    subsampling = _subsampling_of(embed)
    return 1 if subsampling is None else subsampling.stride


def receptive_field(embed: nn.Module) -> int:
    """Input frames each output frame of a front end built by `build_input_layer` sees (1 for the per-frame ones):
    output frame t sees the input frames [t * stride, t * stride + receptive_field)."""
    subsampling = _subsampling_of(embed)
    return 1 if subsampling is None else subsampling.receptive_field


def subsample_in_chunks(
    embed: nn.Module, subsampling: Subsampling, xs_pad: torch.Tensor, chunk_frames: int = SUBSAMPLING_CHUNK_FRAMES
) -> torch.Tensor:
    """`embed(xs_pad)` computed `chunk_frames` output frames at a time, each from just the input frames it sees.

    Args:
        embed: an ESPnet convolutional subsampling module described by `subsampling`.
        xs_pad: (B, T, F).
        chunk_frames: output frames per piece.

    Returns:
        (B, T', D), as from one pass.
    """
    total = int(subsampling.output_length(xs_pad.size(1)))
    pieces = []
    for start in range(0, total, chunk_frames):
        stop = min(start + chunk_frames, total)
        first_input = start * subsampling.stride
        last_input = (stop - 1) * subsampling.stride + subsampling.receptive_field
        pieces.append(embed(xs_pad[:, first_input:last_input], None)[0])
    return torch.cat(pieces, dim=1)


def apply_input_layer(
    embed: nn.Module, xs_pad: torch.Tensor, ilens: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Run a front end built by `build_input_layer` on a padded batch.

    Args:
        embed: the front end.
        xs_pad: (B, T, F) features, or (B, T) token ids for "embed".
        ilens: valid lengths (B,).

    Returns:
        frames (B, T', D) and their valid lengths (B,): the frames that see no padding.

    Raises:
        TooShortUttError: the batch is shorter than the subsampling's receptive field (ESPnet's trainer and
            `Speech2Text` know this error).
    """
    subsampling = _subsampling_of(embed)
    if subsampling is None:
        return embed(xs_pad), ilens
    too_short, limit = check_short_utt(embed, xs_pad.size(1))
    if too_short:
        raise TooShortUttError(
            f"has {xs_pad.size(1)} frames and is too short for subsampling (it needs at least {limit} frames)",
            xs_pad.size(1),
            limit,
        )
    return subsample_in_chunks(embed, subsampling, xs_pad), subsampling.output_length(ilens).clamp(min=0)


def stream_input_layer(
    embed: nn.Module, xs_chunk: torch.Tensor, pending_frames: Optional[torch.Tensor], output_size: int
) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Run a front end built by `build_input_layer` on the next chunk of a stream.

    Per-frame front ends ("linear", "embed", None) map the chunk frame by frame. ESPnet's convolutional
    subsamplings convolve over time without padding, so output frame t is a function of input frames
    [t * stride, t * stride + receptive_field) alone and the frames computed over a prefix of the input are the
    first frames of the offline output: every one of them is exact. The chunk is appended to the input frames
    still pending, each output frame this window completes is computed from it (in bounded memory, see
    `subsample_in_chunks`), and the input from the first frame of the next output frame on is kept: fewer than
    `receptive_field` frames, so the pending input never grows. Every input layer of `INPUT_LAYERS` streams.

    Args:
        embed: the front end.
        xs_chunk: the next frames of each stream (B, T_chunk, F), or token ids (B, T_chunk) for "embed".
        pending_frames: (B, P, F) from the previous call, or None at the start of the streams.
        output_size: feature size D of the front end's frames.

    Returns:
        The output frames the chunk completes (B, T', D), T' possibly 0, and the pending input frames
        (B, P', F) for the next call (None for per-frame front ends).
    """
    subsampling = _subsampling_of(embed)
    if subsampling is None:
        return embed(xs_chunk), None
    window = xs_chunk if pending_frames is None else torch.cat([pending_frames, xs_chunk], dim=1)
    count = max(int(subsampling.output_length(window.size(1))), 0)
    frames = (
        subsample_in_chunks(embed, subsampling, window) if count else window.new_zeros(window.size(0), 0, output_size)
    )
    # A copy, so the pending frames hold neither the caller's tensor nor the whole window alive.
    return frames, window[:, count * subsampling.stride :].clone()
