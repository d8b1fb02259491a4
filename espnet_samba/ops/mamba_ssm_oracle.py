"""mamba-ssm's and causal-conv1d's pure-PyTorch reference code, importable without their CUDA build and without
HuggingFace transformers: the oracle of the tests and a baseline of the benchmarks.

Both packages import their compiled extension (`selective_scan_cuda`, `causal_conv1d_cuda`) at module top level,
before the reference functions, and mamba-ssm's package `__init__` imports its language-model head and generation
code, which import transformers. tools/install.sh installs the two packages without their CUDA build on machines
without a GPU, and without transformers: ESPnet imports transformers at every start where it is installed (its
optional HuggingFace modules), about 3 s of every ESPnet process (bench/bench_startup.py). `enter_reference_packages`
makes the reference modules importable anyway: an empty stand-in module for each extension that does not import,
and the `mamba_ssm` package entered without running its `__init__`. Nothing from the stand-ins is ever called by
the reference code; where the real extensions import (a CUDA build), they are used unchanged.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import List

COMPILED_EXTENSIONS = ("selective_scan_cuda", "causal_conv1d_cuda")
REFERENCE_PACKAGES = ("mamba_ssm", "causal_conv1d")


def _is_importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def enter_reference_packages() -> List[str]:
    """Registers in `sys.modules` what the reference modules need to import on this machine.

    Returns:
        The compiled extensions that did not import and now have stand-ins (empty when the CUDA build is there).

    Raises:
        ImportError: mamba-ssm or causal-conv1d is not installed (tools/install.sh installs them).
    """
    stand_ins = [name for name in COMPILED_EXTENSIONS if not _is_importable(name)]
    for name in stand_ins:
        sys.modules[name] = types.ModuleType(name)
    if "mamba_ssm" not in sys.modules:
        spec = importlib.util.find_spec("mamba_ssm")
        if spec is None:
            raise ImportError("mamba-ssm is not installed: tools/install.sh installs it (SAMBA_KERNELS=source)")
        # The package object with its search path, without running its __init__: submodules import as usual.
        sys.modules["mamba_ssm"] = importlib.util.module_from_spec(spec)
    return stand_ins


def leave_reference_packages(modules_before: set, stand_ins: List[str]) -> None:
    """Removes the stand-ins and every mamba_ssm / causal_conv1d module imported since `modules_before` (a set of
    `sys.modules` names), so that nothing imported later sees a half-entered package."""
    for name in set(sys.modules) - modules_before:
        if name in stand_ins or name.split(".")[0] in REFERENCE_PACKAGES:
            del sys.modules[name]
