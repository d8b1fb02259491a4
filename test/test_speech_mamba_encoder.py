"""SpeechMambaEncoder: chunked self-attention below Mamba layers; the same contracts as MambaEncoder."""
import pytest
import torch

from espnet2.asr.ctc import CTC
from espnet2.asr.espnet_model import ESPnetASRModel
from espnet_samba.asr.encoder.chunked_attention import ChunkedSelfAttentionLayer
from espnet_samba.asr.encoder.mamba_layer import MambaEncoderLayer
from espnet_samba.asr.encoder.speech_mamba_encoder import SpeechMambaEncoder

FEATS = 20
SIZE = 8


def tiny_encoder(**options) -> SpeechMambaEncoder:
    defaults = dict(
        output_size=SIZE, num_blocks=3, num_attention_blocks=2, attention_heads=2, linear_units=16,
        attention_chunk_size=4, d_state=4, dropout_rate=0.0, positional_dropout_rate=0.0,
    )
    return SpeechMambaEncoder(FEATS, **{**defaults, **options})


@pytest.mark.parametrize("input_layer", ["conv2d", "conv2d2", "linear"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("ffn_type", ["none", "macaron"])
def test_forward_backward(input_layer, bidirectional, ffn_type):
    encoder = tiny_encoder(input_layer=input_layer, bidirectional=bidirectional, ffn_type=ffn_type)
    xs = torch.randn(2, 40, FEATS, requires_grad=True)
    ys, olens, states = encoder(xs, torch.tensor([40, 29]))
    assert ys.shape == (2, olens.max(), SIZE) and states is None
    ys.sum().backward()
    assert all(p.grad is not None for p in encoder.parameters())


@pytest.mark.parametrize("num_attention_blocks", [0, 1, 3])
def test_layer_layout(num_attention_blocks):
    encoder = tiny_encoder(num_attention_blocks=num_attention_blocks)
    kinds = [type(layer) for layer in encoder.encoders]
    assert kinds == [ChunkedSelfAttentionLayer] * num_attention_blocks + [MambaEncoderLayer] * (3 - num_attention_blocks)


def test_chunked_attention_is_espnet_layer_on_each_chunk():
    """Oracle: ESPnet's EncoderLayer run on every chunk of every sequence separately, unpadded."""
    chunk = 5
    layer = ChunkedSelfAttentionLayer(SIZE, attention_heads=2, linear_units=16, chunk_size=chunk).eval()
    xs = torch.randn(3, 13, SIZE)
    lengths = torch.tensor([13, 10, 4])
    with torch.no_grad():
        ys = layer(xs, lengths)
        for b, length in enumerate(lengths.tolist()):
            for start in range(0, length, chunk):
                piece = xs[b : b + 1, start : min(start + chunk, length)]
                _, pos_emb = layer.pos_enc(piece.new_zeros(piece.shape))
                (expected, _), _ = layer.layer((piece, pos_emb), None)
                torch.testing.assert_close(ys[b : b + 1, start : start + piece.size(1)], expected)


def test_attention_never_builds_a_full_length_matrix():
    """The attention weights are (B * chunks, heads, chunk, chunk): cost linear in T, not quadratic."""
    layer = ChunkedSelfAttentionLayer(SIZE, attention_heads=2, linear_units=16, chunk_size=4).eval()
    with torch.no_grad():
        layer(torch.randn(2, 30, SIZE), torch.tensor([30, 17]))
    assert layer.layer.self_attn.attn.shape == (2 * 8, 2, 4, 4)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("input_layer", ["conv2d", "linear"])
def test_utterance_output_does_not_depend_on_its_batch(bidirectional, input_layer):
    encoder = tiny_encoder(input_layer=input_layer, bidirectional=bidirectional).eval()
    lengths = [64, 47, 30, 19]
    torch.manual_seed(0)
    xs = torch.randn(len(lengths), max(lengths), FEATS)
    with torch.no_grad():
        batch_out, batch_lens, _ = encoder(xs, torch.tensor(lengths))
        for b, length in enumerate(lengths):
            alone, alone_lens, _ = encoder(xs[b : b + 1, :length], torch.tensor([length]))
            assert batch_lens[b] == alone_lens[0] == alone.size(1)
            torch.testing.assert_close(batch_out[b, : alone.size(1)], alone[0], rtol=1e-4, atol=1e-5)


def test_information_crosses_chunks_only_through_mamba_layers():
    """Attention alone is chunk-local; with a Mamba layer above, an early frame reaches later chunks."""
    xs = torch.randn(1, 16, FEATS)
    changed = xs.clone()
    changed[:, 0] += 1.0
    for num_attention_blocks, crosses in [(3, False), (2, True)]:
        encoder = tiny_encoder(input_layer="linear", num_attention_blocks=num_attention_blocks).eval()
        with torch.no_grad():
            ys, _, _ = encoder(xs, torch.tensor([16]))
            ys_changed, _, _ = encoder(changed, torch.tensor([16]))
        assert not torch.allclose(ys[:, :4], ys_changed[:, :4])
        assert (not torch.allclose(ys[:, 4:], ys_changed[:, 4:])) == crosses


@pytest.mark.parametrize("use_conditioning", [False, True])
def test_intermediate_ctc_through_espnet_asr_model(use_conditioning):
    vocab = 7
    encoder = tiny_encoder(num_blocks=4, interctc_layer_idx=[1, 3], interctc_use_conditioning=use_conditioning)
    model = ESPnetASRModel(
        vocab_size=vocab, token_list=[str(i) for i in range(vocab)], frontend=None, specaug=None, normalize=None,
        preencoder=None, encoder=encoder, postencoder=None, decoder=None, ctc=CTC(vocab, SIZE),
        joint_network=None, ctc_weight=1.0, interctc_weight=0.5,
    )
    assert isinstance(encoder.conditioning_layer, torch.nn.Linear) == use_conditioning
    loss, stats, _ = model(
        torch.randn(2, 48, FEATS), torch.tensor([48, 37]), torch.randint(1, vocab - 1, (2, 3)), torch.tensor([3, 2])
    )
    loss.backward()
    assert torch.isfinite(loss)
    assert {"loss_interctc_layer1", "loss_interctc_layer3"} <= set(stats)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(cnn_module_kernel=31, macaron_style=True), r"\['cnn_module_kernel', 'macaron_style'\] only apply"),
        (dict(pos_enc_layer_type="rel_pos"), "attention encoders"),
        (dict(chunk_size=16), r"\['chunk_size'\] are unknown"),
        (dict(normalize_before=False), "normalize_before: true"),
        (dict(num_attention_blocks=4), "num_attention_blocks <= num_blocks"),
        (dict(attention_chunk_size=0), "attention_chunk_size"),
        (dict(attention_heads=3), "divisible by attention_heads"),
        (dict(interctc_layer_idx=[3]), "out of range"),
        (dict(ffn_type="glu"), "ffn_type must be one of"),
    ],
)
def test_invalid_options_raise_clear_errors(options, message):
    with pytest.raises(ValueError, match=message):
        tiny_encoder(**options)
