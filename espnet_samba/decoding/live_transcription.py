"""Live transcription: audio blocks in as they arrive, the text shown so far and the finished segments out.

`LiveTranscriber` wraps the two-pass recogniser of `Speech2TextStreaming` (built with endpoint rules, so that a
stream of any length is cut into segments): after each block it reports the current segment's first-pass text (the
CTC prefix search's best prefix), the segments the block ended (rescored by the attention decoder, with their start
and end times in the stream) and the processing time so far, from which the real-time factor follows.

Audio sources, each an iterator of mono float32 blocks at the model's sampling rate:
- `file_blocks`: a wav (or any file soundfile reads), optionally paced to arrive in real time;
- `raw_pcm_blocks`: 16-bit little-endian mono PCM from a binary stream (stdin: `arecord -t raw -f S16_LE ... |`);
- `microphone_blocks`: the default capture device through ALSA's `arecord`, where one exists.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator, List, Optional

import numpy as np
import soundfile
import torch

from espnet_samba.decoding.attention_rescoring import ScoredHypothesis
from espnet_samba.decoding.audio_input import AudioInputError, check_audio_file
from espnet_samba.decoding.kaldi_fbank import PCM16_SCALE
from espnet_samba.decoding.streaming_features import NEEDS_AUDIO_FEATURES
from espnet_samba.decoding.streaming_recognizer import Segment


@dataclass(frozen=True)
class FinishedSegment:
    """A segment the endpoint rules closed: its rescored best text and where it lies in the stream (seconds)."""

    start: float
    end: float
    text: str


@dataclass
class LiveUpdate:
    """What one block changed.

    Attributes:
        audio_seconds: audio received so far.
        partial: the current segment's best first-pass text ("" before anything is decoded).
        finished: the segments this block ended, in order.
        processing_seconds: decoding time spent so far (waiting for audio not included).
    """

    audio_seconds: float
    partial: str
    finished: List[FinishedSegment] = field(default_factory=list)
    processing_seconds: float = 0.0

    @property
    def real_time_factor(self) -> float:
        """Processing time over audio time so far (0 before any audio)."""
        return self.processing_seconds / self.audio_seconds if self.audio_seconds > 0 else 0.0


class LiveTranscriber:
    """Feed one stream's blocks through a `Speech2TextStreaming` recogniser.

    Args:
        speech2text: a `Speech2TextStreaming` of a model with a frontend (raw audio in); its endpoint rules cut
            the stream into segments.
    """

    def __init__(self, speech2text) -> None:
        if not speech2text.recognizer.features.takes_audio:
            raise ValueError(NEEDS_AUDIO_FEATURES)
        self.speech2text = speech2text
        self.recognizer = speech2text.recognizer
        self.sample_rate: int = self.recognizer.features.sample_rate
        self.reset()

    @property
    def samples_received(self) -> int:
        """Samples of the current stream fed so far."""
        return self._samples

    def reset(self) -> None:
        """Start a new stream."""
        self.recognizer.reset()
        self._samples = 0
        self._processing = 0.0

    def feed(self, block: np.ndarray, is_final: bool = False) -> LiveUpdate:
        """Decode the next block (N,) of mono float samples; `is_final` ends the stream with it (and resets)."""
        started = time.perf_counter()
        segments = self.recognizer.accept(torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32)), is_final)
        finished = [self._finished(segment) for segment in segments if segment.hypotheses[0].tokens]
        partial = "" if is_final else self._text(self.recognizer.partial()[0].tokens)
        self._processing += time.perf_counter() - started
        self._samples += len(block)
        update = LiveUpdate(self._samples / self.sample_rate, partial, finished, self._processing)
        if is_final:
            self._samples, self._processing = 0, 0.0
        return update

    def _text(self, token_ids) -> str:
        if not token_ids:
            return ""
        text, tokens, _, _ = self.speech2text.to_result(ScoredHypothesis(tuple(token_ids), 0.0, {}))
        return text if text is not None else " ".join(tokens)

    def _finished(self, segment: Segment) -> FinishedSegment:
        return FinishedSegment(segment.start_time, segment.end_time, self._text(segment.hypotheses[0].tokens))


def file_blocks(path: Path, sample_rate: int, block_seconds: float, realtime: bool = False) -> Iterator[np.ndarray]:
    """The file's samples in blocks of `block_seconds`, checked first (`check_audio_file`).

    With `realtime`, each block is yielded only once the audio it holds would have been spoken, as from a live
    source: the time the consumer spends on a block counts against the wait for the next.
    """
    check_audio_file(path, sample_rate)
    block_size = max(1, round(block_seconds * sample_rate))
    started = time.perf_counter()
    delivered = 0
    with soundfile.SoundFile(str(path)) as audio:
        for block in audio.blocks(blocksize=block_size, dtype="float32"):
            delivered += len(block)
            if realtime:
                time.sleep(max(0.0, delivered / sample_rate - (time.perf_counter() - started)))
            yield block


def raw_pcm_blocks(stream: BinaryIO, sample_rate: int, block_seconds: float) -> Iterator[np.ndarray]:
    """16-bit little-endian mono PCM read from `stream` in blocks of `block_seconds`, until it ends."""
    block_bytes = 2 * max(1, round(block_seconds * sample_rate))
    pending = b""
    while True:
        data = stream.read(block_bytes - len(pending))
        if not data:
            break
        pending += data
        if len(pending) == block_bytes:
            yield np.frombuffer(pending, dtype="<i2").astype(np.float32) / PCM16_SCALE
            pending = b""
    usable = len(pending) - len(pending) % 2
    if usable:
        yield np.frombuffer(pending[:usable], dtype="<i2").astype(np.float32) / PCM16_SCALE


def arecord_command(sample_rate: int, device: Optional[str] = None) -> List[str]:
    """ALSA's `arecord` writing mono 16-bit PCM at `sample_rate` to stdout, or an AudioInputError saying why not."""
    arecord = shutil.which("arecord")
    if arecord is None:
        raise AudioInputError(
            "no microphone input: `arecord` is not installed (apt-get install alsa-utils); or pipe any raw 16-bit "
            "mono PCM source into --wav - (e.g. `sox -d -t raw -b 16 -e signed -c 1 -r 16000 - | ...`)"
        )
    if device is None:
        listing = subprocess.run([arecord, "-l"], capture_output=True, text=True, check=False)
        if "card" not in listing.stdout:
            raise AudioInputError(
                f"no microphone input: `arecord -l` lists no capture device ({listing.stderr.strip() or 'none'}); "
                "stream a file with --wav FILE instead"
            )
    command = [arecord, "-q", "-t", "raw", "-f", "S16_LE", "-c", "1", "-r", str(sample_rate)]
    return command + (["-D", device] if device is not None else [])


def microphone_blocks(sample_rate: int, block_seconds: float, device: Optional[str] = None) -> Iterator[np.ndarray]:
    """Blocks from the capture device until the consumer stops (Ctrl-C) or `arecord` ends."""
    process = subprocess.Popen(arecord_command(sample_rate, device), stdout=subprocess.PIPE)
    try:
        yield from raw_pcm_blocks(process.stdout, sample_rate, block_seconds)
    finally:
        process.terminate()
        process.wait()
