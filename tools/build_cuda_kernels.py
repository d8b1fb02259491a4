#!/usr/bin/env python3
"""Compile mamba-ssm's and causal-conv1d's CUDA kernels for named GPU architectures; no GPU needed, only nvcc.

    python tools/build_cuda_kernels.py --arch_list 9.0 [--jobs 16] [--log_dir DIR] [--sdist_dir DIR]
        [--wheel_dir DIR] [--dry_run]

Run it with the Python that holds the target torch (tools/install.sh runs it with tools/venv's, for
SAMBA_KERNELS=cuda). A plain `pip install --no-build-isolation mamba-ssm` goes wrong in three ways, fixed here:
- CUDA_HOME: torch's cpp_extension guesses dirname(dirname(which nvcc)), wrong where the `nvcc` on PATH is a
  wrapper script (on our CPU machine /usr/local/bin/nvcc execs /usr/local/cuda-13.0/bin/nvcc, and
  /usr/local/include has no cuda_runtime_api.h). `find_cuda_home` follows the wrapper and checks for the headers.
- Architectures: both packages' setup.py pass -gencode flags for nine architectures (sm_75 ... sm_121 with CUDA
  13), and user flags make torch ignore TORCH_CUDA_ARCH_LIST, so a build takes about nine times longer than one
  architecture needs. The build's nvcc (PYTORCH_NVCC = tools/nvcc_for_arch_list.sh) swaps them for the requested
  architectures' flags.
- Parallelism: MAX_JOBS counts only with ninja, which must be on PATH (without it torch compiles one file at a
  time); the interpreter's bin directory is put first on PATH and ninja is checked before anything starts.
Each package is built into a wheel (--wheel_dir, kept: a machine without nvcc can install it) and installed with
`pip install --force-reinstall --no-deps`; its output goes to `<log_dir>/<package>.log`, ninja's progress
([done/total]) is printed every --progress_interval seconds, and its build time is printed and appended to
`<log_dir>/build_times.tsv`. At the end the compiled extensions are imported in a fresh process; where they cannot
load (no driver, say) the loader's error is printed. --dry_run prints all of this (toolkit, flags, commands,
environment) and compiles nothing.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
NVCC_FILTER = ROOT / "tools" / "nvcc_for_arch_list.sh"
HEADER = Path("include") / "cuda_runtime_api.h"  # what torch's cpp_extension compiles against: CUDA_HOME/include
ARCH = re.compile(r"^(\d+)\.(\d+)([af]?)(\+PTX)?$")
NINJA_PROGRESS = re.compile(rb"^\[(\d+)/(\d+)\]", re.MULTILINE)
# What a dry run shows of each build's environment (PATH: the directories put in front).
BUILD_VARIABLES = (
    "CUDA_HOME", "PYTORCH_NVCC", "SAMBA_REAL_NVCC", "SAMBA_NVCC_GENCODE", "TORCH_CUDA_ARCH_LIST", "MAX_JOBS",
)


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    force_build_variable: str  # makes its setup.py compile instead of downloading a prebuilt wheel
    extension: str  # the compiled module it installs

    @property
    def sdist_name(self) -> str:
        return f"{self.name.replace('-', '_')}-{self.version}.tar.gz"


# Pinned as in tools/install.sh; causal-conv1d first: mamba-ssm imports it at run time (not at build time).
PACKAGES = (
    Package("causal-conv1d", "1.7.0", "CAUSAL_CONV1D_FORCE_BUILD", "causal_conv1d_cuda"),
    Package("mamba-ssm", "2.3.2.post1", "MAMBA_FORCE_BUILD", "selective_scan_cuda"),
)


def is_toolkit(prefix: Path) -> bool:
    """A CUDA toolkit directory as torch's cpp_extension uses it: bin/nvcc and include/cuda_runtime_api.h."""
    nvcc = prefix / "bin" / "nvcc"
    return nvcc.is_file() and os.access(nvcc, os.X_OK) and (prefix / HEADER).is_file()


def wrapped_nvcc(script: Path) -> Optional[Path]:
    """The nvcc a wrapper script runs (the first absolute path ending in /nvcc that names another file), or None
    when `script` is not a script."""
    try:
        head = script.read_bytes()[:65536]
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    for match in re.finditer(r"(/[^\s\"'$;|&]*/nvcc)(?![\w.-])", head.decode("utf-8", "replace")):
        target = Path(match.group(1))
        if target.is_file() and target.resolve() != script.resolve():
            return target.resolve()
    return None


def toolkit_candidates(environ: Mapping[str, str]) -> List[Tuple[Path, str]]:
    """Directories that may hold the toolkit, most specific first, each with where it came from."""
    candidates = []
    nvcc_on_path = shutil.which("nvcc", path=environ.get("PATH", os.defpath))
    if nvcc_on_path:
        nvcc = Path(nvcc_on_path).resolve()
        target = wrapped_nvcc(nvcc)
        if target is not None:
            candidates.append((target.parent.parent, f"the nvcc that {nvcc_on_path} (a wrapper script) runs"))
        candidates.append((nvcc.parent.parent, f"{nvcc_on_path} on PATH"))
    candidates.append((Path("/usr/local/cuda"), "the default location"))
    versioned = sorted(Path("/usr/local").glob("cuda-*"), key=lambda path: path.name, reverse=True)
    candidates.extend((path, "an installed toolkit") for path in versioned)
    return candidates


def find_cuda_home(environ: Mapping[str, str]) -> Tuple[Path, str]:
    """The real CUDA toolkit directory and why it was chosen.

    CUDA_HOME (or CUDA_PATH), when set, must be a toolkit: a wrong setting is an error, not a hint. Otherwise the
    nvcc on PATH is followed through symbolic links and wrapper scripts, then the usual locations are tried.

    Raises:
        SystemExit: no toolkit found, with every place looked at.
    """
    for variable in ("CUDA_HOME", "CUDA_PATH"):
        if environ.get(variable):
            prefix = Path(environ[variable])
            if not is_toolkit(prefix):
                raise SystemExit(f"{variable}={prefix} is not a CUDA toolkit (needs bin/nvcc and {HEADER})")
            return prefix.resolve(), f"{variable}"
    tried = []
    for prefix, origin in toolkit_candidates(environ):
        if is_toolkit(prefix):
            return prefix.resolve(), origin
        tried.append(f"{prefix} ({origin})")
    raise SystemExit(
        "no CUDA toolkit found (bin/nvcc and include/cuda_runtime_api.h) in: " + "; ".join(tried)
        + ". Install one, or set CUDA_HOME to it."
    )


def nvcc_release(cuda_home: Path) -> str:
    """The toolkit's release, e.g. "13.0", from `nvcc --version`."""
    output = subprocess.run(
        [str(cuda_home / "bin" / "nvcc"), "--version"], check=True, capture_output=True, text=True
    ).stdout
    match = re.search(r"release (\d+\.\d+)", output)
    if match is None:
        raise SystemExit(f"cannot read the release from {cuda_home}/bin/nvcc --version:\n{output}")
    return match.group(1)


def gencode_flags(arch_list: str) -> List[str]:
    """nvcc flags for a TORCH_CUDA_ARCH_LIST ("9.0", "8.0;9.0a", "8.6+PTX"), as torch's cpp_extension makes them.

    Raises:
        SystemExit: an entry that is not MAJOR.MINOR[a|f][+PTX], or an empty list.
    """
    flags = []
    entries = [entry for entry in re.split(r"[;\s]+", arch_list.strip()) if entry]
    if not entries:
        raise SystemExit("the architecture list is empty: name at least one, e.g. 9.0 for H100/H200")
    for entry in entries:
        match = ARCH.match(entry)
        if match is None:
            raise SystemExit(f"architecture {entry!r} is not MAJOR.MINOR[a|f][+PTX] (e.g. 9.0, 9.0a, 8.6+PTX)")
        number = match.group(1) + match.group(2) + match.group(3)
        flags.append(f"-gencode=arch=compute_{number},code=sm_{number}")
        if match.group(4):
            flags.append(f"-gencode=arch=compute_{number},code=compute_{number}")
    return flags


def local_arch_list() -> Optional[str]:
    """The compute capabilities of this machine's GPUs ("9.0"), or None without a usable GPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    capabilities = sorted({torch.cuda.get_device_capability(index) for index in range(torch.cuda.device_count())})
    return ";".join(f"{major}.{minor}" for major, minor in capabilities)


def path_prefix(cuda_home: Path) -> List[str]:
    """Directories put first on the build's PATH: the interpreter's (its ninja) and the toolkit's."""
    return [str(Path(sys.executable).parent), str(cuda_home / "bin")]


def build_environment(
    environ: Mapping[str, str], cuda_home: Path, arch_list: str, jobs: int, package: Package
) -> Dict[str, str]:
    env = dict(environ)
    env.update(
        CUDA_HOME=str(cuda_home),
        PYTORCH_NVCC=str(NVCC_FILTER),
        SAMBA_REAL_NVCC=str(cuda_home / "bin" / "nvcc"),
        SAMBA_NVCC_GENCODE=" ".join(gencode_flags(arch_list)),
        TORCH_CUDA_ARCH_LIST=arch_list,
        MAX_JOBS=str(jobs),
        PATH=os.pathsep.join([*path_prefix(cuda_home), environ.get("PATH", "")]),
    )
    env[package.force_build_variable] = "TRUE"
    return env


def pip_commands(package: Package, source: str, wheel_dir: Path) -> List[List[str]]:
    """Build the wheel (verbose, so ninja's progress reaches the log), then install it over any source-only copy."""
    pip = [sys.executable, "-m", "pip"]
    return [
        pip + ["wheel", "-v", "--no-build-isolation", "--no-deps", "--no-cache-dir", "--no-binary", package.name,
               "--wheel-dir", str(wheel_dir), source],
        pip + ["install", "--force-reinstall", "--no-deps", "--no-index", "--find-links", str(wheel_dir),
               f"{package.name}=={package.version}"],
    ]


def package_source(package: Package, sdist_dir: Optional[Path]) -> str:
    """The sdist in `sdist_dir` where it is there (machines without internet), else the pinned requirement."""
    if sdist_dir is not None:
        sdist = sdist_dir / package.sdist_name
        if not sdist.is_file():
            raise SystemExit(f"{sdist} is missing: fetch it where pip works (pip download --no-deps --no-binary "
                             f":all: --no-build-isolation {package.name}=={package.version} -d {sdist_dir})")
        return str(sdist)
    return f"{package.name}=={package.version}"


def ninja_progress(log: Path) -> Optional[str]:
    """The last "[done/total]" ninja printed to the log, or None before the first."""
    try:
        with log.open("rb") as handle:
            handle.seek(max(0, log.stat().st_size - 262144))
            steps = NINJA_PROGRESS.findall(handle.read())
    except OSError:
        return None
    return f"{int(steps[-1][0])}/{int(steps[-1][1])} compile steps" if steps else None


def run_logged(command: Sequence[str], env: Mapping[str, str], log: Path, label: str, interval: float) -> None:
    """Run `command` with its output appended to `log`, printing progress every `interval` seconds."""
    start = time.monotonic()
    with log.open("ab") as handle:
        handle.write(f"$ {shlex.join(command)}\n".encode())
        handle.flush()
        process = subprocess.Popen(command, env=dict(env), stdout=handle, stderr=subprocess.STDOUT)
        next_report = start + interval
        while process.poll() is None:
            time.sleep(min(5.0, interval))
            if time.monotonic() >= next_report:
                elapsed = time.monotonic() - start
                print(f"  {label}: {ninja_progress(log) or 'preparing'}, {elapsed / 60:.1f} min (log: {log})",
                      flush=True)
                next_report += interval
    if process.returncode != 0:
        raise SystemExit(f"{label} failed (exit {process.returncode}); the end of {log}:\n"
                         + "".join(log.read_text(errors="replace").splitlines(keepends=True)[-40:]))


def import_check(env: Mapping[str, str]) -> str:
    """Import the compiled extensions and the wrappers in a fresh process: "ok", or the error that stopped it."""
    code = "import torch, causal_conv1d_cuda, selective_scan_cuda, mamba_ssm, causal_conv1d; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], env=dict(env), capture_output=True, text=True)
    if result.returncode == 0:
        return "ok"
    return (result.stderr.strip().splitlines() or ["(no output)"])[-1]


def main(argv: Optional[Iterable[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch_list", default=os.environ.get("TORCH_CUDA_ARCH_LIST") or None,
                        help="GPU architectures, as TORCH_CUDA_ARCH_LIST (default: it, else this machine's GPUs)")
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("MAX_JOBS") or os.cpu_count() or 1),
                        help="parallel compile jobs (MAX_JOBS; default: it, else the CPU count)")
    parser.add_argument("--log_dir", type=Path, default=ROOT / "tools" / "venv" / "cuda_kernels_build")
    parser.add_argument("--sdist_dir", type=Path, default=None,
                        help="where the packages' sdists are, for machines without internet (default: pip fetches)")
    parser.add_argument("--wheel_dir", type=Path, default=None, help="where the wheels go (default: LOG_DIR/wheels)")
    parser.add_argument("--progress_interval", type=float, default=60.0, help="seconds between progress lines")
    parser.add_argument("--dry_run", action="store_true", help="print what would run; compile nothing")
    args = parser.parse_args(argv)

    cuda_home, origin = find_cuda_home(os.environ)
    release = nvcc_release(cuda_home)
    import torch

    if torch.version.cuda is None:
        raise SystemExit(f"torch {torch.__version__} is a CPU-only build: the kernels need a CUDA build of torch")
    if release.split(".")[0] != torch.version.cuda.split(".")[0]:
        raise SystemExit(f"nvcc {release} ({cuda_home}) and torch's CUDA {torch.version.cuda} differ in major "
                         "version: torch's cpp_extension refuses that; install a matching toolkit")
    arch_list = args.arch_list or local_arch_list()
    if arch_list is None:
        raise SystemExit("no GPU here: name the architectures to compile for, e.g. TORCH_CUDA_ARCH_LIST=9.0 "
                         "(H100/H200), 8.0 (A100), 8.6 (A10/RTX 30xx), 8.9 (L4/RTX 40xx)")
    gencode = gencode_flags(arch_list)
    if args.jobs < 1:
        raise SystemExit(f"--jobs must be at least 1, got {args.jobs}")
    wheel_dir = args.wheel_dir or args.log_dir / "wheels"
    print(f"CUDA_HOME={cuda_home} (from {origin}); nvcc {release}; torch {torch.__version__} (CUDA "
          f"{torch.version.cuda})")
    print(f"architectures {arch_list}: {' '.join(gencode)}; MAX_JOBS={args.jobs}; logs in {args.log_dir}")

    base_env = dict(os.environ)
    for package in PACKAGES:
        env = build_environment(base_env, cuda_home, arch_list, args.jobs, package)
        if shutil.which("ninja", path=env["PATH"]) is None:
            raise SystemExit("ninja is not on PATH: without it MAX_JOBS is ignored and torch compiles one file at "
                             f"a time; install it ({sys.executable} -m pip install ninja)")
        commands = pip_commands(package, package_source(package, args.sdist_dir), wheel_dir)
        log = args.log_dir / f"{package.name}.log"
        if args.dry_run:
            shown = [*BUILD_VARIABLES, package.force_build_variable]
            print(f"[dry run] {package.name} {package.version}: log {log}")
            print("  environment: " + " ".join(f"{key}={shlex.quote(env[key])}" for key in shown)
                  + f" PATH={os.pathsep.join(path_prefix(cuda_home))}{os.pathsep}$PATH")
            for command in commands:
                print(f"  $ {shlex.join(command)}")
            continue
        args.log_dir.mkdir(parents=True, exist_ok=True)
        log.write_bytes(b"")
        print(f"{package.name} {package.version}: compiling (log: {log})", flush=True)
        start = time.monotonic()
        for command in commands:
            run_logged(command, env, log, package.name, args.progress_interval)
        seconds = time.monotonic() - start
        print(f"{package.name}: built and installed in {seconds / 60:.1f} min", flush=True)
        times = args.log_dir / "build_times.tsv"
        if not times.exists():
            times.write_text("package\tversion\tarch_list\tjobs\tcpus\tseconds\n")
        with times.open("a") as handle:
            handle.write(f"{package.name}\t{package.version}\t{arch_list}\t{args.jobs}\t{os.cpu_count()}\t"
                         f"{seconds:.0f}\n")
    if args.dry_run:
        return
    print(f"wheels in {wheel_dir}; import check: {import_check(base_env)}")


if __name__ == "__main__":
    main()
