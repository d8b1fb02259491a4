"""ESPnet's CTC prefix scorer with its Python loop over frames replaced by one op: the same scores, faster.

ESPnet's `CTCPrefixScoreTH` (the "ctc" scorer of every joint CTC/attention beam search) advances the CTC forward
variables of all hypotheses and candidate tokens one frame at a time, in a Python loop over the T frames, at every
output step: on CPU the loop's small tensor operations, not arithmetic, cost most of a beam search (1.4 s of 2.8 s
for 20 s of audio with ESPnet's search, bench/bench_streaming_rtf.py). Here the whole recursion over the frames is
`espnet_samba.ops.ctc_prefix_forward` (the fused CPU kernel, or closed-form log-semiring scans in PyTorch).
Everything else (state layout, partial scoring, eos and blank) is ESPnet's, so the scorer is a drop-in for
`CTCPrefixScorer` in ESPnet's `BatchBeamSearch`; test/test_ctc_prefix_scorer.py checks it against ESPnet's.
"""
from __future__ import annotations

import logging
from typing import List, Optional, Tuple

import torch

from espnet_samba.compat import (
    BatchBeamSearch, BatchBeamSearchOnlineSim, BeamSearch, CTCPrefixScorer, CTCPrefixScoreTH,
)
from espnet_samba.ops.ctc_prefix import ctc_prefix_forward


class ScannedCTCPrefixScoreTH(CTCPrefixScoreTH):
    """`CTCPrefixScoreTH` whose forward variables are computed by `ctc_prefix_forward` instead of a loop over frames.

    Windowing (ESPnet's `margin`, which needs attention weights the Mamba decoders do not have) is not supported:
    a scorer built with a margin falls back to ESPnet's loop.
    """

    def __call__(
        self,
        y: List[torch.Tensor],
        state: Optional[Tuple],
        scoring_ids: Optional[torch.Tensor] = None,
        att_w: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, Tuple]:
        """Prefix scores of every next token, as `CTCPrefixScoreTH.__call__`.

        Args:
            y: the n_bh = batch x hyps prefixes, sos first, all of one length.
            state: the previous step's state (r (T, 2, n_bh), s (n_bh, O), f_min, f_max), or None at the start.
            scoring_ids: the tokens to score per prefix (n_bh, S), or None for all O.
            att_w: attention weights for windowing (used only with a margin).

        Returns:
            the scores (n_bh, O) minus the prefixes' own, and the new state (r (T, 2, n_bh, S), log_psi (n_bh, O),
            f_min, f_max, scoring_idmap (n_bh, O) or None).
        """
        if self.margin > 0 and att_w is not None:
            return super().__call__(y, state, scoring_ids, att_w)
        output_length = len(y[0]) - 1  # sos excluded
        n_bh = len(y)
        n_hyps = n_bh // self.batch
        last_ids = torch.tensor([int(prefix[-1]) for prefix in y], device=self.device)
        if state is None:
            r_prev = torch.full(
                (self.input_length, 2, self.batch, n_hyps), self.logzero, dtype=self.dtype, device=self.device
            )
            r_prev[:, 1] = torch.cumsum(self.x[0, :, :, self.blank], 0).unsqueeze(2)
            r_prev = r_prev.view(-1, 2, n_bh)
            s_prev = 0.0
        else:
            r_prev, s_prev = state[0], state[1]

        self.scoring_num = scoring_ids.size(-1) if scoring_ids is not None else 0
        token_log_probs = self.x[0].reshape(self.input_length, self.batch * self.odim)  # (T, batch x O)
        if scoring_ids is not None:
            scoring_num = self.scoring_num
            scoring_idmap = torch.full((n_bh, self.odim), -1, dtype=torch.long, device=self.device)
            scoring_idmap.scatter_(
                1, scoring_ids, torch.arange(scoring_num, device=self.device).expand(n_bh, -1).contiguous()
            )
            flat_ids = (scoring_ids + self.idx_bo.repeat(1, n_hyps).view(-1, 1)).view(-1)
            x_token = torch.index_select(token_log_probs, 1, flat_ids).view(-1, n_bh, scoring_num)
            candidates = scoring_ids
        else:
            scoring_num = self.odim
            scoring_idmap = None
            x_token = self.x[0].unsqueeze(2).expand(-1, -1, n_hyps, -1).reshape(-1, n_bh, scoring_num)
            candidates = torch.arange(self.odim, device=self.device).expand(n_bh, -1)
        x_blank = self.x[1, :, :, 0].repeat_interleave(n_hyps, dim=1)  # (T, n_bh)

        # phi[t]: the prefix's probability up to t, where a repeat of its last token must follow a blank
        r_sum = torch.logsumexp(r_prev, 1)  # (T, n_bh)
        repeats_last = (candidates == last_ids.unsqueeze(1)).unsqueeze(0)  # (1, n_bh, S)
        log_phi = torch.where(repeats_last, r_prev[:, 1].unsqueeze(2), r_sum.unsqueeze(2))  # (T, n_bh, S)

        start, end = max(output_length, 1), self.input_length
        r = torch.full((self.input_length, 2, n_bh, scoring_num), self.logzero, dtype=self.dtype, device=self.device)
        if output_length == 0:
            r[0, 0] = x_token[0]
        # psi: the prefix extended by each token, summed over the frame where the token starts
        log_psi_scored = r[start - 1, 0]
        if end > start:
            r[start:end], log_psi_scored = ctc_prefix_forward(
                r[start - 1], log_phi[start - 1 : end - 1], x_token[start:end], x_blank[start:end]
            )
        if scoring_ids is not None:
            log_psi = torch.full((n_bh, self.odim), self.logzero, dtype=self.dtype, device=self.device)
            log_psi.scatter_(1, scoring_ids, log_psi_scored)
        else:
            log_psi = log_psi_scored.clone()
        end_frames = self.end_frames.to(self.device).repeat_interleave(n_hyps)
        log_psi[:, self.eos] = r_sum[end_frames, torch.arange(n_bh, device=self.device)]
        if self.eos != self.blank:
            log_psi[:, self.blank] = self.logzero
        return log_psi - s_prev, (r, log_psi, 0, 0, scoring_idmap)


class ScannedCTCPrefixScorer(CTCPrefixScorer):
    """ESPnet's `CTCPrefixScorer` (the "ctc" scorer of `BatchBeamSearch`) on `ScannedCTCPrefixScoreTH`."""

    def batch_init_state(self, x: torch.Tensor) -> None:
        """Prepares the scorer for one utterance's encoder output x (T, D) (batch 1, as ESPnet's)."""
        log_probs = self.ctc.log_softmax(x.unsqueeze(0))
        self.impl = ScannedCTCPrefixScoreTH(log_probs, torch.tensor([log_probs.size(1)]), 0, self.eos)
        return None


def scan_ctc_prefix_scoring(beam_search: BeamSearch) -> bool:
    """Replaces ESPnet's `CTCPrefixScorer` of `beam_search` by `ScannedCTCPrefixScorer`, in place, under the same
    name and weight: the same hypotheses and scores, with the loop over frames of every output step as one op.

    Only ESPnet's `BatchBeamSearch` (what `Speech2Text` builds at batch size 1) is changed. Its non-batch
    `BeamSearch` scores prefixes with ESPnet's numpy `CTCPrefixScore`, and its streaming simulation
    (`BatchBeamSearchOnlineSim`) extends the posteriors block by block, which the scanned scorer does not do:
    both keep ESPnet's scorer.

    Returns:
        Whether a scorer was replaced.
    """
    if not isinstance(beam_search, BatchBeamSearch) or isinstance(beam_search, BatchBeamSearchOnlineSim):
        logging.info("%s keeps ESPnet's CTC prefix scorer (the scan is for BatchBeamSearch)",
                     type(beam_search).__name__)
        return False
    replaced = False
    for name, scorer in list(beam_search.scorers.items()):
        if type(scorer) is not CTCPrefixScorer:  # ESPnet's own class only: a subclass may score differently
            continue
        scanned = ScannedCTCPrefixScorer(ctc=scorer.ctc, eos=scorer.eos)
        for scorers in (beam_search.scorers, beam_search.full_scorers, beam_search.part_scorers):
            if name in scorers:
                scorers[name] = scanned
        replaced = True
    return replaced
