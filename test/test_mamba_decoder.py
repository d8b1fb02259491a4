"""Unit tests of MambaDecoder: options, forward/backward, step-wise scoring against teacher forcing, batching."""
from __future__ import annotations

from typing import List

import pytest
import torch

from espnet.nets.pytorch_backend.transformer.embedding import PositionalEncoding
from espnet2.asr.decoder.transformer_decoder import TransformerDecoder
from espnet_samba.asr.decoder import MambaDecoder
from espnet_samba.asr.decoder.decoder_state import HypothesisState
from espnet_samba.asr.decoder.sequence_packing import pack_memory_and_text, reverse_valid_frames, unpack_text
from espnet_samba.asr.decoder.token_embedding import TokenEmbedding

VOCAB = 11
SOS = VOCAB - 1
ENCODER_SIZE = 12
CROSS_CONNECTIONS = ["prefix", "attention"]
# (cross_connection, memory_order): each cross-connection, and "prefix" reading each utterance's memory reversed.
DECODER_FORMS = [("prefix", "forward"), ("prefix", "reversed"), ("attention", "forward")]


def tiny_decoder(cross_connection: str, **options) -> MambaDecoder:
    sizes = dict(num_blocks=2, d_model=8, d_state=4, d_conv=3, expand=2)
    if cross_connection == "attention":
        sizes.update(attention_heads=2, linear_units=16)
    sizes.update(options)
    torch.manual_seed(0)
    return MambaDecoder(VOCAB, ENCODER_SIZE, cross_connection=cross_connection, **sizes)


def eval_float64(decoder: MambaDecoder) -> MambaDecoder:
    return decoder.double().eval()


def random_batch(memory_lengths: List[int], text_lengths: List[int], seed: int = 1):
    """Padded encoder output (B, T, E), token inputs starting with sos (B, U), and their lengths."""
    generator = torch.Generator().manual_seed(seed)
    batch = len(memory_lengths)
    memory = torch.randn(batch, max(memory_lengths), ENCODER_SIZE, generator=generator, dtype=torch.float64)
    tokens = torch.randint(0, VOCAB - 1, (batch, max(text_lengths)), generator=generator)
    tokens[:, 0] = SOS
    return memory, torch.tensor(memory_lengths), tokens, torch.tensor(text_lengths)


def teacher_forced_logp(decoder, memory, memory_lengths, tokens, token_lengths) -> torch.Tensor:
    with torch.no_grad():
        logits, _ = decoder(memory, memory_lengths, tokens, token_lengths)
    return logits.log_softmax(-1)


def flip_each_utterance(memory: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The obvious reversal, utterance by utterance: torch.flip of memory[b, :lengths[b]] (B, T, D), the padding
    copied as it is."""
    flipped = memory.clone()
    for b, frames in enumerate(lengths.tolist()):
        flipped[b, :frames] = memory[b, :frames].flip(0)
    return flipped


@pytest.mark.parametrize("cross_connection, memory_order", DECODER_FORMS)
@pytest.mark.parametrize("d_model", [None, 8])
@pytest.mark.parametrize("norm_type", ["layer_norm", "rms_norm"])
@pytest.mark.parametrize("positional_encoding", ["sinusoidal", "none"])
def test_forward_backward(cross_connection, memory_order, d_model, norm_type, positional_encoding):
    decoder = tiny_decoder(
        cross_connection, memory_order=memory_order, d_model=d_model, norm_type=norm_type,
        positional_encoding=positional_encoding,
    )
    memory, memory_lengths, tokens, token_lengths = random_batch([7, 4], [5, 3])
    logits, lengths = decoder(memory.float(), memory_lengths, tokens, token_lengths)
    assert logits.shape == (2, 5, VOCAB)
    assert torch.equal(lengths, token_lengths)
    logits.log_softmax(-1)[:, :3].sum().backward()
    missing = [name for name, p in decoder.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


@pytest.mark.parametrize("cross_connection", CROSS_CONNECTIONS)
def test_without_output_layer_forward_returns_hidden_states(cross_connection):
    decoder = tiny_decoder(cross_connection, use_output_layer=False)
    memory, memory_lengths, tokens, token_lengths = random_batch([7, 4], [5, 3])
    hidden, _ = decoder(memory.float(), memory_lengths, tokens, token_lengths)
    assert hidden.shape == (2, 5, 8)
    with pytest.raises(ValueError, match="use_output_layer=False"):
        decoder.score(tokens[0, :1], None, memory[0].float())


def test_token_embedding_equals_espnet_positional_encoding():
    torch.manual_seed(0)
    embedding = TokenEmbedding(VOCAB, 16, "sinusoidal", dropout_rate=0.0)
    espnet = torch.nn.Sequential(torch.nn.Embedding(VOCAB, 16), PositionalEncoding(16, 0.0))
    espnet[0].load_state_dict(embedding.embedding.state_dict())
    tokens = torch.randint(0, VOCAB, (3, 9))
    expected = espnet(tokens)
    torch.testing.assert_close(embedding(tokens), expected)
    # A single token embedded at position t equals position t of the whole sequence.
    for t in range(9):
        at_t = embedding(tokens[:, t : t + 1], torch.full((3,), t))
        torch.testing.assert_close(at_t[:, 0], expected[:, t])


def test_packing_puts_text_right_after_each_utterances_audio():
    memory = torch.arange(2 * 4 * 1, dtype=torch.float64).view(2, 4, 1) + 1
    text = -torch.arange(2 * 3 * 1, dtype=torch.float64).view(2, 3, 1) - 1
    memory_lengths, text_lengths = torch.tensor([4, 2]), torch.tensor([2, 3])
    packed, packed_lengths = pack_memory_and_text(memory, memory_lengths, text, text_lengths)
    assert packed[..., 0].tolist() == [[1, 2, 3, 4, -1, -2], [5, 6, -4, -5, -6, 0]]
    assert packed_lengths.tolist() == [6, 5]
    assert unpack_text(packed, memory_lengths, 3)[..., 0][:, :2].tolist() == [[-1, -2], [-4, -5]]
    assert unpack_text(packed, memory_lengths, 3)[1, 2, 0].item() == -6


def test_reverse_valid_frames_equals_flipping_each_utterance():
    memory = torch.randn(4, 6, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    lengths = torch.tensor([6, 3, 0, 5])
    reversed_memory = reverse_valid_frames(memory, lengths)
    assert torch.equal(reversed_memory, flip_each_utterance(memory, lengths))
    assert torch.equal(reversed_memory[1, 3:], memory[1, 3:]) and torch.equal(reversed_memory[2], memory[2])


@pytest.mark.parametrize("cross_connection, memory_order", DECODER_FORMS)
def test_step_wise_scores_equal_teacher_forcing_for_every_prefix(cross_connection, memory_order):
    decoder = eval_float64(tiny_decoder(cross_connection, memory_order=memory_order))
    memory, memory_lengths, tokens, token_lengths = random_batch([9, 5, 7], [6, 4, 2])
    expected = teacher_forced_logp(decoder, memory, memory_lengths, tokens, token_lengths)
    with torch.no_grad():
        for b in range(3):
            states = [decoder.batch_init_state(memory[b, : memory_lengths[b]])]
            for u in range(int(token_lengths[b])):
                logp, states = decoder.batch_score(tokens[b : b + 1, : u + 1], states, memory[b : b + 1])
                torch.testing.assert_close(logp[0], expected[b, u], rtol=0, atol=1e-10)


@pytest.mark.parametrize("cross_connection, memory_order", DECODER_FORMS)
def test_teacher_forcing_is_the_same_alone_or_in_a_padded_batch(cross_connection, memory_order):
    decoder = eval_float64(tiny_decoder(cross_connection, memory_order=memory_order))
    memory, memory_lengths, tokens, token_lengths = random_batch([5, 9, 7], [3, 6, 4])
    batched = teacher_forced_logp(decoder, memory, memory_lengths, tokens, token_lengths)
    for b in range(3):
        frames, length = int(memory_lengths[b]), int(token_lengths[b])
        alone = teacher_forced_logp(
            decoder, memory[b : b + 1, :frames], memory_lengths[b : b + 1], tokens[b : b + 1, :length],
            token_lengths[b : b + 1],
        )
        torch.testing.assert_close(batched[b, :length], alone[0], rtol=0, atol=1e-10)


def test_reversed_memory_order_equals_the_forward_one_on_each_utterance_flipped():
    """Same weights (tiny_decoder seeds the initialisation); the oracle flips each utterance with torch.flip."""
    forward_order = eval_float64(tiny_decoder("prefix"))
    reversed_order = eval_float64(tiny_decoder("prefix", memory_order="reversed"))
    memory, memory_lengths, tokens, token_lengths = random_batch([9, 5, 7], [6, 4, 2])
    reversed_logp = teacher_forced_logp(reversed_order, memory, memory_lengths, tokens, token_lengths)
    forward_logp = teacher_forced_logp(forward_order, memory, memory_lengths, tokens, token_lengths)
    for b, length in enumerate(token_lengths.tolist()):
        assert not torch.allclose(reversed_logp[b, :length], forward_logp[b, :length])
    flipped = flip_each_utterance(memory, memory_lengths)
    expected = teacher_forced_logp(forward_order, flipped, memory_lengths, tokens, token_lengths)
    torch.testing.assert_close(reversed_logp, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("source_order, target_order", [("reversed", "forward"), ("forward", "reversed")])
def test_a_checkpoint_loads_into_either_memory_order(source_order, target_order):
    source = tiny_decoder("prefix", memory_order=source_order)
    with torch.no_grad():
        for parameter in source.parameters():
            # Away from the target's initialisation (the same seed), so that the load is seen to happen.
            parameter.add_(1.0)
    target = tiny_decoder("prefix", memory_order=target_order)
    target.load_state_dict(source.state_dict(), strict=True)
    loaded = target.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in source.state_dict().items())


@pytest.mark.parametrize("cross_connection, memory_order", DECODER_FORMS)
def test_a_hypothesis_scores_the_same_alone_or_in_a_batch(cross_connection, memory_order):
    decoder = eval_float64(tiny_decoder(cross_connection, memory_order=memory_order))
    memory, memory_lengths, _, _ = random_batch([4, 9], [1, 1])
    with torch.no_grad():
        short_utterance, long_utterance = decoder.init_states(memory, memory_lengths)
        # Two hypotheses of the short utterance (sharing its state, as beam search does) and one of the long one.
        prefixes = torch.tensor([[SOS, 3, 1], [SOS, 3, 7], [SOS, 5, 2]])
        _, states = decoder.batch_score(prefixes[:, :2], [short_utterance, short_utterance, long_utterance], memory)
        batched, _ = decoder.batch_score(prefixes, states, memory)
        for b in range(3):
            alone, _ = decoder.batch_score(prefixes[b : b + 1], [states[b]], memory[b : b + 1])
            torch.testing.assert_close(batched[b], alone[0], rtol=0, atol=1e-10)
        # Absorbed alone, without padding, the short utterance's hypotheses score the same too.
        unpadded = decoder.init_state(memory[0, :4])
        _, unpadded_states = decoder.batch_score(prefixes[:1, :2], [unpadded], memory[:1])
        alone, _ = decoder.batch_score(prefixes[:1], unpadded_states, memory[:1])
        torch.testing.assert_close(batched[0], alone[0], rtol=0, atol=1e-10)


def test_hypotheses_of_one_utterance_score_as_each_alone():
    """Beam search: every hypothesis shares the utterance's memory (expanded, not copied), which the attention
    reads as one batch of queries; each row must score as that hypothesis alone."""
    decoder = eval_float64(tiny_decoder("attention"))
    memory, memory_lengths, _, _ = random_batch([7], [1])
    with torch.no_grad():
        utterance = decoder.init_state(memory[0])
        prefixes = torch.tensor([[SOS, 3, 1], [SOS, 3, 7], [SOS, 5, 2], [SOS, 0, 0]])
        _, states = decoder.batch_score(prefixes[:, :2], [utterance] * 4, memory.expand(4, -1, -1))
        batched, _ = decoder.batch_score(prefixes, states, memory.expand(4, -1, -1))
        for b in range(4):
            alone, _ = decoder.batch_score(prefixes[b : b + 1], [states[b]], memory)
            torch.testing.assert_close(batched[b], alone[0], rtol=0, atol=1e-10)


def greedy_decode(decoder: MambaDecoder, states: List[HypothesisState], steps: int) -> torch.Tensor:
    """Batched greedy decoding from the given states for a fixed number of steps: tokens (N, steps + 1)."""
    tokens = torch.full((len(states), 1), SOS)
    for _ in range(steps):
        logp, states = decoder.batch_score(tokens, states, torch.empty(0))
        tokens = torch.cat([tokens, logp.argmax(-1, keepdim=True)], dim=1)
    return tokens


@pytest.mark.parametrize("cross_connection, memory_order", DECODER_FORMS)
def test_an_utterance_decodes_the_same_alone_or_in_a_batch(cross_connection, memory_order):
    decoder = eval_float64(tiny_decoder(cross_connection, memory_order=memory_order))
    memory, memory_lengths, _, _ = random_batch([6, 11, 3], [1, 1, 1], seed=3)
    with torch.no_grad():
        batched = greedy_decode(decoder, decoder.init_states(memory, memory_lengths), steps=8)
        for b in range(3):
            alone = greedy_decode(decoder, [decoder.init_state(memory[b, : memory_lengths[b]])], steps=8)
            assert batched[b].tolist() == alone[0].tolist()


@pytest.mark.parametrize("cross_connection", CROSS_CONNECTIONS)
def test_batch_score_leaves_the_given_states_untouched(cross_connection):
    decoder = eval_float64(tiny_decoder(cross_connection))
    memory, memory_lengths, _, _ = random_batch([6], [1])
    with torch.no_grad():
        _, (parent,) = decoder.batch_score(torch.tensor([[SOS]]), [decoder.init_state(memory[0])], memory)
        snapshot = (parent.mamba.conv_states.clone(), parent.mamba.ssm_states.clone())
        first, _ = decoder.batch_score(torch.tensor([[SOS, 4]]), [parent], memory)
        decoder.batch_score(torch.tensor([[SOS, 2], [SOS, 6]]), [parent, parent], memory.expand(2, -1, -1))
        again, _ = decoder.batch_score(torch.tensor([[SOS, 4]]), [parent], memory)
    assert torch.equal(parent.mamba.conv_states, snapshot[0]) and torch.equal(parent.mamba.ssm_states, snapshot[1])
    torch.testing.assert_close(first, again, rtol=0, atol=0)


@pytest.mark.parametrize("cross_connection", CROSS_CONNECTIONS)
def test_state_size_does_not_grow_with_the_prefix(cross_connection):
    decoder = eval_float64(tiny_decoder(cross_connection))
    memory, _, _, _ = random_batch([6], [1])
    with torch.no_grad():
        state = decoder.init_state(memory[0])
        tokens = torch.full((1, 1), SOS)
        sizes = []
        for _ in range(12):
            _, (state,) = decoder.batch_score(tokens, [state], memory)
            sizes.append((state.mamba.conv_states.shape, state.mamba.ssm_states.shape))
            tokens = torch.cat([tokens, torch.tensor([[3]])], dim=1)
    assert len(set(sizes)) == 1


@pytest.mark.parametrize("cross_connection", CROSS_CONNECTIONS)
def test_a_multi_token_primer_is_consumed_in_one_call(cross_connection):
    decoder = eval_float64(tiny_decoder(cross_connection))
    memory, memory_lengths, tokens, token_lengths = random_batch([7], [5])
    expected = teacher_forced_logp(decoder, memory, memory_lengths, tokens, token_lengths)
    with torch.no_grad():
        logp, (state,) = decoder.batch_score(tokens[:, :3], [decoder.init_state(memory[0])], memory)
        torch.testing.assert_close(logp[0], expected[0, 2], rtol=0, atol=1e-10)
        assert state.position == 3
        # A None state starts from the encoder output given with it.
        logp, _ = decoder.score(tokens[0], None, memory[0])
        torch.testing.assert_close(logp, expected[0, 4], rtol=0, atol=1e-10)


def test_states_at_different_positions_are_rejected():
    decoder = eval_float64(tiny_decoder("prefix"))
    memory, _, _, _ = random_batch([5], [1])
    with torch.no_grad():
        start = decoder.init_state(memory[0])
        _, (advanced,) = decoder.batch_score(torch.tensor([[SOS]]), [start], memory)
        with pytest.raises(ValueError, match="different positions"):
            decoder.batch_score(torch.tensor([[SOS, 1], [SOS, 2]]), [start, advanced], memory.expand(2, -1, -1))
        with pytest.raises(ValueError, match="already consumed 1 tokens"):
            decoder.batch_score(torch.tensor([[SOS]]), [advanced], memory)


def scorer_results(decoder, tokens: torch.Tensor, memory: torch.Tensor) -> dict:
    """What ESPnet's beam searches take from a "decoder" scorer, unpacked as they unpack it (BatchBeamSearch and
    BeamSearch `score_full`), without the states, which are the scorer's own."""
    n_hyps = tokens.size(0)
    with torch.no_grad():
        logp, states = decoder.batch_score(tokens, [None] * n_hyps, memory)
        (logp_with_hs, hidden), states_with_hs = decoder.batch_score(tokens, [None] * n_hyps, memory, return_hs=True)
        one_logp, one_hidden, _ = decoder.score(tokens[0], None, memory[0], return_hs=True)
    assert len(states) == len(states_with_hs) == n_hyps
    return dict(logp=logp, logp_with_hs=logp_with_hs, hidden=hidden, one_logp=one_logp, one_hidden=one_hidden)


@pytest.mark.parametrize("cross_connection", CROSS_CONNECTIONS)
def test_return_hs_follows_espnet_transformer_decoder(cross_connection):
    """The same results as ESPnet's TransformerDecoder gives, shaped alike (the hidden state (N, D) batched, (1, D)
    for one prefix) and meaning the same: the normalised decoder output at the last position, which the output
    layer scores."""
    ours = eval_float64(tiny_decoder(cross_connection, d_model=ENCODER_SIZE))
    torch.manual_seed(0)
    theirs = TransformerDecoder(VOCAB, ENCODER_SIZE, attention_heads=2, linear_units=16, num_blocks=1).double().eval()
    memory, _, tokens, _ = random_batch([7, 7, 7], [4, 4, 4])
    ours_results, their_results = scorer_results(ours, tokens, memory), scorer_results(theirs, tokens, memory)
    assert {k: v.shape for k, v in ours_results.items()} == {k: v.shape for k, v in their_results.items()}
    for decoder, results in ((ours, ours_results), (theirs, their_results)):
        torch.testing.assert_close(results["logp_with_hs"], results["logp"], rtol=0, atol=0)
        scored_hidden = decoder.output_layer(results["hidden"]).log_softmax(-1)
        torch.testing.assert_close(scored_hidden, results["logp"], rtol=0, atol=1e-12)
        torch.testing.assert_close(results["one_hidden"], results["hidden"][:1], rtol=0, atol=1e-12)
        torch.testing.assert_close(results["one_logp"], results["logp"][0], rtol=0, atol=1e-12)


def test_pre_x_is_refused_by_name():
    """ESPnet's beam search passes pre_x (a second source, for multi-decoder models) to a "decoder" scorer."""
    decoder = eval_float64(tiny_decoder("prefix"))
    memory, _, tokens, _ = random_batch([5, 5], [2, 2])
    with torch.no_grad(), pytest.raises(ValueError, match="cannot take ESPnet's pre_x"):
        decoder.batch_score(tokens, [None, None], memory, memory)
    with torch.no_grad(), pytest.raises(ValueError, match="cannot take ESPnet's pre_x"):
        decoder.score(tokens[0], None, memory[0], memory[0])


@pytest.mark.parametrize(
    "options, message",
    [
        ({"cross_connection": "mamba_cross"}, "cross_connection must be one of"),
        ({"attention_heads": 2}, r"\['attention_heads'\] only apply to cross_connection: attention"),
        ({"linear_units": 16, "src_attention_dropout_rate": 0.1}, "'linear_units', 'src_attention_dropout_rate'"),
        ({"self_attention_dropout_rate": 0.1}, "self_attention_dropout_rate \\(there is no self-attention"),
        ({"concat_after": True, "attention_dim": 4}, "attention_dim \\(unknown option\\); concat_after"),
        ({"input_layer": "linear"}, "input_layer must be 'embed'"),
        ({"normalize_before": False}, "normalize_before must be true"),
        ({"num_blocks": 0}, "num_blocks must be at least 1"),
        ({"positional_encoding": "learned"}, "positional_encoding must be one of"),
        ({"norm_type": "batch_norm"}, "norm_type must be one of"),
        ({"cross_connection": "attention", "attention_heads": 3}, "divisible by attention_heads"),
        ({"memory_order": "backward"}, r"memory_order must be one of \('forward', 'reversed'\), got 'backward'"),
        (
            {"cross_connection": "attention", "memory_order": "reversed"},
            "memory_order: reversed only applies to cross_connection: prefix, not 'attention'.*remove it",
        ),
    ],
)
def test_invalid_options_raise_a_clear_error(options, message):
    with pytest.raises(ValueError, match=message):
        MambaDecoder(VOCAB, ENCODER_SIZE, **{"d_model": 8, **options})

