#!/usr/bin/env bash
# GigaSpeech (XL subset by default): Samba-ASR, no LM, scored by asr.sh and again with GigaSpeech's official
# normalisation (local/score.sh -> exp/<asr_exp>/RESULTS_gigaspeech.md). Another subset:
# --local_data_opts "--train_subset M". Baselines: --asr_config conf/tuning/train_asr_conformer.yaml or
# conf/tuning/train_asr_e_branchformer.yaml.
set -euo pipefail

train_set="train"
valid_set="dev"
test_sets="dev test"

asr_config=conf/tuning/train_asr_samba_e24_d12_size512_bi.yaml
inference_config=conf/decode_asr.yaml

./asr.sh \
    --lang en \
    --ngpu 4 \
    --nbpe 5000 \
    --max_wav_duration 30 \
    --speed_perturb_factors "" \
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
