#!/usr/bin/env bash
# Download one file with resume support and an optional exact-size check.
#
# Usage: local/download.sh [--expected_size BYTES] <url> <destination-file>
#
# A partial file left by an interrupted run is resumed (curl -C - / wget -c); a file larger than
# expected is discarded and fetched again. Any URL curl understands works (https://, file://).
set -euo pipefail

expected_size=
while [ $# -gt 0 ] && [[ "$1" == --* ]]; do
    case "$1" in
        --expected_size) expected_size=$2; shift 2 ;;
        *) echo "$0: unknown option $1" >&2; exit 2 ;;
    esac
done
if [ $# -ne 2 ]; then
    echo "Usage: $0 [--expected_size BYTES] <url> <destination-file>" >&2
    exit 2
fi
url=$1
dest=$2

size_of() { stat -c %s "$1"; }

if [ -f "${dest}" ] && [ -n "${expected_size}" ]; then
    size=$(size_of "${dest}")
    if [ "${size}" -eq "${expected_size}" ]; then
        echo "$0: ${dest} is complete (${size} bytes), not downloading"
        exit 0
    fi
    if [ "${size}" -gt "${expected_size}" ]; then
        echo "$0: ${dest} has ${size} bytes, more than the expected ${expected_size}: removing it"
        rm -f "${dest}"
    fi
fi

mkdir -p "$(dirname "${dest}")"
echo "$0: downloading ${url} to ${dest} (resumable: rerun this script if it is interrupted)"
if command -v curl >/dev/null 2>&1; then
    # curl exits with 33 when asked to resume a file that is already complete and the server cannot
    # serve an empty range; the size check below decides whether that file is usable.
    curl --fail --location --retry 3 --continue-at - --output "${dest}" "${url}" || [ $? -eq 33 ]
elif command -v wget >/dev/null 2>&1; then
    wget --continue --tries=3 --output-document="${dest}" "${url}"
else
    echo "$0: neither curl nor wget is installed: install one, or download ${url} to ${dest} by hand" >&2
    exit 1
fi

if [ -n "${expected_size}" ]; then
    size=$(size_of "${dest}")
    if [ "${size}" -ne "${expected_size}" ]; then
        echo "$0: ${dest} has ${size} bytes but ${expected_size} were expected." >&2
        echo "$0: rerun to resume an interrupted download, or delete the file to start over." >&2
        exit 1
    fi
fi
echo "$0: downloaded ${dest}"
