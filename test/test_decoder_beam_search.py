"""MambaDecoder in ESPnet's beam search, driven by `Speech2Text` as `espnet2.bin.asr_inference` drives it.

Oracles: greedy decoding that recomputes the whole prefix with the teacher-forced forward each step (beam 1), and
the same `BatchBeamSearch` with the decoder replaced by a scorer that does that recomputation for every hypothesis
(any beam, with CTC prefix scoring and an LM): if a hypothesis's recurrent state were ever advanced by another
hypothesis's tokens, the hypotheses or their scores would differ.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional, Tuple

import numpy as np
import pytest
import torch

from espnet.nets.batch_beam_search import BatchBeamSearch
from espnet.nets.beam_search import BeamSearch
from espnet.nets.scorer_interface import BatchScorerInterface
from espnet_samba.asr.decoder import MambaDecoder
from test_asr_config_support import TINY_TRANSFORMER_ENCODER, write_asr_config

TOKENS = ["<blank>", "<unk>", "a", "b", "c", "d", "e", "f", "<sos/eos>"]


@pytest.fixture(scope="module")
def token_list(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tokens") / "tokens.txt"
    path.write_text("\n".join(TOKENS) + "\n")
    return path


@pytest.fixture(scope="module")
def lm_config(tmp_path_factory, token_list) -> Path:
    from espnet2.tasks.lm import LMTask

    output_dir = tmp_path_factory.mktemp("lm")
    LMTask.main(
        cmd=[
            "--dry_run", "true",
            "--output_dir", str(output_dir),
            "--token_list", str(token_list),
            "--token_type", "char",
            "--lm", "seq_rnn",
            "--lm_conf", "{'unit': 8, 'nlayers': 1}",
        ]
    )
    return output_dir / "config.yaml"


DECODER_CONFS = {
    "prefix": "{'cross_connection': 'prefix', 'num_blocks': 2, 'd_state': 4, 'dropout_rate': 0.0}",
    "attention": "{'cross_connection': 'attention', 'num_blocks': 2, 'd_state': 4, 'attention_heads': 2, "
    "'linear_units': 32, 'dropout_rate': 0.0}",
}


@pytest.fixture(scope="module", params=sorted(DECODER_CONFS))
def asr_config(request, tmp_path_factory, token_list) -> Path:
    output_dir = tmp_path_factory.mktemp(f"asr_{request.param}")
    return write_asr_config(output_dir, token_list, TINY_TRANSFORMER_ENCODER, ("mamba", DECODER_CONFS[request.param]))


def speech_to_text(asr_config: Path, lm_config: Optional[Path] = None, **options):
    from espnet2.bin.asr_inference import Speech2Text

    torch.manual_seed(0)  # the model's random initial weights
    return Speech2Text(
        asr_train_config=asr_config, lm_train_config=lm_config, dtype="float64", maxlenratio=0.0, **options
    )


SPEECH = np.random.RandomState(0).randn(8000)


class TeacherForcedScorer(BatchScorerInterface):
    """Scores every prefix from scratch with the decoder's teacher-forced forward: no state at all."""

    def __init__(self, decoder: MambaDecoder) -> None:
        self.decoder = decoder

    def init_state(self, x: torch.Tensor) -> None:
        return None

    def score(self, ys: torch.Tensor, state: Any, x: torch.Tensor) -> Tuple[torch.Tensor, Any]:
        logp, _ = self.batch_score(ys[None], [state], x[None])
        return logp[0], None

    def batch_score(self, ys: torch.Tensor, states: List[Any], xs: torch.Tensor) -> Tuple[torch.Tensor, List[Any]]:
        n_hyps, frames = ys.size(0), xs.size(1)
        logits, _ = self.decoder(
            xs, torch.full((n_hyps,), frames), ys, torch.full((n_hyps,), ys.size(1))
        )
        return logits[:, -1].log_softmax(-1), [None] * n_hyps


def decode(speech2text) -> Any:
    (_, _, token_int, hypothesis), = speech2text(SPEECH)
    return token_int, hypothesis


def encoder_output(speech2text) -> torch.Tensor:
    speech = torch.tensor(SPEECH, dtype=torch.float64)[None]
    with torch.no_grad():
        encoded, _ = speech2text.asr_model.encode(speech, torch.tensor([speech.size(1)]))
    return encoded[0]


def greedy_by_recomputation(decoder: MambaDecoder, memory: torch.Tensor, sos: int, eos: int) -> List[int]:
    """ESPnet's beam-1 search with maxlenratio 0, done the obvious way: at most T tokens, eos appended at the end."""
    frames = memory.size(0)
    yseq = [sos]
    with torch.no_grad():
        for step in range(frames):
            tokens = torch.tensor([yseq])
            logits, _ = decoder(memory[None], torch.tensor([frames]), tokens, torch.tensor([len(yseq)]))
            yseq.append(int(logits[0, -1].argmax()))
            if yseq[-1] == eos and step < frames - 1:
                return yseq
    return yseq + [eos]


def test_speech2text_selects_batch_beam_search(asr_config):
    speech2text = speech_to_text(asr_config, beam_size=4, ctc_weight=0.3)
    assert isinstance(speech2text.beam_search, BatchBeamSearch)
    assert isinstance(speech2text.asr_model.decoder, MambaDecoder)


def test_beam_1_equals_greedy_decoding_by_recomputation(asr_config):
    speech2text = speech_to_text(asr_config, beam_size=1, ctc_weight=0.0)
    _, hypothesis = decode(speech2text)
    model = speech2text.asr_model
    expected = greedy_by_recomputation(model.decoder, encoder_output(speech2text), model.sos, model.eos)
    assert hypothesis.yseq.tolist() == expected
    assert len(expected) > 3  # a real sequence, not an immediate eos


SEARCH_SETTINGS = [
    pytest.param(beam_size, ctc_weight, with_lm, marks=[] if fast else [pytest.mark.slow])
    for beam_size in (1, 4)
    for ctc_weight in (0.0, 0.3)
    for with_lm in (False, True)
    for fast in [(beam_size, ctc_weight, with_lm) in {(1, 0.0, False), (4, 0.3, True)}]
]


@pytest.mark.parametrize("beam_size, ctc_weight, with_lm", SEARCH_SETTINGS)
def test_beam_search_equals_search_with_prefix_recomputation(asr_config, lm_config, beam_size, ctc_weight, with_lm):
    options = dict(beam_size=beam_size, ctc_weight=ctc_weight, nbest=beam_size, lm_weight=0.5)
    lm = lm_config if with_lm else None
    recurrent = speech_to_text(asr_config, lm, **options)
    reference = speech_to_text(asr_config, lm, **options)
    reference.asr_model.load_state_dict(recurrent.asr_model.state_dict())
    if with_lm:
        reference.beam_search.nn_dict.lm.load_state_dict(recurrent.beam_search.nn_dict.lm.state_dict())
    oracle = TeacherForcedScorer(reference.asr_model.decoder)
    reference.beam_search.scorers["decoder"] = reference.beam_search.full_scorers["decoder"] = oracle

    got, expected = recurrent(SPEECH), reference(SPEECH)
    assert len(got) == len(expected) == beam_size
    for (_, _, _, hypothesis), (_, _, _, reference_hypothesis) in zip(got, expected):
        assert hypothesis.yseq.tolist() == reference_hypothesis.yseq.tolist()
        for key, score in reference_hypothesis.scores.items():
            torch.testing.assert_close(hypothesis.scores[key], score, rtol=0, atol=1e-8)
        assert ("lm" in hypothesis.scores) == with_lm



def test_non_batch_beam_search_equals_search_with_prefix_recomputation(asr_config):
    """ESPnet falls back to the per-hypothesis `BeamSearch` (decoder.score) when a scorer cannot batch."""
    options = dict(beam_size=3, ctc_weight=0.3, nbest=3)
    recurrent, reference = speech_to_text(asr_config, **options), speech_to_text(asr_config, **options)
    reference.asr_model.load_state_dict(recurrent.asr_model.state_dict())
    oracle = TeacherForcedScorer(reference.asr_model.decoder)
    reference.beam_search.scorers["decoder"] = reference.beam_search.full_scorers["decoder"] = oracle
    recurrent.beam_search.__class__ = reference.beam_search.__class__ = BeamSearch
    for (_, _, _, hypothesis), (_, _, _, expected) in zip(recurrent(SPEECH), reference(SPEECH)):
        assert hypothesis.yseq.tolist() == expected.yseq.tolist()
        torch.testing.assert_close(hypothesis.scores["decoder"], expected.scores["decoder"], rtol=0, atol=1e-8)


@pytest.mark.parametrize("search_class", [BatchBeamSearch, BeamSearch])
def test_return_hs_search_keeps_the_decoder_hidden_state_of_every_step(asr_config, search_class):
    """ESPnet's beam search with return_hs (as st_inference runs its ASR sub-task) finds the same hypotheses and
    keeps, per step, the decoder's hidden state, which the output layer turns into that step's scores."""
    options = dict(beam_size=3, ctc_weight=0.3, nbest=3)
    plain, with_hs = speech_to_text(asr_config, **options), speech_to_text(asr_config, **options)
    with_hs.asr_model.load_state_dict(plain.asr_model.state_dict())
    plain.beam_search.__class__ = with_hs.beam_search.__class__ = search_class
    with_hs.beam_search.return_hs = True
    decoder, memory = with_hs.asr_model.decoder, encoder_output(with_hs)
    for (_, _, _, expected), (_, _, _, hypothesis) in zip(plain(SPEECH), with_hs(SPEECH)):
        assert hypothesis.yseq.tolist() == expected.yseq.tolist()
        assert expected.hs == [] and len(hypothesis.hs) >= len(hypothesis.yseq) - 2
        tokens = hypothesis.yseq[None, : len(hypothesis.hs)]
        step_logp = teacher_forced_logp(decoder, memory, tokens)
        with torch.no_grad():
            hidden_logp = decoder.output_layer(torch.stack(hypothesis.hs)).log_softmax(-1)
        torch.testing.assert_close(hidden_logp, step_logp, rtol=0, atol=1e-8)


def teacher_forced_logp(decoder: MambaDecoder, memory: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """The decoder's log-probabilities after each prefix of `tokens` (1, U): (U, V)."""
    with torch.no_grad():
        logits, _ = decoder(memory[None], torch.tensor([memory.size(0)]), tokens, torch.tensor([tokens.size(1)]))
    return logits[0].log_softmax(-1)
