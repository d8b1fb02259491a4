"""Support for the template tests: a throw-away ESPnet-style recipe around egs2/TEMPLATE/asr1 (no tests here).

The recipe lives in <root>/egs2/test/asr1 with the symlinks and copies a real recipe has; <root>/tools/venv
points at the project's venv so that path.sh activates it as it would in the repository.
"""
import math
import os
import shutil
import subprocess
import wave
from pathlib import Path
from typing import Dict, List

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = REPO_ROOT / "egs2" / "TEMPLATE" / "asr1"
VENV = REPO_ROOT / "tools" / "venv"
LINKED = ("asr.sh", "path.sh", "db.sh", "utils", "scripts", "pyscripts")

TINY_TRANSFORMER = """\
encoder: transformer
encoder_conf:
    output_size: 16
    attention_heads: 2
    linear_units: 32
    num_blocks: 1
    dropout_rate: 0.0
    input_layer: conv2d
decoder: transformer
decoder_conf:
    attention_heads: 2
    linear_units: 32
    num_blocks: 1
    dropout_rate: 0.0
"""
# A causal Mamba encoder and a Mamba decoder: the model --use_streaming decodes.
TINY_CAUSAL_SAMBA = """\
encoder: mamba
encoder_conf:
    output_size: 16
    num_blocks: 1
    d_state: 4
    bidirectional: false
    dropout_rate: 0.0
    input_layer: conv2d
decoder: mamba
decoder_conf:
    num_blocks: 1
    d_state: 4
    dropout_rate: 0.0
"""
TINY_ASR_TRAINING = """\
model_conf:
    ctc_weight: 0.3
    lsm_weight: 0.1
frontend_conf:
    n_fft: 400
    hop_length: 160
max_epoch: 1
batch_type: folded
batch_size: 4
num_workers: 0
optim: adam
optim_conf:
    lr: 0.002
best_model_criterion:
-   - valid
    - acc
    - max
keep_nbest_models: 1
use_tensorboard: false
"""
TINY_ASR_CONFIG = TINY_TRANSFORMER + TINY_ASR_TRAINING
TINY_CAUSAL_ASR_CONFIG = TINY_CAUSAL_SAMBA + TINY_ASR_TRAINING
TINY_LM_CONFIG = """\
lm: seq_rnn
lm_conf:
    unit: 16
    nlayers: 1
max_epoch: 1
batch_type: folded
batch_size: 4
num_workers: 0
optim: adam
best_model_criterion:
-   - valid
    - loss
    - min
keep_nbest_models: 1
use_tensorboard: false
"""
DECODE_CONFIG = """\
beam_size: 2
ctc_weight: 0.3
lm_weight: 0.1
maxlenratio: 0.0
minlenratio: 0.0
"""
SENTENCES = (
    "the cat sat", "a dog ran", "red sun rises", "cold wind blows", "blue sea waves", "the bird sang",
    "green trees grow", "a fish swam", "small stones fall", "the moon shines", "big ships sail", "rain falls down",
)


def make_recipe(root: Path) -> Path:
    """Create <root>/egs2/test/asr1 (linked to the template) and <root>/tools/venv; return the recipe dir."""
    recipe = root / "egs2" / "test" / "asr1"
    (recipe / "conf").mkdir(parents=True)
    (recipe / "local").mkdir()
    (root / "tools").mkdir()
    (root / "tools" / "venv").symlink_to(VENV)
    for name in LINKED:
        (recipe / name).symlink_to(Path("../../TEMPLATE/asr1") / name)
    (root / "egs2" / "TEMPLATE").mkdir()
    (root / "egs2" / "TEMPLATE" / "asr1").symlink_to(TEMPLATE)
    shutil.copy(TEMPLATE / "cmd.sh", recipe / "cmd.sh")
    shutil.copy(TEMPLATE / "conf" / "slurm.conf", recipe / "conf" / "slurm.conf")
    (recipe / "conf" / "train_asr.yaml").write_text(TINY_ASR_CONFIG)
    (recipe / "conf" / "train_asr_causal.yaml").write_text(TINY_CAUSAL_ASR_CONFIG)
    (recipe / "conf" / "train_lm.yaml").write_text(TINY_LM_CONFIG)
    (recipe / "conf" / "decode_asr.yaml").write_text(DECODE_CONFIG)
    return recipe


def write_tone(path: Path, text: str, rate: int, seed: int) -> None:
    """A 16-bit mono wav whose pitch sequence depends on the text (one 0.12 s tone per character) plus noise."""
    rng = np.random.default_rng(seed)
    pieces = []
    for character in text:
        t = np.arange(int(0.12 * rate)) / rate
        frequency = 200.0 + 40.0 * (ord(character) % 32)
        pieces.append(0.3 * np.sin(2 * math.pi * frequency * t))
    samples = np.concatenate(pieces) + 0.01 * rng.standard_normal(sum(len(p) for p in pieces))
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def write_data_dir(data_dir: Path, audio_dir: Path, utterances: Dict[str, str], rate: int = 22050) -> None:
    """Write a Kaldi data dir (wav.scp, text, utt2spk, spk2utt) with generated audio; ids are '<spk>-<n>'."""
    data_dir.mkdir(parents=True, exist_ok=True)
    audio_dir.mkdir(parents=True, exist_ok=True)
    ids = sorted(utterances)
    for index, utt in enumerate(ids):
        write_tone(audio_dir / f"{utt}.wav", utterances[utt], rate, seed=index)
    (data_dir / "wav.scp").write_text("".join(f"{u} {(audio_dir / u).with_suffix('.wav')}\n" for u in ids))
    (data_dir / "text").write_text("".join(f"{u} {utterances[u]}\n" for u in ids))
    (data_dir / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in ids))
    speakers: Dict[str, List[str]] = {}
    for u in ids:
        speakers.setdefault(u.split("-")[0], []).append(u)
    (data_dir / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(speakers.items())))


def corpus(speaker: str, count: int, offset: int = 0) -> Dict[str, str]:
    return {f"{speaker}-{n:03d}": SENTENCES[(n + offset) % len(SENTENCES)] for n in range(count)}


def write_local_data_sh(recipe: Path) -> None:
    """local/data.sh: generates data/{train,dev,test} with python (tones named by their text)."""
    script = recipe / "local" / "data.sh"
    script.write_text(
        "#!/usr/bin/env bash\nset -euo pipefail\n"
        f"PYTHONPATH={REPO_ROOT / 'test'} python3 -c 'import test_template_support as t; t.prepare_corpus()'\n"
    )
    script.chmod(0o755)


def prepare_corpus() -> None:
    """Called by local/data.sh in the recipe directory."""
    downloads = Path("downloads")
    write_data_dir(Path("data/train"), downloads / "train", {**corpus("spka", 12), **corpus("spkb", 12, 3)})
    write_data_dir(Path("data/dev"), downloads / "dev", corpus("spkc", 4, 5))
    write_data_dir(Path("data/test"), downloads / "test", corpus("spkd", 4, 7))


def run_asr(recipe: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ./asr.sh with the tiny configs in the recipe and return the completed process (output captured)."""
    command = [
        "./asr.sh", "--ngpu", "0", "--nj", "2", "--inference_nj", "2", "--token_type", "char",
        "--train_set", "train", "--valid_set", "dev", "--test_sets", "test",
        "--asr_config", "conf/train_asr.yaml", "--inference_config", "conf/decode_asr.yaml",
        "--lm_config", "conf/train_lm.yaml", *args,
    ]
    env = {key: value for key, value in os.environ.items() if not key.startswith("VIRTUAL_ENV")}
    env["PROGRESS_INTERVAL"] = "2"
    return subprocess.run(command, cwd=recipe, capture_output=True, text=True, timeout=timeout, env=env)
