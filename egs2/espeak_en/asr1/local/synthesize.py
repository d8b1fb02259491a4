#!/usr/bin/env python3
"""Synthesize the utterances of a plan, in parallel, into 16-bit mono wav files and a Kaldi data dir.

Each utterance is read by its voice's synthesizer (``synthesizers.py``: espeak-ng, flite, festival, SVOX Pico)
from its lower-cased transcript, then ``sox`` applies the tempo/pitch the synthesizer could not, resamples to
``--fs``, trims the trailing silence to 50 ms, and scales the utterance to a peak of -1 dBFS: the synthesizers'
own levels differ by 10 dB and more (festival's voices quietest, Pico's loudest), which a model trained on some of
them would otherwise learn as a trait of the family. The plan is cut into batches of one voice (``--batch_size``
utterances; festival reads a batch in one process), run by ``--nj`` parallel jobs. Progress (done/total,
elapsed, ETA) goes to stderr; one line per utterance (voice, tempo, pitch, duration) goes to ``--log_file``.
"""
import argparse
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import List, Optional, Sequence, TextIO

import soundfile

from kaldi_data import DataEntry, write_data_dir
from make_plan import Utterance, read_plan
from synthesizers import (
    SynthesisRequest, SynthesisResult, Voice, group_requests, require_program, synthesizer, _run,
)

SILENCE_LEVEL = "-55d"  # sox silence threshold: the synthesizers' pauses are (near) digital silence, far below it
TRAILING_PAUSE = "0.05"  # seconds of silence kept after the last word
PEAK_LEVEL_DB = "-1"  # every utterance's peak, dBFS


def finish_audio(result: SynthesisResult, wav_path: Path, fs: int, sox: str) -> float:
    """Write one synthesized utterance as the corpus keeps it and return its duration in seconds.

    Args:
        result: The synthesizer's raw audio and the sox effects still owed (tempo, pitch).
        wav_path: Output wav file (16-bit PCM, mono, ``fs`` Hz).
        fs: Output sampling rate in Hz.
        sox: Path of the sox executable.
    """
    # -D: no dither, which sox would otherwise draw at random when it rounds the audio to 16 bits. The reverses
    # around `silence` trim the trailing silence (espeak-ng leaves ~0.3 s, a tenth of an utterance). `rate` and
    # `channels` come before `gain -n`: left to sox, the conversions to the output format would run after it and
    # move the peak (espeak-ng's 22.05 kHz audio resampled after normalising peaked at -1.14 dBFS).
    command = [sox, "-q", "-D", str(result.raw_wav), "-b", "16", str(wav_path),
               *result.sox_effects, "rate", str(fs), "channels", "1",
               "reverse", "silence", "1", "0.01", SILENCE_LEVEL, "reverse",
               "pad", "0", TRAILING_PAUSE, "gain", "-n", PEAK_LEVEL_DB]
    _run(command, f"sox writing {wav_path}")
    result.raw_wav.unlink()
    return soundfile.info(str(wav_path)).duration


class Progress:
    """Thread-safe done/total counter that reports elapsed time and ETA at most every ``interval`` seconds."""

    def __init__(self, name: str, total: int, stream: TextIO, interval: float = 5.0):
        self.name, self.total, self.stream, self.interval = name, total, stream, interval
        self.done = 0
        self.start = time.monotonic()
        self.last_report = -float("inf")
        self.lock = threading.Lock()

    def advance(self) -> None:
        with self.lock:
            self.done += 1
            now = time.monotonic()
            if self.done == self.total or now - self.last_report >= self.interval:
                self.last_report = now
                elapsed = now - self.start
                eta = elapsed / self.done * (self.total - self.done)
                print(
                    f"[{self.name}] {self.done}/{self.total} utterances ({100 * self.done / self.total:.0f}%), "
                    f"elapsed {elapsed:.0f} s, ETA {eta:.0f} s",
                    file=self.stream,
                    flush=True,
                )


def as_request(utt: Utterance) -> SynthesisRequest:
    return SynthesisRequest(utt.utt_id, Voice.parse(utt.voice), utt.tempo, utt.pitch, utt.transcript.lower())


def synthesize_plan(
    plan: Sequence[Utterance], wav_dir: Path, fs: int, nj: int, name: str, batch_size: int = 50,
    log: Optional[TextIO] = None,
) -> float:
    """Synthesize every utterance of a plan with ``nj`` parallel jobs and return the total audio duration."""
    sox = require_program("sox", "sox")
    requests = [as_request(utt) for utt in plan]
    for family in sorted({request.voice.family for request in requests}):
        synthesizer(family).check_voices(sorted({r.voice.name for r in requests if r.voice.family == family}))
    wav_dir.mkdir(parents=True, exist_ok=True)
    progress = Progress(name, len(plan), sys.stderr)
    log_lock = threading.Lock()

    def run_batch(family: str, batch: List[SynthesisRequest], raw_dir: Path) -> float:
        duration = 0.0
        for result in synthesizer(family).synthesize(batch, raw_dir):
            request = result.request
            utt_duration = finish_audio(result, wav_dir / f"{request.utt_id}.wav", fs, sox)
            duration += utt_duration
            if log is not None:
                with log_lock:
                    log.write(f"{request.utt_id} voice={request.voice.spec} tempo={request.tempo} "
                              f"pitch={request.pitch} dur={utt_duration:.2f}\n")
            progress.advance()
        return duration

    total_duration = 0.0
    with tempfile.TemporaryDirectory(dir=wav_dir, prefix=".raw-") as raw_dir, ThreadPoolExecutor(nj) as pool:
        futures = [pool.submit(run_batch, family, batch, Path(raw_dir))
                   for family, batch in group_requests(requests, batch_size)]
        for future in as_completed(futures):
            total_duration += future.result()
    return total_duration


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plan", type=Path, required=True, help="TSV written by make_plan.py")
    parser.add_argument("--wav_dir", type=Path, required=True, help="where the wav files go")
    parser.add_argument("--data_dir", type=Path, required=True, help="Kaldi data dir to write")
    parser.add_argument("--fs", type=int, default=16000)
    parser.add_argument("--nj", type=int, default=2, help="parallel synthesis jobs")
    parser.add_argument("--batch_size", type=int, default=50, help="utterances of one voice per batch")
    parser.add_argument("--log_file", type=Path, help="per-utterance log")
    return parser


def main(argv: Sequence[str]) -> None:
    args = get_parser().parse_args(argv)
    if args.nj < 1 or args.batch_size < 1:
        raise ValueError(f"--nj and --batch_size must be at least 1, got {args.nj} and {args.batch_size}")
    plan = read_plan(args.plan)
    wav_dir = args.wav_dir.resolve()
    log = None
    if args.log_file is not None:
        args.log_file.parent.mkdir(parents=True, exist_ok=True)
        log = args.log_file.open("w", encoding="utf-8")
    try:
        duration = synthesize_plan(plan, wav_dir, args.fs, args.nj, args.data_dir.name, args.batch_size, log)
    finally:
        if log is not None:
            log.close()
    write_data_dir(
        args.data_dir,
        (DataEntry(u.utt_id, u.speaker, wav_dir / f"{u.utt_id}.wav", u.transcript) for u in plan),
    )
    print(f"[{args.data_dir.name}] {len(plan)} utterances, {duration / 3600:.2f} h of audio", file=sys.stderr)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        sys.exit(f"{Path(__file__).name}: error: {error}")
