"""ScannedCTCPrefixScoreTH / ScannedCTCPrefixScorer against ESPnet's CTCPrefixScoreTH / CTCPrefixScorer (the oracle):
the same scores and states step by step, and the same hypotheses from ESPnet's BatchBeamSearch, on both backends of
`espnet_samba.ops.ctc_prefix_forward` (the fused CPU kernel and the PyTorch scans)."""
from __future__ import annotations

from typing import Optional

import pytest
import torch

from espnet.nets.batch_beam_search import BatchBeamSearch
from espnet.nets.ctc_prefix_score import CTCPrefixScoreTH
from espnet.nets.scorers.ctc import CTCPrefixScorer
from espnet2.asr.ctc import CTC
from espnet_samba.asr.decoder import MambaDecoder
from espnet_samba.decoding.ctc_prefix_scorer import ScannedCTCPrefixScorer, ScannedCTCPrefixScoreTH

VOCAB = 9
EOS = VOCAB - 1
MEANINGFUL = -1e9  # scores below are ESPnet's logzero plus rounding: "impossible" in both


def random_log_probs(frames: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    """CTC log-posteriors (1, T, V) with peaky frames, as a trained model's."""
    generator = torch.Generator().manual_seed(seed)
    logits = 4.0 * torch.randn(1, frames, VOCAB, generator=generator, dtype=dtype)
    return logits.log_softmax(-1)


def assert_same_scores(ours: torch.Tensor, espnet: torch.Tensor, atol: float) -> None:
    possible = espnet > MEANINGFUL
    assert torch.equal(possible, ours > MEANINGFUL)
    torch.testing.assert_close(ours[possible], espnet[possible], rtol=0, atol=atol)


def run_steps(scorer_class, log_probs: torch.Tensor, steps: int, hyps: int, partial: Optional[int], seed: int):
    """A beam-search-like walk: every step scores all prefixes, then keeps `hyps` random (prefix, token) pairs.
    Returns each step's scores (n_bh, V)."""
    generator = torch.Generator().manual_seed(seed)
    scorer = scorer_class(log_probs.clone(), torch.tensor([log_probs.size(1)]), 0, EOS)
    prefixes = [torch.tensor([EOS])] * hyps
    state, outputs = None, []
    for _ in range(steps):
        scoring_ids = None
        if partial is not None:
            scoring_ids = torch.stack([torch.randperm(VOCAB - 1, generator=generator)[:partial] + 1 for _ in prefixes])
        scores, new_state = scorer(prefixes, state, scoring_ids)
        outputs.append(scores)
        candidates = scoring_ids if scoring_ids is not None else torch.arange(1, VOCAB).expand(hyps, -1)
        columns = torch.randint(0, candidates.size(1), (hyps,), generator=generator)
        parents = torch.randint(0, hyps, (hyps,), generator=generator)
        tokens = candidates[parents, columns]
        state = scorer.index_select_state(new_state, (parents * VOCAB + tokens)[None])
        prefixes = [torch.cat([prefixes[p], tokens[i : i + 1]]) for i, p in enumerate(parents.tolist())]
    return outputs


@pytest.mark.parametrize("frames", [1, 2, 3, 17, 60])
@pytest.mark.parametrize("partial", [None, 4])
@pytest.mark.usefixtures("cpu_backend")
def test_scores_equal_espnet_step_by_step(frames, partial):
    log_probs = random_log_probs(frames, seed=frames)
    steps = min(frames, 8)  # as a beam search with maxlenratio 0: at most one token per frame
    espnet = run_steps(CTCPrefixScoreTH, log_probs, steps, hyps=3, partial=partial, seed=5)
    ours = run_steps(ScannedCTCPrefixScoreTH, log_probs, steps, hyps=3, partial=partial, seed=5)
    for expected, got in zip(espnet, ours):
        assert_same_scores(got, expected, atol=1e-9)


@pytest.mark.usefixtures("cpu_backend")
def test_float32_scores_stay_close_to_the_float64_oracle_on_long_inputs():
    """float32 inputs lose no more accuracy than in ESPnet's float32 loop: the PyTorch scans' cumulative sums grow
    with T and run in float64; the kernel's float32 recursion rounds as ESPnet's does."""
    log_probs = random_log_probs(1500, seed=2)
    oracle = run_steps(CTCPrefixScoreTH, log_probs, 6, hyps=4, partial=5, seed=1)
    ours = run_steps(ScannedCTCPrefixScoreTH, log_probs.float(), 6, hyps=4, partial=5, seed=1)
    espnet_float32 = run_steps(CTCPrefixScoreTH, log_probs.float(), 6, hyps=4, partial=5, seed=1)
    for expected, got, theirs in zip(oracle, ours, espnet_float32):
        possible = expected > MEANINGFUL
        our_error = (got.double() - expected)[possible].abs().max()
        espnet_error = (theirs.double() - expected)[possible].abs().max()
        assert our_error <= max(2 * espnet_error, 1e-3)


def tiny_model(seed: int = 0):
    torch.manual_seed(seed)
    decoder = MambaDecoder(VOCAB, 6, num_blocks=1, d_model=8, d_state=4, d_conv=3, cross_connection="attention",
                           attention_heads=2, linear_units=16).double().eval()
    ctc = CTC(VOCAB, 6).double().eval()
    with torch.no_grad():
        ctc.ctc_lo.weight *= 6.0  # peaky posteriors, as after training
    return decoder, ctc


@pytest.mark.parametrize("beam_size", [2, 4])
@pytest.mark.parametrize("frames", [5, 40])
@pytest.mark.usefixtures("cpu_backend")
def test_espnet_beam_search_finds_the_same_hypotheses(beam_size, frames):
    decoder, ctc = tiny_model()
    memory = torch.randn(frames, 6, generator=torch.Generator().manual_seed(frames), dtype=torch.float64)

    def search(ctc_scorer):
        beam_search = BatchBeamSearch(
            scorers={"decoder": decoder, "ctc": ctc_scorer}, weights={"decoder": 0.5, "ctc": 0.5},
            beam_size=beam_size, vocab_size=VOCAB, sos=EOS, eos=EOS, pre_beam_score_key="full",
        )
        with torch.no_grad():
            return beam_search(x=memory, maxlenratio=0.0, minlenratio=0.0)

    espnet = search(CTCPrefixScorer(ctc, EOS))
    ours = search(ScannedCTCPrefixScorer(ctc, EOS))
    assert [h.yseq.tolist() for h in ours] == [h.yseq.tolist() for h in espnet]
    for mine, theirs in zip(ours, espnet):
        assert float(mine.scores["ctc"]) == pytest.approx(float(theirs.scores["ctc"]), abs=1e-8)
        assert float(mine.score) == pytest.approx(float(theirs.score), abs=1e-8)
