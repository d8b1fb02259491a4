#!/usr/bin/env bash
# Why does the attention-free cross-connection (decoder_conf cross_connection: prefix) learn slowly here, and what
# fixes it? Short trainings that change one thing each against the bidirectional encoder + prefix decoder
# (conf/tuning/train_asr_samba_bidir_prefix.yaml), with the cross-attention decoder as the reference, then tables
# and plots of their validation accuracy (the decoder's teacher-forced token accuracy) and CTC CER epoch by epoch
# (local/training_curves.py), and each decoder's accuracy by token position and utterance length
# (local/decoder_accuracy.py).
#
#   local/diagnose_cross_connection.sh                         # every variant below, 8 epochs each
#   local/diagnose_cross_connection.sh --variants "prefix prefix_reversed" --epochs 4
#
# Needs stages 1-10 of run.sh (data, BPE, LM, statistics). Each variant trains in exp/asr_diag_<variant>
# (train.log there); the tables and plots go to exp/diag_cross_connection/.
set -euo pipefail

epochs=8
variants="attention prefix prefix_reversed prefix_dstate32 prefix_2blocks prefix_reversed_2blocks prefix_ctc0.3"
out_dir=exp/diag_cross_connection

. utils/parse_options.sh
. ./path.sh

# variant_args NAME: the config and asr_train overrides of a variant. The prefix variants start from the
# recipe's prefix config set back to one block reading the audio forward (the form before this study).
variant_args() {
    local prefix="conf/tuning/train_asr_samba_bidir_prefix.yaml --decoder_conf num_blocks=1"
    prefix+=" --decoder_conf memory_order=forward --decoder_conf d_state=8"
    case "$1" in
        attention) echo "conf/tuning/train_asr_samba_bidir_attention.yaml" ;;
        prefix) echo "${prefix}" ;;
        prefix_reversed) echo "${prefix} --decoder_conf memory_order=reversed" ;;
        prefix_dstate32) echo "${prefix} --decoder_conf d_state=32" ;;
        prefix_2blocks) echo "${prefix} --decoder_conf num_blocks=2" ;;
        prefix_reversed_2blocks) echo "${prefix} --decoder_conf memory_order=reversed --decoder_conf num_blocks=2" ;;
        prefix_ctc0.3) echo "${prefix} --model_conf ctc_weight=0.3" ;;
        *) echo "unknown variant '$1'" >&2; return 1 ;;
    esac
}

for variant in ${variants}; do
    read -r config overrides <<< "$(variant_args "${variant}")"
    if [ -f "exp/asr_diag_${variant}/${epochs}epoch.pth" ]; then
        echo "diag ${variant}: trained already (exp/asr_diag_${variant})"
        continue
    fi
    echo "diag ${variant}: ${config} ${overrides} (${epochs} epochs; log exp/asr_diag_${variant}/train.log)"
    ./run.sh --stage 11 --stop_stage 11 --asr_config "${config}" --asr_tag "diag_${variant}" \
        --asr_args "--max_epoch ${epochs} --keep_nbest_models 1 ${overrides}"
done

mkdir -p "${out_dir}"
runs=$(for variant in ${variants}; do printf '%s=exp/asr_diag_%s ' "${variant}" "${variant}"; done)
for metric in acc cer_ctc; do
    # shellcheck disable=SC2086
    python3 local/training_curves.py --out_dir "${out_dir}" --metric "${metric}" ${runs}
done
# shellcheck disable=SC2046
python3 local/decoder_accuracy.py --data_dir dump/raw/dev_mc --out_dir "${out_dir}" \
    $(for variant in ${variants}; do printf '%s=exp/asr_diag_%s/%sepoch.pth ' "${variant}" "${variant}" "${epochs}"; done)
echo "tables and plots: ${out_dir}/{acc,cer_ctc,decoder_accuracy}.{md,png}"
