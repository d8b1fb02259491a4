"""Lexicon-constrained beam search: a scorer for ESPnet's `BeamSearch` that keeps every hypothesis spelling
words of a word list, as a WFST decoder's lexicon does for a hybrid system."""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import torch

from espnet_samba.compat import BatchBeamSearch, BatchScorerInterface, BeamSearch
from espnet_samba.decoding.lexicon import DEFAULT_CACHE_SIZE, ROOT, LexiconTokenTree

LEXICON_SCORER_NAME = "lexicon"


class LexiconScorer(BatchScorerInterface):
    """Scores 0 for the tokens that keep a hypothesis within the lexicon and -inf for the others.

    A full scorer: with ESPnet's pre-beam on the full scores (ctc_weight < 1), the CTC prefix scorer never spends
    time on a token the lexicon rules out. The state of a hypothesis is the `LexiconTokenTree` node its tokens
    before the last one reached (an int); a call applies the last token, like an LM consumes it. The tree keeps
    the score rows of its `cache_size` most recently scored nodes (`LexiconTokenTree`): memory stays bounded
    however long the decoding.
    """

    def __init__(self, tree: LexiconTokenTree):
        self.tree = tree

    def init_state(self, x: torch.Tensor) -> int:
        return ROOT

    def _node(self, y: torch.Tensor, state: int) -> int:
        """The node after all of `y` (L,); `y[0]` is <sos>, which spells nothing."""
        return state if len(y) == 1 else self.tree.next_node(state, int(y[-1]))

    def score(self, y: torch.Tensor, state: int, x: torch.Tensor) -> Tuple[torch.Tensor, int]:
        """Scores of the next token (V,) for the prefix `y` (L,); `x` (T, D) only sets device and dtype."""
        node = self._node(y, state)
        return self.tree.scores([node], x.dtype)[0].to(x.device), node

    def batch_score(
        self, ys: torch.Tensor, states: List[int], xs: torch.Tensor
    ) -> Tuple[torch.Tensor, List[int]]:
        """Scores of the next token (n_batch, V) for the prefixes `ys` (n_batch, L); `xs` (n_batch, T, D)."""
        nodes = [self._node(y, state) for y, state in zip(ys, states)]
        return self.tree.scores(nodes, xs.dtype).to(xs.device), nodes

    def select_state(self, state: Any, i: int, new_id: Optional[int] = None) -> int:
        """Hypothesis `i`'s node: `BatchBeamSearch` keeps a list per batch, `BeamSearch` one node each."""
        return state[i] if isinstance(state, list) else state


def constrain_to_lexicon(
    beam_search: BeamSearch, words: Sequence[str], cache_size: int = DEFAULT_CACHE_SIZE
) -> BeamSearch:
    """A copy of `beam_search` (ESPnet's `BeamSearch` or `BatchBeamSearch`, as `Speech2Text` built it) whose
    hypotheses spell only `words`: the same scorers, weights and settings plus a `LexiconScorer` whose tree keeps
    the score rows of `cache_size` nodes (see `LexiconTokenTree`)."""
    if type(beam_search) not in (BeamSearch, BatchBeamSearch):
        raise ValueError(
            f"a lexicon constrains ESPnet's BeamSearch and BatchBeamSearch, not {type(beam_search).__name__} "
            "(streaming, time-synchronous, transducer and partially autoregressive decoding are not supported)"
        )
    if beam_search.token_list is None:
        raise ValueError("a lexicon needs the beam search's token list to spell words with")
    scorer = LexiconScorer(LexiconTokenTree(words, beam_search.token_list, beam_search.eos, cache_size))
    constrained = type(beam_search)(
        scorers={**beam_search.scorers, LEXICON_SCORER_NAME: scorer},
        weights={**beam_search.weights, LEXICON_SCORER_NAME: 1.0},
        beam_size=beam_search.beam_size,
        vocab_size=beam_search.n_vocab,
        sos=beam_search.sos,
        eos=beam_search.eos,
        token_list=beam_search.token_list,
        # ESPnet keeps int(ratio * beam_size): half a hypothesis of margin survives the float round trip
        pre_beam_ratio=(beam_search.pre_beam_size + 0.5) / beam_search.beam_size,
        pre_beam_score_key=beam_search.pre_beam_score_key,
        return_hs=beam_search.return_hs,
        hyp_primer=beam_search.hyp_primer,
        normalize_length=beam_search.normalize_length,
    )
    return constrained.eval()
