"""tools/gpu_check.sh where there is no GPU: its options, its refusal to run, and the plan of a dry run."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "gpu_check.sh"


def gpu_check(tmp_path: Path, *args: str, python: str = "false") -> subprocess.CompletedProcess:
    """The script with PYTHON=`python` (`false`: an interpreter without torch, and quick) and OUT/WORK in tmp."""
    env = dict(os.environ, PYTHON=python, OUT=str(tmp_path / "out"))
    return subprocess.run(
        ["bash", str(SCRIPT), "--work", str(tmp_path / "work"), *args],
        env=env, capture_output=True, text=True, timeout=600,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--stage", "nope"], "--stage must be all, env, deps, build, wait, test or bench, got 'nope'"),
        (["--jobs", "0"], "--jobs must be a positive whole number, got '0'"),
        (["--dry_run", "yes"], "--dry_run must be true or false, got 'yes'"),
        (["--frobnicate", "1"], "unknown option '--frobnicate'"),
        (["--out"], "--out needs a value"),
    ],
)
def test_bad_options_are_refused_by_name(tmp_path, args, message):
    result = gpu_check(tmp_path, *args)
    assert result.returncode == 1 and message in result.stderr


def test_without_torch_it_stops_with_exit_2_and_the_fix(tmp_path):
    result = gpu_check(tmp_path)
    assert result.returncode == 2
    assert "false has no torch (set PYTHON to the interpreter that holds the CUDA build of torch)" in result.stderr
    assert "# tools/gpu_check.sh --stage all" in (tmp_path / "out" / "results.md").read_text()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible here")
def test_without_a_gpu_it_stops_with_exit_2(tmp_path):
    result = gpu_check(tmp_path, "--stage", "env", python=sys.executable)
    assert result.returncode == 2 and "no CUDA GPU visible" in result.stderr


def test_dry_run_prints_every_stage_and_runs_nothing(tmp_path):
    result = gpu_check(tmp_path, "--dry_run", "true", "--jobs", "16", "--build_wait", "60")
    assert result.returncode == 0, result.stderr
    plan = result.stdout
    for stage in ("env", "deps", "build", "test", "bench"):
        assert f"stage {stage}" in plan
    assert "a real run stops here with exit 2; the dry run goes on as for sm 9.0" in plan
    assert "setsid nohup false" in plan and "--arch_list 9.0 --jobs 16 --sdist_dir .gpu_check_carry/sdists" in plan
    assert "wait up to 60 s for the build" in plan
    assert r"-m cuda\ or\ cuda_build test/test_ops_cuda.py" in plan
    assert "not run: `bench/bench_encoder.py --help` failed" in plan
    assert not (tmp_path / "out").exists() and not (tmp_path / "work").exists()
