#!/usr/bin/env bash
# Write the audio of a wav.scp as files (or an ark) of one format and sampling rate, in parallel jobs.
#
# Usage: scripts/audio/format_wav_scp.sh [options] <wav.scp> <out-data-dir>
# Writes <out-data-dir>/wav.scp, utt2num_samples and bad_audio.txt (the utterances whose audio is missing or
# unreadable, with the reason; they are left out of wav.scp, and utils/fix_data_dir.sh then drops them from the
# other files). Audio goes to <out-data-dir>/data/format.JOB/, logs to <out-data-dir>/logs/.
set -euo pipefail

nj=1                # The number of parallel jobs.
cmd=utils/run.pl    # The job runner (run.pl or slurm.pl with options).
audio_format=flac   # wav, flac, wav.ark or flac.ark.
fs=16k              # Output sampling rate, e.g. 16000 or 16k.
segments=           # A segments file cutting the recordings of wav.scp into utterances.
help_message=$(cat <<EOM
Usage: $0 [options] <wav.scp> <out-data-dir>
Options:
  --nj            # The number of parallel jobs (default=${nj}).
  --cmd           # The job runner (default=${cmd}).
  --audio_format  # wav, flac, wav.ark or flac.ark (default=${audio_format}).
  --fs            # Output sampling rate, e.g. 16000 or 16k (default=${fs}).
  --segments      # A segments file <utt> <rec> <start> <end> (default="${segments}").
EOM
)
. utils/parse_options.sh
if [ $# -ne 2 ]; then
    echo "${help_message}" 1>&2
    exit 1
fi
wav_scp=$1
out_dir=$2
[ -f "${wav_scp}" ] || { echo "$0: ${wav_scp} does not exist" 1>&2; exit 1; }

fs_hz=$(python3 -c "import sys; v = sys.argv[1].lower(); print(int(float(v[:-1]) * 1000) if v.endswith('k') else int(v))" "${fs}")
key_file=${segments:-${wav_scp}}
num_utts=$(wc -l < "${key_file}")
[ "${num_utts}" -gt 0 ] || { echo "$0: ${key_file} is empty" 1>&2; exit 1; }
nj=$(( nj < num_utts ? nj : num_utts ))
log_dir=${out_dir}/logs
mkdir -p "${log_dir}"
rm -rf "${out_dir}/data"

split_files=()
for n in $(seq "${nj}"); do
    split_files+=("${log_dir}/keys.${n}.scp")
done
utils/split_scp.pl "${key_file}" "${split_files[@]}"
if [ -n "${segments}" ]; then
    job_inputs="--wav_scp ${wav_scp} --segments ${log_dir}/keys.JOB.scp"
else
    job_inputs="--wav_scp ${log_dir}/keys.JOB.scp"
fi

echo "$0: formatting ${num_utts} utterances with ${nj} jobs; logs: ${log_dir}/format_wav_scp.*.log" 1>&2
# shellcheck disable=SC2086
scripts/utils/run_with_progress.sh --total "${num_utts}" --label "format_wav_scp ${out_dir}" \
    --files "${out_dir}/data/format.*/wav.scp ${out_dir}/data/format.*/bad_audio.txt" -- \
    ${cmd} JOB=1:"${nj}" "${log_dir}/format_wav_scp.JOB.log" \
        python3 pyscripts/audio/format_wav_scp.py ${job_inputs} \
            --audio_format "${audio_format}" --fs "${fs_hz}" --out_dir "${out_dir}/data/format.JOB"

for name in wav.scp utt2num_samples bad_audio.txt; do
    for n in $(seq "${nj}"); do
        cat "${out_dir}/data/format.${n}/${name}"
    done > "${out_dir}/${name}"
done
num_bad=$(wc -l < "${out_dir}/bad_audio.txt")
if [ "${num_bad}" -gt 0 ]; then
    echo "$0: WARNING: ${num_bad} of ${num_utts} utterances have missing or unreadable audio and were left out;" \
        "ids and reasons: ${out_dir}/bad_audio.txt" 1>&2
fi
