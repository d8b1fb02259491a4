"""Support for the streaming decoding tests (no tests here): a tiny causal Samba-ASR model with random weights,
written as an ESPnet experiment (config.yaml, model.pth, global_mvn statistics) by ESPnet's own training entry point
with --dry_run, and short noise utterances in a wav.scp."""
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile
import torch

from test_asr_config_support import write_asr_config

CHAR_TOKENS = ["<blank>", "<unk>", "<space>", "a", "b", "c", "d", "e", "<sos/eos>"]
CAUSAL_ENCODER = (
    "mamba", "{'output_size': 16, 'num_blocks': 2, 'd_state': 4, 'bidirectional': False, 'dropout_rate': 0.0}"
)
MAMBA_DECODER = ("mamba", "{'num_blocks': 1, 'd_state': 4, 'dropout_rate': 0.0}")
N_MELS = 20
RATE = 16000


def write_mvn_stats(path: Path, seed: int = 0) -> Path:
    """Feature statistics in ESPnet's feats_stats.npz format (count, sum, sum_square), nontrivial mean and std."""
    rng = np.random.RandomState(seed)
    count = 1000
    mean = rng.uniform(-8.0, -2.0, N_MELS)
    std = rng.uniform(0.5, 3.0, N_MELS)
    np.savez(path, count=np.array(count), sum=mean * count, sum_square=(std**2 + mean**2) * count)
    return path


def write_causal_model(root: Path, seed: int = 0, options: Sequence[str] = (), encoder=CAUSAL_ENCODER) -> Path:
    """root/config.yaml and root/model.pth of a random causal model with global_mvn; returns the config."""
    token_list = root / "tokens.txt"
    token_list.write_text("\n".join(CHAR_TOKENS) + "\n")
    stats = write_mvn_stats(root / "feats_stats.npz", seed)
    normalize = ["--normalize", "global_mvn", "--normalize_conf", f"stats_file={stats}"]
    config = write_asr_config(root, token_list, encoder, MAMBA_DECODER, [*normalize, *options])
    from espnet2.tasks.asr import ASRTask

    torch.manual_seed(seed)
    model, _ = ASRTask.build_model_from_file(config, None, "cpu")
    torch.save(model.state_dict(), root / "model.pth")
    return config


def noise(samples: int, seed: int) -> np.ndarray:
    return (np.random.RandomState(seed).randn(samples) * 0.1).astype(np.float32)


def write_wav_scp(root: Path, lengths: Sequence[int]) -> Path:
    """root/wav.scp of 16-bit noise utterances utt0, utt1, ... of the given lengths in samples."""
    lines = []
    for index, length in enumerate(lengths):
        wav = root / f"utt{index}.wav"
        soundfile.write(wav, noise(length, index), RATE, subtype="PCM_16")
        lines.append(f"utt{index} {wav}")
    (root / "wav.scp").write_text("\n".join(lines) + "\n")
    return root / "wav.scp"
