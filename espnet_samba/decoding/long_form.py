"""Long-form transcription output: segments with start/end times, words aligned to frames, and the files they go to.

A segment of the stream (see `espnet_samba.decoding.endpoint`) becomes a `TimedSegment`: its time span, its text,
and its words with times from a CTC forced alignment of the chosen tokens over the segment's own posteriors
(torchaudio's `forced_align`: the Viterbi path, each token spanning the frames where the path emits it).
`LongFormWriter` appends each segment to four files as it arrives, so nothing accumulates in memory:

- `segments`: Kaldi's `<segment-id> <recording-id> <start> <end>` (seconds), the span the segment was decoded from;
- `text`: `<segment-id> <text>`;
- `ctm`: NIST's `<recording-id> 1 <start> <duration> <word>`, a line per word;
- `subtitles.srt`: SubRip cues from the first word's start to the last word's end.

Segment ids follow Kaldi's `<recording-id>-<start>-<end>` in centiseconds, zero-padded to 7 digits.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence, Tuple

import torch
from torchaudio.functional import forced_align

CHAR_SPACE = "<space>"
WORD_START = "\u2581"  # sentencepiece's word-initial mark


@dataclass(frozen=True)
class TimedWord:
    """A word and its span in seconds from the start of the recording."""

    text: str
    start: float
    end: float


@dataclass(frozen=True)
class TimedSegment:
    """A segment of a recording: id, span in seconds, text and timed words."""

    segment_id: str
    start: float
    end: float
    text: str
    words: List[TimedWord]


def token_spans(log_probs: torch.Tensor, token_ids: Sequence[int], blank: int) -> List[Tuple[int, int]]:
    """The frames [first, last + 1) each token occupies on the Viterbi alignment of `token_ids` to `log_probs`.

    Args:
        log_probs: CTC log posteriors (T, V).
        token_ids: the label sequence (blank-free), alignable to T frames.
        blank: the blank id.
    """
    if not token_ids:
        return []
    path, _ = forced_align(
        log_probs[None].float().cpu(), torch.tensor([list(token_ids)], dtype=torch.int32), blank=blank
    )
    spans: List[List[int]] = []
    previous = blank
    for frame, label in enumerate(path[0].tolist()):
        if label != blank and label == previous:
            spans[-1][1] = frame + 1
        elif label != blank:
            spans.append([frame, frame + 1])
        previous = label
    return [(first, stop) for first, stop in spans]


def group_words(tokens: Sequence[str], token_type: str) -> List[Tuple[str, int, int]]:
    """The words the tokens spell, each as (text, first token index, last token index + 1).

    `word` tokens are words; otherwise `<space>` separates words and a token starting with "▁" (bpe) begins one.
    """
    if token_type == "word":
        return [(token, index, index + 1) for index, token in enumerate(tokens)]
    words: List[List] = []
    in_word = False
    for index, token in enumerate(tokens):
        if token == CHAR_SPACE:
            in_word = False
            continue
        piece = token[len(WORD_START):] if token.startswith(WORD_START) else token
        if token.startswith(WORD_START) or not in_word:
            words.append([piece, index, index + 1])
            in_word = True
        else:
            words[-1][0] += piece
            words[-1][2] = index + 1
    return [(text, first, stop) for text, first, stop in words if text]


def timed_words(
    tokens: Sequence[str], spans: Sequence[Tuple[int, int]], token_type: str, start_time: float, frame_shift: float
) -> List[TimedWord]:
    """Words with times: from the first frame of their first token to the end of their last token's frames.

    spans: each token's frames within the segment, whose frame 0 starts at `start_time` seconds.
    """
    return [
        TimedWord(text, start_time + spans[first][0] * frame_shift, start_time + spans[stop - 1][1] * frame_shift)
        for text, first, stop in group_words(tokens, token_type)
    ]


def segment_id(recording_id: str, start: float, end: float) -> str:
    return f"{recording_id}-{round(start * 100):07d}-{round(end * 100):07d}"


def srt_time(seconds: float) -> str:
    milliseconds = round(seconds * 1000)
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d},{rest % 1000:03d}"


class LongFormWriter:
    """Appends segments to `segments`, `text`, `ctm` and `subtitles.srt` in `output_dir` (see the module docstring).

    Args:
        output_dir: created if missing; the four files are written anew.
        recording_id: the recording's id in `segments` and `ctm`.
    """

    FILES = ("segments", "text", "ctm", "subtitles.srt")

    def __init__(self, output_dir: Path, recording_id: str) -> None:
        output_dir.mkdir(parents=True, exist_ok=True)
        self.recording_id = recording_id
        self._files = {name: open(output_dir / name, "w", encoding="utf-8") for name in self.FILES}
        self.count = 0

    def write(self, segment: TimedSegment) -> None:
        self.count += 1
        files = self._files
        files["segments"].write(f"{segment.segment_id} {self.recording_id} {segment.start:.2f} {segment.end:.2f}\n")
        files["text"].write(f"{segment.segment_id} {segment.text}\n")
        for word in segment.words:
            files["ctm"].write(f"{self.recording_id} 1 {word.start:.2f} {word.end - word.start:.2f} {word.text}\n")
        cue_start = segment.words[0].start if segment.words else segment.start
        cue_end = segment.words[-1].end if segment.words else segment.end
        files["subtitles.srt"].write(f"{self.count}\n{srt_time(cue_start)} --> {srt_time(cue_end)}\n{segment.text}\n\n")
        for handle in files.values():
            handle.flush()

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()

    def __enter__(self) -> "LongFormWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
