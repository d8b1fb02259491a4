"""A second pass that searches again: ESPnet's joint CTC/attention beam search over a finished segment's frames.

The streaming encoder's frames of a segment are the offline encoder's frames of the same audio (the encoder is
causal and exact chunk by chunk), so at an endpoint the segment can be decoded exactly as `Speech2Text` decodes an
utterance: ESPnet's `BatchBeamSearch` with the attention decoder, the CTC prefix scorer (ESPnet's, with its loop over
frames replaced by a scan: `ScannedCTCPrefixScorer`, the same scores), the LM and the length bonus, under the same
weights. The partial results stay the first pass's (the CTC prefix search); the final text of
each segment is then that of offline decoding, at the cost of one attention beam search per segment where
`AttentionRescorer` only scores the first pass's n-best (cheaper, and as good when the CTC n-best holds the right
answer; for a model whose CTC branch is weak it does not: see the espeak_en RESULTS.md).
"""
from __future__ import annotations

import logging
from typing import List, Optional, Sequence

import torch

from espnet2.asr.espnet_model import ESPnetASRModel
from espnet2.lm.espnet_model import ESPnetLanguageModel

from espnet_samba.compat import BatchBeamSearch, LengthBonus
from espnet_samba.decoding.attention_rescoring import AttentionRescorer, ScoredHypothesis
from espnet_samba.decoding.ctc_prefix_scorer import ScannedCTCPrefixScorer
from espnet_samba.decoding.ctc_prefix_search import CTCPrefix


class JointBeamSearchPass:
    """Decodes a segment's encoder frames with ESPnet's joint CTC/attention beam search.

    Args:
        asr_model: the model (its decoder, CTC, sos/eos and token list).
        lm: an ESPnet language model, or None.
        beam_size: the attention search's beam.
        ctc_weight, lm_weight, penalty: ESPnet's joint-decoding weights (as in `Speech2Text`).
        normalize_length: ESPnet's option: rank ended hypotheses by score per token.
        fallback: scores the first pass's prefixes when the search ends with no hypothesis (as ESPnet's search
            can on a segment of a few frames).

    Raises:
        ValueError: a model without attention decoder, or ctc_weight 1.0 (nothing to search with: use
            `AttentionRescorer`), or a beam larger than the vocabulary.
    """

    def __init__(
        self,
        asr_model: ESPnetASRModel,
        lm: Optional[ESPnetLanguageModel],
        beam_size: int,
        ctc_weight: float,
        lm_weight: float,
        penalty: float,
        normalize_length: bool,
        fallback: AttentionRescorer,
    ) -> None:
        if asr_model.decoder is None or ctc_weight >= 1.0:
            raise ValueError(
                "the joint beam search needs the attention decoder (ctc_weight < 1.0 and a model with a decoder); "
                "decode with --second_pass attention_rescoring"
            )
        token_list = asr_model.token_list
        if beam_size > len(token_list):
            raise ValueError(
                f"beam_size {beam_size} is larger than the model's vocabulary ({len(token_list)} tokens), which "
                "ESPnet's beam search cannot fill (its first step picks beam_size tokens); use a beam_size of at "
                f"most {len(token_list)}"
            )
        scorers = {
            "decoder": asr_model.decoder,
            "ctc": ScannedCTCPrefixScorer(ctc=asr_model.ctc, eos=asr_model.eos),
            "length_bonus": LengthBonus(len(token_list)),
        }
        weights = {"decoder": 1.0 - ctc_weight, "ctc": ctc_weight, "length_bonus": penalty}
        if lm is not None and lm_weight != 0.0:
            scorers["lm"] = lm.lm
            weights["lm"] = lm_weight
        self.search = BatchBeamSearch(
            scorers=scorers,
            weights=weights,
            beam_size=beam_size,
            vocab_size=len(token_list),
            sos=asr_model.sos,
            eos=asr_model.eos,
            token_list=token_list,
            pre_beam_score_key="full",
            normalize_length=normalize_length,
        )
        self.search.to(device=next(asr_model.parameters()).device).eval()
        self.fallback = fallback

    @torch.no_grad()
    def __call__(self, prefixes: Sequence[CTCPrefix], memory: torch.Tensor) -> List[ScoredHypothesis]:
        """The segment's hypotheses, best first.

        Args:
            prefixes: the first pass's complete hypotheses (used only if the search finds none).
            memory: the segment's encoder frames (T, D), T >= 1.
        """
        hypotheses = self.search(x=memory, maxlenratio=0.0, minlenratio=0.0)
        if not hypotheses:
            logging.warning("the joint beam search ended with no hypothesis; rescoring the CTC n-best instead")
            return self.fallback(prefixes, memory)
        return [
            ScoredHypothesis(
                tuple(int(token) for token in hypothesis.yseq[1:-1].tolist()),
                float(hypothesis.score),
                {name: float(value) for name, value in hypothesis.scores.items()},
            )
            for hypothesis in hypotheses
        ]
