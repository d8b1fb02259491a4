#!/usr/bin/env python3
"""Synthesize the utterances of a plan with espeak-ng, in parallel, into 16-bit mono wav files and a Kaldi data dir.

Each utterance runs ``espeak-ng -v VOICE -s RATE -p PITCH --stdout`` on its lower-cased transcript and
resamples the result with ``sox`` to ``--fs``, trimming the trailing silence to 50 ms. Progress (done/total, elapsed, ETA) goes to stderr; one line per
utterance (voice, rate, pitch, duration) goes to ``--log_file``.
"""
import argparse
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Optional, Sequence, TextIO

import soundfile

from kaldi_data import DataEntry, write_data_dir
from make_plan import Utterance, read_plan

SILENCE_LEVEL = "-55d"  # sox silence threshold: espeak-ng's pauses are digital silence, far below it
TRAILING_PAUSE = "0.05"  # seconds of silence kept after the last word


def require_program(name: str, package: str) -> str:
    """Return the path of an executable, or raise an error naming the package that provides it."""
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(
            f"'{name}' not found on PATH: install it (Debian/Ubuntu: apt-get install {package}, "
            "or run tools/install.sh)"
        )
    return path


def synthesize_utterance(utt: Utterance, wav_path: Path, fs: int, espeak_ng: str, sox: str) -> float:
    """Synthesize one utterance into ``wav_path`` and return its duration in seconds.

    Args:
        utt: The planned utterance.
        wav_path: Output wav file (16-bit PCM, mono, ``fs`` Hz).
        fs: Output sampling rate in Hz.
        espeak_ng: Path of the espeak-ng executable.
        sox: Path of the sox executable.
    """
    speak = [espeak_ng, "-v", utt.voice, "-s", str(utt.rate), "-p", str(utt.pitch), "--stdout"]
    # -D: no dither, which sox would otherwise draw at random when it rounds the resampled audio to 16 bits.
    # The effects trim espeak-ng's trailing silence (~0.3 s, a tenth of an utterance) down to TRAILING_PAUSE.
    resample = [sox, "-q", "-D", "-t", "wav", "-", "-t", "wav", "-r", str(fs), "-c", "1", "-b", "16", str(wav_path),
                "reverse", "silence", "1", "0.01", SILENCE_LEVEL, "reverse", "pad", "0", TRAILING_PAUSE]
    # espeak-ng reads the text from stdin, so no word can be mistaken for an option.
    speech = subprocess.run(speak, input=utt.transcript.lower().encode(), capture_output=True, check=False)
    if speech.returncode != 0 or not speech.stdout:
        raise RuntimeError(
            f"espeak-ng failed for {utt.utt_id} (voice '{utt.voice}'): {speech.stderr.decode().strip()} "
            "(list the voices with: espeak-ng --voices=en)"
        )
    converted = subprocess.run(resample, input=speech.stdout, capture_output=True, check=False)
    if converted.returncode != 0:
        raise RuntimeError(f"sox failed to write {wav_path}: {converted.stderr.decode().strip()}")
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


def synthesize_plan(
    plan: Sequence[Utterance], wav_dir: Path, fs: int, nj: int, name: str, log: Optional[TextIO] = None
) -> float:
    """Synthesize every utterance of a plan with ``nj`` parallel jobs and return the total audio duration."""
    espeak_ng = require_program("espeak-ng", "espeak-ng")
    sox = require_program("sox", "sox")
    wav_dir.mkdir(parents=True, exist_ok=True)
    progress = Progress(name, len(plan), sys.stderr)
    total_duration = 0.0
    with ThreadPoolExecutor(max_workers=nj) as pool:
        futures = {
            pool.submit(synthesize_utterance, utt, wav_dir / f"{utt.utt_id}.wav", fs, espeak_ng, sox): utt
            for utt in plan
        }
        for future in as_completed(futures):
            utt = futures[future]
            duration = future.result()
            total_duration += duration
            if log is not None:
                log.write(f"{utt.utt_id} voice={utt.voice} rate={utt.rate} pitch={utt.pitch} dur={duration:.2f}\n")
            progress.advance()
    return total_duration


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plan", type=Path, required=True, help="TSV written by make_plan.py")
    parser.add_argument("--wav_dir", type=Path, required=True, help="where the wav files go")
    parser.add_argument("--data_dir", type=Path, required=True, help="Kaldi data dir to write")
    parser.add_argument("--fs", type=int, default=16000)
    parser.add_argument("--nj", type=int, default=2, help="parallel synthesis jobs")
    parser.add_argument("--log_file", type=Path, help="per-utterance log")
    return parser


def main(argv: Sequence[str]) -> None:
    args = get_parser().parse_args(argv)
    if args.nj < 1:
        raise ValueError(f"--nj must be at least 1, got {args.nj}")
    plan = read_plan(args.plan)
    wav_dir = args.wav_dir.resolve()
    log = None
    if args.log_file is not None:
        args.log_file.parent.mkdir(parents=True, exist_ok=True)
        log = args.log_file.open("w", encoding="utf-8")
    try:
        duration = synthesize_plan(plan, wav_dir, args.fs, args.nj, args.data_dir.name, log)
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
