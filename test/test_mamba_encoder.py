"""MambaEncoder: options, ESPnet's encoder contracts, batch invariance, causality, the bidirectional block."""
import pytest
import torch

from espnet.nets.pytorch_backend.nets_utils import make_pad_mask
from espnet.nets.pytorch_backend.transformer.subsampling import TooShortUttError
from espnet2.asr.ctc import CTC
from espnet2.asr.espnet_model import ESPnetASRModel
from espnet_samba.asr.encoder.input_layers import CONV_SUBSAMPLING, build_input_layer, subsample_in_chunks
from espnet_samba.asr.encoder.mamba_encoder import MambaEncoder
from espnet_samba.modules.bidirectional import BidirectionalMambaBlock, reverse_within_lengths

FEATS = 20
SIZE = 8


def tiny_encoder(**options) -> MambaEncoder:
    defaults = dict(output_size=SIZE, num_blocks=2, d_state=4, expand=2, dropout_rate=0.0)
    return MambaEncoder(FEATS, **{**defaults, **options})


def valid_frames_alone_and_in_batch(encoder, lengths, input_size=FEATS, seed=0):
    """Each utterance's valid output frames, encoded alone and as part of one padded batch."""
    torch.manual_seed(seed)
    encoder.eval()
    xs = torch.randn(len(lengths), max(lengths), input_size)
    ilens = torch.tensor(lengths)
    with torch.no_grad():
        batch_out, batch_lens, _ = encoder(xs, ilens)
        for b, length in enumerate(lengths):
            alone, alone_lens, _ = encoder(xs[b : b + 1, :length], ilens[b : b + 1])
            assert batch_lens[b] == alone_lens[0] == alone.size(1)
            yield alone[0], batch_out[b, : alone_lens[0]]


@pytest.mark.parametrize("input_layer", ["conv2d", "conv2d1", "conv2d2", "conv2d6", "conv2d8", "linear"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_forward_backward_over_input_layers(input_layer, bidirectional):
    encoder = tiny_encoder(input_layer=input_layer, bidirectional=bidirectional)
    xs = torch.randn(2, 40, FEATS, requires_grad=True)
    ilens = torch.tensor([40, 31])
    ys, olens, states = encoder(xs, ilens)
    assert ys.shape == (2, olens.max(), SIZE) and states is None
    ys.sum().backward()
    assert xs.grad is not None and all(p.grad is not None for p in encoder.parameters())


@pytest.mark.parametrize("norm_type", ["layer_norm", "rms_norm"])
@pytest.mark.parametrize("ffn_type", ["none", "linear", "macaron"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_forward_backward_over_block_options(norm_type, ffn_type, bidirectional):
    linear_units = None if ffn_type == "none" else 16
    encoder = tiny_encoder(
        input_layer="linear", norm_type=norm_type, ffn_type=ffn_type, linear_units=linear_units,
        bidirectional=bidirectional,
    )
    xs = torch.randn(2, 12, FEATS)
    ys, olens, _ = encoder(xs, torch.tensor([12, 7]))
    assert ys.shape == (2, 12, SIZE) and olens.tolist() == [12, 7]
    ys.pow(2).mean().backward()
    assert all(p.grad is not None for p in encoder.parameters())


def test_input_layer_none_and_embed():
    identity_front = MambaEncoder(SIZE, output_size=SIZE, num_blocks=1, d_state=4, input_layer=None)
    ys, olens, _ = identity_front(torch.randn(2, 9, SIZE), torch.tensor([9, 4]))
    assert ys.shape == (2, 9, SIZE) and olens.tolist() == [9, 4]
    token_front = MambaEncoder(30, output_size=SIZE, num_blocks=1, d_state=4, input_layer="embed", padding_idx=0)
    ys, olens, _ = token_front(torch.randint(1, 30, (2, 9)), torch.tensor([9, 4]))
    assert ys.shape == (2, 9, SIZE) and olens.tolist() == [9, 4]


@pytest.mark.parametrize("input_layer", sorted(CONV_SUBSAMPLING))
def test_output_lengths_are_espnet_subsampling_lengths_alone(input_layer):
    """Oracle: the frames ESPnet's own subsampling produces (and its mask counts) for one unpadded utterance."""
    subsampling = build_input_layer(input_layer, FEATS, SIZE, 0.0)
    encoder = tiny_encoder(input_layer=input_layer, num_blocks=1)
    for length in range(15, 40, 3):
        xs = torch.randn(1, length, FEATS)
        frames, mask = subsampling(xs, torch.ones(1, 1, length, dtype=torch.bool))
        _, olens, _ = encoder(xs, torch.tensor([length]))
        assert olens.item() == frames.size(1) == mask.sum().item()


@pytest.mark.parametrize("input_layer", sorted(CONV_SUBSAMPLING))
@pytest.mark.parametrize("chunk_frames", [1, 3, 1000])
def test_subsampling_in_chunks_equals_one_pass(input_layer, chunk_frames):
    """Oracle: ESPnet's subsampling module run once over the whole input."""
    subsampling = build_input_layer(input_layer, FEATS, SIZE, 0.0).eval()
    xs = torch.randn(2, 64, FEATS)
    with torch.no_grad():
        expected, _ = subsampling(xs, None)
        chunked = subsample_in_chunks(subsampling, CONV_SUBSAMPLING[input_layer], xs, chunk_frames)
    torch.testing.assert_close(chunked, expected)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("input_layer", ["conv2d", "conv2d6", "linear"])
def test_utterance_output_does_not_depend_on_its_batch(bidirectional, input_layer):
    encoder = tiny_encoder(input_layer=input_layer, bidirectional=bidirectional, ffn_type="macaron", linear_units=16)
    for alone, in_batch in valid_frames_alone_and_in_batch(encoder, [64, 45, 30, 22]):
        torch.testing.assert_close(in_batch, alone, rtol=1e-4, atol=1e-5)


def test_causal_encoder_output_ignores_future_frames():
    """Unidirectional (the paper's form): frame t of the output depends on no input after t (streamable)."""
    encoder = tiny_encoder(input_layer="linear", ffn_type="linear", linear_units=16).eval()
    xs = torch.randn(1, 20, FEATS)
    changed = xs.clone()
    changed[:, 12:] = torch.randn(1, 8, FEATS)
    with torch.no_grad():
        ys, _, _ = encoder(xs, torch.tensor([20]))
        ys_changed, _, _ = encoder(changed, torch.tensor([20]))
    torch.testing.assert_close(ys_changed[:, :12], ys[:, :12])
    assert not torch.allclose(ys_changed[:, 12:], ys[:, 12:])


def test_bidirectional_encoder_sees_future_frames():
    encoder = tiny_encoder(input_layer="linear", bidirectional=True).eval()
    xs = torch.randn(1, 20, FEATS)
    changed = xs.clone()
    changed[:, 12:] = torch.randn(1, 8, FEATS)
    with torch.no_grad():
        ys, _, _ = encoder(xs, torch.tensor([20]))
        ys_changed, _, _ = encoder(changed, torch.tensor([20]))
    assert not torch.allclose(ys_changed[:, :12], ys[:, :12])


def test_reverse_within_lengths_reverses_valid_frames_and_keeps_padding():
    xs = torch.randn(3, 7, 2)
    lengths = torch.tensor([7, 4, 1])
    reversed_xs = reverse_within_lengths(xs, lengths)
    for b, length in enumerate(lengths.tolist()):
        torch.testing.assert_close(reversed_xs[b, :length], xs[b, :length].flip(0))
        torch.testing.assert_close(reversed_xs[b, length:], xs[b, length:])
    torch.testing.assert_close(reverse_within_lengths(reversed_xs, lengths), xs)
    torch.testing.assert_close(reverse_within_lengths(xs, None), xs.flip(1))


def test_bidirectional_block_is_forward_plus_reversed_backward_mixer():
    """Oracle: on one unpadded sequence, the backward branch is the backward mixer on the time-flipped input."""
    block = BidirectionalMambaBlock(SIZE, d_state=4).eval()
    xs = torch.randn(3, 10, SIZE)
    lengths = torch.tensor([10, 6, 3])
    with torch.no_grad():
        ys = block(xs, lengths)
        for b, length in enumerate(lengths.tolist()):
            x = xs[b : b + 1, :length]
            normed = block.norm(x)
            expected = x + block.forward_mixer(normed) + block.backward_mixer(normed.flip(1)).flip(1)
            torch.testing.assert_close(ys[b : b + 1, :length], expected, rtol=1e-4, atol=1e-5)


def test_intermediate_ctc_outputs_are_normalised_layer_outputs():
    encoder = tiny_encoder(input_layer="linear", num_blocks=3, interctc_layer_idx=[1, 2]).eval()
    xs, ilens = torch.randn(2, 10, FEATS), torch.tensor([10, 6])
    with torch.no_grad():
        (ys, intermediate), olens, _ = encoder(xs, ilens)
        hidden = encoder.embed(xs)
        expected = []
        for layer in encoder.encoders:
            hidden = layer(hidden, ilens)
            expected.append(encoder.after_norm(hidden))
    assert [idx for idx, _ in intermediate] == [1, 2]
    torch.testing.assert_close(intermediate[0][1], expected[0])
    torch.testing.assert_close(intermediate[1][1], expected[1])
    torch.testing.assert_close(ys, expected[2])


def test_intermediate_ctc_conditioning_adds_projected_posteriors():
    vocab = 6
    encoder = tiny_encoder(input_layer="linear", num_blocks=2, interctc_layer_idx=[1], interctc_use_conditioning=True)
    encoder.eval()
    ctc = CTC(vocab, SIZE)
    encoder.conditioning_layer = torch.nn.Linear(vocab, SIZE)
    xs, ilens = torch.randn(2, 10, FEATS), torch.tensor([10, 6])
    with torch.no_grad():
        (ys, intermediate), _, _ = encoder(xs, ilens, ctc=ctc)
        first = encoder.encoders[0](encoder.embed(xs), ilens)
        conditioned = first + encoder.conditioning_layer(ctc.softmax(encoder.after_norm(first)))
        expected = encoder.after_norm(encoder.encoders[1](conditioned, ilens))
    torch.testing.assert_close(ys, expected)
    with pytest.raises(ValueError, match="ctc"):
        encoder(xs, ilens)


@pytest.mark.parametrize("use_conditioning", [False, True])
def test_intermediate_ctc_through_espnet_asr_model(use_conditioning):
    """ESPnetASRModel sets the conditioning layer, passes ctc= and reports the intermediate losses."""
    vocab = 7
    encoder = tiny_encoder(num_blocks=3, interctc_layer_idx=[1, 2], interctc_use_conditioning=use_conditioning)
    model = ESPnetASRModel(
        vocab_size=vocab, token_list=[str(i) for i in range(vocab)], frontend=None, specaug=None, normalize=None,
        preencoder=None, encoder=encoder, postencoder=None, decoder=None, ctc=CTC(vocab, SIZE), joint_network=None,
        ctc_weight=1.0, interctc_weight=0.5,
    )
    assert isinstance(encoder.conditioning_layer, torch.nn.Linear) == use_conditioning
    speech = torch.randn(2, 48, FEATS)
    text = torch.randint(1, vocab - 1, (2, 3))
    loss, stats, _ = model(speech, torch.tensor([48, 40]), text, torch.tensor([3, 2]))
    loss.backward()
    assert torch.isfinite(loss)
    assert {"loss_interctc_layer1", "loss_interctc_layer2"} <= set(stats)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(attention_heads=4, cnn_module_kernel=31), r"\['attention_heads', 'cnn_module_kernel'\] only apply to"),
        (dict(pos_enc_layer_type="rel_pos", macaron_style=True), "attention encoders"),
        (dict(num_blcoks=3), r"\['num_blcoks'\] are unknown"),
        (dict(normalize_before=False), "normalize_before: true"),
        (dict(linear_units=64), "ffn_type is 'none'"),
        (dict(ffn_type="conv"), "ffn_type must be one of"),
        (dict(norm_type="batch_norm"), "norm_type must be one of"),
        (dict(input_layer="conv3d"), "unknown input_layer"),
        (dict(input_layer=None), "input_size"),
        (dict(interctc_layer_idx=[2]), r"interctc_layer_idx \[2\] out of range"),
        (dict(num_blocks=0), "num_blocks"),
        (dict(mixer_type="s4"), "mixer_type must be one of"),
    ],
)
def test_invalid_options_raise_clear_errors(options, message):
    with pytest.raises(ValueError, match=message):
        tiny_encoder(**options)


def test_unsupported_key_error_lists_accepted_keys():
    with pytest.raises(ValueError) as error:
        tiny_encoder(attention_dropout_rate=0.1)
    for key in ("output_size", "num_blocks", "bidirectional", "d_state", "interctc_layer_idx"):
        assert key in str(error.value)


def test_too_short_input_raises_espnet_error():
    with pytest.raises(TooShortUttError):
        tiny_encoder(input_layer="conv2d")(torch.randn(1, 5, FEATS), torch.tensor([5]))


def test_padding_mask_helper_agrees_with_lengths():
    """Output lengths index the valid frames of the returned (B, T', D) tensor, as ESPnet's CTC expects."""
    encoder = tiny_encoder(input_layer="conv2d")
    ys, olens, _ = encoder(torch.randn(3, 50, FEATS), torch.tensor([50, 33, 17]))
    assert ys.size(1) == olens.max()
    assert make_pad_mask(olens).shape == ys.shape[:2]
