"""Time and peak memory of one Mamba mixer layer on CPU: espnet-samba's ops against mambapy and mamba-ssm.

Compared, with equal weights (d_state 16, expand 2, d_conv 4):
- espnet-samba: `espnet_samba.modules.MambaMixer` on the fused CPU kernels of `espnet_samba/ops/csrc`;
- pytorch-fallback: the same mixer with the kernels off (`SAMBA_CPU_KERNELS=off`): the chunked PyTorch scan;
- mambapy-pscan: mambapy 1.2.0's `MambaBlock` with its parallel scan (`pscan`);
- mamba-ssm-ref: `mamba_ssm.modules.mamba_simple.Mamba` on its reference path (`selective_scan_ref`, no kernels);
- gemm-floor: only the mixer's four projections (in, x, dt, out), the work no scan implementation can avoid.

Cases: forward+backward at batch 4, d_model 256, for T = 250, 1000, 4000; at batch 64, d_model 512, T = 500 (a
realistic training batch, where the fallback's chunk length falls to K = 1); forward-only inference
(`torch.inference_mode`) at batch 1, T = 8000. Times are the median of `--repeats` runs after `WARMUP_RUNS`
warm-up runs; a run that takes more than `SLOW_RUN_S` is measured once (no repeats), and the reference is skipped
where one run would exceed ~70 s.

Peak memory: every (implementation, case) runs in a fresh subprocess. After building the layer and its inputs it
resets the kernel's peak-RSS counter (`echo 5 > /proc/self/clear_refs`, Linux >= 4.0) and reads the current RSS;
after the runs it reads the peak (VmHWM in /proc/self/status). The table shows peak minus that baseline: the
memory the forward/backward needed beyond weights and inputs, whoever allocated it (PyTorch's CPU allocator, MKL,
oneDNN). tracemalloc would miss these allocations, and a process-wide ru_maxrss would include start-up peaks and
earlier cases. Where /proc/self/clear_refs cannot be written, ru_maxrss is used instead and the table says so.

Also printed: the per-token `step` latency at batch 10 (a decoder beam: the median step of each process, then the
median and range over `--processes` processes; `--step-only` prints just this), and the thread scaling of
espnet-samba's B=4 T=1000 training step (1 thread against `--threads`).

Processes: the same point differs by up to 2x from one fresh process to the next on this project's (virtual)
machine, while the runs within a process agree to a few percent, so `--processes N` measures every point in N
processes, taking turns with the other points, and reports medians over all their runs. The machine also has
slow spells of a second or more in which every run, ours and the floor's alike, takes up to 2x longer; the last
column's ratio of the fastest runs is the one such spells do not move.

Allocator: the bimodal per-process times were page faults of glibc's mmap'd buffers (bench/allocator.py). Each
measuring process, ours and the baselines' alike, starts with allocator.KEEP_FREED_BUFFERS in its environment;
`--glibc-default-malloc` measures without.

Threads: measure on an otherwise idle machine with the default thread count. On a shared machine (more busy
processes than cores) pass `--threads 1`: there every multi-threaded op waits for its preempted sibling thread.

Usage: tools/venv/bin/python bench/bench_mixer.py [--repeats 3] [--threads 2] [--processes 1]
       [--implementations espnet-samba gemm-floor ...] [--step-only]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import types
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import torch

from allocator import GLIBC_DEFAULTS_FLAG, KEEP_FREED_BUFFERS, describe
from process_memory import PeakRssProbe
from espnet_samba.ops.mamba_ssm_oracle import enter_reference_packages

D_MODEL = 256
SLOW_RUN_S = 20.0
WARMUP_RUNS = 3  # a fresh process's first 2-4 runs of a point are up to 1.5x slower than its later ones
IMPLEMENTATIONS = ("espnet-samba", "pytorch-fallback", "mambapy-pscan", "mamba-ssm-ref", "gemm-floor")
OURS = ("espnet-samba", "pytorch-fallback", "gemm-floor")


@dataclass(frozen=True)
class Case:
    mode: str  # "train" (forward + backward) or "infer" (forward under inference_mode)
    batch: int
    length: int
    d_model: int = D_MODEL

    @property
    def label(self) -> str:
        what = "fwd+bwd" if self.mode == "train" else "infer  "
        size = "" if self.d_model == D_MODEL else f" D={self.d_model}"
        return f"{what} B={self.batch} T={self.length}{size}"


TRAIN_1000 = Case("train", 4, 1000)
LARGE_BATCH = Case("train", 64, 500, 512)
CASES = (Case("train", 4, 250), TRAIN_1000, Case("train", 4, 4000), LARGE_BATCH, Case("infer", 1, 8000))
SKIPPED = {
    ("mamba-ssm-ref", Case("train", 4, 4000)): "skipped: > 70 s (67 s at T=1000, superlinear in T)",
    ("mamba-ssm-ref", LARGE_BATCH): "skipped: > 70 s (32x the B=4 T=1000 work, which takes 67 s)",
}


def import_mamba_ssm_reference_module() -> types.ModuleType:
    """`mamba_ssm.modules.mamba_simple`, patched to run its reference path on CPU.

    Imported without mamba-ssm's CUDA build and without transformers (`enter_reference_packages`). The module's
    kernel entry points are then replaced by the reference functions (selective scan) or None (convolution and
    state update: Mamba then uses its own PyTorch code for them).
    """
    enter_reference_packages()
    from mamba_ssm.modules import mamba_simple
    from mamba_ssm.ops.selective_scan_interface import selective_scan_ref

    mamba_simple.selective_scan_fn = selective_scan_ref
    mamba_simple.causal_conv1d_fn = None
    mamba_simple.causal_conv1d_update = None
    mamba_simple.selective_state_update = None
    return mamba_simple


def build_layer(implementation: str, d_model: int = D_MODEL) -> torch.nn.Module:
    """One mixer of `implementation`, all holding the weights of `MambaMixer(d_model)` under seed 0.

    "pytorch-fallback" is our mixer; its process runs with SAMBA_CPU_KERNELS=off (see `measure_in_subprocess`).
    """
    from espnet_samba.modules.mamba_mixer import MambaMixer

    torch.manual_seed(0)
    ours = MambaMixer(d_model)
    if implementation in OURS:
        return ours
    if implementation == "mambapy-pscan":
        from mambapy.mamba import MambaBlock, MambaConfig

        layer = MambaBlock(MambaConfig(d_model=d_model, n_layers=1, d_state=16, expand_factor=2, d_conv=4, pscan=True))
    elif implementation == "mamba-ssm-ref":
        layer = import_mamba_ssm_reference_module().Mamba(d_model, use_fast_path=False)
    else:
        raise ValueError(f"unknown implementation {implementation!r}; choose from {IMPLEMENTATIONS}")
    layer.load_state_dict(ours.state_dict())
    return layer


def projections_only(mixer: torch.nn.Module, hidden_states: torch.Tensor) -> torch.Tensor:
    """The four GEMMs of `MambaMixer.forward` on the same shapes, without conv or scan. hidden_states: (B, L, D).

    z + Δ stands in for the gated scan output that `out_proj` reads: one addition (whose backward is free) ties
    every projection into the output, so the backward runs all of their gradient GEMMs too.
    """
    x, z = mixer.in_proj(hidden_states).chunk(2, dim=-1)
    dt, _ = torch.split(mixer.x_proj(x), [mixer.dt_rank, 2 * mixer.d_state], dim=-1)
    delta = torch.nn.functional.linear(dt, mixer.dt_proj.weight)
    return mixer.out_proj(z + delta)


def measure_in_this_process(implementation: str, case: Case, repeats: int) -> Dict:
    """Run one case (warm-up + repeats) and return times (s) and peak memory above the set-up state (MiB)."""
    layer = build_layer(implementation, case.d_model)
    run_layer: Callable[[torch.Tensor], torch.Tensor] = (
        (lambda x: projections_only(layer, x)) if implementation == "gemm-floor" else layer
    )
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randn(case.batch, case.length, case.d_model, generator=generator)
    grad_out = torch.randn(case.batch, case.length, case.d_model, generator=generator)
    if case.mode == "train":
        inputs.requires_grad_(True)

    def run_once() -> float:
        start = time.perf_counter()
        if case.mode == "train":
            layer.zero_grad(set_to_none=True)
            inputs.grad = None
            run_layer(inputs).backward(grad_out)
        else:
            with torch.inference_mode():
                run_layer(inputs)
        return time.perf_counter() - start

    memory = PeakRssProbe()
    first = run_once()
    if first > SLOW_RUN_S:
        times = [first]
    else:
        for _ in range(WARMUP_RUNS - 1):
            run_once()
        times = [run_once() for _ in range(repeats)]
    return {"times": times, "peak_mib": memory.peak_mib(), "exact_peak": memory.exact}


MEMORY_LIMIT_GIB = 16
"""Address-space limit of each measuring process: a case that needs more fails with an error in the table (pscan
at batch 64 would otherwise take the 24 GiB machine into its OOM killer)."""


def _limit_address_space() -> None:
    limit = MEMORY_LIMIT_GIB << 30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def measure_in_subprocess(
    implementation: str, case: Case, repeats: int, threads: int, allocator: Dict[str, str]
) -> Dict:
    command = [sys.executable, os.path.abspath(__file__), "--child", implementation, case.mode,
               str(case.batch), str(case.length), str(case.d_model), "--repeats", str(repeats),
               "--threads", str(threads)]
    environment = {**os.environ, **allocator,
                   "SAMBA_CPU_KERNELS": "off" if implementation == "pytorch-fallback" else "auto"}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=environment,
                          preexec_fn=_limit_address_space)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def merge_processes(earlier: Optional[Dict], result: Dict) -> Dict:
    """One point measured in one more process: its runs join the earlier ones' (the median is over all of
    them) and its peak memory is the largest seen; an error replaces everything."""
    if earlier is None or "error" in result:
        return result
    return {"times": earlier["times"] + result["times"], "peak_mib": max(earlier["peak_mib"], result["peak_mib"]),
            "exact_peak": earlier["exact_peak"] and result["exact_peak"]}


STEP_IMPLEMENTATIONS = ("espnet-samba", "pytorch-fallback", "mambapy-pscan", "mamba-ssm-ref")


def step_latency_us(implementation: str, batch: int = 10, steps: int = 200) -> float:
    """Median latency of one decoding step of one layer at `batch` sequences, in microseconds."""
    layer = build_layer(implementation)
    generator = torch.Generator().manual_seed(2)
    frames = torch.randn(steps, batch, D_MODEL, generator=generator)
    latencies: List[float] = []
    with torch.inference_mode():
        if implementation in ("espnet-samba", "pytorch-fallback"):
            state = layer.allocate_inference_cache(batch)
            advance = lambda frame: layer.step(frame, state)  # noqa: E731
        elif implementation == "mambapy-pscan":
            cache = [None, torch.zeros(batch, layer.config.d_inner, layer.config.d_conv - 1)]

            def advance(frame: torch.Tensor) -> torch.Tensor:
                out, (cache[0], cache[1]) = layer.step(frame, tuple(cache))
                return out
        else:
            conv_state = torch.zeros(batch, layer.d_inner, layer.d_conv)
            ssm_state = torch.zeros(batch, layer.d_inner, layer.d_state)
            advance = lambda frame: layer.step(frame[:, None], conv_state, ssm_state)[0]  # noqa: E731
        if implementation == "mambapy-pscan":
            cache[0] = torch.zeros(batch, layer.config.d_inner, layer.config.d_state)
        for frame in frames:
            start = time.perf_counter()
            advance(frame)
            latencies.append(time.perf_counter() - start)
    return statistics.median(latencies[10:]) * 1e6


def step_latency_in_subprocess(implementation: str, threads: int) -> Optional[float]:
    command = [sys.executable, os.path.abspath(__file__), "--step-child", implementation, "--threads", str(threads)]
    environment = {**os.environ, "SAMBA_CPU_KERNELS": "off" if implementation == "pytorch-fallback" else "auto"}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=environment)
    return float(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None


def _format_time(result: Optional[Dict]) -> str:
    if result is None or "skipped" in result:
        return "skipped"
    if "error" in result:
        return "error"
    median = statistics.median(result["times"])
    runs = len(result["times"])
    return f"{median:8.3f} s" + ("" if runs > 1 else " (1 run)")


def _median(result: Optional[Dict]) -> Optional[float]:
    if result is None or "times" not in result:
        return None
    return statistics.median(result["times"])


def _best(result: Optional[Dict]) -> Optional[float]:
    """The fastest run: on a machine whose slow spells hit some runs and not others, the run least disturbed."""
    if result is None or "times" not in result:
        return None
    return min(result["times"])


def _ratio(numerator: Optional[float], denominator: Optional[float]) -> str:
    if numerator is None or denominator is None or denominator <= 0:
        return "    -"
    return f"{numerator / denominator:6.2f}x"


def print_report(
    results: Dict[Tuple[str, Case], Dict], steps: Dict[str, List[Optional[float]]], single_thread: Optional[Dict],
    implementations: List[str],
) -> None:
    print(f"\nOne Mamba mixer layer, d_model {D_MODEL} unless D= says (d_inner 2 x d_model, d_state 16), CPU, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    print("\nTime (median):")
    header = f"{'case':<28}" + "".join(f"{name:>18}" for name in implementations)
    print(header)
    for case in CASES:
        cells = []
        for name in implementations:
            result = results.get((name, case))
            cells.append(SKIPPED.get((name, case), "").split(":")[0] or _format_time(result))
        print(f"{case.label:<28}" + "".join(f"{cell:>18}" for cell in cells))
    print("\nPeak memory above weights and inputs (MiB):")
    print(header)
    exact = True
    for case in CASES:
        cells = []
        for name in implementations:
            result = results.get((name, case))
            if result is None or "peak_mib" not in result:
                cells.append("skipped" if (name, case) in SKIPPED else "error")
            else:
                exact = exact and result["exact_peak"]
                cells.append(f"{result['peak_mib']:.0f}")
        print(f"{case.label:<28}" + "".join(f"{cell:>18}" for cell in cells))
    if not exact:
        print("(/proc/self/clear_refs not writable: peaks are ru_maxrss differences, an upper bound)")
    for (name, case), reason in SKIPPED.items():
        print(f"{name} {case.label}: {reason}")
    for (name, case), result in results.items():
        if "error" in result:
            print(f"{name} {case.label}: error: {result['error']}")

    print("\nRatios (time ratio > 1: espnet-samba is faster; memory ratio > 1: espnet-samba needs less):")
    print(f"{'case':<28}{'vs fallback':>12}{'vs pscan':>10}{'vs ref':>9}{'mem vs pscan':>14}{'mem vs ref':>12}"
          f"{'time / gemm floor':>19}{'best / best':>13}")
    for case in CASES:
        ours, fallback, pscan, ref, floor = (
            results.get((name, case), {}) for name in ("espnet-samba", "pytorch-fallback", "mambapy-pscan",
                                                        "mamba-ssm-ref", "gemm-floor")
        )
        print(f"{case.label:<28}{_ratio(_median(fallback), _median(ours)):>12}"
              f"{_ratio(_median(pscan), _median(ours)):>10}{_ratio(_median(ref), _median(ours)):>9}"
              f"{_ratio(pscan.get('peak_mib'), ours.get('peak_mib')):>14}"
              f"{_ratio(ref.get('peak_mib'), ours.get('peak_mib')):>12}"
              f"{_ratio(_median(ours), _median(floor)):>19}{_ratio(_best(ours), _best(floor)):>13}")
    t1000 = _median(results.get(("espnet-samba", TRAIN_1000)))
    t4000 = _median(results.get(("espnet-samba", Case("train", 4, 4000))))
    print(f"\nLinearity: espnet-samba fwd+bwd T=4000 / T=1000 = {_ratio(t4000, t1000).strip()} (4x is linear)")
    if single_thread is not None:
        print(f"Threads: espnet-samba fwd+bwd B=4 T=1000, 1 thread / {torch.get_num_threads()} threads = "
              f"{_ratio(_median(single_thread), t1000).strip()}")

    print_step_report(steps)


def print_step_report(steps: Dict[str, List[Optional[float]]]) -> None:
    """steps: implementation -> the median step latency (us) of each process (None where it failed)."""
    print("\nDecoding step, batch 10, one layer (median step of each process; median [range] over processes):")
    medians: Dict[str, float] = {}
    for name, latencies in steps.items():
        measured = [latency for latency in latencies if latency is not None]
        if not measured:
            print(f"  {name:<18}   error")
            continue
        medians[name] = statistics.median(measured)
        print(f"  {name:<18}{medians[name]:8.0f} us  [{min(measured):.0f}-{max(measured):.0f}]")
    if "espnet-samba" in medians and "mamba-ssm-ref" in medians:
        print(f"  espnet-samba / mamba-ssm-ref = {medians['espnet-samba'] / medians['mamba-ssm-ref']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per case after the warm-up")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    parser.add_argument("--processes", type=int, default=1,
                        help="measure every point in this many fresh processes, in turns; medians over all runs")
    parser.add_argument("--implementations", nargs="+", choices=IMPLEMENTATIONS, default=list(IMPLEMENTATIONS),
                        help="only these columns (e.g. espnet-samba gemm-floor for the ratio to the floor)")
    parser.add_argument("--child", nargs=5, metavar=("IMPL", "MODE", "BATCH", "LENGTH", "D_MODEL"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--step-child", metavar="IMPL", help=argparse.SUPPRESS)
    parser.add_argument("--step-only", action="store_true", help="only the decoding-step latencies")
    parser.add_argument(GLIBC_DEFAULTS_FLAG, action="store_true",
                        help="measure with glibc's default malloc settings instead of KEEP_FREED_BUFFERS")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        implementation, mode, batch, length, d_model = args.child
        case = Case(mode, int(batch), int(length), int(d_model))
        print(json.dumps(measure_in_this_process(implementation, case, args.repeats)))
        return
    if args.step_child:
        print(step_latency_us(args.step_child))
        return
    implementations = [name for name in IMPLEMENTATIONS if name in args.implementations]
    if args.step_only:
        print_step_report(measure_steps(implementations, args.processes, args.threads))
        return
    allocator = {} if args.glibc_default_malloc else KEEP_FREED_BUFFERS
    print(f"malloc: {describe(allocator)}")
    points = [(name, case) for case in CASES for name in implementations if (name, case) not in SKIPPED]
    results: Dict[Tuple[str, Case], Dict] = {}
    single_thread: Optional[Dict] = None
    total = len(points) * args.processes
    done = 0
    for round_index in range(args.processes):
        for name, case in points:
            earlier = results.get((name, case))
            if earlier is not None and ("error" in earlier or len(earlier["times"]) == 1):
                total -= 1  # a failed or single slow run is not repeated in another process
                continue
            results[(name, case)] = merge_processes(earlier, measure_in_subprocess(name, case, args.repeats,
                                                                                   args.threads, allocator))
            done += 1
            print(f"[{done}/{total}] {case.label:<28}{name:<18}{_format_time(results[(name, case)])}"
                  f"{f' (process {round_index + 1} of {args.processes})' if args.processes > 1 else ''}",
                  file=sys.stderr, flush=True)
        if args.threads > 1 and "espnet-samba" in implementations:
            single_thread = merge_processes(single_thread, measure_in_subprocess("espnet-samba", TRAIN_1000,
                                                                                 args.repeats, 1, allocator))
    steps = measure_steps(implementations, args.processes, args.threads)
    print_report(results, steps, single_thread, implementations)


def measure_steps(implementations: List[str], processes: int, threads: int) -> Dict[str, List[Optional[float]]]:
    """The median step latency of each of `processes` fresh processes per implementation, taken in turns."""
    names = [name for name in STEP_IMPLEMENTATIONS if name in implementations]
    steps: Dict[str, List[Optional[float]]] = {name: [] for name in names}
    for round_index in range(processes):
        for name in names:
            steps[name].append(step_latency_in_subprocess(name, threads))
            print(f"[step {round_index + 1}/{processes}] {name:<18}{steps[name][-1]} us", file=sys.stderr, flush=True)
    return steps


if __name__ == "__main__":
    main()
