"""The selective scan kernel alone, as one mixer layer calls it at inference: B=1, T=8000, d_inner 512, d_state 16.

Two forms of the same scan, timed in turn in one process:
- state rows only: Δ used as given, no D skip, no gate: the recurrence h = exp(Δ A) h + Δ u B, y = C h;
- as the mixer calls it: Δ + bias through softplus, the D skip and the SiLU gate z, per frame and channel.
The ratio of the two is what the per-frame work around the state rows costs; the state rows themselves are
bound by vector arithmetic (about 13 AVX-512 operations per state row and frame). The mixer's form is also timed
at d_inner 520 and 516, whose (B, L, D) rows start off the 64-byte grid on most frames (32- and 16-byte offsets:
d_model 260 and 258 at expand 2), as its time per channel against d_inner 512's: what reading a channel block
that straddles two cache lines costs (csrc/cache_lines.h). To compare two versions of
the kernels, run this script in alternating processes of their trees (e.g. a `git worktree` of the older one,
with `PYTHONPATH=<worktree>`): the scan's time moves with the machine's speed, the alternation keeps both under
the same conditions.

Inputs are random with the magnitudes of a trained layer (Δ 0.001-0.13 as given, about 0.02 after the mixer
form's softplus(Δ - 4); A = -(n + 1) up to +-20 %), laid out as the mixer passes them: (B, D, L) views of
(B, L, D) tensors. The time does not depend on the values. The process restarts itself
with malloc keeping freed buffers (bench/allocator.py), as the other benchmarks do.

Usage: tools/venv/bin/python bench/bench_scan.py [--threads 1] [--repeats 15]
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable, Dict, List

import torch

from allocator import restart_keeping_freed_buffers
from espnet_samba.ops import selective_scan
from espnet_samba.ops.cpu_kernels import load_cpu_kernels

BATCH, LENGTH, D_INNER, D_STATE = 1, 8000, 512, 16
OFF_GRID_D_INNER = (520, 516)  # rows at 32- and 16-byte offsets from the cache-line grid


def scan_inputs(seed: int = 0, d_inner: int = D_INNER) -> Dict[str, torch.Tensor]:
    """u, Δ, z (B, D, L); B, C (B, N, L); A (D, N); D, delta_bias (D,): views of channels-last tensors."""
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator)

    def channels_last(*shape: int) -> torch.Tensor:
        return (2 * rand(BATCH, LENGTH, shape[0]) - 1).transpose(1, 2)

    rows = torch.arange(1, D_STATE + 1, dtype=torch.float32)
    return {
        "u": channels_last(d_inner),
        "delta": (0.001 + 0.13 * rand(BATCH, LENGTH, d_inner)).transpose(1, 2),
        "A": -(rows[None, :] * (0.8 + 0.4 * rand(d_inner, D_STATE))),
        "B": channels_last(D_STATE),
        "C": channels_last(D_STATE),
        "z": channels_last(d_inner),
        "D": rand(d_inner),
        "delta_bias": torch.full((d_inner,), -4.0),  # softplus(Δ - 4) keeps Δ in the trained range
    }


def forms(inputs: Dict[str, torch.Tensor]) -> Dict[str, Callable[[], torch.Tensor]]:
    rows_only = {name: inputs[name] for name in ("u", "delta", "A", "B", "C")}
    calls = {
        "state rows only": lambda: selective_scan(**rows_only),
        "as the mixer calls it": lambda: selective_scan(**inputs, delta_softplus=True),
    }
    for d_inner in OFF_GRID_D_INNER:
        off_grid = scan_inputs(d_inner=d_inner)
        calls[f"mixer's, d_inner {d_inner}"] = lambda off_grid=off_grid: selective_scan(
            **off_grid, delta_softplus=True
        )
    return calls


def measure(runs: Dict[str, Callable[[], torch.Tensor]], repeats: int) -> Dict[str, List[float]]:
    """Seconds per call of each form, the forms taking turns so that a slow spell hits them alike."""
    times: Dict[str, List[float]] = {name: [] for name in runs}
    with torch.inference_mode():
        for run in runs.values():
            run()
            run()
        for _ in range(repeats):
            for name, run in runs.items():
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1: the kernel's "
                        "own speed, without the second core's availability)")
    parser.add_argument("--repeats", type=int, default=15, help="timed calls of each form")
    args = parser.parse_args()
    malloc = restart_keeping_freed_buffers()
    kernels = load_cpu_kernels()
    if not kernels.available:
        raise SystemExit(f"the fused CPU kernels did not build ({kernels.unavailable_reason}): nothing to time")
    torch.set_num_threads(args.threads)
    times = measure(forms(scan_inputs()), args.repeats)
    print(f"Selective scan B={BATCH} T={LENGTH} d_inner {D_INNER} d_state {D_STATE}, {args.threads} thread(s), "
          f"{args.repeats} calls each, malloc: {malloc}")
    for name, seconds in times.items():
        print(f"  {name:<24} median {statistics.median(seconds) * 1e3:6.2f} ms   best {min(seconds) * 1e3:6.2f} ms")
    rows_only, full = (times[name] for name in ("state rows only", "as the mixer calls it"))
    print(f"  as called / rows only: {statistics.median(full) / statistics.median(rows_only):.2f}x by medians, "
          f"{min(full) / min(rows_only):.2f}x by the fastest calls")
    for d_inner in OFF_GRID_D_INNER:
        off_grid = times[f"mixer's, d_inner {d_inner}"]
        per_channel = D_INNER / d_inner
        print(f"  d_inner {d_inner} / {D_INNER}, time per channel: "
              f"{statistics.median(off_grid) / statistics.median(full) * per_channel:.2f}x by medians, "
              f"{min(off_grid) / min(full) * per_channel:.2f}x by the fastest calls")


if __name__ == "__main__":
    main()
