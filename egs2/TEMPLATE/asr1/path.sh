# Environment of a recipe; sourced by asr.sh (and by slurm.pl jobs) from the recipe directory egs2/<name>/asr1.
MAIN_ROOT=$(cd "$PWD/../../.." && pwd)
export MAIN_ROOT

# The project's virtual environment, built by tools/install.sh.
if [ -f "${MAIN_ROOT}/tools/venv/bin/activate" ]; then
    # shellcheck disable=SC1091
    . "${MAIN_ROOT}/tools/venv/bin/activate"
fi
export PYTHONPATH="${MAIN_ROOT}${PYTHONPATH:+:${PYTHONPATH}}"

# Kaldi-style tools of this template; sclite from tools/sctk or from Debian's sctk package.
export PATH="$PWD/utils:${MAIN_ROOT}/tools/sctk/bin:${PATH}"
if ! command -v sclite > /dev/null && [ -x /usr/lib/sctk/bin/sclite ]; then
    export PATH="${PATH}:/usr/lib/sctk/bin"
fi
export LC_ALL=C

# As in ESPnet: one OpenMP thread per process (the jobs run in parallel), and UTF-8 for Python under LC_ALL=C.
export OMP_NUM_THREADS=1
export PYTHONIOENCODING=UTF-8
# glibc malloc: keep freed buffers for reuse instead of unmapping them (bench/allocator.py). With glibc's defaults a
# process can fault in every page of every large tensor at every step: on a 2-core VM the demo's Samba-ASR training
# step took 140-160 ms with glibc's defaults and 94-109 ms with these (bench/bench_demo_step.py, with and without
# --glibc-default-malloc).
# Memory freed during training then stays with the process until it exits. Set them before sourcing to override.
export MALLOC_MMAP_THRESHOLD_="${MALLOC_MMAP_THRESHOLD_:-33554432}"  # 32 MiB, glibc's maximum
export MALLOC_TRIM_THRESHOLD_="${MALLOC_TRIM_THRESHOLD_:-4294967296}"  # 4 GiB
# Change or unset for your network; see https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/env.html
export NCCL_SOCKET_IFNAME="^lo,docker,virbr,vmnet,vboxnet"

# Recipe-specific settings, sourced last to override the above.
if [ -f local/path.sh ]; then
    # shellcheck disable=SC1091
    . local/path.sh
fi
