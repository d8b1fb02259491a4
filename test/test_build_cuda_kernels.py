"""tools/build_cuda_kernels.py and tools/nvcc_for_arch_list.sh without compiling: the toolkit found behind a
wrapper nvcc, the architecture flags, the nvcc that swaps the packages' flags for ours, and a dry run."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("build_cuda_kernels", ROOT / "tools" / "build_cuda_kernels.py")
build_cuda_kernels = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = build_cuda_kernels  # dataclasses look their module up there
spec.loader.exec_module(build_cuda_kernels)


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def fake_toolkit(prefix: Path, release: str = "13.0") -> Path:
    """bin/nvcc answering --version like the real one, and the header torch's cpp_extension needs."""
    executable(prefix / "bin" / "nvcc", f"#!/bin/sh\necho 'Cuda compilation tools, release {release}, V{release}.48'\n")
    (prefix / "include").mkdir(parents=True)
    (prefix / "include" / "cuda_runtime_api.h").write_text("")
    return prefix


def test_the_toolkit_behind_a_wrapper_nvcc_is_found(tmp_path):
    toolkit = fake_toolkit(tmp_path / "cuda-13.0")
    wrapper = executable(tmp_path / "local" / "bin" / "nvcc", f'#!/bin/sh\nexec {toolkit}/bin/nvcc "$@"\n')
    cuda_home, origin = build_cuda_kernels.find_cuda_home({"PATH": str(wrapper.parent)})
    assert cuda_home == toolkit.resolve()
    assert "wrapper script" in origin


def test_a_symlinked_nvcc_leads_to_its_toolkit(tmp_path):
    toolkit = fake_toolkit(tmp_path / "cuda-13.0")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "nvcc").symlink_to(toolkit / "bin" / "nvcc")
    assert build_cuda_kernels.find_cuda_home({"PATH": str(tmp_path / "bin")})[0] == toolkit.resolve()


def test_cuda_home_that_is_not_a_toolkit_is_an_error(tmp_path):
    (tmp_path / "bin").mkdir()
    with pytest.raises(SystemExit, match="CUDA_HOME=.* is not a CUDA toolkit .*cuda_runtime_api.h"):
        build_cuda_kernels.find_cuda_home({"CUDA_HOME": str(tmp_path), "PATH": ""})


def test_cuda_home_is_taken_as_given_when_it_is_a_toolkit(tmp_path):
    toolkit = fake_toolkit(tmp_path / "cuda")
    found = build_cuda_kernels.find_cuda_home({"CUDA_HOME": str(toolkit), "PATH": ""})
    assert found == (toolkit.resolve(), "CUDA_HOME")


@pytest.mark.parametrize(
    "arch_list, flags",
    [
        ("9.0", ["-gencode=arch=compute_90,code=sm_90"]),
        ("8.0;9.0a", ["-gencode=arch=compute_80,code=sm_80", "-gencode=arch=compute_90a,code=sm_90a"]),
        ("8.6+PTX", ["-gencode=arch=compute_86,code=sm_86", "-gencode=arch=compute_86,code=compute_86"]),
    ],
)
def test_architecture_lists_become_torchs_gencode_flags(arch_list, flags):
    assert build_cuda_kernels.gencode_flags(arch_list) == flags


@pytest.mark.parametrize("arch_list", ["sm_90", "9", " "])
def test_malformed_architecture_lists_are_refused(arch_list):
    with pytest.raises(SystemExit, match="architecture"):
        build_cuda_kernels.gencode_flags(arch_list)


def test_the_build_nvcc_swaps_the_packages_architectures_for_ours(tmp_path):
    echo = executable(tmp_path / "nvcc", '#!/bin/sh\nfor arg in "$@"; do echo "$arg"; done\n')
    env = dict(os.environ, SAMBA_REAL_NVCC=str(echo), SAMBA_NVCC_GENCODE="-gencode=arch=compute_90,code=sm_90")
    packages_flags = ["-gencode", "arch=compute_75,code=sm_75", "--generate-code=arch=compute_80,code=sm_80",
                      "--generate-code", "arch=compute_121,code=sm_121"]
    result = subprocess.run(
        [str(ROOT / "tools" / "nvcc_for_arch_list.sh"), "-O3", "-c", "a b.cu", *packages_flags, "--threads", "4"],
        env=env, capture_output=True, text=True, check=True,
    )
    expected = ["-O3", "-c", "a b.cu", "--threads", "4", "-gencode=arch=compute_90,code=sm_90"]
    assert result.stdout.splitlines() == expected


def test_ninja_progress_is_read_from_the_end_of_the_log(tmp_path):
    log = tmp_path / "build.log"
    log.write_text("running build_ext\n[1/10] nvcc a.cu\nptxas info\n[7/10] nvcc b.cu\n")
    assert build_cuda_kernels.ninja_progress(log) == "7/10 compile steps"
    log.write_text("Preparing metadata\n")
    assert build_cuda_kernels.ninja_progress(log) is None


@pytest.mark.skipif(torch.version.cuda is None, reason="a CPU-only torch: the build refuses before its dry run")
def test_dry_run_prints_the_toolkit_flags_and_commands_and_builds_nothing(tmp_path):
    toolkit = fake_toolkit(tmp_path / "cuda-x", release=torch.version.cuda)
    wrapper = executable(tmp_path / "local" / "bin" / "nvcc", f'#!/bin/sh\nexec {toolkit}/bin/nvcc "$@"\n')
    env = dict(os.environ, PATH=f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}", TORCH_CUDA_ARCH_LIST="9.0")
    env.pop("CUDA_HOME", None)
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "build_cuda_kernels.py"), "--dry_run", "--jobs", "3",
         "--log_dir", str(tmp_path / "logs")],
        env=env, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert f"CUDA_HOME={toolkit.resolve()} (from the nvcc that {wrapper} (a wrapper script) runs)" in result.stdout
    assert "MAX_JOBS=3" in result.stdout and "-gencode=arch=compute_90,code=sm_90" in result.stdout
    for package in ("causal-conv1d==1.7.0", "mamba-ssm==2.3.2.post1"):
        assert "--no-build-isolation --no-deps --no-cache-dir" in result.stdout and package in result.stdout
    assert not (tmp_path / "logs").exists()
