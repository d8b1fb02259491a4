"""Bad audio (espnet_samba.decoding.audio_input): a corrupt, empty, wrong-rate or multi-channel file stops the
streaming entry point, long-form transcription and Speech2TextStreaming with an error naming the file and the fix."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from espnet_samba.bin import asr_inference_streaming
from espnet_samba.bin.asr_inference_streaming import Speech2TextStreaming
from espnet_samba.bin.asr_transcribe_long import transcribe_long_audio
from espnet_samba.decoding.audio_input import AudioInputError, check_audio_file, check_sound_scp
from test_streaming_support import RATE, noise, write_causal_model


def write_bad(path: Path, problem: str) -> Path:
    if problem == "corrupt":
        path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunk" + bytes(range(200)))
    elif problem == "empty":
        soundfile.write(path, np.zeros(0, dtype=np.float32), RATE, subtype="PCM_16")
    elif problem == "wrong rate":
        soundfile.write(path, noise(8000, 0), 8000, subtype="PCM_16")
    elif problem == "stereo":
        soundfile.write(path, np.stack([noise(8000, 0), noise(8000, 1)], axis=1), RATE, subtype="PCM_16")
    return path


MESSAGES = {
    "corrupt": r"not a readable audio file \(.*\); re-encode it",
    "empty": r"holds no samples; remove the utterance from the data directory",
    "wrong rate": r"is sampled at 8000 Hz but the model expects 16000 Hz; resample it \(sox in.wav -r 16000 out.wav",
    "stereo": r"has 2 channels; the model takes mono audio: mix it down",
    "missing": r"no such file; correct its path",
}


@pytest.mark.parametrize("problem", sorted(MESSAGES))
def test_check_audio_file_names_the_file_and_the_fix(tmp_path, problem):
    path = write_bad(tmp_path / "bad.wav", problem)
    with pytest.raises(AudioInputError, match=rf"^{re.escape(str(path))} \(utterance utt7\): {MESSAGES[problem]}"):
        check_audio_file(path, RATE, key="utt7")


def test_good_files_pass_and_only_the_keys_decoded_are_checked(tmp_path):
    good = tmp_path / "good.wav"
    soundfile.write(good, noise(8000, 2), RATE, subtype="PCM_16")
    check_audio_file(good, RATE)
    check_audio_file(write_bad(tmp_path / "8k.wav", "wrong rate"), None)  # no rate to compare with
    scp = tmp_path / "wav.scp"
    scp.write_text(f"good {good}\nbad {write_bad(tmp_path / 'bad.wav', 'stereo')}\n")
    keys = tmp_path / "keys.scp"
    keys.write_text(f"good {good}\n")
    check_sound_scp(scp, RATE, keys)
    with pytest.raises(AudioInputError, match=r"bad\.wav \(utterance bad\): has 2 channels"):
        check_sound_scp(scp, RATE)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad_input_model")
    write_causal_model(root)
    return root


@pytest.mark.parametrize("problem", ["corrupt", "empty", "wrong rate", "stereo"])
def test_the_command_line_stops_before_decoding_with_the_file_named(model_dir, tmp_path, problem):
    good = tmp_path / "good.wav"
    soundfile.write(good, noise(6000, 3), RATE, subtype="PCM_16")
    bad = write_bad(tmp_path / "bad.wav", problem)
    scp = tmp_path / "wav.scp"
    scp.write_text(f"a_good {good}\nb_bad {bad}\n")
    with pytest.raises(AudioInputError, match=rf"{re.escape(str(bad))} \(utterance b_bad\): {MESSAGES[problem]}"):
        asr_inference_streaming.main([
            "--output_dir", str(tmp_path / "out"),
            "--asr_train_config", str(model_dir / "config.yaml"),
            "--asr_model_file", str(model_dir / "model.pth"),
            "--data_path_and_name_and_type", f"{scp},speech,sound",
            "--beam_size", "2",
        ])
    assert not (tmp_path / "out" / "1best_recog").exists()


@pytest.mark.parametrize("problem", ["corrupt", "empty", "wrong rate", "stereo"])
def test_long_form_transcription_refuses_a_bad_file(model_dir, tmp_path, problem):
    bad = write_bad(tmp_path / "bad.wav", problem)
    speech2text = Speech2TextStreaming(model_dir / "config.yaml", model_dir / "model.pth", beam_size=2)
    with pytest.raises(AudioInputError, match=rf"^{re.escape(str(bad))}: {MESSAGES[problem]}"):
        transcribe_long_audio(speech2text, bad, tmp_path / "out")


def test_speech2text_refuses_multi_channel_samples(model_dir):
    speech2text = Speech2TextStreaming(model_dir / "config.yaml", model_dir / "model.pth", beam_size=2)
    with pytest.raises(AudioInputError, match=r"takes mono samples \(N,\); got shape \(8000, 2\): pass one channel"):
        speech2text(np.stack([noise(8000, 0), noise(8000, 1)], axis=1), is_final=True)
    assert speech2text(torch.from_numpy(noise(8000, 0)), is_final=True)  # the recogniser is still usable
