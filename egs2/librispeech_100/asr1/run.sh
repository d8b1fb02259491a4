#!/usr/bin/env bash
# LibriSpeech 100 h: Samba-ASR trained on train_clean_100 (with speed perturbation), no LM.
# Baselines: --asr_config conf/tuning/train_asr_conformer.yaml or conf/tuning/train_asr_e_branchformer.yaml.
set -euo pipefail

train_set="train_clean_100"
valid_set="dev"
test_sets="test_clean test_other dev_clean dev_other"

asr_config=conf/tuning/train_asr_samba_e28_d18_size256_bi.yaml
inference_config=conf/decode_asr.yaml

./asr.sh \
    --lang en \
    --ngpu 1 \
    --nbpe 5000 \
    --max_wav_duration 30 \
    --speed_perturb_factors "0.9 1.0 1.1" \
    --audio_format "flac.ark" \
    --feats_type raw \
    --use_lm false \
    --score_open_asr_normalizer true \
    --asr_config "${asr_config}" \
    --inference_config "${inference_config}" \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --bpe_train_text "data/${train_set}/text" "$@"
