#!/usr/bin/env bash
# Download and unpack the LibriSpeech parts that are not yet under <data-root>/LibriSpeech/.
#
# Usage: local/download_missing_parts.sh [--remove_archive true] <data-root> <url-base> <part> [<part> ...]
#
# A part counts as present when <data-root>/LibriSpeech/<part>/.complete exists (unpacked by
# download_and_untar.sh) or when its directory exists and no archive for it lies in <data-root> (a copy the
# user unpacked). A directory next to its archive is an interrupted unpacking and is unpacked again.
set -euo pipefail

remove_archive=false
if [ "${1:-}" = --remove_archive ]; then
    remove_archive=$2
    shift 2
fi
if [ $# -lt 3 ]; then
    echo "Usage: $0 [--remove_archive true] <data-root> <url-base> <part> [<part> ...]" >&2
    exit 2
fi
data=$1
url=$2
shift 2

for part in "$@"; do
    part_dir=${data}/LibriSpeech/${part}
    if [ -f "${part_dir}/.complete" ] || { [ -d "${part_dir}" ] && [ ! -f "${data}/${part}.tar.gz" ]; }; then
        echo "$0: ${part_dir} is present, not downloading it"
    else
        "$(dirname "$0")/download_and_untar.sh" --remove_archive "${remove_archive}" "${data}" "${url}" "${part}"
    fi
done
