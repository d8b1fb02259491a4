#!/usr/bin/env bash
# SPGISpeech: Samba-ASR trained on the fully formatted transcripts (the "_unnorm" sets, as ESPnet's default).
# asr.sh scores them case-sensitively (sclite -s): the unnormalised WER; local/score.sh scores the same
# hypotheses again after SPGISpeech's normalisation (lower case, no punctuation): the normalised WER, in
# exp_unnorm/<asr_exp>/RESULTS_normalized.md. To train on the normalised text instead, set norm="" below.
# Baseline: --asr_config conf/tuning/train_asr_conformer.yaml.
set -euo pipefail

norm="_unnorm"   # "_unnorm": formatted text (train and score both ways); "": normalised text only
train_set="train_nodev${norm}"
valid_set="dev_4k${norm}"
test_sets="dev_4k${norm} val${norm}"

asr_config=conf/tuning/train_asr_samba_e24_d12_size512_bi.yaml
inference_config=conf/decode_asr.yaml

./asr.sh \
    --lang "en${norm}" \
    --dumpdir "dump${norm}" \
    --expdir "exp${norm}" \
    --ngpu 4 \
    --nbpe 5000 \
    --max_wav_duration 30 \
    --speed_perturb_factors "" \
    --audio_format "flac.ark" \
    --feats_type raw \
    --use_lm false \
    --score_opts "-s" \
    --score_open_asr_normalizer true \
    --asr_config "${asr_config}" \
    --inference_config "${inference_config}" \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --bpe_train_text "data/${train_set}/text" "$@"
