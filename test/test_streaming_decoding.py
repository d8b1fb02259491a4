"""Streaming decoding (espnet_samba.decoding): features, CTC prefix search, attention rescoring, the recogniser.

Oracles: ESPnet's DefaultFrontend and GlobalMVN over the whole signal (features); every CTC alignment enumerated and
torch's ctc_loss (prefix probabilities); the decoder's and LM's own step-by-step scorers, as ESPnet's beam search
calls them (rescoring); the model's offline `encode` followed by the same search (the recogniser).
"""
from __future__ import annotations

import itertools
import math
import random
from typing import Dict, List, Tuple

import pytest
import torch

from espnet2.asr.frontend.default import DefaultFrontend
from espnet2.layers.global_mvn import GlobalMVN
from espnet2.layers.utterance_mvn import UtteranceMVN
from espnet2.tasks.asr import ASRTask
from espnet2.tasks.lm import LMTask
from espnet_samba.decoding.attention_rescoring import AttentionRescorer
from espnet_samba.decoding.ctc_prefix_search import CTCPrefixBeamSearch
from espnet_samba.decoding.streaming_features import StreamingFeatures
from espnet_samba.decoding.streaming_recognizer import StreamingRecognizer
from test_streaming_support import N_MELS, noise, write_causal_model, write_mvn_stats

SAMPLES = 7001


def random_sizes(total: int, seed: int, largest: int) -> List[int]:
    """Chunk sizes summing to `total`, empty and single-element chunks included."""
    draw = random.Random(seed)
    sizes: List[int] = []
    while sum(sizes) < total:
        sizes.append(min(draw.choice([0, 1, draw.randint(1, largest)]), total - sum(sizes)))
    return sizes


def stream_features(features: StreamingFeatures, signal: torch.Tensor, sizes: List[int]) -> torch.Tensor:
    outputs, start = [], 0
    for index, size in enumerate(sizes):
        outputs.append(features(signal[start : start + size], is_final=index == len(sizes) - 1))
        start += size
    return torch.cat(outputs, dim=1)


FRONTENDS = {
    "center": dict(n_fft=512, hop_length=128),
    "win_length<n_fft": dict(n_fft=400, win_length=300, hop_length=160),
    "no center, hop>n_fft/2": dict(n_fft=256, hop_length=200, center=False),
    "odd n_fft": dict(n_fft=255, hop_length=100),
}


@pytest.mark.parametrize("conf", FRONTENDS.values(), ids=FRONTENDS.keys())
@pytest.mark.parametrize("chunking", ["whole", "samples", "random"])
def test_streamed_features_equal_the_offline_frontend(conf, chunking):
    frontend = DefaultFrontend(fs=16000, n_mels=N_MELS, **conf).eval()
    signal = torch.from_numpy(noise(SAMPLES, 1))
    sizes = {"whole": [SAMPLES], "samples": [1] * SAMPLES, "random": random_sizes(SAMPLES, 2, 900)}[chunking]
    expected, lengths = frontend(signal[None], torch.tensor([SAMPLES]))
    actual = stream_features(StreamingFeatures(frontend, None, torch.float32), signal, sizes)
    assert actual.shape == expected.shape and actual.size(1) == lengths[0]
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


def test_kept_samples_do_not_grow_with_the_stream():
    frontend = DefaultFrontend(fs=16000, n_fft=512, hop_length=128, n_mels=N_MELS)
    features = StreamingFeatures(frontend, None, torch.float32)
    kept = []
    for index in range(200):
        features(torch.from_numpy(noise(333, index)), is_final=False)
        kept.append(features._buffer.numel())
    assert max(kept) < 512 + 128 + 256  # n_fft + hop + pad, the bound StreamingFeatures documents


def test_a_stream_too_short_for_the_stft_is_refused():
    frontend = DefaultFrontend(fs=16000, n_fft=512, hop_length=128, n_mels=N_MELS)
    features = StreamingFeatures(frontend, None, torch.float32)
    assert features(torch.zeros(100), is_final=False).shape == (1, 0, N_MELS)
    with pytest.raises(ValueError, match="the audio has 250 samples.*needs more than 256"):
        features(torch.zeros(150), is_final=True)


def test_global_mvn_streams_frame_by_frame(tmp_path):
    frontend = DefaultFrontend(fs=16000, n_fft=512, hop_length=128, n_mels=N_MELS).eval()
    normalize = GlobalMVN(write_mvn_stats(tmp_path / "stats.npz"))
    signal = torch.from_numpy(noise(SAMPLES, 3))
    feats, lengths = frontend(signal[None], torch.tensor([SAMPLES]))
    expected, _ = normalize(feats, lengths)
    features = StreamingFeatures(frontend, normalize, torch.float32)
    actual = stream_features(features, signal, random_sizes(SAMPLES, 4, 700))
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


def test_features_without_frontend_are_only_normalised(tmp_path):
    normalize = GlobalMVN(write_mvn_stats(tmp_path / "stats.npz"))
    frames = torch.randn(57, N_MELS)
    expected, _ = normalize(frames[None].clone(), torch.tensor([57]))
    actual = stream_features(StreamingFeatures(None, normalize, torch.float32), frames, random_sizes(57, 5, 9))
    torch.testing.assert_close(actual, expected)


def test_utterance_mvn_and_other_frontends_are_refused():
    with pytest.raises(ValueError, match="UtteranceMVN cannot stream.*--feats_normalize global_mvn"):
        StreamingFeatures(None, UtteranceMVN(), torch.float32)
    with pytest.raises(ValueError, match="frontend is Linear.*Train with one of those"):
        StreamingFeatures(torch.nn.Linear(2, 2), None, torch.float32)


# ----- CTC prefix beam search ---------------------------------------------------------------------------------------


def collapse(alignment: Tuple[int, ...], blank: int) -> Tuple[int, ...]:
    return tuple(token for index, token in enumerate(alignment)
                 if token != blank and (index == 0 or token != alignment[index - 1]))


def prefix_probabilities_by_enumeration(log_probs: torch.Tensor, blank: int) -> Dict[Tuple[int, ...], float]:
    """log P(label sequence) for every sequence some alignment emits: all V^T alignments summed."""
    frames, vocabulary = log_probs.shape
    sums: Dict[Tuple[int, ...], List[float]] = {}
    for alignment in itertools.product(range(vocabulary), repeat=frames):
        score = sum(log_probs[t, token].item() for t, token in enumerate(alignment))
        sums.setdefault(collapse(alignment, blank), []).append(score)
    return {labels: torch.logsumexp(torch.tensor(scores, dtype=torch.float64), 0).item()
            for labels, scores in sums.items()}


@pytest.mark.parametrize("blank", [0, 2])
def test_a_full_beam_gives_every_label_sequence_its_ctc_probability(blank):
    log_probs = torch.randn(6, 3, generator=torch.Generator().manual_seed(blank), dtype=torch.float64).log_softmax(-1)
    expected = prefix_probabilities_by_enumeration(log_probs, blank)
    search = CTCPrefixBeamSearch(beam_size=1000, blank=blank, token_beam=3)
    search.step(log_probs)
    actual = {prefix.tokens: prefix.log_prob for prefix in search.beam}
    assert actual.keys() == expected.keys()
    for labels, value in expected.items():
        assert actual[labels] == pytest.approx(value, abs=1e-9), labels
        if labels:  # a second oracle: torch's CTC loss is -log P(labels)
            loss = torch.nn.functional.ctc_loss(log_probs[:, None], torch.tensor([labels]), torch.tensor([6]),
                                                torch.tensor([len(labels)]), blank=blank, reduction="sum")
            assert actual[labels] == pytest.approx(-loss.item(), abs=1e-9)
    assert [p.log_prob for p in search.beam] == sorted((p.log_prob for p in search.beam), reverse=True)


def test_chunking_does_not_change_the_beam():
    log_probs = torch.randn(40, 6, generator=torch.Generator().manual_seed(1)).mul(3).log_softmax(-1)
    beams = []
    for sizes in ([40], [1] * 40, random_sizes(40, 7, 9)):
        search, start = CTCPrefixBeamSearch(beam_size=4), 0
        for size in sizes:
            search.step(log_probs[start : start + size])
            start += size
        assert search.frames == 40 and len(search.beam) == 4
        beams.append(search.beam)
    assert beams[0] == beams[1] == beams[2]


def test_a_peaked_posterior_decodes_its_labels():
    path = [0, 3, 3, 0, 3, 1, 1, 0, 0, 2]  # 3 _ 3 1 2 after collapsing
    log_probs = torch.full((10, 4), math.log(0.02)).scatter(1, torch.tensor(path)[:, None], math.log(0.94))
    search = CTCPrefixBeamSearch(beam_size=3)
    search.step(log_probs)
    assert search.nbest(1)[0].tokens == (3, 3, 1, 2)


# ----- the model: rescoring and the recogniser ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("causal_model")
    config = write_causal_model(root)
    asr_model, _ = ASRTask.build_model_from_file(config, root / "model.pth", "cpu")
    return asr_model.eval()


@pytest.fixture(scope="module")
def lm(tmp_path_factory, model):
    output_dir = tmp_path_factory.mktemp("lm")
    token_list = output_dir / "tokens.txt"
    token_list.write_text("\n".join(model.token_list) + "\n")
    LMTask.main(cmd=["--dry_run", "true", "--output_dir", str(output_dir), "--token_list", str(token_list),
                     "--token_type", "char", "--lm", "seq_rnn", "--lm_conf", "{'unit': 8, 'nlayers': 1}"])
    torch.manual_seed(1)
    language_model, _ = LMTask.build_model_from_file(output_dir / "config.yaml", None, "cpu")
    return language_model.eval()


def scores_step_by_step(scorer, tokens: Tuple[int, ...], memory: torch.Tensor, sos: int, eos: int) -> float:
    """log p(tokens, eos) from a scorer's `score(y, state, x)`, called prefix by prefix as ESPnet's BeamSearch does."""
    state = scorer.init_state(memory)
    yseq, total = [sos], 0.0
    for token in [*tokens, eos]:
        log_p, state = scorer.score(torch.tensor(yseq), state, memory)
        total += log_p[token].item()
        yseq.append(token)
    return total


def encoded(model, signal: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        encoder_out, _ = model.encode(signal[None], torch.tensor([signal.numel()]))
    return encoder_out[0]


def test_rescoring_scores_equal_the_step_by_step_scorers(model, lm):
    memory = encoded(model, torch.from_numpy(noise(6000, 0)))
    search = CTCPrefixBeamSearch(beam_size=5, blank=model.blank_id)
    search.step(model.ctc.log_softmax(memory[None])[0])
    prefixes = search.nbest(5)
    rescorer = AttentionRescorer(model.decoder, lm, model.sos, model.eos, ctc_weight=0.3, lm_weight=0.5, penalty=0.7)
    hypotheses = rescorer(prefixes, memory)
    assert sorted(h.tokens for h in hypotheses) == sorted(p.tokens for p in prefixes)
    by_tokens = {prefix.tokens: prefix for prefix in prefixes}
    with torch.no_grad():
        for hypothesis in hypotheses:
            decoder = scores_step_by_step(model.decoder, hypothesis.tokens, memory, model.sos, model.eos)
            language = scores_step_by_step(lm.lm, hypothesis.tokens, memory, model.sos, model.eos)
            ctc = by_tokens[hypothesis.tokens].log_prob
            assert hypothesis.scores["decoder"] == pytest.approx(decoder, abs=1e-4)
            assert hypothesis.scores["lm"] == pytest.approx(language, abs=1e-4)
            expected = 0.7 * decoder + 0.3 * ctc + 0.5 * language + 0.7 * len(hypothesis.tokens)
            assert hypothesis.score == pytest.approx(expected, abs=1e-4)
    assert [h.score for h in hypotheses] == sorted((h.score for h in hypotheses), reverse=True)


def test_ctc_only_rescoring_keeps_the_first_pass_order(model):
    memory = encoded(model, torch.from_numpy(noise(6000, 1)))
    search = CTCPrefixBeamSearch(beam_size=5, blank=model.blank_id)
    search.step(model.ctc.log_softmax(memory[None])[0])
    rescorer = AttentionRescorer(model.decoder, None, model.sos, model.eos, ctc_weight=1.0, lm_weight=0.0, penalty=0.0)
    hypotheses = rescorer(search.nbest(5), memory)
    assert [h.tokens for h in hypotheses] == [p.tokens for p in search.nbest(5)]
    assert "decoder" not in hypotheses[0].scores
    with pytest.raises(ValueError, match="no attention decoder: decode with ctc_weight 1.0"):
        AttentionRescorer(None, None, model.sos, model.eos, ctc_weight=0.5, lm_weight=0.0, penalty=0.0)


def offline_two_pass(model, signal: torch.Tensor, rescorer: AttentionRescorer, beam_size: int):
    """The offline encoder over the whole signal, then the same two passes."""
    memory = encoded(model, signal)
    search = CTCPrefixBeamSearch(beam_size, blank=model.blank_id)
    log_probs = model.ctc.log_softmax(memory[None])[0]
    search.step(log_probs)
    return rescorer(search.nbest(beam_size), memory), log_probs


def feed(recognizer: StreamingRecognizer, signal: torch.Tensor, sizes: List[int]):
    """The segments of a stream fed in chunks, and the partial n-best and encoder offset after each chunk."""
    segments, partials, start = [], [], 0
    for index, size in enumerate(sizes):
        final = index == len(sizes) - 1
        segments += recognizer.accept(signal[start : start + size], is_final=final)
        if not final:
            partials.append((recognizer.encoder_state.offset, recognizer.partial()))
        start += size
    return segments, partials


@pytest.mark.parametrize("ctc_weight", [0.3, 1.0])
def test_streaming_equals_the_offline_encoder_and_search(model, ctc_weight):
    signal = torch.from_numpy(noise(9000, 2))
    rescorer = AttentionRescorer(model.decoder, None, model.sos, model.eos, ctc_weight, 0.0, 0.0)
    expected, log_probs = offline_two_pass(model, signal, rescorer, beam_size=4)
    for sizes in ([9000], [1600] * 5 + [1000], random_sizes(9000, 8, 2500)):
        recognizer = StreamingRecognizer(model, beam_size=4, rescorer=rescorer, nbest=4)
        (segment,), partials = feed(recognizer, signal, sizes)
        assert (segment.start_frame, segment.end_frame) == (0, log_probs.size(0))
        torch.testing.assert_close(segment.log_probs, log_probs, rtol=1e-4, atol=1e-4)
        assert [h.tokens for h in segment.hypotheses] == [h.tokens for h in expected]
        assert [h.score for h in segment.hypotheses] == pytest.approx([h.score for h in expected], abs=1e-3)


def test_partial_results_are_the_search_over_the_frames_so_far(model):
    signal = torch.from_numpy(noise(9000, 3))
    rescorer = AttentionRescorer(model.decoder, None, model.sos, model.eos, 1.0, 0.0, 0.0)
    _, log_probs = offline_two_pass(model, signal, rescorer, beam_size=4)
    recognizer = StreamingRecognizer(model, beam_size=4, rescorer=rescorer, nbest=2)
    _, partials = feed(recognizer, signal, [700] * 12 + [600])
    offsets = [offset for offset, _ in partials]
    assert offsets == sorted(offsets) and offsets[0] < offsets[-1] < log_probs.size(0)
    for offset, partial in partials:
        search = CTCPrefixBeamSearch(4, blank=model.blank_id)
        search.step(log_probs[:offset])
        assert [p.tokens for p in partial] == [p.tokens for p in search.nbest(2)]
        assert [p.log_prob for p in partial] == pytest.approx([p.log_prob for p in search.nbest(2)], abs=1e-3)


def test_a_bidirectional_model_is_refused(tmp_path):
    encoder = ("mamba", "{'output_size': 16, 'num_blocks': 1, 'd_state': 4, 'bidirectional': True}")
    config = write_causal_model(tmp_path, encoder=encoder)
    bidirectional, _ = ASRTask.build_model_from_file(config, None, "cpu")
    rescorer = AttentionRescorer(bidirectional.decoder, None, bidirectional.sos, bidirectional.eos, 0.3, 0.0, 0.0)
    with pytest.raises(ValueError, match="cannot run chunk by chunk.*bidirectional: true"):
        StreamingRecognizer(bidirectional, beam_size=2, rescorer=rescorer)
