#!/usr/bin/env python3
"""Report what the espnet-samba environment has, in the spirit of ESPnet's `tools/check_install.py`.

    tools/venv/bin/python tools/check_install.py

Exits 1 when something required is missing (torch, torchaudio, ESPnet, espnet-samba and its registration,
sclite); the fused CPU kernels, the CUDA kernels and what the demo corpus needs (espeak-ng, flite, festival and its
voices, SVOX Pico's ttspico, sox, fortunes, wordnet) are reported but optional (speed on CPU; GPU training; the demo).
"""
from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from typing import List, Optional, Tuple

Row = Tuple[str, bool, str, bool]  # (name, found, detail, required)


def package_version(distribution: str) -> Optional[str]:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def python_packages() -> List[Row]:
    rows = []
    for distribution, required in [
        ("torch", True), ("torchaudio", True), ("espnet", True), ("espnet-samba", True),
        ("kaldiio", True), ("sentencepiece", True), ("mamba-ssm", False), ("causal-conv1d", False),
    ]:
        version = package_version(distribution)
        rows.append((distribution, version is not None, version or "not installed", required))
    return rows


def cuda_kernels() -> Row:
    import torch

    from espnet_samba.ops import load_cuda_kernels

    if not torch.cuda.is_available():
        return ("CUDA kernels", False, "no CUDA device (CPU tensors take the path reported above)", False)
    kernels = load_cuda_kernels()
    detail = f"usable on {torch.cuda.get_device_name(0)}" if kernels.available else kernels.unavailable_reason
    return ("CUDA kernels", kernels.available, detail, False)


def cpu_kernels() -> Row:
    """Which path the ops take on CPU tensors: the fused kernels (built for this CPU) or the PyTorch fallback."""
    import torch

    from espnet_samba.ops.cpu_kernels import load_cpu_kernels

    kernels = load_cpu_kernels()
    if kernels.available:
        detail = f"active: fused CPU kernels, {torch.get_num_threads()} threads ({kernels.library_path})"
    else:
        detail = f"inactive, the pure-PyTorch path runs: {kernels.unavailable_reason}"
    return ("CPU kernels", kernels.available, detail, False)


def registration() -> Row:
    from espnet2.tasks.asr import decoder_choices, encoder_choices

    if "mamba" in encoder_choices.classes and "mamba" in decoder_choices.classes:
        return ("ESPnet registration", True, "encoder: mamba, decoder: mamba resolve in espnet2.tasks.asr", True)
    import espnet_samba

    try:
        espnet_samba.register()
    except Exception as error:  # noqa: BLE001 - reported to the user
        return ("ESPnet registration", False, f"register() fails: {type(error).__name__}: {error}", True)
    return ("ESPnet registration", False,
            "register() works but the start-up hook did not run: reinstall with `pip install -e .`", True)


# Debian's sctk package installs sclite outside PATH; recipes' path.sh adds this directory.
EXTRA_SEARCH_PATH = "/usr/lib/sctk/bin"


def executable(name: str, version_args: List[str], required: bool, purpose: str) -> Row:
    path = shutil.which(name) or shutil.which(name, path=EXTRA_SEARCH_PATH)
    if path is None:
        return (name, False, f"not found ({purpose}); Debian: apt-get install {APT_PACKAGES[name]}", required)
    if not version_args:
        return (name, True, path, required)
    output = subprocess.run([path, *version_args], capture_output=True, text=True)
    first_line = (output.stdout or output.stderr).strip().splitlines()
    return (name, True, f"{path} {first_line[0] if first_line else ''}".strip(), required)


APT_PACKAGES = {"sclite": "sctk", "espeak-ng": "espeak-ng", "sox": "sox", "flite": "flite", "festival": "festival"}
# The demo corpus's data: (name, path, Debian package).
DEMO_DATA = (
    ("fortunes", "/usr/share/games/fortunes", "fortunes"),
    ("wordnet", "/usr/share/wordnet/data.noun", "wordnet-base"),
    ("festival voice kal", "/usr/share/festival/voices/english/kal_diphone", "festvox-kallpc16k"),
    ("festival voice ked", "/usr/share/festival/voices/english/ked_diphone", "festvox-kdlpc16k"),
    ("festival voice slt", "/usr/share/festival/voices/us/cmu_us_slt_arctic_hts", "festvox-us-slt-hts"),
)


def demo_data() -> List[Row]:
    return [
        (name, os.path.exists(path),
         path if os.path.exists(path) else f"not found (the demo corpus); apt-get install {package}", False)
        for name, path, package in DEMO_DATA
    ]


def pico() -> Row:
    try:
        import ttspico  # noqa: F401
    except ImportError:
        return ("ttspico", False, "not found (the demo's unseen synthesizer); pip install ttspico", False)
    return ("ttspico", True, f"SVOX Pico {importlib.metadata.version('ttspico')}", False)


def main() -> int:
    rows = [(f"python", True, sys.version.split()[0], True)]
    rows += python_packages()
    if all(found for name, found, _, _ in rows if name in ("torch", "espnet", "espnet-samba")):
        rows.append(cpu_kernels())
        rows.append(cuda_kernels())
        rows.append(registration())
    rows.append(executable("sclite", [], True, "scoring"))
    rows.append(executable("espeak-ng", ["--version"], False, "the demo corpus"))
    rows.append(executable("flite", ["--version"], False, "the demo corpus"))
    rows.append(executable("festival", ["--version"], False, "the demo corpus"))
    rows.append(pico())
    rows.append(executable("sox", ["--version"], False, "speed perturbation, the demo corpus"))
    rows += demo_data()

    width = max(len(name) for name, *_ in rows)
    for name, found, detail, required in rows:
        mark = "[x]" if found else ("[ ]" if required else "[-]")
        print(f"{mark} {name:<{width}}  {detail}")
    missing = [name for name, found, _, required in rows if required and not found]
    if missing:
        print(f"\nMissing required: {', '.join(missing)}. Run tools/install.sh.")
        return 1
    print("\nAll required components are installed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
