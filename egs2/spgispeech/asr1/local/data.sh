#!/usr/bin/env bash
# Data preparation for SPGISpeech from a local copy (${SPGISPEECH}: train.csv, val.csv, train/, val/):
# train_nodev, dev_4k (the first 4000 training utterances) and val, each normalised and as <set>_unnorm.
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}
SECONDS=0

stage=1         # 1: Kaldi data directories from the CSV manifests
stop_stage=1
dev_size=4000   # training utterances held out as the development set

log "$0 $*"
. utils/parse_options.sh

if [ $# -ne 0 ]; then
    log "Error: No positional arguments are required."
    exit 2
fi

. ./db.sh
. ./path.sh

if [ -z "${SPGISPEECH:-}" ]; then
    log "Fill the value of 'SPGISPEECH' of db.sh: the directory holding train.csv, val.csv, train/ and val/"
    log "(SPGISpeech is distributed by Kensho: https://datasets.kensho.com/datasets/spgispeech)"
    exit 1
fi

if [ ${stage} -le 1 ] && [ ${stop_stage} -ge 1 ]; then
    log "stage 1: data directories from ${SPGISPEECH}"
    python3 local/prepare_spgispeech.py --dev_size "${dev_size}" "${SPGISPEECH}" data
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
