#!/usr/bin/env bash
# Build the espeak_en corpus offline: everyday English sentences (WordNet's examples, Debian's `wordnet-base`) and
# fortune-cookie sentences (Debian's `fortunes`), read aloud by several speech synthesizers (espeak-ng, flite,
# festival; SVOX Pico for an unseen-synthesizer test set), then Kaldi data dirs and the LM text:
#   data/{train,dev}            read by the training voices of every family in --synthesizers
#   data/test_<family>          the test sentences read by held-out voices of that family (never heard in training)
#   data/<unseen_test_set>      the same sentences read by a synthesizer family never used in training
#   data/test_noisy             the same sentences, each read by one held-out voice, with noise at --snr dB
#   data/{train_mc,dev_mc}      multi-condition copies of train and dev (noise on a share of them)
#   data/local/other_text/text  the LM text: the sources' sentences nobody reads, evaluation passages left out
#
#   local/data.sh                                   # the full corpus
#   local/data.sh --num_train 40 --num_dev 8 --num_test 8 --nj 2     # a tiny one for CI
#
# Voices are FAMILY:NAME (local/synthesizers.py). Speaking rate (tempo) and pitch are drawn per utterance as
# factors of the voice's own. The same --seed gives the same corpus, bit for bit.
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}
SECONDS=0

stage=1             # 1: choose sentences and voices, 2: synthesize, 3: noisy test set, 4: multi-condition train/dev,
stop_stage=5        # 5: LM text (data/local/other_text/text)
nj=2                # parallel synthesis jobs
seed=0              # seeds sentence selection, voices, tempos, pitches and noise
num_train=6000      # utterances of train and dev
num_dev=300
num_test=200        # sentences, read by every test set
min_words=4         # utterance length in words
max_words=12
text_sources="fortunes wordnet"  # local/text_sources.py
vocab_size=4000     # only sentences within the K most frequent words of the sources' pool; 0: no limit
closed_vocabulary=true      # dev/test use only words seen in train (see local/make_plan.py)
train_readings=1    # each training sentence is read this many times (other voice, tempo, pitch)
categories=""       # fortune categories to read; empty: local/fortune_text.py's DEFAULT_CATEGORIES
synthesizers="espeak-ng flite festival"  # the families that read train and dev, each with its held-out test set
# espeak-ng: a voice is an accent + a variant (a speaker); the test variants are never heard under any accent.
train_accents="en-us en-gb en-gb-x-rp en-gb-scotland en-029 en-gb-x-gbclan en-us-nyc en-gb-x-gbcwmd"
train_variants="m1 m3 m4 m5 m6 m7 f1 f3 f4 f5"
test_accents="en-us en-gb en-gb-x-gbclan en-us-nyc"
test_variants="m2 f2"
flite_train_voices="awb slt kal16"      # clustergen (awb: Scottish male, slt: US female) and diphone (kal: US male)
flite_test_voices="rms"                 # clustergen, US male
festival_train_voices="kal_diphone cmu_us_slt_arctic_hts"   # diphone and HTS
festival_test_voices="ked_diphone"      # diphone, US male
unseen_test_set=test_unseen_pico        # read by a family that reads none of the training data
unseen_voices="pico:en-US pico:en-GB"
tempo_range=0.85-1.15   # speaking-rate factor, drawn per utterance
pitch_range=0.85-1.2    # F0 factor, drawn per utterance
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
wordnet_dir=${WORDNET:-/usr/share/wordnet}

if ! command -v sox >/dev/null 2>&1; then
    log "Error: 'sox' not found on PATH: install it (Debian/Ubuntu: apt-get install sox, or run tools/install.sh)"
    exit 1
fi
# local/make_plan.py and local/synthesize.py say which text source, synthesizer or voice is missing and how to get it.

# family_voices FAMILY NAMES: FAMILY:NAME for each name.
family_voices() {
    local name
    for name in $2; do
        printf '%s:%s ' "$1" "${name}"
    done
}

# espeak_voices ACCENTS VARIANTS: every espeak-ng voice ACCENT+VARIANT.
espeak_voices() {
    local accent variant
    for accent in $1; do
        for variant in $2; do
            printf 'espeak-ng:%s+%s ' "${accent}" "${variant}"
        done
    done
}

# Training voices and one held-out test set per family of --synthesizers (test_espeak, test_flite, test_festival).
train_voices=
test_set_options=
for family in ${synthesizers}; do
    case "${family}" in
        espeak-ng)
            train_voices+=$(espeak_voices "${train_accents}" "${train_variants}")
            test_set_options+="--test_set test_espeak $(espeak_voices "${test_accents}" "${test_variants}") " ;;
        flite|festival)
            family_train=${family}_train_voices family_test=${family}_test_voices
            train_voices+=$(family_voices "${family}" "${!family_train}")
            test_set_options+="--test_set test_${family} $(family_voices "${family}" "${!family_test}") " ;;
        *)
            log "Error: --synthesizers: '${family}' is not a training family (espeak-ng, flite, festival)"
            exit 1 ;;
    esac
done

plan_dir=${data_dir}/local/plan
log_dir=${data_dir}/local/log

if [ ${stage} -le 1 ] && [ ${stop_stage} -ge 1 ]; then
    log "stage 1: choose sentences from ${text_sources} and voices of ${synthesizers} (seed ${seed})"
    rm -rf "${plan_dir}"
    # shellcheck disable=SC2046,SC2086
    python3 local/make_plan.py --out_dir "${plan_dir}" --text_sources ${text_sources} \
        --fortune_dir "${fortune_dir}" ${categories:+--categories ${categories}} --wordnet_dir "${wordnet_dir}" \
        --num_train "${num_train}" --num_dev "${num_dev}" --num_test "${num_test}" \
        --min_words "${min_words}" --max_words "${max_words}" --closed_vocabulary "${closed_vocabulary}" \
        --vocab_size "${vocab_size}" --train_readings "${train_readings}" \
        --train_voices ${train_voices} ${test_set_options} \
        ${unseen_voices:+--unseen_test_set ${unseen_test_set} ${unseen_voices}} --mixed_test_set test_mixed \
        --tempo_range "${tempo_range}" --pitch_range "${pitch_range}" --seed "${seed}"
fi

subsets=$(find "${plan_dir}" -name '*.tsv' -printf '%f\n' 2>/dev/null | sed 's/\.tsv$//' | sort | tr '\n' ' ')
if [ ${stage} -le 2 ] && [ ${stop_stage} -ge 2 ]; then
    log "stage 2: synthesize ${subsets}with ${nj} jobs (per-utterance logs: ${log_dir}/synthesize.*.log)"
    for subset in ${subsets}; do
        python3 local/synthesize.py --plan "${plan_dir}/${subset}.tsv" --wav_dir "${audio_dir}/${subset}" \
            --data_dir "${data_dir}/${subset}" --fs "${fs}" --nj "${nj}" \
            --log_file "${log_dir}/synthesize.${subset}.log"
    done
fi

if [ ${stage} -le 3 ] && [ ${stop_stage} -ge 3 ]; then
    log "stage 3: ${data_dir}/test_noisy: ${data_dir}/test_mixed (one held-out voice per test sentence) with ${noise_type} noise at ${snr} dB SNR"
    python3 local/add_noise.py --src_data_dir "${data_dir}/test_mixed" --dst_data_dir "${data_dir}/test_noisy" \
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
    # Extra LM text, as LibriSpeech's data/local/other_text: the sources' sentences nobody reads in the corpus,
    # without any passage (fortune, synset) that holds a dev or test sentence (run.sh adds it to --lm_train_text).
    log "stage 5: ${data_dir}/local/other_text/text: unread sentences for the LM, evaluation passages left out"
    # shellcheck disable=SC2086
    python3 local/lm_text.py --out "${data_dir}/local/other_text/text" --text_sources ${text_sources} \
        --fortune_dir "${fortune_dir}" ${categories:+--categories ${categories}} --wordnet_dir "${wordnet_dir}" \
        --vocab_size "${vocab_size}" --train_text "${data_dir}/train/text" \
        --held_out_text "${data_dir}/dev/text" "${data_dir}/test_mixed/text"
fi

for subset in ${subsets} test_noisy train_mc dev_mc; do
    if [ -f "${data_dir}/${subset}/wav.scp" ]; then
        utils/validate_data_dir.sh --no-feats "${data_dir}/${subset}"
    fi
done
log "Successfully finished. [elapsed=${SECONDS}s]"
