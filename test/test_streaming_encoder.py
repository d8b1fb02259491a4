"""Causal encoders chunk by chunk: the chunks' outputs, concatenated, are the offline forward's.

Oracles: the offline `forward` of the same model (the encoders and the mixer), `MambaMixer.step` frame by frame,
and ESPnet's subsampling modules run once over the whole input (the front end).
"""
from __future__ import annotations

import random
import zlib
from typing import Iterator, List, Tuple

import pytest
import torch

from espnet2.asr.ctc import CTC
from espnet_samba.asr.encoder.input_layers import CONV_SUBSAMPLING, build_input_layer, stream_input_layer
from espnet_samba.asr.encoder.mamba_encoder import MambaEncoder
from espnet_samba.asr.encoder.speech_mamba_encoder import SpeechMambaEncoder
from espnet_samba.asr.encoder.stream_state import EncoderStreamState
from espnet_samba.modules.mamba_mixer import MambaMixer, MambaState

FEATS = 20
FRAMES = 211
CHUNK_SIZES = (1, 2, 3, 5, 7, 16, 64, 300, 1000)
STREAM_TOLERANCE = 1e-4
MIXER_TOLERANCE = dict(rtol=1e-5, atol=1e-5)


def random_chunks(total: int, seed: int, largest: int = 40) -> List[int]:
    """Chunk sizes summing to `total`, each in [0, largest]: empty chunks and single frames included."""
    draw = random.Random(seed)
    sizes = []
    while sum(sizes) < total:
        sizes.append(min(draw.choice([0, 1, draw.randint(1, largest)]), total - sum(sizes)))
    return sizes


def fixed_chunks(total: int, size: int) -> List[int]:
    return [min(size, total - start) for start in range(0, total, size)]


def split(xs: torch.Tensor, sizes: List[int]) -> Iterator[torch.Tensor]:
    start = 0
    for size in sizes:
        yield xs[:, start : start + size]
        start += size


def stream(encoder, xs: torch.Tensor, sizes: List[int], **kwargs) -> Tuple[torch.Tensor, EncoderStreamState]:
    """The encoder's outputs for `xs` (B, T, F) fed chunk by chunk, concatenated, and the final state."""
    state = encoder.init_stream_state(xs.size(0))
    outputs = []
    for chunk in split(xs, sizes):
        ys, state = encoder.forward_chunk(chunk, state, **kwargs)
        assert ys.shape[0] == xs.size(0) and ys.shape[2] == encoder.output_size()
        outputs.append(ys)
    return torch.cat(outputs, dim=1), state


def random_causal_encoder(seed: int, **options) -> MambaEncoder:
    """A small `bidirectional: false` encoder with sizes drawn from `seed`, in eval mode."""
    draw = random.Random(seed)
    torch.manual_seed(seed)
    defaults = dict(
        num_blocks=2, dropout_rate=0.1, output_size=draw.choice([16, 24, 32]), d_state=draw.choice([4, 8]),
        d_conv=draw.choice([2, 4]),
    )
    return MambaEncoder(FEATS, bidirectional=False, **{**defaults, **options}).eval()


def max_difference(actual: torch.Tensor, expected: torch.Tensor) -> float:
    assert actual.shape == expected.shape
    return (actual - expected).abs().max().item()


@pytest.mark.parametrize("input_layer", ["conv2d", "conv2d2", "conv2d6", "conv2d8", "linear"])
@pytest.mark.parametrize("ffn_type", ["none", "macaron"])
@pytest.mark.parametrize("norm_type", ["layer_norm", "rms_norm"])
def test_streaming_equals_offline_forward_for_any_chunking(input_layer, ffn_type, norm_type):
    seed = zlib.crc32(f"{input_layer} {ffn_type} {norm_type}".encode()) % 1000
    linear_units = 32 if ffn_type != "none" else None
    encoder = random_causal_encoder(
        seed, input_layer=input_layer, ffn_type=ffn_type, norm_type=norm_type, linear_units=linear_units
    )
    xs = torch.randn(2, FRAMES, FEATS, generator=torch.Generator().manual_seed(seed))
    chunkings = [fixed_chunks(FRAMES, size) for size in CHUNK_SIZES] + [random_chunks(FRAMES, seed)]
    with torch.no_grad():
        expected, olens, _ = encoder(xs, torch.tensor([FRAMES, FRAMES]))
        for sizes in chunkings:
            actual, state = stream(encoder, xs, sizes)
            assert actual.size(1) == state.offset == olens[0] == olens[1]
            assert max_difference(actual, expected) <= STREAM_TOLERANCE, sizes


@pytest.mark.parametrize("input_layer", ["conv2d", "conv2d6"])
def test_an_encoder_with_fewer_subsampling_channels_streams_exactly(input_layer):
    encoder = random_causal_encoder(7, input_layer=input_layer, output_size=24, subsampling_channels=8)
    convolutions = [m for m in encoder.embed.modules() if isinstance(m, torch.nn.Conv2d)]
    assert {m.out_channels for m in convolutions} == {8} and encoder.embed.out[0].weight.shape[0] == 24
    xs = torch.randn(1, FRAMES, FEATS, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected, _, _ = encoder(xs, torch.tensor([FRAMES]))
        for sizes in (fixed_chunks(FRAMES, 1), fixed_chunks(FRAMES, 7), random_chunks(FRAMES, seed=7)):
            assert max_difference(stream(encoder, xs, sizes)[0], expected) <= STREAM_TOLERANCE, sizes


@pytest.mark.parametrize("input_layer", ["linear", None])
def test_subsampling_channels_without_a_conv_front_end_is_refused(input_layer):
    with pytest.raises(ValueError, match=r"subsampling_channels sizes a convolutional input_layer .* but input_layer"):
        MambaEncoder(FEATS if input_layer else 16, output_size=16, input_layer=input_layer, subsampling_channels=8)


@pytest.mark.parametrize("input_layer", ["conv2d", "conv2d1", "conv2d2", "conv2d6", "conv2d8"])
@pytest.mark.parametrize("channels", [None, 8])
def test_front_end_stream_equals_espnet_subsampling_in_one_pass(input_layer, channels):
    torch.manual_seed(0)
    embed = build_input_layer(input_layer, FEATS, 16, 0.0, subsampling_channels=channels).eval()
    receptive_field = CONV_SUBSAMPLING[input_layer].receptive_field
    xs = torch.randn(2, FRAMES, FEATS)
    with torch.no_grad():
        expected, _ = embed(xs, None)
        for sizes in (fixed_chunks(FRAMES, 1), fixed_chunks(FRAMES, 5), random_chunks(FRAMES, seed=3)):
            pending, outputs = None, []
            for chunk in split(xs, sizes):
                frames, pending = stream_input_layer(embed, chunk, pending, 16)
                assert pending.size(1) < receptive_field
                outputs.append(frames)
            torch.testing.assert_close(torch.cat(outputs, dim=1), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("input_layer", ["conv2d1", "embed", None])
def test_other_input_layers_stream_too(input_layer):
    vocab = 30
    input_size = {"embed": vocab, None: 16}.get(input_layer, FEATS)
    torch.manual_seed(0)
    encoder = MambaEncoder(input_size, output_size=16, num_blocks=2, d_state=4, input_layer=input_layer).eval()
    xs = torch.randint(vocab, (2, FRAMES)) if input_layer == "embed" else torch.randn(2, FRAMES, input_size)
    with torch.no_grad():
        expected, olens, _ = encoder(xs, torch.tensor([FRAMES, FRAMES]))
        for sizes in (fixed_chunks(FRAMES, 3), random_chunks(FRAMES, seed=4)):
            actual, state = stream(encoder, xs, sizes)
            assert actual.size(1) == state.offset == olens[0]
            assert max_difference(actual, expected) <= STREAM_TOLERANCE


def test_state_size_does_not_grow_with_the_stream():
    encoder = random_causal_encoder(5, input_layer="conv2d")
    xs = torch.randn(1, 800, FEATS)

    def shapes_after(num_chunks: int) -> List[Tuple[int, ...]]:
        with torch.no_grad():
            _, state = stream(encoder, xs[:, : 8 * num_chunks], [8] * num_chunks)
        tensors = [state.pending_frames] + [t for s in state.layer_states for t in (s.conv_state, s.ssm_state)]
        return [tuple(t.shape) for t in tensors]

    assert shapes_after(10) == shapes_after(100)


def test_forward_chunk_leaves_its_input_state_unchanged():
    encoder = random_causal_encoder(6, input_layer="conv2d")
    xs = torch.randn(2, 30, FEATS)
    with torch.no_grad():
        _, state = stream(encoder, xs[:, :13], [13])
        first, _ = encoder.forward_chunk(xs[:, 13:], state)
        again, _ = encoder.forward_chunk(xs[:, 13:], state)
    torch.testing.assert_close(again, first, rtol=0, atol=0)


def test_intermediate_ctc_layers_are_ignored_and_conditioning_applied():
    vocab = 6
    plain = random_causal_encoder(7, input_layer="conv2d", num_blocks=3, interctc_layer_idx=[1, 2])
    conditioned = random_causal_encoder(
        7, input_layer="conv2d", num_blocks=3, interctc_layer_idx=[1, 2], interctc_use_conditioning=True
    )
    conditioned.conditioning_layer = torch.nn.Linear(vocab, conditioned.output_size())
    ctc = CTC(vocab, conditioned.output_size()).eval()
    xs = torch.randn(2, FRAMES, FEATS)
    ilens = torch.tensor([FRAMES, FRAMES])
    sizes = random_chunks(FRAMES, seed=8)
    with torch.no_grad():
        (expected, _), _, _ = plain(xs, ilens)
        assert max_difference(stream(plain, xs, sizes)[0], expected) <= STREAM_TOLERANCE
        (expected, _), _, _ = conditioned(xs, ilens, ctc=ctc)
        assert max_difference(stream(conditioned, xs, sizes, ctc=ctc)[0], expected) <= STREAM_TOLERANCE
        with pytest.raises(ValueError, match=r"call forward_chunk\(\.\.\., ctc=ctc\)"):
            stream(conditioned, xs, sizes)


def test_speech_mamba_without_attention_layers_streams():
    torch.manual_seed(0)
    encoder = SpeechMambaEncoder(
        FEATS, output_size=16, num_blocks=2, num_attention_blocks=0, linear_units=32, d_state=4
    ).eval()
    xs = torch.randn(2, FRAMES, FEATS)
    with torch.no_grad():
        expected, _, _ = encoder(xs, torch.tensor([FRAMES, FRAMES]))
        assert max_difference(stream(encoder, xs, random_chunks(FRAMES, seed=9))[0], expected) <= STREAM_TOLERANCE


@pytest.mark.parametrize(
    "encoder_class, options, message",
    [
        (MambaEncoder, dict(bidirectional=True), r"bidirectional: true"),
        (
            SpeechMambaEncoder,
            dict(num_blocks=3, num_attention_blocks=1, linear_units=32),
            r"layer 1 \(ChunkedSelfAttentionLayer\), each frame attends to the later frames",
        ),
        (
            SpeechMambaEncoder,
            dict(num_attention_blocks=0, bidirectional=True, linear_units=32),
            r"layer 1 \(MambaEncoderLayer\), the backward mixer",
        ),
    ],
    ids=["mamba bidirectional", "speech_mamba attention", "speech_mamba bidirectional"],
)
def test_encoders_that_need_future_frames_are_refused(encoder_class, options, message):
    encoder = encoder_class(FEATS, **{"output_size": 16, "num_blocks": 2, **options}).eval()
    with pytest.raises(ValueError, match=message):
        encoder.init_stream_state(1)
    state = random_causal_encoder(0, output_size=16).init_stream_state(1)
    with pytest.raises(ValueError, match="cannot run chunk by chunk.*Streaming needs a causal encoder"):
        encoder.forward_chunk(torch.randn(1, 8, FEATS), state)


@pytest.mark.parametrize("ffn_type", ["none", "macaron"])
def test_an_encoder_of_mamba2_mixers_streams_exactly(ffn_type):
    encoder = random_causal_encoder(
        11, output_size=32, mixer_type="mamba2", ffn_type=ffn_type, linear_units=32 if ffn_type != "none" else None
    )
    xs = torch.randn(2, FRAMES, FEATS, generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        expected, olens, _ = encoder(xs, torch.tensor([FRAMES, FRAMES]))
        for sizes in (fixed_chunks(FRAMES, 1), fixed_chunks(FRAMES, 64), random_chunks(FRAMES, seed=11)):
            actual, state = stream(encoder, xs, sizes)
            assert actual.size(1) == state.offset == olens[0]
            assert max_difference(actual, expected) <= STREAM_TOLERANCE, sizes


def random_mixer_input(batch: int, length: int, seed: int) -> torch.Tensor:
    return torch.randn(batch, length, 16, generator=torch.Generator().manual_seed(seed))


def assert_states_close(actual: MambaState, expected: MambaState) -> None:
    torch.testing.assert_close(actual.conv_state, expected.conv_state, **MIXER_TOLERANCE)
    torch.testing.assert_close(actual.ssm_state, expected.ssm_state, **MIXER_TOLERANCE)


@pytest.mark.parametrize("d_conv", [2, 4])
def test_mixer_chunk_after_forward_of_first_half_equals_forward_of_whole(d_conv):
    torch.manual_seed(0)
    mixer = MambaMixer(16, d_state=8, d_conv=d_conv)
    x = random_mixer_input(2, 40, seed=1)
    with torch.no_grad():
        whole, whole_state = mixer(x, return_final_state=True)
        first, state = mixer(x[:, :23], return_final_state=True)
        second, state = mixer.forward_chunk(x[:, 23:], state)
        from_start, start_state = mixer.forward_chunk(x[:, :23], mixer.allocate_inference_cache(2))
    torch.testing.assert_close(second, whole[:, 23:], **MIXER_TOLERANCE)
    assert_states_close(state, whole_state)
    torch.testing.assert_close(from_start, first, **MIXER_TOLERANCE)
    assert_states_close(start_state, mixer(x[:, :23], return_final_state=True)[1])


def test_mixer_chunks_equal_steps_frame_by_frame():
    torch.manual_seed(0)
    mixer = MambaMixer(16, d_state=8)
    x = random_mixer_input(2, 37, seed=2)
    sizes = [1, 2, 3, 5, 7, 19]
    with torch.no_grad():
        step_state = mixer.allocate_inference_cache(2)
        steps = torch.cat([mixer.step(x[:, t : t + 1], step_state) for t in range(x.size(1))], dim=1)
        chunk_state, chunks = mixer.allocate_inference_cache(2), []
        for chunk in split(x, sizes):
            before = MambaState(chunk_state.conv_state.clone(), chunk_state.ssm_state.clone())
            ys, next_state = mixer.forward_chunk(chunk, chunk_state)
            assert_states_close(chunk_state, before)
            chunks.append(ys)
            chunk_state = next_state
    torch.testing.assert_close(torch.cat(chunks, dim=1), steps, **MIXER_TOLERANCE)
    assert_states_close(chunk_state, step_state)
