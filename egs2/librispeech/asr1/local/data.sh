#!/usr/bin/env bash
# Data preparation for LibriSpeech 960 h: train_960 (train-clean-100 + train-clean-360 + train-other-500),
# dev (dev-clean + dev-other), the four evaluation parts, and the LibriSpeech LM text for the language model.
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}
SECONDS=0

stage=1                 # first stage to run: 1 download, 2 per-part data dirs, 3 train/dev sets, 4 LM text
stop_stage=4            # last stage to run
data_url=https://www.openslr.org/resources/12     # LibriSpeech audio (openslr resource 12)
lm_text_url=https://www.openslr.org/resources/11/librispeech-lm-norm.txt.gz   # LM corpus (resource 11)
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

eval_parts="dev-clean dev-other test-clean test-other"
train_parts="train-clean-100 train-clean-360 train-other-500"

if [ ${stage} -le 1 ] && [ ${stop_stage} -ge 1 ]; then
    log "stage 1: download the missing parts into ${LIBRISPEECH}"
    local/download_missing_parts.sh --remove_archive "${remove_archive}" \
        "${LIBRISPEECH}" "${data_url}" ${eval_parts} ${train_parts}
fi

if [ ${stage} -le 2 ] && [ ${stop_stage} -ge 2 ]; then
    log "stage 2: one data directory per part"
    for part in ${eval_parts} ${train_parts}; do
        python3 local/prepare_librispeech.py --output_dir "data/${part//-/_}" "${LIBRISPEECH}/LibriSpeech/${part}"
    done
fi

if [ ${stage} -le 3 ] && [ ${stop_stage} -ge 3 ]; then
    log "stage 3: train_960 and dev"
    python3 local/prepare_librispeech.py --output_dir data/train_960 \
        $(for part in ${train_parts}; do echo "${LIBRISPEECH}/LibriSpeech/${part}"; done)
    python3 local/prepare_librispeech.py --output_dir data/dev \
        "${LIBRISPEECH}/LibriSpeech/dev-clean" "${LIBRISPEECH}/LibriSpeech/dev-other"
fi

if [ ${stage} -le 4 ] && [ ${stop_stage} -ge 4 ]; then
    log "stage 4: LibriSpeech LM text into data/local/other_text/text"
    mkdir -p data/local/other_text
    archive=data/local/other_text/librispeech-lm-norm.txt.gz
    if [ ! -f data/local/other_text/text ]; then
        local/download.sh "${lm_text_url}" "${archive}"
        gzip -t "${archive}" || { log "${archive} is corrupt: delete it and rerun stage 4"; exit 1; }
        # one utterance id per line, as ESPnet's LM stages expect
        gzip -dc "${archive}" | awk 'NF > 0 { printf("librispeech_lm_%08d %s\n", ++n, $0) }' \
            > data/local/other_text/text
    else
        log "data/local/other_text/text exists, not rebuilding it"
    fi
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
