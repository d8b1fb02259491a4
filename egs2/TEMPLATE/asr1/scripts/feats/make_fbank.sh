#!/usr/bin/env bash
# Compute 80-dim log-mel filterbank features (Kaldi-compatible, in Python) for a data directory, in parallel jobs.
#
# Usage: scripts/feats/make_fbank.sh [options] <data-dir>
# Reads <data-dir>/wav.scp (and segments); writes <data-dir>/feats.scp (Kaldi ark/scp, arks in <data-dir>/data/),
# feats_shape ("<utt> <frames>,<dim>"), feats_dim, frame_shift (ms) and bad_audio.txt (utterances whose audio is
# missing or unreadable, with the reason; they are left out of feats.scp, and utils/fix_data_dir.sh then drops
# them from the other files). Logs: <data-dir>/logs/make_fbank.*.log.
set -euo pipefail

nj=1                # The number of parallel jobs.
cmd=utils/run.pl    # The job runner.
fs=16k              # Sampling rate the audio is resampled to before feature extraction.
fbank_conf=         # Kaldi-style options ("--num-mel-bins=80"); default conf/fbank.conf if it exists.
help_message=$(cat <<EOM
Usage: $0 [options] <data-dir>
Options:
  --nj          # The number of parallel jobs (default=${nj}).
  --cmd         # The job runner (default=${cmd}).
  --fs          # Sampling rate, e.g. 16000 or 16k (default=${fs}).
  --fbank_conf  # Kaldi-style feature options (default: conf/fbank.conf if it exists).
EOM
)
. utils/parse_options.sh
if [ $# -ne 1 ]; then
    echo "${help_message}" 1>&2
    exit 1
fi
data_dir=$1
[ -f "${data_dir}/wav.scp" ] || { echo "$0: ${data_dir}/wav.scp does not exist" 1>&2; exit 1; }
if [ -z "${fbank_conf}" ] && [ -f conf/fbank.conf ]; then
    fbank_conf=conf/fbank.conf
fi

fs_hz=$(python3 -c "import sys; v = sys.argv[1].lower(); print(int(float(v[:-1]) * 1000) if v.endswith('k') else int(v))" "${fs}")
if [ -f "${data_dir}/segments" ]; then
    key_file=${data_dir}/segments
else
    key_file=${data_dir}/wav.scp
fi
num_utts=$(wc -l < "${key_file}")
nj=$(( nj < num_utts ? nj : num_utts ))
log_dir=${data_dir}/logs
mkdir -p "${log_dir}"
rm -rf "${data_dir}/data"

split_files=()
for n in $(seq "${nj}"); do
    split_files+=("${log_dir}/fbank_keys.${n}.scp")
done
utils/split_scp.pl "${key_file}" "${split_files[@]}"
if [ -f "${data_dir}/segments" ]; then
    job_inputs="--wav_scp ${data_dir}/wav.scp --segments ${log_dir}/fbank_keys.JOB.scp"
else
    job_inputs="--wav_scp ${log_dir}/fbank_keys.JOB.scp"
fi
conf_opts=
[ -n "${fbank_conf}" ] && conf_opts="--fbank_conf ${fbank_conf}"

echo "$0: computing fbank features of ${num_utts} utterances with ${nj} jobs; logs: ${log_dir}/make_fbank.*.log" 1>&2
# shellcheck disable=SC2086
scripts/utils/run_with_progress.sh --total "${num_utts}" --label "make_fbank ${data_dir}" \
    --files "${data_dir}/data/fbank.*/feats_shape ${data_dir}/data/fbank.*/bad_audio.txt" -- \
    ${cmd} JOB=1:"${nj}" "${log_dir}/make_fbank.JOB.log" \
        python3 pyscripts/feats/compute_fbank_feats.py ${job_inputs} ${conf_opts} \
            --fs "${fs_hz}" --out_dir "${data_dir}/data/fbank.JOB"

for name in feats.scp feats_shape bad_audio.txt; do
    for n in $(seq "${nj}"); do
        cat "${data_dir}/data/fbank.${n}/${name}"
    done > "${data_dir}/${name}"
done
head -n 1 "${data_dir}/feats_shape" | awk '{ print $2 }' | cut -d, -f2 > "${data_dir}/feats_dim"
cp "${data_dir}/data/fbank.1/frame_shift" "${data_dir}/frame_shift"
num_bad=$(wc -l < "${data_dir}/bad_audio.txt")
if [ "${num_bad}" -gt 0 ]; then
    echo "$0: WARNING: ${num_bad} of ${num_utts} utterances have missing or unreadable audio and were left out;" \
        "ids and reasons: ${data_dir}/bad_audio.txt" 1>&2
fi
