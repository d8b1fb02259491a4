"""`espnet_samba.bin.asr_inference.Speech2Text` against ESPnet's own `Speech2Text` (the oracle): with the scanned
CTC prefix scorer (the default) it finds ESPnet's n-best with ESPnet's scores; the searches the scan does not
serve keep ESPnet's scorer."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from espnet.nets.batch_beam_search import BatchBeamSearch
from espnet.nets.batch_beam_search_online_sim import BatchBeamSearchOnlineSim
from espnet.nets.beam_search import BeamSearch
from espnet.nets.scorers.ctc import CTCPrefixScorer
from espnet2.asr.ctc import CTC

from espnet_samba.bin import asr_inference as samba_asr_inference
from espnet_samba.decoding.ctc_prefix_scorer import ScannedCTCPrefixScorer, scan_ctc_prefix_scoring
from test_asr_config_support import TINY_TRANSFORMER_ENCODER, write_asr_config

TOKENS = ["<blank>", "<unk>", "<space>", "a", "b", "c", "d", "e", "<sos/eos>"]
MAMBA_DECODER = ("mamba", "{'num_blocks': 1, 'd_state': 4, 'dropout_rate': 0.0}")
UTTERANCES = [np.random.RandomState(seed).randn(samples) * 0.1 for seed, samples in ((0, 8000), (1, 20000), (2, 3200))]


@pytest.fixture(scope="module")
def asr_config(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("offline_decoding")
    token_list = root / "tokens.txt"
    token_list.write_text("\n".join(TOKENS) + "\n")
    return write_asr_config(root, token_list, TINY_TRANSFORMER_ENCODER, MAMBA_DECODER)


def build(speech2text_class, asr_config: Path, **options):
    torch.manual_seed(0)  # the model's random initial weights, the same for every build
    return speech2text_class(asr_train_config=asr_config, beam_size=4, ctc_weight=0.5, nbest=3, **options)


def ctc_scorer(speech2text):
    return speech2text.beam_search.part_scorers["ctc"]


def test_scanned_search_finds_espnets_nbest_with_espnets_scores(asr_config):
    from espnet2.bin.asr_inference import Speech2Text

    espnet = build(Speech2Text, asr_config)
    ours = build(samba_asr_inference.Speech2Text, asr_config)
    assert type(ctc_scorer(espnet)) is CTCPrefixScorer
    assert type(ctc_scorer(ours)) is ScannedCTCPrefixScorer
    assert ours.beam_search.full_scorers.keys() == espnet.beam_search.full_scorers.keys()
    assert ours.beam_search.weights == espnet.beam_search.weights
    for speech in UTTERANCES:
        expected, got = espnet(speech), ours(speech)
        assert len(got) == len(expected) == 3
        for (_, _, expected_ids, expected_hyp), (_, _, got_ids, got_hyp) in zip(expected, got):
            assert got_ids == expected_ids
            assert got_hyp.scores.keys() == expected_hyp.scores.keys()
            for name in expected_hyp.scores:
                torch.testing.assert_close(
                    torch.as_tensor(got_hyp.scores[name]), torch.as_tensor(expected_hyp.scores[name]),
                    rtol=1e-5, atol=1e-4,
                )


def test_loop_keeps_espnets_scorer(asr_config):
    assert type(ctc_scorer(build(samba_asr_inference.Speech2Text, asr_config, ctc_prefix_scorer="loop"))) is (
        CTCPrefixScorer
    )


def test_an_unknown_scorer_is_refused_with_the_choices(asr_config):
    with pytest.raises(ValueError, match=r"ctc_prefix_scorer must be one of \('scan', 'loop'\), got 'fast'"):
        build(samba_asr_inference.Speech2Text, asr_config, ctc_prefix_scorer="fast")


def test_the_lexicon_search_scores_with_the_scan(asr_config):
    ours = build(samba_asr_inference.Speech2Text, asr_config, lexicon=["ab", "cab"])
    assert type(ctc_scorer(ours)) is ScannedCTCPrefixScorer and "lexicon" in ours.beam_search.scorers
    spelt = [
        "".join(" " if TOKENS[i] == "<space>" else TOKENS[i] for i in hypothesis.yseq[1:-1].tolist()).split()
        for _, _, _, hypothesis in ours(UTTERANCES[1])
    ]
    assert any(spelt) and all(word in ("ab", "cab") for words in spelt for word in words), spelt


def test_from_pretrained_builds_the_scanned_class(asr_config):
    torch.manual_seed(0)
    ours = samba_asr_inference.Speech2Text.from_pretrained(asr_train_config=asr_config, beam_size=2)
    assert isinstance(ours, samba_asr_inference.Speech2Text) and type(ctc_scorer(ours)) is ScannedCTCPrefixScorer


def ctc_only_search(search_class, weight: float):
    """A search with ESPnet's CTC prefix scorer alone, turned into `search_class` as Speech2Text turns its
    BeamSearch into the batch or streaming search. Returns it and the scorer."""
    eos = len(TOKENS) - 1
    scorer = CTCPrefixScorer(ctc=CTC(odim=len(TOKENS), encoder_output_size=8), eos=eos)
    search = BeamSearch(
        scorers={"ctc": scorer}, weights={"ctc": weight}, beam_size=2, vocab_size=len(TOKENS), sos=eos, eos=eos,
        pre_beam_score_key=None,
    )
    search.__class__ = search_class
    return search, scorer


@pytest.mark.parametrize("search_class", [BeamSearch, BatchBeamSearchOnlineSim])
def test_searches_the_scan_does_not_serve_keep_espnets_scorer(search_class):
    search, scorer = ctc_only_search(search_class, weight=1.0)
    assert scan_ctc_prefix_scoring(search) is False
    assert search.part_scorers["ctc"] is scorer and search.scorers["ctc"] is scorer


def test_a_batch_search_gets_the_scan_under_the_same_name_and_weight():
    search, scorer = ctc_only_search(BatchBeamSearch, weight=0.3)
    assert scan_ctc_prefix_scoring(search) is True
    scanned = search.part_scorers["ctc"]
    assert type(scanned) is ScannedCTCPrefixScorer and search.scorers["ctc"] is scanned
    assert scanned.ctc is scorer.ctc and scanned.eos == scorer.eos and search.weights == {"ctc": 0.3}
