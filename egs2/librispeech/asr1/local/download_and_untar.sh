#!/usr/bin/env bash
# Download one LibriSpeech part from openslr (resource 12) and unpack it under <data-root>/LibriSpeech/.
#
# Usage: local/download_and_untar.sh [--remove_archive true] [--archive_size BYTES] <data-root> <url-base> <part>
#   e.g. local/download_and_untar.sh downloads https://www.openslr.org/resources/12 dev-clean
#
# The archive is checked against its published size before unpacking (--archive_size overrides the table,
# e.g. for a mirror that repackaged the data). <data-root>/LibriSpeech/<part>/.complete marks a finished part,
# so reruns skip it.
set -euo pipefail

remove_archive=false
archive_size=
while [ $# -gt 0 ] && [[ "$1" == --* ]]; do
    case "$1" in
        --remove_archive) remove_archive=$2; shift 2 ;;
        --archive_size) archive_size=$2; shift 2 ;;
        *) echo "$0: unknown option $1" >&2; exit 2 ;;
    esac
done
if [ $# -ne 3 ]; then
    echo "Usage: $0 [--remove_archive true] [--archive_size BYTES] <data-root> <url-base> <part>" >&2
    exit 2
fi
data=$1
url=$2
part=$3

# Sizes in bytes of the openslr archives (final release).
declare -A part_sizes=(
    [dev-clean]=337926286
    [dev-other]=314305928
    [test-clean]=346663984
    [test-other]=328757843
    [train-clean-100]=6387309499
    [train-clean-360]=23049477885
    [train-other-500]=30593501606
)
if [ -z "${part_sizes[${part}]+set}" ]; then
    echo "$0: unknown LibriSpeech part '${part}'; expected one of: ${!part_sizes[*]}" >&2
    exit 1
fi
archive_size=${archive_size:-${part_sizes[${part}]}}

part_dir=${data}/LibriSpeech/${part}
if [ -f "${part_dir}/.complete" ]; then
    echo "$0: ${part_dir} was already extracted, nothing to do"
    exit 0
fi

mkdir -p "${data}"
archive=${data}/${part}.tar.gz
"$(dirname "$0")/download.sh" --expected_size "${archive_size}" "${url}/${part}.tar.gz" "${archive}"

if ! tar -C "${data}" -xzf "${archive}"; then
    echo "$0: could not unpack ${archive}: delete it and rerun to download it again" >&2
    exit 1
fi
if [ ! -d "${part_dir}" ]; then
    echo "$0: ${archive} did not contain LibriSpeech/${part}: is the URL right?" >&2
    exit 1
fi
touch "${part_dir}/.complete"
echo "$0: unpacked ${archive} into ${data}/LibriSpeech"

if [ "${remove_archive}" = true ]; then
    rm -f "${archive}"
fi
