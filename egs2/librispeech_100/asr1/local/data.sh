#!/usr/bin/env bash
# Data preparation for LibriSpeech 100 h: train_clean_100, dev (dev-clean + dev-other) and the four evaluation
# parts, downloading whatever is missing from ${LIBRISPEECH} first.
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}
SECONDS=0

stage=1                 # first stage to run: 1 download, 2 per-part data dirs, 3 dev set
stop_stage=3            # last stage to run
data_url=https://www.openslr.org/resources/12     # LibriSpeech audio (openslr resource 12)
remove_archive=false    # delete each .tar.gz once it is unpacked

log "$0 $*"
. utils/parse_options.sh

if [ $# -ne 0 ]; then
    log "Error: No positional arguments are required."
    exit 2
fi

. ./db.sh
. ./path.sh

if [ -z "${LIBRISPEECH:-}" ]; then
    log "Fill the value of 'LIBRISPEECH' of db.sh (where LibriSpeech/ is or will be downloaded)"
    exit 1
fi

parts="dev-clean dev-other test-clean test-other train-clean-100"

if [ ${stage} -le 1 ] && [ ${stop_stage} -ge 1 ]; then
    log "stage 1: download the missing parts into ${LIBRISPEECH}"
    local/download_missing_parts.sh --remove_archive "${remove_archive}" "${LIBRISPEECH}" "${data_url}" ${parts}
fi

if [ ${stage} -le 2 ] && [ ${stop_stage} -ge 2 ]; then
    log "stage 2: one data directory per part"
    for part in ${parts}; do
        python3 local/prepare_librispeech.py --output_dir "data/${part//-/_}" "${LIBRISPEECH}/LibriSpeech/${part}"
    done
fi

if [ ${stage} -le 3 ] && [ ${stop_stage} -ge 3 ]; then
    log "stage 3: dev = dev-clean + dev-other"
    python3 local/prepare_librispeech.py --output_dir data/dev \
        "${LIBRISPEECH}/LibriSpeech/dev-clean" "${LIBRISPEECH}/LibriSpeech/dev-other"
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
