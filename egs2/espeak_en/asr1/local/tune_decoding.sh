#!/usr/bin/env bash
# Choose the LM weight and the length bonus (penalty) of conf/decode_asr.yaml on a development set: decode it with
# every pair of the grid (run.sh's stage 12-13, conf/decode_asr.yaml's other options), then print the WER table.
#
#   local/tune_decoding.sh --asr_config conf/train_asr_samba.yaml
#   local/tune_decoding.sh --asr_config conf/train_asr_samba.yaml --lm_weights "0.3 0.5" --penalties "0.5 1.5"
#
# Needs the model trained (run.sh stage 11). Each pair decodes into its own exp/asr_*/tune_lm<w>_penalty<p>
# directory; the table goes to exp/tune_decoding/<asr_exp>.md.
set -euo pipefail

asr_config=conf/train_asr_samba.yaml
asr_tag=
dev_set=dev_mc
lm_weights="0.2 0.4 0.6"
penalties="0.0 1.0 2.0"

. utils/parse_options.sh
. ./path.sh

tag_options=()
[ -n "${asr_tag}" ] && tag_options=(--asr_tag "${asr_tag}")
for lm_weight in ${lm_weights}; do
    for penalty in ${penalties}; do
        ./run.sh --stage 12 --stop_stage 13 --asr_config "${asr_config}" "${tag_options[@]}" --test_sets "${dev_set}" \
            --inference_tag "tune_lm${lm_weight}_penalty${penalty}" \
            --inference_args "--lm_weight ${lm_weight} --penalty ${penalty}"
    done
done

asr_exp=exp/asr_${asr_tag:-$(basename "${asr_config}" .yaml)_raw_en_bpe150}
mkdir -p exp/tune_decoding
python3 - "${asr_exp}" "${dev_set}" "${lm_weights}" "${penalties}" > "exp/tune_decoding/$(basename "${asr_exp}").md" <<'PYTHON'
import sys
from pathlib import Path
sys.path.insert(0, "local")
from compare_models import sclite_wer
exp, dev_set, lm_weights, penalties = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
print(f"WER (%) on {dev_set}, {exp}: LM weight (rows) x length bonus per token (columns)\n")
print("| lm_weight | " + " | ".join(penalties) + " |")
print("|---:|" + "---:|" * len(penalties))
for lm_weight in lm_weights:
    results = [Path(exp) / f"tune_lm{lm_weight}_penalty{penalty}" / dev_set / "score_wer" / "result.txt"
               for penalty in penalties]
    print(f"| {lm_weight} | " + " | ".join(f"{sclite_wer(result):.1f}" for result in results) + " |")
PYTHON
cat "exp/tune_decoding/$(basename "${asr_exp}").md"
