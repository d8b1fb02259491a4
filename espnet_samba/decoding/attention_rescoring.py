"""The second pass of streaming decoding: the attention decoder (and an LM) rescore the CTC n-best (WeNet's U2).

At an endpoint, or when the stream ends, the prefixes of the CTC search are complete hypotheses. Each is scored by
the decoder teacher-forced over the segment's encoder frames, `log p(y_1 .. y_L, <eos> | x)`, and by the LM,
`log p_LM(y_1 .. y_L, <eos>)`, all hypotheses in one batch. The weights are ESPnet's joint-decoding weights, so a
decode config means the same here: score = (1 - ctc_weight) * decoder + ctc_weight * ctc + lm_weight * lm +
penalty * L, where ctc is the prefix's CTC log probability from the first pass.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from espnet2.asr.decoder.abs_decoder import AbsDecoder
from espnet2.lm.espnet_model import ESPnetLanguageModel

from espnet_samba.decoding.ctc_prefix_search import CTCPrefix


@dataclass(frozen=True)
class ScoredHypothesis:
    """A hypothesis of a segment with its weighted score and the score of each source (ESPnet's names).

    Attributes:
        tokens: token ids (no sos/eos, no blank).
        score: the weighted total.
        scores: unweighted log probabilities by source: "ctc", and "decoder" / "lm" where used, and
            "length_bonus" (the token count).
    """

    tokens: Tuple[int, ...]
    score: float
    scores: Dict[str, float]


class AttentionRescorer:
    """Ranks CTC prefixes by decoder, CTC, LM and length scores.

    Args:
        decoder: the model's attention decoder, or None (CTC-only models).
        lm: an ESPnet language model (`LMTask.build_model_from_file`), or None.
        sos: start-of-sentence id (ESPnet's models share it with eos).
        eos: end-of-sentence id.
        ctc_weight: weight of the CTC score; the decoder gets 1 - ctc_weight (1.0: CTC only).
        lm_weight: weight of the LM score.
        penalty: score added per token (ESPnet's length bonus).
        normalize_length: rank by score divided by the length of sos + tokens + eos (ESPnet's option).
    """

    def __init__(
        self,
        decoder: Optional[AbsDecoder],
        lm: Optional[ESPnetLanguageModel],
        sos: int,
        eos: int,
        ctc_weight: float,
        lm_weight: float,
        penalty: float,
        normalize_length: bool = False,
    ) -> None:
        if not 0.0 <= ctc_weight <= 1.0:
            raise ValueError(f"ctc_weight must lie in [0, 1], got {ctc_weight}")
        if decoder is None and ctc_weight < 1.0:
            raise ValueError("this model has no attention decoder: decode with ctc_weight 1.0")
        self.decoder = decoder if ctc_weight < 1.0 else None
        self.lm = lm if lm_weight != 0.0 else None
        self.sos, self.eos = sos, eos
        self.ctc_weight, self.lm_weight, self.penalty = ctc_weight, lm_weight, penalty
        self.normalize_length = normalize_length

    @torch.no_grad()
    def __call__(self, prefixes: Sequence[CTCPrefix], memory: torch.Tensor) -> List[ScoredHypothesis]:
        """The prefixes as hypotheses, best first.

        Args:
            prefixes: complete hypotheses of the first pass (at least one).
            memory: the segment's encoder frames (T, D), T >= 1 when a decoder is used.
        """
        token_lists = [list(prefix.tokens) for prefix in prefixes]
        scores: List[Dict[str, float]] = [
            {"ctc": prefix.log_prob, "length_bonus": float(len(prefix.tokens))} for prefix in prefixes
        ]
        if self.decoder is not None:
            for entry, value in zip(scores, self._decoder_scores(token_lists, memory)):
                entry["decoder"] = value
        if self.lm is not None:
            for entry, value in zip(scores, self._lm_scores(token_lists, memory.device)):
                entry["lm"] = value
        weights = {"decoder": 1.0 - self.ctc_weight, "ctc": self.ctc_weight, "lm": self.lm_weight,
                   "length_bonus": self.penalty}
        hypotheses = [
            ScoredHypothesis(tuple(tokens), sum(weights[name] * value for name, value in entry.items()), entry)
            for tokens, entry in zip(token_lists, scores)
        ]
        return sorted(hypotheses, key=self._ranking, reverse=True)

    def _ranking(self, hypothesis: ScoredHypothesis) -> float:
        return hypothesis.score / (len(hypothesis.tokens) + 2) if self.normalize_length else hypothesis.score

    def _decoder_scores(self, token_lists: List[List[int]], memory: torch.Tensor) -> List[float]:
        """log p(tokens, eos | memory) of each hypothesis, teacher-forced in one batch."""
        n, frames = len(token_lists), memory.size(0)
        ys_in, ys_out, lengths = self._teacher_forcing_batch(token_lists, memory.device)
        logits, _ = self.decoder(
            memory[None].expand(n, -1, -1), torch.full((n,), frames, device=memory.device), ys_in, lengths
        )
        log_probs = logits.float().log_softmax(-1)
        picked = log_probs.gather(-1, ys_out.clamp(min=0)[..., None])[..., 0].masked_fill(ys_out < 0, 0.0)
        return picked.sum(-1).tolist()

    def _lm_scores(self, token_lists: List[List[int]], device: torch.device) -> List[float]:
        """log p_LM(tokens, eos) of each hypothesis, from the LM's own negative log likelihood."""
        lengths = torch.tensor([len(tokens) for tokens in token_lists], device=device)
        text = torch.zeros(len(token_lists), max(int(lengths.max()), 1), dtype=torch.long, device=device)
        for row, tokens in enumerate(token_lists):
            text[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        nll, _ = self.lm.nll(text, lengths, max_length=text.size(1))
        return (-nll.sum(-1)).tolist()

    def _teacher_forcing_batch(
        self, token_lists: List[List[int]], device: torch.device
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Decoder inputs sos + tokens (padded with eos), targets tokens + eos (padded with -1), input lengths."""
        longest = max(len(tokens) for tokens in token_lists) + 1
        ys_in = torch.full((len(token_lists), longest), self.eos, dtype=torch.long, device=device)
        ys_out = torch.full((len(token_lists), longest), -1, dtype=torch.long, device=device)
        for row, tokens in enumerate(token_lists):
            ys_in[row, : len(tokens) + 1] = torch.tensor([self.sos, *tokens], dtype=torch.long)
            ys_out[row, : len(tokens) + 1] = torch.tensor([*tokens, self.eos], dtype=torch.long)
        lengths = torch.tensor([len(tokens) + 1 for tokens in token_lists], device=device)
        return ys_in, ys_out, lengths
