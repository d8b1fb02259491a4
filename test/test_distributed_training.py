"""Samba-ASR (Mamba encoder + Mamba decoder) trained by ESPnet's DDP in 2 CPU processes (gloo, one thread each)
equals, after the same updates, the model one process trains on the same global batches.

Both ways ESPnet 202511 runs CPU processes are checked (espnet2/train/distributed_utils.py, tasks/abs_task.py):
- on one machine, one process per rank started by an outside launcher (`torchrun`, which sets RANK, WORLD_SIZE,
  MASTER_ADDR and MASTER_PORT) with `--multiprocessing_distributed false --dist_backend gloo`: ESPnet's case
  "multiprocess with external launcher". espnet2.bin.launch's own local mode spawns one process per GPU
  (`--ngpu N`, each with ngpu=1), so without GPUs it stops (NCCL: "no GPUs found"; with gloo: "Found no NVIDIA
  driver"): it has no CPU processes.
- on Slurm, `espnet2.bin.launch --cmd slurm.pl --num_nodes 2 --ngpu 0`: one srun task per node (ESPnet requires
  SLURM_NTASKS == nodes), `--dist_launcher slurm`, gloo, shared-file initialisation; on the test cluster's two nodes.

The oracle holds only where nothing differs between one process and two but the split of each batch:
- no dropout: the decoder's positional_dropout_rate (default 0.1) draws one mask per process, from the same seed;
- utterances of one length: ESPnet's STFT frontend makes an utterance's last two frames depend on the batch's
  padding, and the bidirectional encoder carries that into every frame;
- SGD: the all-reduce sums gradients in another order (differences of 1e-7), which Adam's m / sqrt(v) turns into
  whole steps of size lr for parameters whose gradient is near zero (0.7e-3 after 4 updates at lr 1e-3).
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import torch

from test_decoder_training import TOKENS, WORDS, corpus_args, write_tiny_corpus

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CI_CONFIG = REPO / "egs2" / "espeak_en" / "asr1" / "conf" / "tuning" / "train_asr_samba_ci.yaml"
SLURM_PL = REPO / "egs2" / "TEMPLATE" / "asr1" / "utils" / "slurm.pl"
VENV_BIN = Path(sys.executable).parent
NUM_TRAIN = 8
BATCH_SIZE = 4
MAX_EPOCH = 2  # 2 updates per epoch
TOLERANCE = 1e-4


def training_args(corpus: Path, output_dir: str) -> List[str]:
    """asr_train's options: the demo recipe's CI model, deterministic, SGD, batches of 4 (2 per process)."""
    return [
        "--config", str(CI_CONFIG), "--token_type", "char", "--token_list", str(corpus / "tokens.txt"),
        *corpus_args(corpus),
        "--decoder_conf", "positional_dropout_rate=0.0", "--optim", "sgd", "--optim_conf", "lr=0.5",
        "--batch_type", "sorted", "--batch_size", str(BATCH_SIZE), "--max_epoch", str(MAX_EPOCH),
        "--num_workers", "0", "--use_amp", "false", "--use_matplotlib", "false", "--output_dir", output_dir,
    ]


def environment() -> Dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}


def run(command: List[str], cwd: Path, env: Dict[str, str]) -> str:
    """Run command and return its output, failing with the output's tail when it exits non-zero."""
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command[:4])} failed:\n{output[-5000:]}"
    return output


def final_model(exp: Path) -> Dict[str, torch.Tensor]:
    return torch.load(exp / f"{MAX_EPOCH}epoch.pth", map_location="cpu")


def max_difference(a: Dict[str, torch.Tensor], b: Dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[name] - b[name]).abs().max()) for name in a)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ddp_corpus")
    rng = np.random.default_rng(0)
    sentences = {f"utt{i}": " ".join(rng.choice(WORDS, size=2)) for i in range(NUM_TRAIN + 2)}
    items = list(sentences.items())
    write_tiny_corpus(root / "train", dict(items[:NUM_TRAIN]), rng, num_samples=9600)
    write_tiny_corpus(root / "valid", dict(items[NUM_TRAIN:]), rng, num_samples=9600)
    (root / "tokens.txt").write_text("\n".join(TOKENS) + "\n")
    return root


@pytest.fixture(scope="module")
def one_process_model(corpus) -> Dict[str, torch.Tensor]:
    """The oracle: one process, whole batches."""
    run([sys.executable, "-m", "espnet2.bin.asr_train", *training_args(corpus, "exp_1proc"), "--ngpu", "0"],
        corpus, environment())
    model = final_model(corpus / "exp_1proc")
    first_epoch = torch.load(corpus / "exp_1proc" / "1epoch.pth", map_location="cpu")
    assert max_difference(model, first_epoch) > 100 * TOLERANCE, "the oracle's updates must move the model"
    return model


def test_torchrun_two_cpu_processes_equal_one_process(corpus, one_process_model):
    output = run(
        [str(VENV_BIN / "torchrun"), "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
         "--master_port", str(free_port()), "-m", "espnet2.bin.asr_train", *training_args(corpus, "exp_torchrun"),
         "--ngpu", "0", "--multiprocessing_distributed", "false", "--dist_backend", "gloo"],
        corpus, environment(),
    )
    assert re.search(r"\[\S+:0/2\]", output), "rank 0 of a world of 2 must log"
    assert max_difference(final_model(corpus / "exp_torchrun"), one_process_model) < TOLERANCE


def test_launch_srun_one_task_per_node_equals_one_process(corpus, one_process_model, slurm_cluster):
    log = "exp_srun/train.log"
    run(
        [sys.executable, "-m", "espnet2.bin.launch", "--cmd", f"{SLURM_PL} --name {log}", "--log", log,
         "--ngpu", "0", "--num_nodes", "2", "--init_file_prefix", "exp_srun/.dist_init_",
         "--multiprocessing_distributed", "true", "--",
         "python3", "-m", "espnet2.bin.asr_train", *training_args(corpus, "exp_srun")],
        corpus, {**environment(), **slurm_cluster},
    )
    train_log = (corpus / log).read_text()
    assert "srun --export=ALL" in train_log and "--dist_launcher slurm" in train_log
    assert re.search(r"\[\S+:0/2\]", train_log), "rank 0 of a world of 2 must log"
    assert max_difference(final_model(corpus / "exp_srun"), one_process_model) < TOLERANCE
