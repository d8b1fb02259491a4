"""Shared fixtures: access to mamba-ssm's and causal-conv1d's pure-PyTorch reference functions on any machine, the
CPU op backends, and a real local Slurm cluster."""
from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Dict, Iterator

import pytest

from espnet_samba.ops.mamba_ssm_oracle import enter_reference_packages, leave_reference_packages


@pytest.fixture(scope="session")
def mamba_reference() -> Iterator[types.SimpleNamespace]:
    """mamba-ssm's and causal-conv1d's reference functions and `Mamba` module, importable without their CUDA build
    and without transformers (`espnet_samba.ops.mamba_ssm_oracle`).

    `Mamba` is only called after its kernel entry points are replaced (see `mamba_reference_path` in
    test_mamba_mixer.py). At the end of the session the stand-ins, and every mamba_ssm / causal_conv1d module
    imported through them, are removed from `sys.modules` again, so nothing outside these tests sees a half-entered
    mamba-ssm.

    Yields:
        A namespace with selective_scan_ref, mamba_inner_ref, selective_state_update_ref, causal_conv1d_ref,
        causal_conv1d_update_ref, and the modules selective_scan_interface and mamba_simple.
    """
    modules_before = set(sys.modules)
    stand_ins = enter_reference_packages()
    try:
        from causal_conv1d.causal_conv1d_interface import causal_conv1d_ref, causal_conv1d_update_ref
        from mamba_ssm.modules import mamba_simple
        from mamba_ssm.ops import selective_scan_interface
        from mamba_ssm.ops.triton.selective_state_update import selective_state_update_ref

        yield types.SimpleNamespace(
            selective_scan_ref=selective_scan_interface.selective_scan_ref,
            mamba_inner_ref=selective_scan_interface.mamba_inner_ref,
            selective_state_update_ref=selective_state_update_ref,
            causal_conv1d_ref=causal_conv1d_ref,
            causal_conv1d_update_ref=causal_conv1d_update_ref,
            selective_scan_interface=selective_scan_interface,
            mamba_simple=mamba_simple,
        )
    finally:
        leave_reference_packages(modules_before, stand_ins)


CPU_BACKENDS = ("fused-cpu-kernels", "pytorch-fallback")


@pytest.fixture(params=CPU_BACKENDS)
def cpu_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test once on the fused CPU kernels and once on the pure-PyTorch fallback, against the same oracle.

    The fused kernels must build wherever the suite runs (CI has a C++ compiler): a failed build fails the test
    with the build's reason instead of skipping it. The fallback is selected by turning the kernels off where the
    ops dispatch, as a machine without a compiler would.
    """
    from espnet_samba.ops.cpu_kernels import load_cpu_kernels

    if request.param == "fused-cpu-kernels":
        kernels = load_cpu_kernels()
        if not kernels.available:
            pytest.fail(f"the fused CPU kernels did not build: {kernels.unavailable_reason}")
    else:
        for module in ("espnet_samba.ops.selective_scan", "espnet_samba.ops.causal_conv", "espnet_samba.ops.ctc_prefix",
                       "espnet_samba.ops.mixer_step"):
            monkeypatch.setattr(importlib.import_module(module), "use_cpu_kernels", lambda tensor: False)
    return request.param


SLURM_CLUSTER_SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "slurm_cluster.sh"
SLURM_CLUSTER_NODES = "2"


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Dict[str, str]]:
    """A real Slurm cluster on this machine (tools/slurm_cluster.sh) for the tests that submit jobs: two nodes, so
    that multi-node jobs run too. Started on first use and stopped at the end of the session, unless it was already
    running (then it is used as it is and left running).

    Without Slurm's packages the tests fail in CI (CI=true, which .ci/run sets) and are skipped elsewhere, saying so.

    Yields:
        The environment for Slurm's commands and slurm.pl: SLURM_CONF, and slurm.pl's queue check every second
        (so that a cancelled job is noticed at once).
    """
    missing = [tool for tool in ("munged", "slurmctld", "slurmd", "sbatch") if shutil.which(tool) is None]
    if missing:
        message = (f"Slurm is not installed ({', '.join(missing)} missing): "
                   "tools/install.sh installs slurm-wlm and munge as root")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    env = {**os.environ, "SLURM_CLUSTER_NODES": SLURM_CLUSTER_NODES}
    status = subprocess.run(["bash", str(SLURM_CLUSTER_SCRIPT), "status"], capture_output=True, text=True, env=env)
    was_running = status.returncode == 0
    if was_running:
        nodes = [line for line in status.stdout.splitlines() if line.startswith("node ")]
        if len(nodes) != int(SLURM_CLUSTER_NODES):
            pytest.fail(f"a Slurm cluster of {len(nodes)} node(s) is running; the tests need {SLURM_CLUSTER_NODES}: "
                        f"stop it (tools/slurm_cluster.sh stop) and run them again")
    else:
        started = subprocess.run(["bash", str(SLURM_CLUSTER_SCRIPT), "start"], capture_output=True, text=True, env=env)
        if started.returncode != 0:
            pytest.fail(f"tools/slurm_cluster.sh start failed:\n{started.stderr}")
        status = subprocess.run(["bash", str(SLURM_CLUSTER_SCRIPT), "status"], capture_output=True, text=True, env=env)
    slurm_conf = next(line.split("=", 1)[1] for line in status.stdout.splitlines() if line.startswith("SLURM_CONF="))
    try:
        yield {"SLURM_CONF": slurm_conf, "SLURM_PL_QUEUE_CHECK": "1"}
    finally:
        if not was_running:
            subprocess.run(["bash", str(SLURM_CLUSTER_SCRIPT), "stop"], capture_output=True, text=True, env=env)
