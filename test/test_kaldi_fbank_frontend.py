"""`frontend: kaldi_fbank` against the recipes' own feature extraction and torchaudio's Kaldi fbank.

Oracles: the recipe script that writes stage 3's features (egs2/TEMPLATE/asr1/pyscripts/feats/compute_fbank_feats.py,
run as asr.sh runs it, on int16 wav files) and `torchaudio.compliance.kaldi.fbank` utterance by utterance; the
frontend computes a padded batch at once and must give each utterance's features.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile
import torch
import torchaudio.compliance.kaldi as kaldi_compliance

from espnet_samba.asr.frontend.kaldi_fbank import KaldiFbankFrontend
from espnet_samba.decoding.kaldi_fbank import read_fbank_conf
from espnet_samba.decoding.streaming_features import StreamingFeatures

REPO = Path(__file__).resolve().parents[1]
COMPUTE_FBANK_FEATS = REPO / "egs2/TEMPLATE/asr1/pyscripts/feats/compute_fbank_feats.py"
DEMO_FBANK_CONF = REPO / "egs2/espeak_en/asr1/conf/fbank.conf"
LENGTHS = [16000, 9137, 401, 400]  # down to exactly one 25 ms window at 16 kHz


def lengths_down_to_one_window(frame_length_ms: float = 25.0, rate: int = 16000):
    window = int(rate * frame_length_ms / 1000)
    return [rate, 9137, window + 1, window]


def padded_batch(lengths, rate: int = 16000, seed: int = 0):
    """Noise with a DC offset and a tone, int16-representable, padded with zeros: (B, T) floats in [-1, 1]."""
    generator = torch.Generator().manual_seed(seed)
    batch = torch.zeros(len(lengths), max(lengths))
    for i, length in enumerate(lengths):
        t = torch.arange(length) / rate
        signal = 0.2 * torch.randn(length, generator=generator) + 0.3 * torch.sin(2 * torch.pi * 440 * t) + 0.05
        batch[i, :length] = torch.round(signal.clamp(-1, 1) * 32767) / 32768
    return batch, torch.tensor(lengths)


def assert_each_utterance_equals_kaldi(frontend: KaldiFbankFrontend, options: dict, rate: int, lengths) -> None:
    """Against kaldi.fbank with `options`, and with the frontend's own `kaldi_options` (what streaming uses)."""
    assert {**frontend.kaldi_options, **options} == frontend.kaldi_options
    audio, audio_lengths = padded_batch(lengths, rate)
    feats, feats_lengths = frontend(audio, audio_lengths)
    for i, length in enumerate(lengths):
        expected = kaldi_compliance.fbank(audio[i : i + 1, :length] * 32768, **frontend.kaldi_options,
                                          sample_frequency=rate)
        assert int(feats_lengths[i]) == expected.shape[0]
        torch.testing.assert_close(feats[i, : expected.shape[0]], expected, rtol=1e-5, atol=1e-4)
        assert torch.all(feats[i, expected.shape[0] :] == 0)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"num_mel_bins": 40},
        {"num_mel_bins": 23, "window_type": "hamming", "preemphasis_coefficient": 0.0, "low_freq": 64.0,
         "high_freq": -400.0},
        {"num_mel_bins": 40, "window_type": "hanning", "remove_dc_offset": False, "round_to_power_of_two": False},
        {"num_mel_bins": 40, "frame_length": 32.0, "frame_shift": 12.5, "use_power": False},
        {"num_mel_bins": 40, "use_log_fbank": False},
    ],
    ids=["defaults", "40-bins", "hamming-no-preemphasis", "hanning-no-dc-no-pow2", "32ms-12.5ms-magnitude", "linear"],
)
def test_each_utterance_of_a_padded_batch_equals_kaldi_fbank(options):
    kaldi_options = {"num_mel_bins": 80, **options}
    lengths = lengths_down_to_one_window(options.get("frame_length", 25.0))
    assert_each_utterance_equals_kaldi(KaldiFbankFrontend(fs="16k", **options), kaldi_options, 16000, lengths)


def test_8khz_audio():
    frontend = KaldiFbankFrontend(fs=8000, num_mel_bins=23)
    assert_each_utterance_equals_kaldi(frontend, {"num_mel_bins": 23}, 8000, [8000, 4001, 200])


def test_equals_the_features_stage_3_writes(tmp_path):
    """The demo's conf/fbank.conf through the recipe's compute_fbank_feats.py on int16 wav files, against the
    frontend built with the same options on the same files read as ESPnet reads raw audio (float32)."""
    audio, lengths = padded_batch(LENGTHS)
    lines = []
    for i, length in enumerate(LENGTHS):
        path = tmp_path / f"utt{i}.wav"
        soundfile.write(path, audio[i, :length].numpy(), 16000, subtype="PCM_16")
        lines.append(f"utt{i} {path}")
    (tmp_path / "wav.scp").write_text("\n".join(lines) + "\n")
    subprocess.run(
        [sys.executable, str(COMPUTE_FBANK_FEATS), "--wav_scp", str(tmp_path / "wav.scp"), "--fs", "16000",
         "--fbank_conf", str(DEMO_FBANK_CONF), "--out_dir", str(tmp_path / "feats")],
        check=True, capture_output=True, text=True,
    )
    stage3 = dict(kaldiio.load_scp(str(tmp_path / "feats" / "feats.scp")))
    options = read_fbank_conf(DEMO_FBANK_CONF)
    frontend = KaldiFbankFrontend(fs=16000, **{k: v for k, v in options.items() if k != "dither"})
    read = [soundfile.read(tmp_path / f"utt{i}.wav", dtype="float32")[0] for i in range(len(LENGTHS))]
    batch = torch.zeros(len(read), max(LENGTHS))
    for i, samples in enumerate(read):
        batch[i, : samples.size] = torch.from_numpy(samples)
    feats, feats_lengths = frontend(batch, torch.tensor([samples.size for samples in read]))
    for i in range(len(LENGTHS)):
        expected = torch.from_numpy(np.asarray(stage3[f"utt{i}"]))
        assert int(feats_lengths[i]) == expected.shape[0] and expected.shape[1] == 40
        torch.testing.assert_close(feats[i, : expected.shape[0]], expected, rtol=1e-5, atol=1e-4)


def test_bad_input_and_options_are_named():
    frontend = KaldiFbankFrontend(fs="16k")
    audio, _ = padded_batch([16000, 399])
    with pytest.raises(ValueError, match=r"utterance\(s\) \[1\] of the batch have \[399\] samples"):
        frontend(audio, torch.tensor([16000, 399]))
    with pytest.raises(ValueError, match="mono audio"):
        frontend(torch.zeros(1, 16000, 2), torch.tensor([16000]))
    with pytest.raises(ValueError, match="window_type must be one of"):
        KaldiFbankFrontend(window_type="blackman")
    with pytest.raises(TypeError, match="dither"):
        KaldiFbankFrontend(dither=1.0)


@pytest.mark.parametrize("chunk", [1, 399, 1000, 9137])
def test_a_kaldi_fbank_model_streams_its_offline_features(chunk):
    frontend = KaldiFbankFrontend(fs=16000, num_mel_bins=40)
    stream = StreamingFeatures(frontend, None, torch.float32)
    assert stream.takes_audio and stream.sample_rate == 16000 and stream.frame_shift == 0.01
    audio, lengths = padded_batch([9137])
    samples = audio[0]
    pieces = [stream(samples[i : i + chunk], is_final=i + chunk >= samples.numel())
              for i in range(0, samples.numel(), chunk)]
    offline, _ = frontend(audio, lengths)
    torch.testing.assert_close(torch.cat(pieces, dim=1)[0], offline[0], rtol=1e-5, atol=1e-4)
