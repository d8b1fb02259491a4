#!/usr/bin/env bash
# LibriSpeech 960 h: Samba-ASR trained on train_960 (with speed perturbation), decoded with a Transformer LM
# trained on train_960 text + the LibriSpeech LM corpus. Without the LM: --use_lm false
# --inference_config conf/decode_asr_nolm.yaml. Baselines: --asr_config conf/tuning/train_asr_conformer.yaml or
# conf/tuning/train_asr_e_branchformer.yaml.
set -euo pipefail

train_set="train_960"
valid_set="dev"
test_sets="test_clean test_other dev_clean dev_other"

asr_config=conf/tuning/train_asr_samba_e24_d12_size512_bi.yaml
lm_config=conf/tuning/train_lm_transformer.yaml
inference_config=conf/decode_asr.yaml

./asr.sh \
    --lang en \
    --ngpu 4 \
    --nbpe 5000 \
    --max_wav_duration 30 \
    --speed_perturb_factors "0.9 1.0 1.1" \
    --audio_format "flac.ark" \
    --feats_type raw \
    --use_lm true \
    --score_open_asr_normalizer true \
    --asr_config "${asr_config}" \
    --lm_config "${lm_config}" \
    --inference_config "${inference_config}" \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --lm_train_text "data/${train_set}/text data/local/other_text/text" \
    --bpe_train_text "data/${train_set}/text" "$@"
