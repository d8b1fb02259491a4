"""Scaling out on CPU: DDP training throughput of the demo model, and what a Slurm job costs against run.pl.

1. Training throughput of the espeak_en demo's Samba-ASR (egs2/espeak_en/asr1/conf/train_asr_samba.yaml, its 40
   mel bins at a 10 ms hop from ESPnet's own frontend instead of the recipe's precomputed fbank), in utterances per
   second through ESPnet's unmodified `asr_train`, in one run on one machine:
   1 process x 1 thread, 1 process x 2 threads (the recipe's --train_num_threads 2), and 2 DDP processes x 1 thread
   (torchrun, gloo, --multiprocessing_distributed false; the way ESPnet runs CPU processes on one machine, see
   test/test_distributed_training.py); and, as the ceiling for the DDP figure, two independent 1-thread
   trainings side by side (no communication; their throughputs added). `--utterances` synthetic utterances of
   `--seconds` seconds (2.2 s is the demo corpus's typical one), `--batch_size` 16 as the recipe (8 per DDP
   process), `--epochs` epochs; the throughput is the utterances of an epoch over its training time (ESPnet's
   reporter, checkpoint.pth), the best epoch after the first, and of `--repeats` rounds (each round runs the four
   in turn, so that a slow spell of this shared machine does not fall on one of them alone).
2. Overhead per job: `--jobs` one-task jobs (`true`) one after another through utils/slurm.pl against the local
   Slurm cluster (tools/slurm_cluster.sh; started here if it is not running, and stopped again), and through
   utils/run.pl; the difference per job is what a recipe pays for each job it submits to Slurm, with the
   controller's default scheduling (SchedulerParameters unset) and slurm.pl's default polling.

Prints the figures and their ratios. Run it on a quiet machine.

Usage: tools/venv/bin/python bench/bench_scale_out.py [--utterances 128] [--seconds 2.2] [--batch_size 16]
           [--epochs 3] [--repeats 2] [--jobs 10] [--skip_training]
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "test"))
from test_decoder_training import corpus_args, write_tiny_corpus  # noqa: E402 (the tests' corpus helpers)

DEMO_CONFIG = REPO / "egs2" / "espeak_en" / "asr1" / "conf" / "train_asr_samba.yaml"
UTILS = REPO / "egs2" / "TEMPLATE" / "asr1" / "utils"
SLURM_CLUSTER = REPO / "tools" / "slurm_cluster.sh"
VENV_BIN = Path(sys.executable).parent
SAMPLE_RATE = 16000
LETTERS = "abcdefghijklmnopqrstuvwxyz"
TOKENS = ["<blank>", "<unk>", "<space>", *LETTERS, "<sos/eos>"]


def write_corpus(directory: Path, utterances: int, seconds: float, rng: np.random.Generator) -> None:
    """`utterances` noisy tones of `seconds` with random 4-word texts (the tests' tiny-corpus writer)."""
    texts = {f"utt{index:04d}": " ".join("".join(rng.choice(list(LETTERS), size=5)) for _ in range(4))
             for index in range(utterances)}
    write_tiny_corpus(directory, texts, rng, num_samples=int(seconds * SAMPLE_RATE))


def training_args(corpus: Path, output_dir: Path, epochs: int, batch_size: int) -> List[str]:
    return [
        "--config", str(DEMO_CONFIG), "--token_type", "char", "--token_list", str(corpus / "tokens.txt"),
        *corpus_args(corpus),
        "--frontend_conf", "n_mels=40", "--frontend_conf", "n_fft=400", "--frontend_conf", "hop_length=160",
        "--batch_type", "sorted", "--batch_size", str(batch_size), "--max_epoch", str(epochs),
        "--keep_nbest_models", "1", "--use_matplotlib", "false", "--output_dir", str(output_dir),
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def utterances_per_second(commands: List[List[str]], threads: int, output_dirs: List[Path], utterances: int) -> float:
    """Run trainings side by side; return the sum of their best epoch's (after the first) utterances per second of
    training time."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
                 for command in commands]
    for command, process in zip(commands, processes):
        output, _ = process.communicate()
        if process.returncode != 0:
            sys.exit(f"training failed: {' '.join(command[:6])}\n{output[-3000:]}")
    total = 0.0
    for output_dir in output_dirs:
        reporter = torch.load(output_dir / "checkpoint.pth", map_location="cpu", weights_only=False)["reporter"]
        epoch_times = [stats["train"]["time"].total_seconds() for _, stats in sorted(reporter["stats"].items())][1:]
        total += utterances / min(epoch_times)
    return total


def bench_training(args: argparse.Namespace, work: Path) -> None:
    rng = np.random.default_rng(0)
    corpus = work / "corpus"
    write_corpus(corpus / "train", args.utterances, args.seconds, rng)
    write_corpus(corpus / "valid", 4, args.seconds, rng)
    (corpus / "tokens.txt").write_text("\n".join(TOKENS) + "\n")
    train = ["-m", "espnet2.bin.asr_train"]
    # name: (launcher, threads per process, asr_train options, trainings side by side)
    runs = {
        "1 process x 1 thread": ([sys.executable, *train], 1, ["--ngpu", "0"], 1),
        "1 process x 2 threads": ([sys.executable, *train], 2, ["--ngpu", "0"], 1),
        "2 DDP processes x 1 thread": (
            [str(VENV_BIN / "torchrun"), "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
             "--master_port", str(free_port()), *train], 1,
            ["--ngpu", "0", "--multiprocessing_distributed", "false", "--dist_backend", "gloo"], 1),
        "2 independent trainings x 1": ([sys.executable, *train], 1, ["--ngpu", "0"], 2),
    }
    print(f"Training throughput, demo Samba-ASR, {args.utterances} utterances of {args.seconds} s, "
          f"batch {args.batch_size}, best of epochs 2-{args.epochs} and of {args.repeats} rounds:")
    figures = {name: 0.0 for name in runs}
    for round_index in range(args.repeats):
        for index, (name, (launcher, threads, extra, side_by_side)) in enumerate(runs.items()):
            output_dirs = [work / f"exp{round_index}_{index}_{copy}" for copy in range(side_by_side)]
            commands = [[*launcher, *training_args(corpus, output_dir, args.epochs, args.batch_size), *extra]
                        for output_dir in output_dirs]
            figures[name] = max(figures[name], utterances_per_second(commands, threads, output_dirs, args.utterances))
    baseline = figures["1 process x 1 thread"]
    for name, value in figures.items():
        print(f"  {name:28s} {value:7.2f} utt/s   {value / baseline:5.2f}x")
    ddp = figures["2 DDP processes x 1 thread"]
    print(f"  2 DDP processes / 1 process x 2 threads: {ddp / figures['1 process x 2 threads']:.2f}x")
    print(f"  2 DDP processes / 2 independent trainings: {ddp / figures['2 independent trainings x 1']:.2f}x")


def seconds_for_jobs(runner: Path, jobs: int, work: Path, env: Dict[str, str]) -> float:
    start = time.perf_counter()
    for job in range(jobs):
        subprocess.run([str(runner), str(work / f"{runner.name}.{job}.log"), "true"], check=True, cwd=work, env=env,
                       capture_output=True)
    return (time.perf_counter() - start) / jobs


def bench_job_overhead(args: argparse.Namespace, work: Path) -> None:
    if shutil.which("sbatch") is None:
        sys.exit("sbatch not found: install slurm-wlm and munge (tools/install.sh does, as root)")
    started = subprocess.run(["bash", str(SLURM_CLUSTER), "status"], capture_output=True).returncode != 0
    if started and subprocess.run(["bash", str(SLURM_CLUSTER), "start"]).returncode != 0:
        sys.exit("tools/slurm_cluster.sh start failed")
    try:
        status = subprocess.run(["bash", str(SLURM_CLUSTER), "status"], capture_output=True, text=True).stdout
        slurm_conf = next(line.split("=", 1)[1] for line in status.splitlines() if line.startswith("SLURM_CONF="))
        env = {**os.environ, "SLURM_CONF": slurm_conf}
        run_pl = seconds_for_jobs(UTILS / "run.pl", args.jobs, work, env)
        slurm_pl = seconds_for_jobs(UTILS / "slurm.pl", args.jobs, work, env)
    finally:
        if started:
            subprocess.run(["bash", str(SLURM_CLUSTER), "stop"], capture_output=True)
    print(f"Per job ({args.jobs} one-task jobs running `true`, one after another):")
    print(f"  run.pl   {run_pl:6.3f} s")
    print(f"  slurm.pl {slurm_pl:6.3f} s   {slurm_pl / run_pl:5.1f}x; overhead {slurm_pl - run_pl:.2f} s per job")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utterances", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=2.2)
    parser.add_argument("--batch_size", type=int, default=16, help="global: split between the DDP processes")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--skip_training", action="store_true", help="only the per-job overhead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_scale_out_") as work:
        if not args.skip_training:
            bench_training(args, Path(work))
        bench_job_overhead(args, Path(work))


if __name__ == "__main__":
    main()
