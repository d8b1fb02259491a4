#!/usr/bin/env bash
# The CUDA check for the day a GPU is lent: build the kernels for that GPU, run the CUDA tests, run the GPU
# benchmarks, and write every figure to one results file.
#
#   tools/gpu_check.sh prepare               # here, where pip works: what the GPU machine cannot download
#   tools/gpu_check.sh [options]             # there: all stages; again with --stage wait|test|bench to go on
#
# Written for a fresh checkout on a machine with a CUDA GPU, CUDA's nvcc, a CUDA build of PyTorch in python3 and
# no internet (the lent 16-core H200: CUDA 13, torch 2.11+cu130, Python 3.12). What it lacks travels in the carry
# directory, made here by `prepare`: the sdists of mamba-ssm and causal-conv1d, and wheels of the pure-Python
# packages our tests import that the machine's image does not hold (ESPnet and its import-time needs).
# Kernel wheels built on an earlier lease (copied to OUT when they fit) can travel there too, in
# kernel_wheels/: they are installed instead of building.
#
# Stages (--stage all runs them in order, each timed):
#   env    GPU, driver, torch, CPU count; stops with exit 2 when torch sees no CUDA GPU
#   deps   installs the carried wheels into WORK/site (PYTHONPATH), checks that our CUDA tests import
#   build  compiles the kernels for this GPU only (TORCH_CUDA_ARCH_LIST from torch.cuda.get_device_capability,
#          MAX_JOBS=--jobs) with tools/build_cuda_kernels.py, in a process of its own (setsid) that outlives this
#          command, logging to WORK/build/; waits for it at most --build_wait seconds
#   wait   waits again for a build started earlier (the next call must reach the same, still warm machine)
#   test   the CUDA tests: every test file with a cuda or cuda_build mark, -m "cuda or cuda_build"
#   bench  each benchmark of BENCHMARKS below whose --help offers --device, with --device cuda; the others are
#          listed as not run
# Results: OUT/results.md (every figure, each stage's time, all calls since the last --stage all), build.log,
# tests.log, bench.log and the kernel wheels of at most 16 MiB (what a lease hands back).
#
# Options (defaults in brackets):
#   --out DIR            results [${OUT:-./gpu_check_out}]
#   --work DIR           build directory, site-packages, build process id [/tmp/samba_gpu_check]
#   --carry DIR          what `prepare` made [.gpu_check_carry]
#   --jobs N             parallel compile jobs [16]
#   --build_wait S       seconds to wait for the build in this call [420]
#   --bench_timeout S    seconds per benchmark [240]
#   --stage NAME         all, env, deps, build, wait, test or bench [all]
#   --dry_run true       print each stage's commands, run none (no GPU needed)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${OUT:-./gpu_check_out}
work=/tmp/samba_gpu_check
carry=.gpu_check_carry
jobs=16
build_wait=420
bench_timeout=240
stage=all
dry_run=false
python=${PYTHON:-python3}

# Benchmarks run with --device cuda when their --help offers it: script and its further arguments.
BENCHMARKS=(
    "bench/bench_encoder.py --seconds 10 60 300 1200 --repeats 3"
    "bench/bench_demo_step.py"
    "bench/bench_mixer.py"
)
# What `prepare` carries: the packages that the CUDA tests and the benchmarks import and the GPU machine's image
# lacks (an import trace of them in tools/venv, less KINDS.md's list of that image; tools/venv's versions), and
# the kernels' sdists.
CARRIED_PACKAGES=(
    espnet==202511 typeguard==4.6.1 humanfriendly==10.0 kaldiio==2.18.1 torch-complex==0.4.4
    librosa==0.11.0 soundfile==0.14.0 soxr==1.1.0 cffi==2.1.1
    espnet-tts-frontend==0.0.4 espnet-g2p-en==2.1.0.post1 nltk==3.10.4 inflect==5.6.2 more-itertools==11.2.1
    jamo==0.4.1 jaconv==0.5.0 unidecode==1.4.0 defusedxml==0.7.1
    hydra-core==1.3.8 omegaconf==2.3.1 antlr4-python3-runtime==4.9.3
)
KERNEL_SDISTS=("causal-conv1d==1.7.0" "mamba-ssm==2.3.2.post1")

log() { printf '[gpu_check %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { log "ERROR: $*" >&2; exit "${2:-1}"; }

parse_options() {
    local subcommand_seen=false
    while (($#)); do
        case $1 in
            prepare) [[ ${subcommand_seen} == false ]] || die "one subcommand at most"; stage=prepare
                     subcommand_seen=true; shift; continue ;;
            --out | --work | --carry | --jobs | --build_wait | --bench_timeout | --stage | --dry_run)
                (($# >= 2)) || die "$1 needs a value"
                local name=${1#--}
                printf -v "${name}" '%s' "$2"
                shift 2 ;;
            -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
            *) die "unknown option '$1' (see --help)" ;;
        esac
    done
    case ${stage} in
        all | env | deps | build | wait | test | bench | prepare) ;;
        *) die "--stage must be all, env, deps, build, wait, test or bench, got '${stage}'" ;;
    esac
    [[ ${dry_run} == true || ${dry_run} == false ]] || die "--dry_run must be true or false, got '${dry_run}'"
    local number
    for number in jobs build_wait bench_timeout; do
        [[ ${!number} =~ ^[1-9][0-9]*$ ]] || die "--${number} must be a positive whole number, got '${!number}'"
    done
}

# run CMD...: run it, or print it in a dry run.
run() {
    if [[ ${dry_run} == true ]]; then
        printf '  [dry run]'
        printf ' %q' "$@"
        printf '\n'
    else
        "$@"
    fi
}

# Results accumulate in WORK, which outlives a call on a warm machine (OUT is emptied before each call), and are
# copied to OUT whenever this script exits.
results() { [[ ${dry_run} == true ]] || printf '%s\n' "$@" >> "${work}/results.md"; }

publish() {
    mkdir -p "${out}"
    local file
    for file in "${work}/results.md" "${work}/tests.log" "${work}/bench.log" "${work}/build/build.log"; do
        [[ -f ${file} ]] && cp "${file}" "${out}/"
    done
    for file in "${work}"/build/wheels/*.whl; do
        [[ -f ${file} ]] && (($(stat -c %s "${file}") <= 16 * 1024 * 1024)) && cp "${file}" "${out}/"
    done
    return 0
}

timed_stage() {
    local name=$1 start=$SECONDS
    shift
    log "stage ${name}"
    "$@"
    results "" "stage ${name}: $((SECONDS - start)) s"
}

# --- stages -----------------------------------------------------------------------------------------------------

arch_list=""

stage_env() {
    local problem=""
    if ! "${python}" -c 'import torch' 2>/dev/null; then
        problem="${python} has no torch (set PYTHON to the interpreter that holds the CUDA build of torch)"
    elif ! "${python}" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
        problem="no CUDA GPU visible to ${python}'s torch: this check is for a machine with one (on CPU: make test)"
    fi
    if [[ -n ${problem} ]]; then
        [[ ${dry_run} == true ]] || die "${problem}" 2
        arch_list=9.0
        log "${problem}"
        log "a real run stops here with exit 2; the dry run goes on as for sm ${arch_list}"
        return 0
    fi
    arch_list=$("${python}" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability(0))')
    results "## Machine" "" '```'
    results "$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || true)"
    results "$("${python}" -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__,
        "cuda", torch.version.cuda, "capability", torch.cuda.get_device_capability(0))')"
    results "cpus $(nproc); nvcc: $(nvcc --version 2>/dev/null | grep -o 'release [0-9.]*' || echo none)" '```'
    log "GPU of compute capability ${arch_list}"
}

stage_deps() {
    local wheels=()
    shopt -s nullglob
    wheels=("${carry}"/wheels/*.whl "${carry}"/wheels/*.tar.gz)
    shopt -u nullglob
    if ((${#wheels[@]})); then
        run "${python}" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --no-cache-dir \
            --upgrade --target "${work}/site" "${wheels[@]}"
    else
        log "no wheels in ${carry}/wheels (made by \`tools/gpu_check.sh prepare\`): using what ${python} has"
    fi
    run "${python}" -c "import espnet_samba.modules, espnet2; print('our CUDA tests import')"
}

kernel_wheels_carried() {
    compgen -G "${carry}/kernel_wheels/causal_conv1d-*.whl" >/dev/null \
        && compgen -G "${carry}/kernel_wheels/mamba_ssm-*.whl" >/dev/null
}

stage_build() {
    if kernel_wheels_carried; then
        log "installing the carried kernel wheels instead of building"
        run "${python}" -m pip install -q --force-reinstall --no-index --no-deps "${carry}"/kernel_wheels/*.whl
        results "" "kernels: carried wheels installed: $(cd "${carry}/kernel_wheels" && ls)"
        return 0
    fi
    [[ -f ${carry}/sdists/causal_conv1d-1.7.0.tar.gz ]] || [[ ${dry_run} == true ]] \
        || die "no sdists in ${carry}/sdists: run \`tools/gpu_check.sh prepare\` where pip works and carry ${carry}"
    local build=("${python}" "${root}/tools/build_cuda_kernels.py" --arch_list "${arch_list}" --jobs "${jobs}"
                 --sdist_dir "${carry}/sdists" --log_dir "${work}/build")
    log "building for sm ${arch_list} with ${jobs} jobs in the background (log: ${work}/build/build.log)"
    if [[ ${dry_run} == true ]]; then
        run setsid nohup "${build[@]}"
        printf '  [dry run]   in the background, output to %s\n' "${work}/build/build.log"
    else
        setsid nohup "${build[@]}" > "${work}/build/build.log" 2>&1 < /dev/null &
        echo $! > "${work}/build/pid"
    fi
    stage_wait
}

stage_wait() {
    [[ ${dry_run} == true ]] && { printf '  [dry run] wait up to %s s for the build\n' "${build_wait}"; return 0; }
    [[ -f ${work}/build/pid ]] || die "no build started in ${work} (--stage build first)"
    local pid deadline=$((SECONDS + build_wait))
    pid=$(cat "${work}/build/pid")
    while kill -0 "${pid}" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 15
    done
    if kill -0 "${pid}" 2>/dev/null; then
        results "" "kernels: build still running after ${build_wait} s: $(tail -n 1 "${work}/build/build.log")"
        die "build still running (${work}/build/build.log): call again with --stage wait, then --stage test" 3
    fi
    grep -q "import check: ok" "${work}/build/build.log" || die "the build failed: see build.log"
    results "" "## Kernel build (sm ${arch_list}, ${jobs} jobs)" "" '```' "$(cat "${work}/build/build_times.tsv")"
    results "$(cd "${work}/build/wheels" && ls -l --block-size=K ./*.whl)" '```' \
        "(wheels of at most 16 MiB are copied to OUT: carry them in ${carry}/kernel_wheels/ to skip this build)"
}

cuda_test_files() { grep -l -E "pytest\.mark\.cuda(_build)?\b" "${root}"/test/test_*.py; }

stage_test() {
    local files pytest status=0
    mapfile -t files < <(cuda_test_files)
    pytest=("${python}" -m pytest -q -rs -p no:cacheprovider -m "cuda or cuda_build" "${files[@]#"${root}"/}")
    if [[ ${dry_run} == true ]]; then
        run "${pytest[@]}"
        return 0
    fi
    "${pytest[@]}" > "${work}/tests.log" 2>&1 || status=$?
    tail -n 5 "${work}/tests.log"
    results "" "## CUDA tests (pytest exit ${status})" "" '```' "$(grep -E '^(FAILED|ERROR|SKIPPED)|passed|failed' \
        "${work}/tests.log" | tail -n 40)" '```'
}

stage_bench() {
    local benchmark script
    results "" "## GPU benchmarks"
    for benchmark in "${BENCHMARKS[@]}"; do
        script=${benchmark%% *}
        local help reason=""
        if ! help=$("${python}" "${root}/${script}" --help 2>&1); then
            reason="\`${script} --help\` failed: $(tail -n 1 <<< "${help}")"
        elif ! grep -q -- "--device" <<< "${help}"; then
            reason="${script} takes no --device option (a CPU benchmark)"
        fi
        if [[ -n ${reason} ]]; then
            log "not run: ${reason}"
            results "" "not run: ${reason}"
            continue
        fi
        local command status=0
        # The benchmark's own arguments, split on purpose.
        read -r -a command <<< "${benchmark}"
        command=(timeout "${bench_timeout}" "${python}" "${command[@]}" --device cuda)
        if [[ ${dry_run} == true ]]; then
            run "${command[@]}"
            continue
        fi
        log "${benchmark} --device cuda"
        "${command[@]}" > "${work}/bench.out" 2>&1 || status=$?
        cat "${work}/bench.out" >> "${work}/bench.log"
        results "" "### ${benchmark} --device cuda (exit ${status})" "" '```' "$(tail -n 60 "${work}/bench.out")" '```'
    done
}

# Here, where pip works: the kernels' sdists, and each carried package as a wheel for the GPU machine's Python
# 3.12 on x86-64, or as its sdist where it has no wheel (pure Python; installed there without build isolation).
stage_prepare() {
    [[ ${dry_run} == true ]] || mkdir -p "${carry}/sdists" "${carry}/wheels"
    MAMBA_SKIP_CUDA_BUILD=TRUE CAUSAL_CONV1D_SKIP_CUDA_BUILD=TRUE \
        run "${python}" -m pip download -q --no-deps --no-binary :all: --no-build-isolation -d "${carry}/sdists" \
        "${KERNEL_SDISTS[@]}"
    local package
    for package in "${CARRIED_PACKAGES[@]}"; do
        run "${python}" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            -d "${carry}/wheels" "${package}" 2>/dev/null \
            || run "${python}" -m pip download -q --no-deps --no-binary :all: -d "${carry}/wheels" "${package}"
    done
    [[ ${dry_run} == true ]] || log "carry ${carry} ($(du -sh "${carry}" | cut -f1); a lease takes 64 MiB in all)"
}

main() {
    parse_options "$@"
    cd "${root}"
    if [[ ${stage} == prepare ]]; then
        stage_prepare
        return 0
    fi
    if [[ ${dry_run} == false ]]; then
        mkdir -p "${work}/build"
        [[ ${stage} == all ]] && rm -f "${work}/results.md" "${work}/tests.log" "${work}/bench.log"
        trap publish EXIT
    fi
    export PYTHONPATH="${root}:${work}/site${PYTHONPATH:+:${PYTHONPATH}}" PYTHONUNBUFFERED=1
    results "" "# tools/gpu_check.sh --stage ${stage} ($(date -u +%FT%TZ))"
    timed_stage env stage_env
    case ${stage} in
        all) timed_stage deps stage_deps; timed_stage build stage_build; timed_stage test stage_test
             timed_stage bench stage_bench ;;
        env) ;;
        *) timed_stage "${stage}" "stage_${stage}" ;;
    esac
    [[ ${dry_run} == true ]] || log "results: ${out}/results.md"
}

main "$@"
