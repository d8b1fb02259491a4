#!/usr/bin/env bash
# Run a command while printing its progress (done / total, elapsed, ETA) every few seconds.
#
# Usage: scripts/utils/run_with_progress.sh --total N --label LABEL --files "GLOB ..." [--pattern REGEX]
#            [--interval SECONDS] -- <command> [<args>...]
# Progress counts the lines (or the lines matching REGEX) of the files matching the globs; see
# pyscripts/utils/progress_monitor.py. The exit status is the command's.
set -euo pipefail

total=
label=progress
files=
pattern=
interval=${PROGRESS_INTERVAL:-30}
help_message="Usage: $0 --total N --label LABEL --files \"GLOB ...\" [--pattern REGEX] [--interval S] -- <command>"
. "$(dirname "$(readlink -f "$0")")/../../utils/parse_options.sh"
[ "${1:-}" = "--" ] && shift
if [ -z "${total}" ] || [ -z "${files}" ] || [ $# -eq 0 ]; then
    echo "${help_message}" 1>&2
    exit 2
fi

monitor_args=(--total "${total}" --label "${label}" --interval "${interval}")
[ -n "${pattern}" ] && monitor_args+=(--pattern "${pattern}")
# The globs are expanded by the monitor each time it counts (files appear while the command runs).
set -f
# shellcheck disable=SC2206
globs=(${files})
set +f
python3 "$(dirname "$(readlink -f "$0")")/../../pyscripts/utils/progress_monitor.py" "${monitor_args[@]}" \
    "${globs[@]}" &
monitor_pid=$!
status=0
"$@" || status=$?
kill "${monitor_pid}" 2>/dev/null || true
wait "${monitor_pid}" 2>/dev/null || true
exit "${status}"
