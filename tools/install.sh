#!/usr/bin/env bash
# Build the espnet-samba environment in tools/venv from nothing.
#
#   tools/install.sh            # venv + torch + ESPnet + espnet-samba (editable) + test deps + kernels
#                               # + sclite, espeak-ng, sox, fortunes and g++ (Debian packages, when root)
#
# Running it again is fast and changes nothing: each step leaves a stamp in tools/venv/.stamps named after the
# content hash of what it installed, and is skipped while the stamp matches.
#
# Environment:
#   PYTHON=python3            interpreter the venv is made from
#   SAMBA_KERNELS=auto|cuda|skip
#                             auto: compile mamba-ssm/causal-conv1d CUDA kernels when nvcc and a GPU are present,
#                             otherwise install them source-only (their pure-PyTorch reference functions, which the
#                             tests use as an oracle); cuda: require a GPU build; skip: do not install them.
#   TORCH_CUDA_ARCH_LIST      GPU architectures to compile for; default: the local GPU's only (a build for every
#                             architecture takes hours).
#   SAMBA_CPU_KERNELS=auto|off
#                             auto: build the fused CPU kernels (espnet_samba/ops/csrc, ~20 s with g++) for this
#                             machine's CPU; off: do not (the ops then run their pure-PyTorch path).
set -euo pipefail

readonly TORCH_VERSION=2.11.0
readonly MAMBA_SSM_VERSION=2.3.2.post1
readonly CAUSAL_CONV1D_VERSION=1.7.0

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
    pip_install -q -e "${root}[test,bench]"
}

gpu_present() {
    command -v nvcc >/dev/null 2>&1 && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1
}

local_cuda_arch() {
    "${venv}/bin/python" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability(0))'
}

install_kernels() {
    local pip=(pip_install --no-build-isolation --no-cache-dir)
    if [[ $1 == cuda ]]; then
        local arch=${TORCH_CUDA_ARCH_LIST:-$(local_cuda_arch)}
        log "compiling CUDA kernels for sm ${arch} with $(nvcc --version | tail -1) (this takes minutes)"
        TORCH_CUDA_ARCH_LIST="${arch}" MAX_JOBS=${MAX_JOBS:-$(nproc)} \
            MAMBA_FORCE_BUILD=TRUE CAUSAL_CONV1D_FORCE_BUILD=TRUE \
            "${pip[@]}" "causal-conv1d==${CAUSAL_CONV1D_VERSION}" "mamba-ssm==${MAMBA_SSM_VERSION}"
    else
        log "no GPU: installing mamba-ssm/causal-conv1d source-only (reference functions, no CUDA kernels)"
        MAMBA_FORCE_BUILD=TRUE MAMBA_SKIP_CUDA_BUILD=TRUE \
            CAUSAL_CONV1D_FORCE_BUILD=TRUE CAUSAL_CONV1D_SKIP_CUDA_BUILD=TRUE \
            "${pip[@]}" -q "causal-conv1d==${CAUSAL_CONV1D_VERSION}" "mamba-ssm==${MAMBA_SSM_VERSION}"
    fi
}

install_system_tools() {
    local missing=()
    # Debian's sctk keeps sclite in /usr/lib/sctk/bin (recipes' path.sh adds it to PATH).
    command -v sclite >/dev/null 2>&1 || [[ -x /usr/lib/sctk/bin/sclite ]] || missing+=(sctk)
    command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
    command -v sox >/dev/null 2>&1 || missing+=(sox)
    # The demo corpus (egs2/espeak_en) reads its English sentences from the fortune database.
    [[ -d /usr/share/games/fortunes ]] || missing+=(fortunes)
    # The fused CPU kernels are compiled with the system's C++ compiler (torch.utils.cpp_extension).
    command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 || missing+=(g++)
    ((${#missing[@]} == 0)) && { log "system tools: sclite, espeak-ng, sox, fortunes and a C++ compiler found"; return 0; }
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "system tools: apt-get install ${missing[*]}"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        log "WARNING: missing ${missing[*]}: install them (Debian/Ubuntu: sudo apt-get install ${missing[*]});"
        log "         scoring needs sclite (sctk), the demo corpus needs espeak-ng, sox and fortunes,"
        log "         the fused CPU kernels need g++ (without it the slower pure-PyTorch path runs)."
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
    step venv "$("${python_bin}" --version 2>&1) pip<25" make_venv
    step torch "${TORCH_VERSION}" install_torch
    step package "$(hash_of "${root}/setup.py" "${root}/espnet_samba_autoregister.pth")" install_package

    local kernel_mode
    case "${kernels}" in
        skip) kernel_mode=skip ;;
        cuda) gpu_present || { log "SAMBA_KERNELS=cuda but no nvcc/GPU found"; exit 1; }; kernel_mode=cuda ;;
        auto) if gpu_present; then kernel_mode=cuda; else kernel_mode=source; fi ;;
        *) log "SAMBA_KERNELS must be auto, cuda or skip, got '${kernels}'"; exit 1 ;;
    esac
    if [[ ${kernel_mode} != skip ]]; then
        step kernels "${kernel_mode}-${MAMBA_SSM_VERSION}-${CAUSAL_CONV1D_VERSION}" install_kernels "${kernel_mode}"
    fi
    install_system_tools
    build_cpu_kernels
    "${venv}/bin/python" "${root}/tools/check_install.py"
}

main "$@"
