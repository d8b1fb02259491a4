"""Encoder inference time and peak memory on CPU against audio length: ESPnet's Conformer against Mamba encoders.

Encoders (all conv2d front end, 80-dim fbank input, 100 frames/s; random features, since the cost of an encoder
does not depend on the values):
- conformer: ESPnet's `ConformerEncoder` as in the LibriSpeech-100 recipe (12 blocks, 256-dim, 4 heads, 1024 units,
  latest rel-pos attention, macaron, convolution kernel 31): the baseline;
- bimamba: `MambaEncoder`, 10 bidirectional blocks with macaron feed-forwards (conf/train_asr_bimamba_encoder_*);
- samba: `MambaEncoder`, 42 causal blocks, no feed-forward (the Samba-ASR form, conf/train_asr_samba_encoder_*);
- samba_c128: the same with a 128-channel front end (encoder_conf `subsampling_channels: 128`, as icefall's
  Zipformer and bench/bench_streaming_rtf.py) and the parameters it frees as 44 blocks: the conv2d front end's
  second convolution costs channels^2 per output frame, at 256 channels about a third of a 10 s forward pass;
- speech_mamba: `SpeechMambaEncoder`, 2 chunked-attention + 12 bidirectional Mamba layers
  (conf/train_asr_speech_mamba_encoder_*).
Each Mamba encoder has the Conformer's parameter count within 10% (checked and printed).

Each (encoder, length) point runs in a fresh subprocess at batch 1 under `torch.inference_mode`: build the encoder,
run a 1 s warm-up (and, up to 40 s, one untimed pass of the measured input: a fresh process's first passes are
the slowest), then time the forward pass (median of `--repeats` runs when one run is shorter than 10 s, else one
run); with `--processes N` every point is measured in N processes in turns, and the median of their medians is
reported (on this project's virtual machine, one fresh process can run the same point up to 1.5x slower than
the next); the process CPU time (all threads) of the same runs is printed beside it, a check on wall times taken
on a loaded machine. Peak memory: after the warm-up the child resets the kernel's peak-RSS counter (`echo 5 >
/proc/self/clear_refs`) and reads its current RSS; after the timed runs it reads the peak (VmHWM). The table shows
peak minus that baseline, the memory the forward pass needed beyond weights and inputs, whoever allocated it
(PyTorch, MKL, oneDNN). Where clear_refs cannot be written, the child's ru_maxrss (a peak since start-up, warm-up
included) minus its RSS after the warm-up is used instead, and the output says so.

Threads: `--threads 1` gives stable numbers on a shared machine. With several threads, a run whose threads are
descheduled by other processes waits at every parallel region, and the Mamba layers (many small ops per chunk of
the scan) suffer far more from that than the Conformer's large matrix products, so a loaded machine then
reports mostly noise.

Targets checked at the end, for every Mamba encoder: linear scaling (time at 320 s <= 40 x time at 10 s), >= 1.3x
faster than the Conformer at the shortest length (10 s) and >= 10x at the longest (320 s), and less peak memory
than the Conformer at 320 s.

Usage: tools/venv/bin/python bench/bench_encoder.py [--seconds 10 40 160 320] [--encoders conformer bimamba ...]
       [--repeats 3] [--processes 1] [--threads 1] [--plot bench/encoder_scaling.png]
Needs ~18 GiB of free memory: the Conformer's attention at 320 s.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

import torch

from process_memory import PeakRssProbe

FEATURE_SIZE = 80
FRAMES_PER_SECOND = 100
LONG_RUN_S = 10.0
WARM_UP_ON_INPUT_S = 40.0  # up to this length, one untimed pass of the measured input first
BASELINE = "conformer"


def build_conformer() -> torch.nn.Module:
    from espnet2.asr.encoder.conformer_encoder import ConformerEncoder

    return ConformerEncoder(
        FEATURE_SIZE, output_size=256, attention_heads=4, linear_units=1024, num_blocks=12, input_layer="conv2d",
        macaron_style=True, rel_pos_type="latest", pos_enc_layer_type="rel_pos",
        selfattention_layer_type="rel_selfattn", activation_type="swish", use_cnn_module=True, cnn_module_kernel=31,
    )


def build_bimamba() -> torch.nn.Module:
    from espnet_samba.asr.encoder.mamba_encoder import MambaEncoder

    return MambaEncoder(
        FEATURE_SIZE, output_size=256, num_blocks=10, bidirectional=True, ffn_type="macaron", linear_units=1024
    )


def build_samba() -> torch.nn.Module:
    from espnet_samba.asr.encoder.mamba_encoder import MambaEncoder

    return MambaEncoder(FEATURE_SIZE, output_size=256, num_blocks=42, bidirectional=False)


def build_samba_c128() -> torch.nn.Module:
    from espnet_samba.asr.encoder.mamba_encoder import MambaEncoder

    return MambaEncoder(FEATURE_SIZE, output_size=256, num_blocks=44, bidirectional=False, subsampling_channels=128)


def build_speech_mamba() -> torch.nn.Module:
    from espnet_samba.asr.encoder.speech_mamba_encoder import SpeechMambaEncoder

    return SpeechMambaEncoder(
        FEATURE_SIZE, output_size=256, num_blocks=14, num_attention_blocks=2, attention_heads=4, linear_units=1024,
        attention_chunk_size=64, bidirectional=True, ffn_type="linear",
    )


ENCODERS: Dict[str, Callable[[], torch.nn.Module]] = {
    "conformer": build_conformer,
    "bimamba": build_bimamba,
    "samba": build_samba,
    "samba_c128": build_samba_c128,
    "speech_mamba": build_speech_mamba,
}


def measure_point(name: str, seconds: float, repeats: int) -> dict:
    """Child process: time and peak memory of one encoder's forward pass on `seconds` of audio."""
    torch.manual_seed(0)
    encoder = ENCODERS[name]().eval()
    frames = int(seconds * FRAMES_PER_SECOND)
    features = torch.randn(1, frames, FEATURE_SIZE)
    lengths = torch.tensor([frames])
    with torch.inference_mode():
        encoder(torch.randn(1, FRAMES_PER_SECOND, FEATURE_SIZE), torch.tensor([FRAMES_PER_SECOND]))
        if seconds <= WARM_UP_ON_INPUT_S:
            encoder(features, lengths)
        memory = PeakRssProbe()
        times: List[float] = []
        cpu_times: List[float] = []
        while len(times) < repeats:
            start, cpu_start = time.perf_counter(), time.process_time()
            encoder(features, lengths)
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
            if times[-1] > LONG_RUN_S:
                break
    return {
        "encoder": name,
        "seconds": seconds,
        "time_s": statistics.median(times),
        "cpu_s": statistics.median(cpu_times),
        "peak_mib": memory.peak_mib(),
        "exact_peak": memory.exact,
        "params_m": sum(p.numel() for p in encoder.parameters()) / 1e6,
        "threads": torch.get_num_threads(),
    }


def run_point(name: str, seconds: float, repeats: int, threads: int) -> dict:
    command = [sys.executable, __file__, "--child", name, str(seconds), "--repeats", str(repeats)]
    if threads:
        command += ["--threads", str(threads)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{name} at {seconds} s failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def median_point(points: List[dict]) -> dict:
    """One point measured in several processes: the median of their times, the largest peak memory."""
    merged = dict(points[0])
    merged["time_s"] = statistics.median(point["time_s"] for point in points)
    merged["cpu_s"] = statistics.median(point["cpu_s"] for point in points)
    merged["peak_mib"] = max(point["peak_mib"] for point in points)
    merged["exact_peak"] = all(point["exact_peak"] for point in points)
    return merged


def print_table(results: Dict[str, Dict[float, dict]], seconds: List[float]) -> None:
    names = list(results)
    baseline = results[BASELINE]
    print("\nparameters: " + ", ".join(f"{n} {results[n][seconds[0]]['params_m']:.2f}M" for n in names))
    header = f"{'audio':>7} | " + " | ".join(f"{n:>22}" for n in names)
    for key, title in [("time_s", "wall time"), ("cpu_s", "process CPU time")]:
        print(f"\n{title} (s) [conformer / encoder]\n" + header)
        for s in seconds:
            cells = [f"{results[n][s][key]:9.3f} [{baseline[s][key] / results[n][s][key]:6.2f}x]" for n in names]
            print(f"{s:>6g}s | " + " | ".join(f"{c:>22}" for c in cells))
    print("\npeak memory above weights (MiB) [conformer / encoder]\n" + header)
    for s in seconds:
        cells = [
            f"{results[n][s]['peak_mib']:9.1f} [{baseline[s]['peak_mib'] / max(results[n][s]['peak_mib'], 1e-3):6.2f}x]"
            for n in names
        ]
        print(f"{s:>6g}s | " + " | ".join(f"{c:>22}" for c in cells))
    first, last = seconds[0], seconds[-1]
    print(f"\ntime({last:g} s) / time({first:g} s), {last / first:g}x the audio: " + ", ".join(
        f"{n} {results[n][last]['time_s'] / results[n][first]['time_s']:.1f}x" for n in names
    ))


def check_targets(results: Dict[str, Dict[float, dict]], seconds: List[float]) -> bool:
    """Print whether each Mamba encoder meets the targets; True when all do."""
    first, last = seconds[0], seconds[-1]
    baseline = results[BASELINE]
    all_met = True
    print()
    for name, points in results.items():
        if name == BASELINE:
            continue
        checks = {
            f"params within 10% of conformer ({points[first]['params_m']:.2f}M vs {baseline[first]['params_m']:.2f}M)":
                abs(points[first]["params_m"] / baseline[first]["params_m"] - 1) <= 0.10,
            f"time({last:g} s) <= 40 x time({first:g} s)": points[last]["time_s"] <= 40 * points[first]["time_s"],
            f">= 1.3x faster than conformer at {first:g} s": baseline[first]["time_s"] >= 1.3 * points[first]["time_s"],
            f">= 10x faster than conformer at {last:g} s": baseline[last]["time_s"] >= 10 * points[last]["time_s"],
            f"less peak memory than conformer at {last:g} s": points[last]["peak_mib"] < baseline[last]["peak_mib"],
        }
        for description, met in checks.items():
            print(f"{name:>13}: {'PASS' if met else 'FAIL'}  {description}")
            all_met &= met
    return all_met


def plot(results: Dict[str, Dict[float, dict]], seconds: List[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (time_axis, memory_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, points in results.items():
        style = "s--" if name == BASELINE else "o-"
        time_axis.plot(seconds, [points[s]["time_s"] for s in seconds], style, label=name)
        memory_axis.plot(seconds, [points[s]["peak_mib"] for s in seconds], style, label=name)
    for axis, label in [(time_axis, "inference time (s)"), (memory_axis, "peak memory above weights (MiB)")]:
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("audio length (s), batch 1")
        axis.set_ylabel(label)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    threads = next(iter(results[BASELINE].values()))["threads"]
    figure.suptitle(f"Encoder inference on CPU ({threads} threads): ESPnet Conformer vs Mamba encoders, ~21M params")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    print(f"\nplot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, nargs="+", default=[10, 40, 160, 320])
    parser.add_argument("--encoders", nargs="+", choices=list(ENCODERS), default=list(ENCODERS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--processes", type=int, default=1,
                        help="measure every point in this many fresh processes, in turns; per-process medians' median")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per run; 0 = torch's default")
    parser.add_argument("--plot", type=Path, default=Path(__file__).resolve().parent / "encoder_scaling.png")
    parser.add_argument("--child", nargs=2, metavar=("ENCODER", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(measure_point(args.child[0], float(args.child[1]), args.repeats)))
        return

    names = [BASELINE] + [n for n in args.encoders if n != BASELINE]
    seconds = sorted(args.seconds)
    runs: Dict[str, Dict[float, List[dict]]] = {n: {s: [] for s in seconds} for n in names}
    for round_index in range(args.processes):
        for s in seconds:
            for name in names:
                if runs[name][s] and runs[name][s][0]["time_s"] > LONG_RUN_S:
                    continue  # one run of a long point is enough
                point = run_point(name, s, args.repeats, args.threads)
                runs[name][s].append(point)
                print(
                    f"{name:>13} {s:6g} s: {point['time_s']:8.3f} s wall, {point['cpu_s']:8.3f} s CPU, "
                    f"{point['peak_mib']:8.1f} MiB, load {os.getloadavg()[0]:.1f}"
                    f"{f' (process {round_index + 1} of {args.processes})' if args.processes > 1 else ''}",
                    flush=True,
                )
    results = {name: {s: median_point(points) for s, points in by_length.items()} for name, by_length in runs.items()}
    if not all(p["exact_peak"] for points in results.values() for p in points.values()):
        print("note: /proc/self/clear_refs not writable; peaks are ru_maxrss minus RSS after warm-up")
    print_table(results, seconds)
    met = check_targets(results, seconds)
    plot(results, seconds, args.plot)
    print(f"\nhost: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
