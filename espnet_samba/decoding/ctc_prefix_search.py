"""Frame-synchronous CTC prefix beam search: the first pass of streaming decoding, partial results after every frame.

Why our own search rather than a library's. torchaudio's `ctc_decoder` (Flashlight's lexicon-free decoder) has an
online API (`decode_begin`/`decode_step`), but it needs the compiled flashlight-text package, it keeps every
frame's hypotheses for its final backtrace with no pruning exposed (memory grows with the stream), and its n-best
are alignments rather than label sequences, where the second pass needs each label sequence once with its CTC
probability summed over alignments. `cuda_ctc_decoder` needs CUDA and a source build of torchaudio; pyctcdecode
decodes a whole posterior matrix and has no incremental API; ESPnet's `CTCPrefixScorer` is label-synchronous over
the whole utterance's posteriors, and `BatchBeamSearchOnline` drives it block by block for the contextual-block
encoders, re-reading all the frames so far. The prefix search itself is short, and with it the state is exactly the
beam: `beam_size` prefixes with two probabilities each.

Each prefix keeps the log probability that the frames so far emit it and end in blank (`log_blank`) or in its last
token (`log_token`): a repeated token extends the prefix only after a blank, as CTC collapses repeats. With a beam
that holds every prefix, `log_prob` is the CTC probability of the prefix summed over all its alignments; the
search is frame-synchronous, so feeding the frames in chunks of any size gives the same beam.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Tuple

import torch

NEG_INF = float("-inf")


def log_add(a: float, b: float) -> float:
    """log(exp(a) + exp(b)), exact at -inf."""
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    high, low = (a, b) if a > b else (b, a)
    return high + math.log1p(math.exp(low - high))


@dataclass(frozen=True)
class CTCPrefix:
    """A label sequence of the beam and its CTC log probabilities over the frames so far.

    Attributes:
        tokens: token ids, blank-free and with repeats kept as distinct tokens.
        log_blank: log P(the frames emit `tokens` and the last frame is blank).
        log_token: log P(the frames emit `tokens` and the last frame is its last token).
    """

    tokens: Tuple[int, ...]
    log_blank: float
    log_token: float

    @property
    def log_prob(self) -> float:
        """log P(the frames emit `tokens`), summed over alignments."""
        return log_add(self.log_blank, self.log_token)


class CTCPrefixBeamSearch:
    """Keeps the `beam_size` likeliest label prefixes of a stream's CTC posteriors, frame by frame.

    Args:
        beam_size: prefixes kept after each frame.
        blank: the blank token id.
        token_beam: the likeliest tokens of each frame that may extend a prefix (default `beam_size`); blank
            always takes part.
    """

    def __init__(self, beam_size: int, blank: int = 0, token_beam: int = 0) -> None:
        if beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, got {beam_size}")
        self.beam_size = beam_size
        self.blank = blank
        self.token_beam = token_beam or beam_size
        self.reset()

    def reset(self) -> None:
        """Start over: the empty prefix with probability one, before any frame."""
        self.beam: List[CTCPrefix] = [CTCPrefix((), 0.0, NEG_INF)]
        self.frames = 0

    def step(self, log_probs: torch.Tensor) -> None:
        """Advance the beam over the next frames.

        Args:
            log_probs: CTC log posteriors (T, V) of the next T >= 0 frames.
        """
        for frame in log_probs.detach().to(device="cpu", dtype=torch.float64):
            self._step_frame(frame)

    def _step_frame(self, frame: torch.Tensor) -> None:
        top = frame.topk(min(self.token_beam, frame.numel()))
        scores = dict(zip(top.indices.tolist(), top.values.tolist()))  # only these: all V to a list costs more
        if self.blank not in scores:
            scores[self.blank] = frame[self.blank].item()
        next_beam: Dict[Tuple[int, ...], List[float]] = {}

        def add(tokens: Tuple[int, ...], blank_ending: bool, log_p: float) -> None:
            if log_p == NEG_INF:
                return  # e.g. a repeat with no blank before it yet: no alignment emits the prefix
            entry = next_beam.setdefault(tokens, [NEG_INF, NEG_INF])
            entry[not blank_ending] = log_add(entry[not blank_ending], log_p)

        for prefix in self.beam:
            last = prefix.tokens[-1] if prefix.tokens else None
            log_prob = prefix.log_prob
            for token, log_p in scores.items():
                if token == self.blank:
                    add(prefix.tokens, True, log_prob + log_p)
                elif token == last:
                    add(prefix.tokens, False, prefix.log_token + log_p)  # the repeat collapses
                    add(prefix.tokens + (token,), False, prefix.log_blank + log_p)  # a blank separated it
                else:
                    add(prefix.tokens + (token,), False, log_prob + log_p)
        beam = [CTCPrefix(tokens, blank, token) for tokens, (blank, token) in next_beam.items()]
        beam.sort(key=lambda prefix: prefix.log_prob, reverse=True)
        self.beam = beam[: self.beam_size]
        self.frames += 1

    def nbest(self, n: int) -> List[CTCPrefix]:
        """The `n` likeliest prefixes so far, best first."""
        return self.beam[:n]
