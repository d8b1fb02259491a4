#!/usr/bin/env bash
# Score every decoding of an experiment again after normalising references and hypotheses.
#
# Usage: local/score_normalized.sh --normalizer <script.py> --name <name> [--score_opts "<sclite opts>"] <asr_exp>
#
# For each <asr_exp>/<decode>/<set>/score_wer/{ref,hyp}.trn written by asr.sh (stage 13), <script.py> rewrites
# both files into <asr_exp>/<decode>/<set>/score_wer_<name>/, sclite scores them there (result.txt, the same
# report as asr.sh's), and the totals are collected in <asr_exp>/RESULTS_<name>.md.
set -euo pipefail

normalizer=     # python script: <in.trn> <out.trn>
name=           # suffix of the score directories and of the RESULTS file
score_opts=     # extra sclite options, as asr.sh's --score_opts

. ./path.sh
. utils/parse_options.sh

if [ $# -ne 1 ] || [ -z "${normalizer}" ] || [ -z "${name}" ]; then
    echo "Usage: $0 --normalizer <script.py> --name <name> [--score_opts \"<opts>\"] <asr_exp>" >&2
    exit 2
fi
asr_exp=$1

if ! command -v sclite >/dev/null 2>&1; then
    echo "$0: sclite is not on PATH: install SCTK (Debian/Ubuntu: apt-get install sctk, which puts it in" >&2
    echo "$0: /usr/lib/sctk/bin) or run tools/install.sh, and make path.sh add it to PATH" >&2
    exit 1
fi

shopt -s nullglob
score_dirs=("${asr_exp}"/*/*/score_wer)
if [ ${#score_dirs[@]} -eq 0 ]; then
    echo "$0: no ${asr_exp}/<decode>/<set>/score_wer directories: run asr.sh's scoring stage (13) first" >&2
    exit 1
fi

results=${asr_exp}/RESULTS_${name}.md
{
    echo "# ${asr_exp##*/}: WER after ${name} normalisation"
    echo
    echo "|dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|"
    echo "|---|---|---|---|---|---|---|---|---|"
} > "${results}"
for score_dir in "${score_dirs[@]}"; do
    out_dir=${score_dir}_${name}
    mkdir -p "${out_dir}"
    for trn in ref.trn hyp.trn; do
        python3 "${normalizer}" "${score_dir}/${trn}" "${out_dir}/${trn}"
    done
    # shellcheck disable=SC2086
    sclite ${score_opts} -r "${out_dir}/ref.trn" trn -h "${out_dir}/hyp.trn" trn -i rm -o all stdout \
        > "${out_dir}/result.txt"
    dataset=${out_dir#"${asr_exp}"/}
    awk -v dataset="${dataset%/score_wer_*}" '/Sum\/Avg/ {
        gsub(/\|/, " ")
        printf("|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", dataset, $2, $3, $4, $5, $6, $7, $8, $9)
    }' "${out_dir}/result.txt" >> "${results}"
done
cat "${results}"
