"""The live demo command (espnet_samba.bin.asr_live) and its audio sources, on a tiny random causal model.

Oracles: long-form transcription (espnet_samba.bin.asr_transcribe_long) of the same file with the same endpoint
rules, read in other block sizes (its `segments` and `text`); the wav file's own samples (raw PCM from stdin).
"""
from __future__ import annotations

import io
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from espnet_samba.bin import asr_live
from espnet_samba.bin.asr_transcribe_long import main as transcribe_main
from espnet_samba.decoding import live_transcription
from espnet_samba.decoding.audio_input import AudioInputError
from espnet_samba.decoding.live_transcription import file_blocks, raw_pcm_blocks
from test_streaming_support import RATE, noise, write_causal_model

# Random weights decode no silence: the maximum segment length cuts the stream into segments of 10 frames.
RECOGNISER_OPTIONS = ["--beam_size", "3", "--endpoint_max_segment_length", "0.32"]
FINAL = re.compile(r"^final\s+(\d+\.\d+)-(\d+\.\d+) s \| (.*)$")
PARTIAL = re.compile(r"^partial\s+(\d+\.\d+) s \| (.*)$")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("live_model")
    write_causal_model(root)
    soundfile.write(root / "speech.wav", noise(20000, 3), RATE, subtype="PCM_16")
    return root


def model_options(model_dir: Path):
    return ["--asr_train_config", str(model_dir / "config.yaml"), "--asr_model_file", str(model_dir / "model.pth"),
            *RECOGNISER_OPTIONS]


def run_live(model_dir: Path, capsys, *options: str):
    asr_live.main([*options, *model_options(model_dir)])
    captured = capsys.readouterr()
    return captured.out.splitlines(), captured.err


def test_final_segments_are_those_of_long_form_transcription(model_dir, tmp_path, capsys):
    lines, err = run_live(model_dir, capsys, "--wav", str(model_dir / "speech.wav"), "--chunk_ms", "110")
    finals = [FINAL.match(line).groups() for line in lines if line.startswith("final")]
    transcribe_main(["--wav", str(model_dir / "speech.wav"), "--output_dir", str(tmp_path / "long"),
                     "--block_seconds", "0.5", *model_options(model_dir)])
    texts = dict(line.split(" ", 1) for line in (tmp_path / "long" / "text").read_text().splitlines())
    expected = [(round(float(start), 2), round(float(end), 2), texts[key])
                for key, _, start, end in (line.split() for line in (tmp_path / "long" / "segments").read_text()
                                           .splitlines())]
    assert len(expected) > 2
    assert [(float(start), float(end), text) for start, end, text in finals] == expected
    assert re.search(r"audio 1\.25 s, decoding \d+\.\d+ s, real-time factor \d+\.\d+ \(chunks of 110 ms\)", err)


def test_partial_text_is_printed_when_it_changes_with_the_audio_time(model_dir, capsys):
    lines, _ = run_live(model_dir, capsys, "--wav", str(model_dir / "speech.wav"), "--chunk_ms", "110")
    partials = [PARTIAL.match(line).groups() for line in lines if line.startswith("partial")]
    assert partials, lines
    times = [float(seconds) for seconds, _ in partials]
    assert times == sorted(times) and all(t <= 1.25 for t in times)
    assert all(round(t / 0.11, 6) == round(t / 0.11) or t == 1.25 for t in times)
    assert all(a != b for (_, a), (_, b) in zip(partials, partials[1:]))


def test_raw_pcm_on_stdin_decodes_as_the_wav_file(model_dir, capsys, monkeypatch):
    from_file, _ = run_live(model_dir, capsys, "--wav", str(model_dir / "speech.wav"))
    samples, _ = soundfile.read(model_dir / "speech.wav", dtype="int16")
    stdin = io.TextIOWrapper(io.BytesIO(samples.astype("<i2").tobytes()))
    monkeypatch.setattr("sys.stdin", stdin)
    from_stdin, _ = run_live(model_dir, capsys, "--wav", "-")
    assert from_stdin == from_file


class Trickle(io.RawIOBase):
    """A pipe that returns at most `piece` bytes per read, as arecord's stdout may."""

    def __init__(self, data: bytes, piece: int) -> None:
        self.data, self.piece = data, piece

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        taken, self.data = self.data[: min(size, self.piece)], self.data[min(size, self.piece):]
        return taken


@pytest.mark.parametrize("piece", [1, 7, 320, 10_000])
def test_raw_pcm_blocks_are_whole_blocks_of_the_stream_whatever_its_reads(piece):
    samples = (np.random.RandomState(0).randn(1001) * 3000).astype("<i2")
    data = samples.tobytes() + b"\x01"  # a dangling odd byte is dropped
    blocks = list(raw_pcm_blocks(Trickle(data, piece), 1000, 0.1))
    assert [len(block) for block in blocks] == [100] * 10 + [1]
    np.testing.assert_array_equal(np.concatenate(blocks), samples.astype(np.float32) / 32768.0)


def test_realtime_pacing_delivers_no_faster_than_the_audio_lasts(tmp_path):
    wav = tmp_path / "short.wav"
    soundfile.write(wav, noise(4000, 0), RATE, subtype="PCM_16")
    started = time.perf_counter()
    blocks = list(file_blocks(wav, RATE, 0.05, realtime=True))
    assert time.perf_counter() - started >= 0.25
    assert sum(len(block) for block in blocks) == 4000


def test_microphone_without_arecord_says_what_to_install(model_dir, capsys, monkeypatch):
    monkeypatch.setattr(live_transcription.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit, match=r"arecord` is not installed \(apt-get install alsa-utils\)"):
        asr_live.main(["--microphone", *model_options(model_dir)])


def test_microphone_without_a_capture_device_says_so(monkeypatch):
    monkeypatch.setattr(live_transcription.shutil, "which", lambda name: "/usr/bin/arecord")
    listing = subprocess.CompletedProcess([], 0, stdout="", stderr="arecord: device_list:277: no soundcards found...")
    monkeypatch.setattr(live_transcription.subprocess, "run", lambda *args, **kwargs: listing)
    with pytest.raises(AudioInputError, match="lists no capture device .*no soundcards found.*--wav FILE"):
        live_transcription.arecord_command(RATE)


def test_a_bad_file_stops_with_its_name(model_dir, tmp_path, capsys):
    bad = tmp_path / "bad.wav"
    soundfile.write(bad, noise(8000, 0), 8000, subtype="PCM_16")
    with pytest.raises(SystemExit, match=rf"asr_live: .*{re.escape(str(bad))}.*8000 Hz but the model expects 16000"):
        asr_live.main(["--wav", str(bad), *model_options(model_dir)])


def test_no_audio_on_stdin_is_an_error(model_dir, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"")))
    with pytest.raises(SystemExit, match="no audio received from -"):
        asr_live.main(["--wav", "-", *model_options(model_dir)])


def test_a_stream_shorter_than_one_stft_frame_is_an_error(model_dir, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"\x00\x01" * 50)))
    with pytest.raises(SystemExit, match="asr_live: the audio has 50 samples; the frontend's STFT"):
        asr_live.main(["--wav", "-", *model_options(model_dir)])
