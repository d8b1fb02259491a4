"""Drop-in for ESPnet configs: swap `encoder: conformer` for a Mamba encoder in ESPnet's LibriSpeech recipes.

The fixtures hold ESPnet's own LibriSpeech-100 and LibriSpeech-960 Conformer configs; conf/ holds the same configs
with the encoder swapped. The end-to-end test trains and decodes through ESPnet's unmodified entry points.
"""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
import yaml

from espnet2.tasks.asr import ASRTask

from test_decoder_training import corpus_args

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CONFORMER_CONFIGS = {
    "librispeech100": FIXTURES / "librispeech100_conformer.yaml",
    "librispeech960": FIXTURES / "librispeech_conformer.yaml",
}
ENCODER_PRESETS = ("samba", "bimamba", "speech_mamba")
BPE_VOCAB = 5000  # both recipes' --nbpe


def build_model(config: Path, token_list: Path):
    """The model a recipe trains from `config`, with parameters on the meta device (sizes only, no memory)."""
    args = ASRTask.get_parser().parse_args(["--config", str(config), "--token_list", str(token_list)])
    with torch.device("meta"):
        return ASRTask.build_model(args)


def million_parameters(module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


@pytest.fixture(scope="module")
def bpe_token_list(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tokens") / "tokens.txt"
    path.write_text("\n".join(["<blank>", "<unk>", *[f"▁t{i}" for i in range(BPE_VOCAB - 3)], "<sos/eos>"]) + "\n")
    return path


@pytest.mark.parametrize("corpus", sorted(CONFORMER_CONFIGS))
@pytest.mark.parametrize("preset", ENCODER_PRESETS)
def test_presets_match_conformer_baseline_size(corpus, preset, bpe_token_list):
    """Each preset's encoder is within 5% of ESPnet's Conformer encoder, so systems compare like for like."""
    preset_config = ROOT / "conf" / f"train_asr_{preset}_encoder_{corpus}.yaml"
    baseline = build_model(CONFORMER_CONFIGS[corpus], bpe_token_list)
    swapped = build_model(preset_config, bpe_token_list)
    print(
        f"{corpus}: conformer encoder {million_parameters(baseline.encoder):.2f}M / system "
        f"{million_parameters(baseline):.2f}M; {preset} encoder {million_parameters(swapped.encoder):.2f}M / "
        f"system {million_parameters(swapped):.2f}M"
    )
    assert type(swapped.encoder).__name__ == ("SpeechMambaEncoder" if preset == "speech_mamba" else "MambaEncoder")
    assert million_parameters(swapped.encoder) == pytest.approx(million_parameters(baseline.encoder), rel=0.05)
    assert million_parameters(swapped) == pytest.approx(million_parameters(baseline), rel=0.05)
    preset_values = yaml.safe_load(preset_config.read_text())
    baseline_values = yaml.safe_load(CONFORMER_CONFIGS[corpus].read_text())
    differing = {key for key in baseline_values if preset_values.get(key) != baseline_values[key]}
    assert differing == {"encoder", "encoder_conf"}


def write_tiny_corpus(directory: Path, texts: dict, rng: np.random.Generator) -> None:
    """A Kaldi-style data dir of 16 kHz noisy tones (wav.scp, text) plus the shape files ESPnet's sampler reads."""
    directory.mkdir(parents=True)
    wav_lines, text_lines, speech_shapes, text_shapes = [], [], [], []
    for utt_id, text in texts.items():
        samples = int(rng.integers(12000, 17000))
        tone = np.sin(2 * np.pi * rng.uniform(200, 800) * np.arange(samples) / 16000)
        audio = 0.3 * tone + 0.05 * rng.standard_normal(samples)
        wav = directory / f"{utt_id}.wav"
        soundfile.write(wav, audio.astype(np.float32), 16000)
        wav_lines.append(f"{utt_id} {wav}")
        text_lines.append(f"{utt_id} {text}")
        speech_shapes.append(f"{utt_id} {samples}")
        text_shapes.append(f"{utt_id} {len(text)}")
    for name, lines in [("wav.scp", wav_lines), ("text", text_lines), ("speech_shape", speech_shapes),
                        ("text_shape", text_shapes)]:
        (directory / name).write_text("\n".join(lines) + "\n")


def run_espnet(module: str, args: list, cwd: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"{module} failed:\n{result.stderr[-4000:]}"


@pytest.mark.slow
def test_conformer_config_trains_and_decodes_with_mamba_encoder(tmp_path):
    """ESPnet's LibriSpeech-100 Conformer config, `encoder: mamba`, through `asr_train` and `asr_inference`."""
    config = yaml.safe_load(CONFORMER_CONFIGS["librispeech100"].read_text())
    preset = yaml.safe_load((ROOT / "conf" / "train_asr_bimamba_encoder_librispeech100.yaml").read_text())
    config["encoder"], config["encoder_conf"] = "mamba", preset["encoder_conf"]
    swapped_config = tmp_path / "train_asr_mamba.yaml"
    swapped_config.write_text(yaml.safe_dump(config))

    rng = np.random.default_rng(0)
    words = ["AB", "BA", "CAB", "ABC", "BC"]
    sentences = {f"utt{i}": " ".join(rng.choice(words, size=2)) for i in range(8)}
    write_tiny_corpus(tmp_path / "train", dict(list(sentences.items())[:6]), rng)
    write_tiny_corpus(tmp_path / "valid", dict(list(sentences.items())[6:]), rng)
    (tmp_path / "tokens.txt").write_text("\n".join(["<blank>", "<unk>", "<space>", "A", "B", "C", "<sos/eos>"]) + "\n")

    data_args = corpus_args(Path("."))
    shrink_to_cpu_test_size = [
        "--encoder_conf", "output_size=16", "--encoder_conf", "num_blocks=2", "--encoder_conf", "linear_units=32",
        "--encoder_conf", "d_state=4",
        "--decoder_conf", "num_blocks=1", "--decoder_conf", "linear_units=32", "--decoder_conf", "attention_heads=2",
        "--frontend_conf", "n_mels=40",
        "--ngpu", "0", "--use_amp", "false", "--num_workers", "0", "--accum_grad", "1",
        "--batch_type", "folded", "--batch_size", "3", "--fold_length", "80000", "--fold_length", "150", "--max_epoch", "2", "--keep_nbest_models", "1",
        "--log_interval", "1", "--use_tensorboard", "false",
    ]
    run_espnet(
        "espnet2.bin.asr_train",
        ["--config", str(swapped_config), "--output_dir", "exp", "--token_type", "char", "--token_list",
         "tokens.txt", *data_args, *shrink_to_cpu_test_size],
        tmp_path,
    )
    trained_config = yaml.safe_load((tmp_path / "exp" / "config.yaml").read_text())
    assert trained_config["encoder"] == "mamba" and trained_config["encoder_conf"]["bidirectional"] is True
    assert (tmp_path / "exp" / "2epoch.pth").exists()

    run_espnet(
        "espnet2.bin.asr_inference",
        ["--ngpu", "0", "--batch_size", "1", "--beam_size", "2", "--ctc_weight", "0.3",
         "--data_path_and_name_and_type", "valid/wav.scp,speech,sound", "--key_file", "valid/wav.scp",
         "--asr_train_config", "exp/config.yaml", "--asr_model_file", "exp/2epoch.pth", "--output_dir", "decode"],
        tmp_path,
    )
    hypotheses = (tmp_path / "decode" / "1best_recog" / "text").read_text().splitlines()
    assert sorted(line.split(maxsplit=1)[0] for line in hypotheses) == ["utt6", "utt7"]
