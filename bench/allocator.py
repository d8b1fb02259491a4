"""glibc malloc settings for benchmarks: keep freed buffers in the heap instead of unmapping them.

glibc serves a buffer above its mmap threshold (128 KiB at start, raised dynamically up to 32 MiB as buffers
are freed) with fresh pages from mmap and unmaps it on free. A process whose threshold stayed low then faults in
every page of every large buffer on every step, and on this project's VM that costs more than the kernels: the
same B=1 T=8000 matrix products took 45-51 ms in some fresh processes and 67-71 ms in others; the demo's
Samba-ASR training step 140-160 ms in a process with glibc's defaults and 94-109 ms with these settings
(bench_demo_step.py, 4 December). KEEP_FREED_BUFFERS raises the threshold to its maximum and never trims the heap
below 4 GiB, as jemalloc or tcmalloc (PyTorch's CPU performance guide recommends them) keep memory for reuse;
the recipes export the same in egs2/TEMPLATE/asr1/path.sh.
"""
from __future__ import annotations

import os
import sys
from typing import Dict

KEEP_FREED_BUFFERS: Dict[str, str] = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(4 << 30)}
GLIBC_DEFAULTS_FLAG = "--glibc-default-malloc"


def describe(settings: Dict[str, str]) -> str:
    """'NAME=value ...', or 'glibc defaults' for none."""
    return " ".join(f"{name}={value}" for name, value in settings.items()) or "glibc defaults"


def restart_keeping_freed_buffers() -> str:
    """Re-execute this script with KEEP_FREED_BUFFERS in its environment (glibc reads them only at start-up),
    unless they are set already or the command line has GLIBC_DEFAULTS_FLAG. Returns what the process runs with."""
    if GLIBC_DEFAULTS_FLAG in sys.argv:
        return describe({name: os.environ[name] for name in KEEP_FREED_BUFFERS if name in os.environ})
    if all(os.environ.get(name) == value for name, value in KEEP_FREED_BUFFERS.items()):
        return describe(KEEP_FREED_BUFFERS)
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **KEEP_FREED_BUFFERS})
    raise AssertionError("os.execve returned")  # unreachable: execve replaces the process or raises OSError
