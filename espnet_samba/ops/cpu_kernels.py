"""The fused CPU kernels of `espnet_samba/ops/csrc`: built once for this machine's CPU, loaded lazily, optional.

The kernels are a C++ extension compiled with torch's own `cpp_extension` (ninja and a C++ compiler, the
toolchain every ESPnet installation already has) for the local CPU (`-march=native`), the first time an op
needs them, or ahead of time by `tools/install.sh` (`python -m espnet_samba.bin.build_cpu_kernels`). The build goes to
a per-machine cache directory keyed by the sources, the compiler flags, torch's version and the CPU's features,
so an upgrade or another CPU never loads a stale library; concurrent first uses wait on torch's build lock.

When the build fails, or `SAMBA_CPU_KERNELS=off`, one warning says why and the ops run their pure-PyTorch path.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import os
import platform
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

SOURCE_DIR = Path(__file__).resolve().parent / "csrc"
SOURCES = ("selective_scan.cpp", "causal_conv.cpp", "mixer_step.cpp", "ctc_prefix.cpp")
HEADERS = ("cache_lines.h", "decode_step.h", "tensor_checks.h", "vector_math.h")
# -fno-tree-loop-distribute-patterns: keep short copy loops (a decoding step's conv window) inline instead of
# turning them into memmove calls.
COMPILE_FLAGS = (
    "-O3", "-march=native", "-ffp-contract=fast", "-fno-tree-loop-distribute-patterns", "-fopenmp", "-std=c++17",
)
# -fopenmp at link time records libgomp.so.1, which resolves to the one torch already loaded (same soname), so the
# kernels' parallel regions share torch's thread pool and honour torch.set_num_threads.
LINK_FLAGS = ("-fopenmp",)
SWITCH = "SAMBA_CPU_KERNELS"
CACHE_VARIABLE = "SAMBA_KERNEL_CACHE"


@dataclass(frozen=True)
class CpuKernels:
    """The loaded ops (`torch.ops.espnet_samba`), or `None` with the reason they are unavailable."""

    ops: Optional[Any] = None
    library_path: Optional[str] = None
    unavailable_reason: Optional[str] = None

    @property
    def available(self) -> bool:
        return self.unavailable_reason is None


def _cpu_features() -> str:
    """The CPU's model and feature flags (Linux), or the platform's processor name elsewhere."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    wanted = ("model name", "flags", "Features")
    return "\n".join(sorted({line for line in lines if line.split(":")[0].strip() in wanted}))


def build_key() -> str:
    """What a built library depends on: sources, flags, torch, Python and the CPU, as a short hash."""
    digest = hashlib.sha1()
    for name in SOURCES + HEADERS:
        digest.update((SOURCE_DIR / name).read_bytes())
    for part in (*COMPILE_FLAGS, *LINK_FLAGS, torch.__version__, sys.version, _cpu_features()):
        digest.update(part.encode())
    return digest.hexdigest()[:12]


def build_directory() -> Path:
    """`$SAMBA_KERNEL_CACHE` or `~/.cache/espnet_samba/cpu_kernels`, one subdirectory per `build_key`."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    root = os.environ.get(CACHE_VARIABLE) or os.path.join(cache_home, "espnet_samba", "cpu_kernels")
    return Path(root) / build_key()


def _build_and_load(verbose: bool) -> CpuKernels:
    directory = build_directory()
    name = f"espnet_samba_cpu_{build_key()}"
    library_path = directory / f"{name}.so"
    # Built before (the key covers sources and flags) and no build in progress (torch's build lock): load it
    # directly, without cpp_extension's import-time CUDA probing and its up-to-date check.
    if not (library_path.exists() and not (directory / "lock").exists()):
        directory.mkdir(parents=True, exist_ok=True)
        build_logger = logging.getLogger("torch.utils.cpp_extension")
        level = build_logger.level
        build_logger.setLevel(logging.DEBUG if verbose else logging.ERROR)  # its "no CUDA runtime" notice
        try:
            from torch.utils.cpp_extension import load

            load(
                name=name, sources=[str(SOURCE_DIR / source) for source in SOURCES],
                extra_cflags=list(COMPILE_FLAGS), extra_ldflags=list(LINK_FLAGS), build_directory=str(directory),
                is_python_module=False, verbose=verbose,
            )
        finally:
            build_logger.setLevel(level)
    else:
        torch.ops.load_library(str(library_path))
    return CpuKernels(ops=torch.ops.espnet_samba, library_path=str(library_path))


def _failure_summary(error: BaseException) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return "; ".join((errors or lines)[-3:]) or type(error).__name__


@functools.lru_cache(maxsize=1)
def load_cpu_kernels(verbose: bool = False) -> CpuKernels:
    """Build (first time on this machine) and load the kernels once per process; never raises.

    On failure a single warning names the reason and the fallback; the result is cached, so it is not retried.
    """
    if os.environ.get(SWITCH, "auto").lower() in ("off", "0", "false", "no"):
        return CpuKernels(unavailable_reason=f"disabled by {SWITCH}={os.environ[SWITCH]}")
    try:
        return _build_and_load(verbose)
    except Exception as error:  # noqa: BLE001 - any build or load failure means: use the fallback, say why
        reason = (
            f"building them in {build_directory()} failed ({_failure_summary(error)}); needs a C++17 compiler "
            f"(g++ or clang++) and ninja (pip install ninja)"
        )
        warnings.warn(
            f"espnet-samba: the fused CPU kernels are unavailable: {reason}. The pure-PyTorch selective scan "
            f"runs instead (same results, slower). Set {SWITCH}=off to silence this.",
            RuntimeWarning,
            stacklevel=2,
        )
        return CpuKernels(unavailable_reason=reason)


def use_cpu_kernels(tensor: torch.Tensor) -> bool:
    """True when `tensor` is a CPU tensor and the fused kernels load."""
    return tensor.device.type == "cpu" and load_cpu_kernels().available

