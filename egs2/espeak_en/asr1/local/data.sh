#!/usr/bin/env bash
# Build the espeak_en corpus offline: English sentences from the fortune database (Debian package `fortunes`)
# read aloud by espeak-ng voices, then Kaldi data dirs data/{train,dev,test,test_noisy,train_mc,dev_mc} and
# the LM text data/local/other_text/text.
#
#   local/data.sh                                   # the full corpus (5000/200/300 utterances)
#   local/data.sh --num_train 40 --num_dev 8 --num_test 8 --nj 2     # a tiny one for CI
#
# train and dev are spoken by every accent of --train_accents with every variant of --train_variants; test by
# --test_accents x --test_variants. A variant is a speaker (formants, pitch, voice quality): the test variants
# are never heard in training under any accent (held-out speakers, as in ASR test sets; the accents, like a
# corpus's dialects, are shared). test_noisy holds the
# test utterances with additive noise at --snr dB. Speaking rate (espeak-ng -s) and pitch (-p) are drawn per
# utterance. The same --seed gives the same corpus, bit for bit.
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}
SECONDS=0

stage=1             # 1: choose sentences and voices, 2: synthesize, 3: noisy test copy, 4: multi-condition train/dev,
stop_stage=5        # 5: LM text (data/local/other_text/text)
nj=2                # parallel espeak-ng jobs
seed=0              # seeds sentence selection, voices, rates, pitches and noise
num_train=5000      # utterances per subset
num_dev=200
num_test=300
min_words=4         # utterance length in words
max_words=12
closed_vocabulary=true      # dev/test use only words seen in train (see local/make_plan.py)
vocab_size=0        # only sentences within the K most frequent words of the pool; 0: no limit
train_readings=1    # each training sentence is read this many times (other voice, rate, pitch)
categories=""       # fortune categories to read; empty: local/fortune_text.py's DEFAULT_CATEGORIES
train_accents="en-us en-gb en-gb-x-rp en-gb-scotland en-029 en-gb-x-gbclan en-us-nyc en-gb-x-gbcwmd"
train_variants="m1 m3 m4 m5 m6 m7 f1 f3 f4 f5"
test_accents="en-us en-gb en-gb-x-gbclan en-us-nyc"
test_variants="m2 f2"
rate_range=150-190  # espeak-ng -s (words per minute), drawn per utterance
pitch_range=30-70   # espeak-ng -p (0-99), drawn per utterance
snr=10              # dB, for test_noisy
noise_type=white    # white or pink
train_noisy_fraction=0.5    # share of train_mc/dev_mc utterances with noise (multi-condition training)
train_snr=5-20      # dB, drawn per utterance for train_mc/dev_mc
train_noise_types="white pink"  # drawn per utterance for train_mc/dev_mc
fs=16000
audio_dir=downloads/espeak_en       # where the wav files go
data_dir=data

log "$0 $*"
. utils/parse_options.sh

if [ $# -ne 0 ]; then
    log "Error: No positional arguments are required."
    exit 2
fi

. ./path.sh
. ./cmd.sh
. ./db.sh
fortune_dir=${FORTUNES:-/usr/share/games/fortunes}

for program in espeak-ng sox; do
    if ! command -v "${program}" >/dev/null 2>&1; then
        log "Error: '${program}' not found on PATH: install it (Debian/Ubuntu: apt-get install ${program}, or run tools/install.sh)"
        exit 1
    fi
done
if [ ! -d "${fortune_dir}" ]; then
    log "Error: fortune database not found at ${fortune_dir}: install Debian's 'fortunes' package (apt-get install fortunes, or run tools/install.sh), or set FORTUNES in db.sh"
    exit 1
fi

# voices ACCENTS VARIANTS: every espeak-ng voice ACCENT+VARIANT.
voices() {
    local accent variant
    for accent in $1; do
        for variant in $2; do
            printf '%s+%s ' "${accent}" "${variant}"
        done
    done
}

plan_dir=${data_dir}/local/plan
log_dir=${data_dir}/local/log

if [ ${stage} -le 1 ] && [ ${stop_stage} -ge 1 ]; then
    log "stage 1: choose sentences from ${fortune_dir} and voices (seed ${seed})"
    # shellcheck disable=SC2046
    python3 local/make_plan.py --out_dir "${plan_dir}" --fortune_dir "${fortune_dir}" \
        ${categories:+--categories ${categories}} \
        --num_train "${num_train}" --num_dev "${num_dev}" --num_test "${num_test}" \
        --min_words "${min_words}" --max_words "${max_words}" --closed_vocabulary "${closed_vocabulary}" \
        --vocab_size "${vocab_size}" --train_readings "${train_readings}" \
        --train_voices $(voices "${train_accents}" "${train_variants}") \
        --test_voices $(voices "${test_accents}" "${test_variants}") \
        --rate_range "${rate_range}" --pitch_range "${pitch_range}" --seed "${seed}"
fi

if [ ${stage} -le 2 ] && [ ${stop_stage} -ge 2 ]; then
    log "stage 2: synthesize train, dev, test with ${nj} jobs (per-utterance logs: ${log_dir}/synthesize.*.log)"
    for subset in train dev test; do
        python3 local/synthesize.py --plan "${plan_dir}/${subset}.tsv" --wav_dir "${audio_dir}/${subset}" \
            --data_dir "${data_dir}/${subset}" --fs "${fs}" --nj "${nj}" \
            --log_file "${log_dir}/synthesize.${subset}.log"
    done
fi

if [ ${stage} -le 3 ] && [ ${stop_stage} -ge 3 ]; then
    log "stage 3: ${data_dir}/test_noisy: ${data_dir}/test with ${noise_type} noise at ${snr} dB SNR"
    python3 local/add_noise.py --src_data_dir "${data_dir}/test" --dst_data_dir "${data_dir}/test_noisy" \
        --wav_dir "${audio_dir}/test_noisy" --snr "${snr}" --noise_type "${noise_type}" --seed "${seed}"
fi

if [ ${stage} -le 4 ] && [ ${stop_stage} -ge 4 ]; then
    # Multi-condition training data: a share of train and dev with noise at random SNRs and types. The seed
    # differs from test_noisy's and so do the utterance ids: no noise realisation of test_noisy is ever seen.
    for subset in train dev; do
        log "stage 4: ${data_dir}/${subset}_mc: ${data_dir}/${subset}, ${train_noisy_fraction} of it with ${train_noise_types} noise at ${train_snr} dB SNR"
        # shellcheck disable=SC2086
        python3 local/add_noise.py --src_data_dir "${data_dir}/${subset}" --dst_data_dir "${data_dir}/${subset}_mc" \
            --wav_dir "${audio_dir}/${subset}_mc" --snr "${train_snr}" --noise_type ${train_noise_types} \
            --fraction "${train_noisy_fraction}" --seed "$((seed + 1))"
    done
fi

if [ ${stage} -le 5 ] && [ ${stop_stage} -ge 5 ]; then
    # Extra LM text, as LibriSpeech's data/local/other_text: the fortune sentences nobody reads in the corpus,
    # without any fortune that holds a dev or test sentence (run.sh adds it to the LM's --lm_train_text).
    log "stage 5: ${data_dir}/local/other_text/text: fortune sentences for the LM, evaluation fortunes left out"
    # shellcheck disable=SC2086
    python3 local/lm_text.py --out "${data_dir}/local/other_text/text" --fortune_dir "${fortune_dir}" \
        ${categories:+--categories ${categories}} --train_text "${data_dir}/train/text" \
        --held_out_text "${data_dir}/dev/text" "${data_dir}/test/text"
fi

for subset in train dev test test_noisy train_mc dev_mc; do
    if [ -f "${data_dir}/${subset}/wav.scp" ]; then
        utils/validate_data_dir.sh --no-feats "${data_dir}/${subset}"
    fi
done
log "Successfully finished. [elapsed=${SECONDS}s]"
