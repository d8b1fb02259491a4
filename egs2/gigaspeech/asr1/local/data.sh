#!/usr/bin/env bash
# Data preparation for GigaSpeech from a local copy of the release (${GIGASPEECH}: GigaSpeech.json + audio/):
# data/train (the --train_subset), data/dev ({DEV}) and data/test ({TEST}).
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}
SECONDS=0

stage=1             # 1: Kaldi data directories from GigaSpeech.json
stop_stage=1
train_subset=XL     # XS (10 h), S (250 h), M (1000 h), L (2500 h) or XL (10000 h)

log "$0 $*"
. utils/parse_options.sh

if [ $# -ne 0 ]; then
    log "Error: No positional arguments are required."
    exit 2
fi

. ./db.sh
. ./path.sh

if [ -z "${GIGASPEECH:-}" ]; then
    log "Fill the value of 'GIGASPEECH' of db.sh: the directory holding GigaSpeech.json and audio/"
    log "(download it as https://github.com/SpeechColab/GigaSpeech#download describes)"
    exit 1
fi

if [ ${stage} -le 1 ] && [ ${stop_stage} -ge 1 ]; then
    log "stage 1: data/train (subset {${train_subset}}), data/dev, data/test from ${GIGASPEECH}"
    python3 local/prepare_gigaspeech.py --train_subset "${train_subset}" "${GIGASPEECH}" data
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
