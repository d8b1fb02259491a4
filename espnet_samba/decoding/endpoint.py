"""Endpoint detection: where a stream's CTC search ends one segment and starts the next (WeNet's / k2's rules).

For unbounded audio the search cannot run as one segment: its prefixes and the encoder frames kept for the second
pass would grow without end. `SegmentingSearch` cuts the stream by three named rules, checked after every frame:

- `trailing_silence_after_speech`: something is decoded and the last `trailing_silence_after_speech` seconds are
  silence: the end of an utterance;
- `silence_without_speech`: nothing is decoded and the last `silence_without_speech` seconds are silence: the
  frames are dropped, no segment is output;
- `max_segment_length`: the segment has lasted `max_segment_length` seconds.

A frame is silence when its CTC blank posterior is at least `blank_threshold`; trailing silence counts the
consecutive silent frames up to the current one; "something is decoded" when the best prefix after the frame is not
empty. Durations are rounded to whole frames (at least one). After an endpoint the search restarts empty from the
next frame; the decision depends only on the frames, so it is the same for any chunking of the stream.

`restart_encoder` says what the recogniser does with the encoder at an endpoint: start it afresh where the next
speech begins (the default), so that each segment is encoded as if it were an utterance of its own, or let its
state run on over the whole stream. With the restart, the encoder first runs on through the pause, whose
frames are left out of any segment, until a frame is not silence; the next segment then starts from a fresh
state at the speech onset found near that frame to the input frame (`espnet_samba.decoding.speech_onset`),
less `onset_margin` seconds (never before the endpoint). A model trained on utterances that start with the
speech sees its input so: started fresh in the middle of a pause instead, the demo's model hallucinated a word
("AND", "WHO") at the start of most segments, and a start even 40 ms early costs it WER
(bench/bench_leading_silence.py). On the demo's 5-minute recording, restarting on the encoder's 60 ms frame grid
decoded at 1.19x the WER of the utterances decoded one by one, at the input frame's onset 1.03x, with a margin of
10 / 20 ms 1.07x / 1.26x (bench/bench_long_form.py --minutes 5 --trailing_silence 0.5 --onset_margin M;
bench/RESULTS_CPU.md). A Mamba encoder trained on utterances of seconds has never seen its state carried over
minutes: run on, the demo's causal model decodes a one-hour recording at 3.8x the WER of the same utterances
decoded one by one (bench/bench_long_form.py, egs2/espeak_en/asr1/RESULTS.md).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch

from espnet_samba.decoding.ctc_prefix_search import CTCPrefix, CTCPrefixBeamSearch

TRAILING_SILENCE_AFTER_SPEECH = "trailing_silence_after_speech"
SILENCE_WITHOUT_SPEECH = "silence_without_speech"
MAX_SEGMENT_LENGTH = "max_segment_length"
END_OF_STREAM = "end_of_stream"


@dataclass(frozen=True)
class EndpointRules:
    """The endpoint rules (see the module docstring); a duration of None turns its rule off.

    The defaults suit long-form transcription (WeNet's runtime uses 1.0 s / 5.0 s / 20 s too).

    Attributes:
        trailing_silence_after_speech: seconds of silence that end a segment once something is decoded.
        silence_without_speech: seconds of silence, with nothing decoded, after which the segment is dropped.
        max_segment_length: seconds after which a segment ends regardless.
        blank_threshold: a frame is silence when its blank posterior is at least this.
        restart_encoder: at an endpoint, encode the next segment from a fresh encoder state (see the module
            docstring).
        onset_margin: with `restart_encoder`, seconds of the pause before the next speech that its segment keeps.
    """

    trailing_silence_after_speech: Optional[float] = 1.0
    silence_without_speech: Optional[float] = 5.0
    max_segment_length: Optional[float] = 20.0
    blank_threshold: float = 0.8
    restart_encoder: bool = True
    onset_margin: float = 0.0

    def __post_init__(self) -> None:
        for name in (TRAILING_SILENCE_AFTER_SPEECH, SILENCE_WITHOUT_SPEECH, MAX_SEGMENT_LENGTH):
            seconds = getattr(self, name)
            if seconds is not None and seconds <= 0:
                raise ValueError(f"endpoint rule {name} must be a positive number of seconds or off, got {seconds}")
        if not 0.0 < self.blank_threshold <= 1.0:
            raise ValueError(f"blank_threshold must lie in (0, 1], got {self.blank_threshold}")


NO_ENDPOINTS = EndpointRules(None, None, None)


@dataclass(frozen=True)
class Endpoint:
    """A segment the rules ended.

    Attributes:
        start_frame: its first frame, counted from the start of the stream.
        end_frame: one past its last frame.
        rule: the name of the rule that ended it (`END_OF_STREAM` for the last segment of a stream).
        prefixes: the search's beam at its end, best first.
    """

    start_frame: int
    end_frame: int
    rule: str
    prefixes: Tuple[CTCPrefix, ...]


def frames_for(seconds: Optional[float], frame_shift: float) -> Optional[int]:
    """A rule's duration in whole frames (at least one), or None when the rule is off."""
    return None if seconds is None else max(1, round(seconds / frame_shift))


class SegmentingSearch:
    """A stream's CTC prefix search, cut into segments by `EndpointRules`.

    Args:
        search: the prefix search (reset at every endpoint).
        rules: the endpoint rules.
        frame_shift: seconds per frame of the posteriors.
    """

    def __init__(self, search: CTCPrefixBeamSearch, rules: EndpointRules, frame_shift: float) -> None:
        self.search = search
        self.rules = rules
        self._trailing_after_speech = frames_for(rules.trailing_silence_after_speech, frame_shift)
        self._without_speech = frames_for(rules.silence_without_speech, frame_shift)
        self._max_length = frames_for(rules.max_segment_length, frame_shift)
        self._silence_log_prob = math.log(rules.blank_threshold)
        self.reset()

    def reset(self) -> None:
        """Start a new stream at frame 0."""
        self.frames = 0
        self._start_segment()

    def is_silence(self, log_probs: torch.Tensor) -> torch.Tensor:
        """Which frames (T, V) are silence by the rules' blank threshold: (T,) bool."""
        return log_probs[:, self.search.blank] >= self._silence_log_prob

    def skip_to(self, frame: int) -> None:
        """Start a new segment at `frame`, leaving out the frames not searched before it (a pause)."""
        self.frames = frame
        self._start_segment()

    def _start_segment(self) -> None:
        self.search.reset()
        self.segment_start = self.frames
        self._trailing_silence = 0

    def step(self, log_probs: torch.Tensor) -> List[Endpoint]:
        """Search the next frames (T, V) and return the segments that end within them."""
        endpoints = []
        while log_probs.size(0) > 0:
            consumed, endpoint = self.step_until_endpoint(log_probs)
            if endpoint is not None:
                endpoints.append(endpoint)
            log_probs = log_probs[consumed:]
        return endpoints

    def step_until_endpoint(self, log_probs: torch.Tensor) -> Tuple[int, Optional[Endpoint]]:
        """Search the next frames (T, V) up to the first endpoint among them.

        Returns:
            The number of frames searched (all T when no rule fires) and the endpoint, or None.
        """
        blank_log_probs = log_probs[:, self.search.blank].tolist()
        for index, (frame, blank_log_prob) in enumerate(zip(log_probs, blank_log_probs)):
            self.search.step(frame[None])
            self.frames += 1
            self._trailing_silence = self._trailing_silence + 1 if blank_log_prob >= self._silence_log_prob else 0
            rule = self._rule_that_fires()
            if rule is not None:
                return index + 1, self._end_segment(rule)
        return log_probs.size(0), None

    def finish(self) -> Endpoint:
        """End the stream: its last segment (possibly without frames), then a new stream."""
        endpoint = self._end_segment(END_OF_STREAM)
        self.reset()
        return endpoint

    def _rule_that_fires(self) -> Optional[str]:
        decoded_something = bool(self.search.beam[0].tokens)
        if decoded_something and _reached(self._trailing_silence, self._trailing_after_speech):
            return TRAILING_SILENCE_AFTER_SPEECH
        if not decoded_something and _reached(self._trailing_silence, self._without_speech):
            return SILENCE_WITHOUT_SPEECH
        if _reached(self.frames - self.segment_start, self._max_length):
            return MAX_SEGMENT_LENGTH
        return None

    def _end_segment(self, rule: str) -> Endpoint:
        endpoint = Endpoint(self.segment_start, self.frames, rule, tuple(self.search.beam))
        self._start_segment()
        return endpoint


def _reached(count: int, limit: Optional[int]) -> bool:
    return limit is not None and count >= limit
