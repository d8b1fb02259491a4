#!/usr/bin/env bash
# Build the espnet-samba environment in tools/venv from nothing.
#
#   tools/install.sh            # venv + torch + ESPnet + espnet-samba (editable) + test and recipe deps + kernels
#                               # + sclite, espeak-ng, flite, festival + voices, sox, fortunes, wordnet, g++,
#                               #   slurm-wlm and munge (Debian packages, when root; tools/slurm_cluster.sh runs a
#                               #   local Slurm cluster with the last two)
#
# Running it again is fast and changes nothing: each step leaves a stamp in tools/venv/.stamps named after the
# content hash of what it installed, and is skipped while the stamp matches.
#
# Environment:
#   PYTHON=python3            interpreter the venv is made from
#   SAMBA_KERNELS=auto|cuda|source|skip
#                             auto: compile mamba-ssm/causal-conv1d CUDA kernels when nvcc and a GPU are present,
#                             otherwise as source: install them source-only (their pure-PyTorch reference
#                             functions, which the tests use as an oracle; without the transformers package that
#                             mamba-ssm declares but its reference code does not import; what CI does); cuda:
#                             compile them with nvcc, GPU or not (tools/build_cuda_kernels.py: the real toolkit
#                             found behind a wrapper nvcc, progress every minute, one log per package in
#                             tools/venv/cuda_kernels_build/, the wheels kept there); skip: do not install them.
#   TORCH_CUDA_ARCH_LIST      GPU architectures to compile for, e.g. 9.0 (H100/H200); default: the local GPU's;
#                             required without a GPU. One architecture, not the packages' nine: still hours on a
#                             few cores, so run it in the background (nohup ... &), never in CI.
#   MAX_JOBS                  parallel compile jobs; default: the CPU count.
#   SAMBA_KERNELS_SDIST_DIR   a directory holding the two packages' sdists, for machines without internet.
#   SAMBA_KERNELS_DRY_RUN=1   with SAMBA_KERNELS=cuda and an existing venv: print the toolkit, flags and commands the
#                             build would use, then exit without compiling or installing anything.
#   SAMBA_CPU_KERNELS=auto|off
#                             auto: build the fused CPU kernels (espnet_samba/ops/csrc, ~20 s with g++) for this
#                             machine's CPU; off: do not (the ops then run their pure-PyTorch path).
set -euo pipefail

readonly TORCH_VERSION=2.11.0
readonly MAMBA_SSM_VERSION=2.3.2.post1
readonly CAUSAL_CONV1D_VERSION=1.7.0
readonly EINOPS_VERSION=0.8.2  # what mamba-ssm's reference code imports besides torch
readonly HUGGINGFACE_HUB_VERSION=2.4.0

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="${root}/tools/venv"
stamps="${venv}/.stamps"
python_bin=${PYTHON:-python3}
kernels=${SAMBA_KERNELS:-auto}

log() { printf '[install %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# step NAME KEY CMD...: run CMD unless the stamp NAME already records KEY.
step() {
    local name=$1 key=$2
    shift 2
    if [[ -f "${stamps}/${name}" && "$(cat "${stamps}/${name}")" == "${key}" ]]; then
        log "${name}: up to date"
        return 0
    fi
    log "${name}: installing"
    local start=$SECONDS
    "$@"
    mkdir -p "${stamps}"
    printf '%s' "${key}" > "${stamps}/${name}"
    log "${name}: done in $((SECONDS - start)) s"
}

# pip, without the per-package noise of this machine's unused local index mirrors.
pip_install() {
    "${venv}/bin/python" -m pip install "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
}

hash_of() { cat "$@" | sha1sum | cut -c1-16; }

make_venv() {
    "${python_bin}" -m venv "${venv}"
    # pip 25+ rejects ESPnet's dependency tree (ci_sdr declares a direct-URL dependency in an extra).
    pip_install -q --upgrade "pip<25" wheel "setuptools<81"
}

install_torch() {
    pip_install -q "torch==${TORCH_VERSION}" "torchaudio==${TORCH_VERSION}"
}

install_package() {
    pip_install -q -e "${root}[test,bench,recipes]"
}

nvcc_present() {
    command -v nvcc >/dev/null 2>&1 || [[ -x /usr/local/cuda/bin/nvcc ]]
}

gpu_present() {
    command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1
}

# tools/build_cuda_kernels.py with this script's settings; versions are pinned there as here.
build_cuda_kernels() {
    "${venv}/bin/python" "${root}/tools/build_cuda_kernels.py" --log_dir "${venv}/cuda_kernels_build" \
        ${SAMBA_KERNELS_SDIST_DIR:+--sdist_dir "${SAMBA_KERNELS_SDIST_DIR}"} "$@"
}

install_kernels() {
    if [[ $1 == cuda ]]; then
        log "compiling the CUDA kernels (hours on a few cores; progress every minute, logs named below)"
        build_cuda_kernels
    else
        log "installing mamba-ssm/causal-conv1d source-only (reference functions, no CUDA kernels)"
        # Without their declared dependencies: the reference code needs einops, huggingface_hub and torch's triton,
        # not the HuggingFace transformers that mamba-ssm declares for its language-model generation code (nor its
        # GPU compilers). Where transformers is installed, every ESPnet process imports it at start (ESPnet's
        # optional HuggingFace modules), 2.3-5.7 s of each (bench/bench_startup.py). The tests and benchmarks reach
        # the reference code without the package's __init__ (espnet_samba/ops/mamba_ssm_oracle.py).
        MAMBA_FORCE_BUILD=TRUE MAMBA_SKIP_CUDA_BUILD=TRUE \
            CAUSAL_CONV1D_FORCE_BUILD=TRUE CAUSAL_CONV1D_SKIP_CUDA_BUILD=TRUE \
            pip_install --no-build-isolation --no-cache-dir --no-deps -q \
            "causal-conv1d==${CAUSAL_CONV1D_VERSION}" "mamba-ssm==${MAMBA_SSM_VERSION}"
        pip_install -q "einops==${EINOPS_VERSION}" "huggingface_hub==${HUGGINGFACE_HUB_VERSION}"
        remove_transformers_installed_as_a_dependency
    fi
}

# A venv installed before the step above (mamba-ssm with its dependencies) holds transformers that nobody asked
# for; it goes, unless someone installed it by name (pip's REQUESTED marker).
remove_transformers_installed_as_a_dependency() {
    if "${venv}/bin/python" - <<'PYTHON'
import importlib.metadata as metadata
import sys

try:
    distribution = metadata.distribution("transformers")
except metadata.PackageNotFoundError:
    sys.exit(1)
sys.exit(0 if distribution.read_text("REQUESTED") is None else 1)
PYTHON
    then
        log "removing transformers, installed as mamba-ssm's dependency: ESPnet would import it at every start"
        "${venv}/bin/python" -m pip uninstall -y -q transformers
    fi
}

install_system_tools() {
    local missing=()
    # Debian's sctk keeps sclite in /usr/lib/sctk/bin (recipes' path.sh adds it to PATH).
    command -v sclite >/dev/null 2>&1 || [[ -x /usr/lib/sctk/bin/sclite ]] || missing+=(sctk)
    command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
    command -v sox >/dev/null 2>&1 || missing+=(sox)
    # The demo corpus (egs2/espeak_en) reads English sentences from the fortune database and WordNet's examples,
    # with flite and festival (its English voices) besides espeak-ng.
    [[ -d /usr/share/games/fortunes ]] || missing+=(fortunes)
    [[ -f /usr/share/wordnet/data.noun ]] || missing+=(wordnet-base)
    command -v flite >/dev/null 2>&1 || missing+=(flite)
    command -v festival >/dev/null 2>&1 || missing+=(festival)
    local voice
    for voice in english/kal_diphone:festvox-kallpc16k english/ked_diphone:festvox-kdlpc16k \
                 us/cmu_us_slt_arctic_hts:festvox-us-slt-hts; do
        [[ -d /usr/share/festival/voices/${voice%%:*} ]] || missing+=("${voice##*:}")
    done
    # The fused CPU kernels are compiled with the system's C++ compiler (torch.utils.cpp_extension).
    command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 || missing+=(g++)
    # A real single-node Slurm cluster for the recipes' slurm backend and multi-process training (tools/slurm_cluster.sh).
    command -v slurmctld >/dev/null 2>&1 && command -v slurmd >/dev/null 2>&1 || missing+=(slurm-wlm)
    command -v munged >/dev/null 2>&1 || missing+=(munge)
    ((${#missing[@]} == 0)) && { log "system tools: sclite, espeak-ng, flite, festival and its voices, sox, fortunes, wordnet, a C++ compiler, Slurm and munge found"; return 0; }
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "system tools: apt-get install ${missing[*]}"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        log "WARNING: missing ${missing[*]}: install them (Debian/Ubuntu: sudo apt-get install ${missing[*]});"
        log "         scoring needs sclite (sctk), the demo corpus needs espeak-ng, flite, festival and its"
        log "         festvox voices, sox, fortunes and wordnet-base,"
        log "         the fused CPU kernels need g++ (without it the slower pure-PyTorch path runs),"
        log "         the Slurm tests need slurm-wlm and munge (tools/slurm_cluster.sh)."
    fi
}

# The fused CPU kernels, compiled for this CPU now rather than on first use (espnet_samba/ops/cpu_kernels.py).
# A failed build is not fatal: the ops fall back to their pure-PyTorch path, and check_install.py says so.
build_cpu_kernels() {
    if [[ ${SAMBA_CPU_KERNELS:-auto} == off ]]; then
        log "cpu kernels: SAMBA_CPU_KERNELS=off, not built (the pure-PyTorch path runs)"
        return 0
    fi
    log "cpu kernels: building for this CPU (log: ${venv}/cpu_kernels_build.log)"
    if "${venv}/bin/python" -m espnet_samba.bin.build_cpu_kernels --verbose > "${venv}/cpu_kernels_build.log" 2>&1; then
        log "cpu kernels: $(tail -n 1 "${venv}/cpu_kernels_build.log")"
    else
        log "WARNING: the fused CPU kernels did not build (see ${venv}/cpu_kernels_build.log);"
        log "         the pure-PyTorch path runs instead (same results, slower)."
    fi
}

main() {
    log "root ${root}"
    local kernel_mode
    case "${kernels}" in
        skip | source) kernel_mode=${kernels} ;;
        cuda) nvcc_present || { log "SAMBA_KERNELS=cuda but no nvcc found (a GPU is not needed)"; exit 1; }
              kernel_mode=cuda ;;
        auto) if nvcc_present && gpu_present; then kernel_mode=cuda; else kernel_mode=source; fi ;;
        *) log "SAMBA_KERNELS must be auto, cuda, source or skip, got '${kernels}'"; exit 1 ;;
    esac
    if [[ ${SAMBA_KERNELS_DRY_RUN:-0} == 1 ]]; then
        [[ ${kernel_mode} == cuda ]] || { log "SAMBA_KERNELS_DRY_RUN=1 needs SAMBA_KERNELS=cuda"; exit 1; }
        [[ -x ${venv}/bin/python ]] || { log "SAMBA_KERNELS_DRY_RUN=1 needs the venv: run install.sh first"; exit 1; }
        build_cuda_kernels --dry_run
        log "dry run: nothing compiled or installed"
        return 0
    fi
    step venv "$("${python_bin}" --version 2>&1) pip<25" make_venv
    step torch "${TORCH_VERSION}" install_torch
    step package "$(hash_of "${root}/setup.py" "${root}/espnet_samba_autoregister.pth")" install_package

    if [[ ${kernel_mode} != skip ]]; then
        local key="${kernel_mode}-${MAMBA_SSM_VERSION}-${CAUSAL_CONV1D_VERSION}"
        [[ ${kernel_mode} == source ]] && key+="-no-deps-einops${EINOPS_VERSION}-hub${HUGGINGFACE_HUB_VERSION}"
        [[ ${kernel_mode} == cuda ]] && key+="-sm${TORCH_CUDA_ARCH_LIST:-local}"
        step kernels "${key}" install_kernels "${kernel_mode}"
    fi
    install_system_tools
    build_cpu_kernels
    "${venv}/bin/python" "${root}/tools/check_install.py"
}

main "$@"
