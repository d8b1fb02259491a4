"""Live streaming recognition on the terminal: `python -m espnet_samba.bin.asr_live`.

Streams a wav file (`--wav FILE`, with `--realtime` paced as if spoken live), raw 16-bit mono PCM from stdin
(`--wav -`, e.g. from `arecord -t raw -f S16_LE -c 1 -r 16000`), or the microphone (`--microphone`, through ALSA's
`arecord`, where a capture device exists) through the two-pass streaming recogniser of a causal model, and prints
the partial text as it changes, each segment's final text with its times when an endpoint closes it, and the
real-time factor (decoding time / audio time) at the end. On a terminal the partial text is redrawn in place; into
a pipe or file each change is a line of its own:

    partial  1.28 s  | the cat
    final    0.00-2.31 s | the cat sat on the mat
    audio 12.48 s, decoding 0.61 s, real-time factor 0.049 (chunks of 320 ms)

The model and decoding options are those of `espnet_samba.bin.asr_transcribe_long`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Iterable, List, Optional, TextIO

import numpy as np

from espnet_samba.bin.asr_transcribe_long import add_recogniser_arguments, recogniser_from_options
from espnet_samba.decoding.audio_input import AudioInputError
from espnet_samba.decoding.live_transcription import (
    LiveTranscriber,
    LiveUpdate,
    file_blocks,
    microphone_blocks,
    raw_pcm_blocks,
)


class LiveDisplay:
    """Prints a stream's updates: partial text redrawn in place on a terminal, one line per change elsewhere."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.in_place = out.isatty()
        self._shown = ""

    def show(self, update: LiveUpdate) -> None:
        for segment in update.finished:
            self._line(f"final   {segment.start:6.2f}-{segment.end:.2f} s | {segment.text}", final=True)
            self._shown = ""
        if update.partial and update.partial != self._shown:
            self._line(f"partial {update.audio_seconds:6.2f} s | {update.partial}", final=False)
        self._shown = update.partial

    def _line(self, text: str, final: bool) -> None:
        if self.in_place:
            self.out.write("\r\033[K" + text + ("\n" if final else ""))
        else:
            self.out.write(text + "\n")
        self.out.flush()


def transcribe_live(
    transcriber: LiveTranscriber, blocks: Iterable[np.ndarray], display: LiveDisplay
) -> Optional[LiveUpdate]:
    """Feed `blocks` (a Ctrl-C ends the stream as its end would) and show every update.

    Returns:
        The stream's last update (its totals of audio and decoding time), None when no audio arrived.
    """
    try:
        for block in blocks:
            display.show(transcriber.feed(block))
    except KeyboardInterrupt:
        pass
    if transcriber.samples_received == 0:
        return None
    final = transcriber.feed(np.zeros(0, dtype=np.float32), is_final=True)
    display.show(final)
    return final


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Stream a wav file, stdin or the microphone through the streaming recogniser, printing "
        "partial and final text and the real-time factor",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--wav", type=str, help="A mono audio file at the model's sampling rate, or - for raw "
                        "16-bit little-endian mono PCM on stdin")
    source.add_argument("--microphone", action="store_true", help="Record from the capture device (arecord)")
    parser.add_argument("--alsa_device", type=str, default=None, help="arecord -D device (default: ALSA's)")
    parser.add_argument("--chunk_ms", type=float, default=320.0, help="Audio decoded at a time (milliseconds)")
    parser.add_argument("--realtime", action="store_true", help="Pace a --wav file as if it were spoken live")
    add_recogniser_arguments(parser)
    return parser


def main(cmd: Optional[List[str]] = None) -> None:
    options = vars(get_parser().parse_args(cmd))
    wav, microphone, alsa_device = options.pop("wav"), options.pop("microphone"), options.pop("alsa_device")
    chunk_seconds, realtime = options.pop("chunk_ms") / 1000.0, options.pop("realtime")
    try:
        transcriber = LiveTranscriber(recogniser_from_options(options))
        rate = transcriber.sample_rate
        if microphone:
            blocks = microphone_blocks(rate, chunk_seconds, alsa_device)
        elif wav == "-":
            blocks = raw_pcm_blocks(sys.stdin.buffer, rate, chunk_seconds)
        else:
            blocks = file_blocks(Path(wav), rate, chunk_seconds, realtime)
        summary = transcribe_live(transcriber, blocks, LiveDisplay(sys.stdout))
    except (AudioInputError, ValueError) as error:  # bad audio, or a stream too short for one STFT frame
        sys.exit(f"asr_live: {error}")
    if summary is None:
        sys.exit(f"asr_live: no audio received from {'the microphone' if microphone else wav}")
    print(
        f"audio {summary.audio_seconds:.2f} s, decoding {summary.processing_seconds:.2f} s, real-time factor "
        f"{summary.real_time_factor:.3f} (chunks of {chunk_seconds * 1000:.0f} ms)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
