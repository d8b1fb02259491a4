#!/usr/bin/env bash
# The nvcc that tools/build_cuda_kernels.py gives torch's cpp_extension (PYTORCH_NVCC) when it builds mamba-ssm and
# causal-conv1d. Their setup.py pass -gencode flags for nine GPU architectures, which makes torch ignore
# TORCH_CUDA_ARCH_LIST; this drops every -gencode/--generate-code flag it is given, adds SAMBA_NVCC_GENCODE (the
# flags of the requested architectures) and runs the real nvcc, SAMBA_REAL_NVCC. Everything else passes unchanged.
set -euo pipefail

: "${SAMBA_REAL_NVCC:?set by tools/build_cuda_kernels.py: the real nvcc of the toolkit}"
: "${SAMBA_NVCC_GENCODE:?set by tools/build_cuda_kernels.py: the -gencode flags to compile for}"

args=()
drop_next=false
for arg in "$@"; do
    if $drop_next; then
        drop_next=false
        continue
    fi
    case ${arg} in
        -gencode | --generate-code) drop_next=true ;;
        -gencode=* | --generate-code=*) ;;
        *) args+=("${arg}") ;;
    esac
done
read -r -a gencode <<< "${SAMBA_NVCC_GENCODE}"
exec "${SAMBA_REAL_NVCC}" "${args[@]}" "${gencode[@]}"
