#!/usr/bin/env bash
# The Samba-ASR forms and the Conformer baseline at equal training time, decoded and scored alike:
#   causal_prefix      the paper's form: causal encoder + attention-free Mamba decoder (conf/tuning/train_asr_samba_*)
#   bidir_prefix       bidirectional encoder + attention-free Mamba decoder
#   bidir_attention    bidirectional encoder + Mamba decoder with cross-attention
#   causal_attention   causal encoder + cross-attention, also streamed (640 ms chunks): the streaming model
#   conformer          ESPnet's Conformer + Transformer decoder (conf/train_asr_conformer.yaml)
#
#   local/compare_models.sh                       # every form, 12 minutes of training each
#   local/compare_models.sh --forms "bidir_prefix conformer" --minutes 6
#
# Equal training time: each form trains one epoch, and the time of that epoch (train + validation, from its
# train.log) sets its max_epoch so that the whole run takes --minutes; training then resumes to that epoch (the
# learning-rate schedule does not depend on max_epoch, so the split changes nothing). Measure on an otherwise idle
# machine. Decoding: run.sh's (conf/decode_asr.yaml, the LM, no lexicon) on every test set, and the forms in
# --streamed_forms also through the streaming recogniser at --chunk_ms. Needs run.sh's stages 1-10 done.
# Results: exp/compare_models/wer.{md,png} (local/compare_models.py), each form in exp/asr_compare_<form>.
set -euo pipefail

minutes=12
forms="causal_prefix bidir_prefix bidir_attention causal_attention conformer"
streamed_forms="causal_attention causal_prefix"
chunk_ms=640
out_dir=exp/compare_models

. utils/parse_options.sh
. ./path.sh

config_of() {
    if [ "$1" = conformer ]; then echo conf/train_asr_conformer.yaml; else echo "conf/tuning/train_asr_samba_$1.yaml"; fi
}

# epochs_for_budget EXP_DIR: the epochs that fit --minutes at the first epoch's train + validation time.
epochs_for_budget() {
    python3 -c "import sys; sys.path.insert(0, 'local'); from pathlib import Path; from training_curves import epochs_within
print(epochs_within(Path('$1'), ${minutes}))"
}

for form in ${forms}; do
    tag=compare_${form}
    exp_dir=exp/asr_${tag}
    config=$(config_of "${form}")
    if [ ! -f "${exp_dir}/epochs_for_budget" ]; then
        echo "compare ${form}: one epoch to time it (${config}; log ${exp_dir}/train.log)"
        ./run.sh --stage 11 --stop_stage 11 --asr_config "${config}" --asr_tag "${tag}" --asr_args "--max_epoch 1"
        epochs_for_budget "${exp_dir}" > "${exp_dir}/epochs_for_budget"
    fi
    epochs=$(<"${exp_dir}/epochs_for_budget")
    echo "compare ${form}: ${epochs} epochs for ${minutes} minutes"
    ./run.sh --stage 11 --stop_stage 13 --asr_config "${config}" --asr_tag "${tag}" --asr_args "--max_epoch ${epochs}"
    if [[ " ${streamed_forms} " == *" ${form} "* ]]; then
        ./run.sh --stage 12 --stop_stage 13 --asr_config "${config}" --asr_tag "${tag}" \
            --use_streaming true --streaming_chunk_length $((16 * chunk_ms))
    fi
done

# shellcheck disable=SC2046
python3 local/compare_models.py --out_dir "${out_dir}" --minutes "${minutes}" \
    $(for form in ${forms}; do printf '%s=exp/asr_compare_%s ' "${form}" "${form}"; done)
