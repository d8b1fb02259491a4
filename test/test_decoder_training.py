"""`decoder: mamba` through ESPnet's unmodified `python -m espnet2.bin.asr_train` and `asr_inference` (CPU, tiny).

The base is ESPnet's own LibriSpeech-100 Conformer config (test/fixtures) with its Transformer decoder swapped for
the Mamba decoder, once with the Conformer encoder kept and once with the Mamba encoder too (the whole Samba-ASR
model); sizes are shrunk on the command line as a user would.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pytest
import soundfile
import torch
import yaml

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CONFORMER_CONFIG = FIXTURES / "librispeech100_conformer.yaml"
TOKENS = ["<blank>", "<unk>", "<space>", "A", "B", "C", "<sos/eos>"]
WORDS = ["AB", "BA", "CAB", "ABC", "BC"]

TINY_DECODERS = {
    "prefix": {"cross_connection": "prefix", "num_blocks": 2, "d_state": 4, "dropout_rate": 0.1},
    "attention": {
        "cross_connection": "attention", "num_blocks": 1, "d_state": 4, "attention_heads": 2, "linear_units": 32,
        "dropout_rate": 0.1,
    },
}
TINY_ENCODERS = {
    "conformer": [
        "--encoder_conf", "output_size=16", "--encoder_conf", "num_blocks=1", "--encoder_conf", "linear_units=32",
        "--encoder_conf", "attention_heads=2", "--encoder_conf", "cnn_module_kernel=7",
    ],
    "mamba": [],  # set in the config: the Conformer's encoder_conf keys do not apply to it
}
TINY_MAMBA_ENCODER = {"output_size": 16, "num_blocks": 2, "d_state": 4, "input_layer": "conv2d"}


def write_tiny_corpus(
    directory: Path, texts: Dict[str, str], rng: np.random.Generator, num_samples: Optional[int] = None
) -> None:
    """A Kaldi-style data dir of 16 kHz noisy tones (wav.scp, text) and the shape files ESPnet's sampler reads;
    each utterance 8000-12000 samples long, or all `num_samples` long."""
    directory.mkdir(parents=True)
    files: Dict[str, List[str]] = {"wav.scp": [], "text": [], "speech_shape": [], "text_shape": []}
    for utt_id, text in texts.items():
        samples = num_samples or int(rng.integers(8000, 12000))
        tone = np.sin(2 * np.pi * rng.uniform(200, 800) * np.arange(samples) / 16000)
        wav = directory / f"{utt_id}.wav"
        soundfile.write(wav, (0.3 * tone + 0.05 * rng.standard_normal(samples)).astype(np.float32), 16000)
        files["wav.scp"].append(f"{utt_id} {wav}")
        files["text"].append(f"{utt_id} {text}")
        files["speech_shape"].append(f"{utt_id} {samples}")
        files["text_shape"].append(f"{utt_id} {len(text)}")
    for name, lines in files.items():
        (directory / name).write_text("\n".join(lines) + "\n")


def corpus_args(root: Path) -> List[str]:
    """asr_train's data options for the train/ and valid/ dirs that write_tiny_corpus wrote below root."""
    args: List[str] = []
    for split in ("train", "valid"):
        args += [
            f"--{split}_data_path_and_name_and_type", f"{root / split}/wav.scp,speech,sound",
            f"--{split}_data_path_and_name_and_type", f"{root / split}/text,text,text",
            f"--{split}_shape_file", f"{root / split}/speech_shape",
            f"--{split}_shape_file", f"{root / split}/text_shape",
        ]
    return args


def run_espnet(module: str, args: List[str], cwd: Path) -> None:
    """`python -m <module> args` in a fresh interpreter: registration must happen on its own (autoregister)."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, f"{module} failed:\n{result.stderr[-4000:]}"


def swapped_config(tmp_path: Path, encoder: str, cross_connection: str) -> Path:
    config = yaml.safe_load(CONFORMER_CONFIG.read_text())
    config["decoder"], config["decoder_conf"] = "mamba", TINY_DECODERS[cross_connection]
    if encoder == "mamba":
        config["encoder"], config["encoder_conf"] = "mamba", TINY_MAMBA_ENCODER
    path = tmp_path / f"train_asr_{encoder}_mamba_decoder.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def epoch_losses(checkpoint: Path) -> List[float]:
    """The attention-decoder training loss of every epoch, from the trainer's reporter in checkpoint.pth."""
    reporter = torch.load(checkpoint, map_location="cpu", weights_only=False)["reporter"]
    return [float(stats["train"]["loss_att"]) for _, stats in sorted(reporter["stats"].items())]


@pytest.mark.slow
@pytest.mark.parametrize(
    "encoder, cross_connection", [("conformer", "prefix"), ("conformer", "attention"), ("mamba", "prefix")]
)
def test_asr_train_and_inference_with_the_mamba_decoder(tmp_path, encoder, cross_connection):
    rng = np.random.default_rng(0)
    sentences = {f"utt{i}": " ".join(rng.choice(WORDS, size=2)) for i in range(8)}
    write_tiny_corpus(tmp_path / "train", dict(list(sentences.items())[:6]), rng)
    write_tiny_corpus(tmp_path / "valid", dict(list(sentences.items())[6:]), rng)
    (tmp_path / "tokens.txt").write_text("\n".join(TOKENS) + "\n")
    data_args = corpus_args(Path("."))
    cpu_test_settings = [
        *TINY_ENCODERS[encoder], "--frontend_conf", "n_mels=40",
        "--ngpu", "0", "--use_amp", "false", "--num_workers", "0", "--accum_grad", "1",
        "--batch_type", "sorted", "--batch_size", "3", "--max_epoch", "4", "--keep_nbest_models", "1",
        "--scheduler_conf", "warmup_steps=4", "--specaug", "none", "--log_interval", "1", "--use_tensorboard", "false",
    ]
    run_espnet(
        "espnet2.bin.asr_train",
        ["--config", str(swapped_config(tmp_path, encoder, cross_connection)), "--output_dir", "exp",
         "--token_type", "char", "--token_list", "tokens.txt", *data_args, *cpu_test_settings],
        tmp_path,
    )
    trained = yaml.safe_load((tmp_path / "exp" / "config.yaml").read_text())
    assert (trained["encoder"], trained["decoder"]) == (encoder, "mamba")
    assert trained["decoder_conf"]["cross_connection"] == cross_connection
    losses = epoch_losses(tmp_path / "exp" / "checkpoint.pth")
    assert len(losses) == 4 and all(np.isfinite(losses))
    assert losses[-1] < losses[0]

    run_espnet(
        "espnet2.bin.asr_inference",
        ["--ngpu", "0", "--batch_size", "1", "--beam_size", "3", "--ctc_weight", "0.3",
         "--data_path_and_name_and_type", "valid/wav.scp,speech,sound", "--key_file", "valid/wav.scp",
         "--asr_train_config", "exp/config.yaml", "--asr_model_file", "exp/4epoch.pth", "--output_dir", "decode"],
        tmp_path,
    )
    tokens = (tmp_path / "decode" / "1best_recog" / "token").read_text().splitlines()
    assert sorted(line.split(maxsplit=1)[0] for line in tokens) == ["utt6", "utt7"]
