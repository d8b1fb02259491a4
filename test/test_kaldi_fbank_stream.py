"""Kaldi fbank features of a stream (espnet_samba.decoding.kaldi_fbank), and recognising raw audio with a model
trained on precomputed fbank features (--feats_type fbank, no frontend).

Oracles: torchaudio.compliance.kaldi.fbank over the whole signal, as the recipes' compute_fbank_feats.py computes
the training features; Speech2TextStreaming fed those offline frames.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
import torchaudio.compliance.kaldi as kaldi_compliance

from espnet_samba.bin.asr_inference_streaming import Speech2TextStreaming, simulate_stream
from espnet_samba.bin.asr_transcribe_long import transcribe_long_audio
from espnet_samba.decoding.endpoint import EndpointRules
from espnet_samba.decoding.kaldi_fbank import StreamingKaldiFbank, read_fbank_conf
from test_streaming_support import N_MELS, RATE, noise, write_causal_model

RECIPE_FBANK_CONF = Path(__file__).resolve().parents[1] / "egs2/espeak_en/asr1/conf/fbank.conf"


def offline_fbank(samples: np.ndarray, options) -> torch.Tensor:
    return kaldi_compliance.fbank(torch.from_numpy(samples)[None] * 32768.0, **options, sample_frequency=RATE)


@pytest.mark.parametrize("chunk", [1, 7, 159, 160, 399, 400, 401, 1000, 4321, 100_000])
def test_frames_of_any_chunking_are_those_of_the_whole_signal(chunk):
    options = read_fbank_conf(RECIPE_FBANK_CONF)
    assert options["num_mel_bins"] == 40
    samples = noise(9137, 0)
    stream = StreamingKaldiFbank(options, RATE)
    frames = torch.cat([stream(torch.from_numpy(samples[i : i + chunk])) for i in range(0, samples.size, chunk)])
    expected = offline_fbank(samples, options)
    assert frames.shape == expected.shape == (1 + (9137 - 400) // 160, 40)
    torch.testing.assert_close(frames, expected, atol=1e-4, rtol=1e-5)
    stream.reset()
    torch.testing.assert_close(stream(torch.from_numpy(samples)), expected, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("line, message", [
    ("--snip-edges=false", "snip_edges=False cannot stream: frames past the signal's end"),
    ("--subtract-mean=true", "subtract_mean=True cannot stream"),
    ("--dither=1.0", "dither=1.0 adds random noise"),
])
def test_options_that_need_the_future_or_randomness_are_refused(tmp_path, line, message):
    conf = tmp_path / "fbank.conf"
    conf.write_text(f"--num-mel-bins=40\n{line}\n")
    with pytest.raises(ValueError, match=message):
        StreamingKaldiFbank(read_fbank_conf(conf), RATE)


def test_a_conf_line_that_is_not_an_option_is_refused_with_its_place(tmp_path):
    conf = tmp_path / "fbank.conf"
    conf.write_text("# comment\n--num-mel-bins=40  # trailing comment\nnum-mel-bins 40\n")
    with pytest.raises(ValueError, match=r"fbank.conf:3: expected '--option=value'"):
        read_fbank_conf(conf)


@pytest.fixture(scope="module")
def fbank_model(tmp_path_factory) -> Path:
    """A random causal model without frontend on 20-bin features, and its fbank conf."""
    root = tmp_path_factory.mktemp("fbank_model")
    write_causal_model(root, options=["--input_size", str(N_MELS)])
    (root / "fbank.conf").write_text(f"--num-mel-bins={N_MELS}\n")
    return root


def recogniser(root: Path, **options) -> Speech2TextStreaming:
    return Speech2TextStreaming(root / "config.yaml", root / "model.pth", beam_size=3, **options)


def test_audio_through_the_fbank_conf_decodes_as_the_offline_features(fbank_model):
    samples = noise(12000, 1)
    frames = offline_fbank(samples, read_fbank_conf(fbank_model / "fbank.conf"))
    from_frames = recogniser(fbank_model)(frames, is_final=True)
    from_audio = recogniser(fbank_model, fbank_conf=fbank_model / "fbank.conf")
    assert from_audio.recognizer.asr_model.frontend is None
    for chunk in (333, 5120, 12000):
        results = simulate_stream(from_audio, torch.from_numpy(samples), chunk)
        assert [r[2] for r in results] == [r[2] for r in from_frames], chunk
        assert results[0][3].score == pytest.approx(from_frames[0][3].score, abs=1e-3)


def test_long_form_transcription_of_an_fbank_model_needs_its_conf(fbank_model, tmp_path):
    wav = tmp_path / "long.wav"
    soundfile.write(wav, noise(24000, 2), RATE, subtype="PCM_16")
    rules = EndpointRules(None, None, 0.5)
    with pytest.raises(ValueError, match=r"--feats_type fbank, no frontend\): give the recipe's fbank options "
                                          r"\(--fbank_conf conf/fbank.conf"):
        transcribe_long_audio(recogniser(fbank_model, endpoint_rules=rules), wav, tmp_path / "refused")
    speech2text = recogniser(fbank_model, endpoint_rules=rules, fbank_conf=fbank_model / "fbank.conf")
    assert transcribe_long_audio(speech2text, wav, tmp_path / "out") >= 2
    segments = (tmp_path / "out" / "segments").read_text().split("\n")
    assert segments[0].split()[2:] == ["0.00", "0.48"]  # 0.5 s rounded down to whole 4-frame (40 ms) encoder steps


def test_an_fbank_conf_for_a_model_with_a_frontend_is_refused(tmp_path):
    write_causal_model(tmp_path)
    (tmp_path / "fbank.conf").write_text("--num-mel-bins=20\n")
    with pytest.raises(ValueError, match=r"computes its own features from audio \(its frontend: DefaultFrontend\); "
                                          "Kaldi fbank options apply only to a model trained on precomputed features"):
        recogniser(tmp_path, fbank_conf=tmp_path / "fbank.conf")


def test_a_stream_shorter_than_one_frame_is_an_error(fbank_model):
    speech2text = recogniser(fbank_model, fbank_conf=fbank_model / "fbank.conf")
    with pytest.raises(ValueError, match=r"the audio has 399 samples, fewer than one fbank frame \(400\)"):
        speech2text(torch.from_numpy(noise(399, 0)), is_final=True)
