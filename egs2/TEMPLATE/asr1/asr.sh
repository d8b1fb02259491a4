#!/usr/bin/env bash
# The ASR recipe template: data preparation, tokenisation, (LM), ASR training, decoding, scoring and packing,
# with ESPnet's stage numbers and option names. Run from a recipe directory egs2/<name>/asr1 (see README.md).

# Exit on error, on undefined variables and on failures inside pipelines; ERR traps also fire inside functions.
set -Eeuo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}
min() {
    local a b
    a=$1
    for b in "$@"; do
        if [ "${b}" -le "${a}" ]; then
            a="${b}"
        fi
    done
    echo "${a}"
}
# max_epoch_of ARGS CONFIG: the number of training epochs, for the progress lines: --max_epoch in ARGS, else
# max_epoch in the CONFIG file (may be empty), else ESPnet's default 40.
max_epoch_of() {
    python3 -c "
import re, sys
args = re.search(r'--max_epoch[= ](\d+)', sys.argv[1])
conf = re.search(r'^max_epoch:\s*(\d+)', open(sys.argv[2]).read(), re.M) if sys.argv[2] else None
print((args or conf).group(1) if (args or conf) else 40)" "$1" "$2"
}

# split_into_jobs <key-file> <prefix> <nj>: split a key file into <prefix>.1.scp .. <prefix>.<nj>.scp.
split_into_jobs() {
    local key_file=$1 prefix=$2 nj=$3 n
    local split_scps=()
    for n in $(seq "${nj}"); do
        split_scps+=("${prefix}.${n}.scp")
    done
    utils/split_scp.pl "${key_file}" "${split_scps[@]}"
}
SECONDS=0

# What is running now, for the failure message of the ERR trap.
current_stage="option parsing"
current_log="(printed above)"
on_error() {
    local status=$?
    log "Error: stage ${current_stage} failed (exit status ${status}, ${BASH_SOURCE[1]:-asr.sh} line $1)."
    log "Error: see the log: ${current_log}"
    log "Error: after fixing the cause, resume with: $0 ... --stage ${current_stage%%:*}"
    exit "${status}"
}
trap 'on_error ${LINENO}' ERR
begin_stage() {
    current_stage="$1"
    current_log="$2"
}

# General configuration
stage=1              # Processes starts from the specified stage.
stop_stage=10000     # Processes is stopped at the specified stage.
skip_data_prep=false # Skip data preparation stages.
skip_train=false     # Skip training stages.
skip_eval=false      # Skip decoding and evaluation stages.
skip_packing=true    # Skip the packing stage.
ngpu=1               # The number of gpus ("0" uses cpu, otherwise use gpu).
num_nodes=1          # The number of nodes.
train_num_threads=1  # CPU threads of each LM/ASR training process (job runner option --num_threads).
nj=32                # The number of parallel jobs.
inference_nj=32      # The number of parallel jobs in decoding.
gpu_inference=false  # Whether to perform gpu decoding.
dumpdir=dump         # Directory to dump features.
expdir=exp           # Directory to save experiments.
python=python3       # Specify python to execute espnet commands (any command string, e.g. "coverage run --append").

# Data preparation related
local_data_opts= # The options given to local/data.sh.

# Speed perturbation related
speed_perturb_factors=  # perturbation factors, e.g. "0.9 1.0 1.1" (separated by space).

# Feature extraction related
feats_type=raw       # Feature type (raw or fbank).
audio_format=flac    # Audio format: wav, flac, wav.ark, flac.ark  (only in feats_type=raw).
fs=16k               # Sampling rate.
min_wav_duration=0.1 # Minimum duration in second.
max_wav_duration=20  # Maximum duration in second.

# Tokenization related
token_type=bpe      # Tokenization type (char, word or bpe).
nbpe=30             # The number of BPE vocabulary.
bpemode=unigram     # Mode of BPE (unigram or bpe).
oov="<unk>"         # Out of vocabulary symbol.
blank="<blank>"     # CTC blank symbol
sos_eos="<sos/eos>" # sos and eos symbole
bpe_input_sentence_size=100000000 # Size of input sentence for BPE.
bpe_nlsyms=         # non-linguistic symbols list, separated by a comma, for BPE
bpe_char_cover=1.0  # character coverage when modeling BPE

# Ngram model related
use_ngram=false
ngram_exp=
ngram_num=3

# Language model related
use_lm=true       # Use language model for ASR decoding.
lm_tag=           # Suffix to the result dir for language model training.
lm_exp=           # Specify the directory path for LM experiment.
                  # If this option is specified, lm_tag is ignored.
lm_stats_dir=     # Specify the directory path for LM statistics.
lm_config=        # Config for language model training.
lm_args=          # Arguments for language model training, e.g., "--max_epoch 10".
                  # Note that it will overwrite args in lm config.

# ASR model related
asr_tag=       # Suffix to the result dir for asr model training.
asr_exp=       # Specify the directory path for ASR experiment.
               # If this option is specified, asr_tag is ignored.
asr_stats_dir= # Specify the directory path for ASR statistics.
asr_config=    # Config for asr model training.
asr_args=      # Arguments for asr model training, e.g., "--max_epoch 10".
               # Note that it will overwrite args in asr config.
pretrained_model=          # Pretrained model to load
ignore_init_mismatch=false # Ignore initial mismatch
feats_normalize=global_mvn # Normalizaton layer type.

# Decoding related
batch_size=1
inference_tag=    # Suffix to the result dir for decoding.
inference_config= # Config for decoding.
inference_args=   # Arguments for decoding, e.g., "--lm_weight 0.1".
                  # Note that it will overwrite args in inference config.
inference_lm=valid.loss.ave.pth       # Language model path for decoding.
inference_ngram=${ngram_num}gram.bin
inference_asr_model=valid.acc.ave.pth # ASR model path for decoding.
                                      # e.g.
                                      # inference_asr_model=train.loss.best.pth
                                      # inference_asr_model=3epoch.pth
                                      # inference_asr_model=valid.acc.best.pth
                                      # inference_asr_model=valid.loss.ave.pth
use_lexicon=false     # Decode only words of the LM text (stage 5 writes the list; espnet_samba.bin.asr_inference).
word_vocab_size=0     # The lexicon's size: the most frequent words of the LM text (0: all of them).
use_streaming=false       # Decode each utterance as a stream (espnet_samba.bin.asr_inference_streaming; causal encoder).
streaming_chunk_length=0  # With --use_streaming true: samples (feature frames with --feats_type fbank) per chunk (0: all).

# [Task dependent] Set the datadir name created by local/data.sh
train_set=       # Name of training set.
valid_set=       # Name of validation set used for monitoring/tuning network training.
test_sets=       # Names of test sets. Multiple items (e.g., both dev and eval sets) can be specified.
bpe_train_text=  # Text file path of bpe training set.
lm_train_text=   # Text file path of language model training set.
lm_dev_text=     # Text file path of language model development set.
lm_test_text=    # Text file path of language model evaluation set.
nlsyms_txt=none  # Non-linguistic symbol list if existing.
cleaner=none     # Text cleaner.
g2p=none         # g2p method (needed if token_type=phn).
lang=noinfo      # The language type of corpus.
score_opts=                # The options given to sclite scoring
local_score_opts=          # The options given to local/score.sh.
score_open_asr_normalizer=false # Also score WER after the Open ASR Leaderboard English normaliser.
asr_speech_fold_length=800 # fold_length for speech data during ASR training.
asr_text_fold_length=150   # fold_length for text data during ASR training.
lm_fold_length=150         # fold_length for LM training.

help_message=$(cat << EOF
Usage: $0 --train_set "<train_set_name>" --valid_set "<valid_set_name>" --test_sets "<test_set_names>"

Stages: 1 data preparation (local/data.sh), 2 speed perturbation, 3 audio formatting / feature extraction,
  4 removal of short/long utterances and empty transcripts, 5 token list (sentencepiece BPE, char or word),
  6-8 LM statistics / training / perplexity, 9 n-gram LM, 10 ASR statistics, 11 ASR training, 12 decoding,
  13 scoring (sclite; RESULTS.md), 14 packing (with --skip_packing false).

Options:
    # General configuration
    --stage          # Processes starts from the specified stage (default="${stage}").
    --stop_stage     # Processes is stopped at the specified stage (default="${stop_stage}").
    --skip_data_prep # Skip data preparation stages (default="${skip_data_prep}").
    --skip_train     # Skip training stages (default="${skip_train}").
    --skip_eval      # Skip decoding and evaluation stages (default="${skip_eval}").
    --skip_packing   # Skip the packing stage (default="${skip_packing}").
    --ngpu           # The number of gpus ("0" uses cpu, otherwise use gpu, default="${ngpu}").
    --num_nodes      # The number of nodes (default="${num_nodes}").
    --train_num_threads # CPU threads of each LM/ASR training process (default="${train_num_threads}").
    --nj             # The number of parallel jobs (default="${nj}").
    --inference_nj   # The number of parallel jobs in decoding (default="${inference_nj}").
    --gpu_inference  # Whether to perform gpu decoding (default="${gpu_inference}").
    --dumpdir        # Directory to dump features (default="${dumpdir}").
    --expdir         # Directory to save experiments (default="${expdir}").
    --python         # Specify python to execute espnet commands (default="${python}").

    # Data preparation related
    --local_data_opts # The options given to local/data.sh (default="${local_data_opts}").

    # Speed perturbation related
    --speed_perturb_factors # speed perturbation factors, e.g. "0.9 1.0 1.1" (separated by space, default="${speed_perturb_factors}").

    # Feature extraction related
    --feats_type       # Feature type (raw or fbank, default="${feats_type}").
    --audio_format     # Audio format: wav, flac, wav.ark, flac.ark  (only in feats_type=raw, default="${audio_format}").
    --fs               # Sampling rate (default="${fs}").
    --min_wav_duration # Minimum duration in second (default="${min_wav_duration}").
    --max_wav_duration # Maximum duration in second (default="${max_wav_duration}").

    # Tokenization related
    --token_type              # Tokenization type (char, word or bpe, default="${token_type}").
    --nbpe                    # The number of BPE vocabulary (default="${nbpe}").
    --bpemode                 # Mode of BPE (unigram or bpe, default="${bpemode}").
    --oov                     # Out of vocabulary symbol (default="${oov}").
    --blank                   # CTC blank symbol (default="${blank}").
    --sos_eos                 # sos and eos symbole (default="${sos_eos}").
    --bpe_input_sentence_size # Size of input sentence for BPE (default="${bpe_input_sentence_size}").
    --bpe_nlsyms              # Non-linguistic symbol list for sentencepiece, separated by a comma. (default="${bpe_nlsyms}").
    --bpe_char_cover          # Character coverage when modeling BPE (default="${bpe_char_cover}").

    # Ngram model related
    --use_ngram       # Use an n-gram LM (KenLM's lmplz and build_binary must be on PATH, default="${use_ngram}").
    --ngram_exp       # Directory of the n-gram LM (default="${ngram_exp}").
    --ngram_num       # The order of the n-gram LM (default="${ngram_num}").

    # Language model related
    --use_lm          # Use language model for ASR decoding (default="${use_lm}").
    --lm_tag          # Suffix to the result dir for language model training (default="${lm_tag}").
    --lm_exp          # Specify the directory path for LM experiment.
                      # If this option is specified, lm_tag is ignored (default="${lm_exp}").
    --lm_stats_dir    # Specify the directory path for LM statistics (default="${lm_stats_dir}").
    --lm_config       # Config for language model training (default="${lm_config}").
    --lm_args         # Arguments for language model training (default="${lm_args}").
                      # e.g., --lm_args "--max_epoch 10"
                      # Note that it will overwrite args in lm config.

    # ASR model related
    --asr_tag          # Suffix to the result dir for asr model training (default="${asr_tag}").
    --asr_exp          # Specify the directory path for ASR experiment.
                       # If this option is specified, asr_tag is ignored (default="${asr_exp}").
    --asr_stats_dir    # Specify the directory path for ASR statistics (default="${asr_stats_dir}").
    --asr_config       # Config for asr model training (default="${asr_config}").
    --asr_args         # Arguments for asr model training (default="${asr_args}").
                       # e.g., --asr_args "--max_epoch 10"
                       # Note that it will overwrite args in asr config.
    --pretrained_model     # Pretrained model to load (default="${pretrained_model}").
    --ignore_init_mismatch # Ignore mismatch parameter init with pretrained model (default="${ignore_init_mismatch}").
    --feats_normalize  # Normalizaton layer type (default="${feats_normalize}").

    # Decoding related
    --batch_size          # Decoding batch size (default="${batch_size}").
    --inference_tag       # Suffix to the result dir for decoding (default="${inference_tag}").
    --inference_config    # Config for decoding (default="${inference_config}").
    --inference_args      # Arguments for decoding (default="${inference_args}").
                          # e.g., --inference_args "--lm_weight 0.1"
                          # Note that it will overwrite args in inference config.
    --inference_lm        # Language model path for decoding (default="${inference_lm}").
    --inference_ngram     # N-gram LM file for decoding (default="${inference_ngram}").
    --inference_asr_model # ASR model path for decoding (default="${inference_asr_model}").
    --use_lexicon         # Decode only words of the LM text: stage 5 writes them to a lexicon, stage 12 decodes
                          # with espnet_samba.bin.asr_inference --lexicon (default="${use_lexicon}").
    --word_vocab_size     # The lexicon's size, most frequent words first; 0 keeps all (default="${word_vocab_size}").
    --use_streaming       # Decode each utterance as a stream, chunk by chunk: CTC prefix search and attention rescoring
                          # with espnet_samba.bin.asr_inference_streaming; needs a causal encoder (default="${use_streaming}").
    --streaming_chunk_length # With --use_streaming true: samples per chunk, its --sim_chunk_length (feature frames
                          # with --feats_type fbank: 32 frames of 10 ms = 320 ms); 0 feeds each utterance at once
                          # (default="${streaming_chunk_length}").

    # [Task dependent] Set the datadir name created by local/data.sh
    --train_set     # Name of training set (required).
    --valid_set     # Name of validation set used for monitoring/tuning network training (required).
    --test_sets     # Names of test sets.
                    # Multiple items (e.g., both dev and eval sets) can be specified (required).
    --bpe_train_text # Text file path of bpe training set.
    --lm_train_text  # Text file path of language model training set.
    --lm_dev_text   # Text file path of language model development set (default="${lm_dev_text}").
    --lm_test_text  # Text file path of language model evaluation set (default="${lm_test_text}").
    --nlsyms_txt    # Non-linguistic symbol list if existing (default="${nlsyms_txt}").
    --cleaner       # Text cleaner (default="${cleaner}").
    --g2p           # g2p method (default="${g2p}").
    --lang          # The language type of corpus (default=${lang}).
    --score_opts             # The options given to sclite scoring (default="${score_opts}").
    --local_score_opts       # The options given to local/score.sh (default="${local_score_opts}").
    --score_open_asr_normalizer # Also score WER with the Open ASR Leaderboard English normaliser
                                # (needs whisper-normalizer, default="${score_open_asr_normalizer}").
    --asr_speech_fold_length # fold_length for speech data during ASR training (default="${asr_speech_fold_length}").
    --asr_text_fold_length   # fold_length for text data during ASR training (default="${asr_text_fold_length}").
    --lm_fold_length         # fold_length for LM training (default="${lm_fold_length}").
EOF
)

log "$0 $*"
# Save command line args for logging (they will be lost after utils/parse_options.sh)
run_args=$(printf '%q ' "$0" "$@")
. utils/parse_options.sh

if [ $# -ne 0 ]; then
    log "${help_message}"
    log "Error: No positional arguments are required."
    exit 2
fi

. ./path.sh
. ./cmd.sh


# Check required arguments
[ -z "${train_set}" ] && { log "${help_message}"; log "Error: --train_set is required"; exit 2; };
[ -z "${valid_set}" ] && { log "${help_message}"; log "Error: --valid_set is required"; exit 2; };
[ -z "${test_sets}" ] && { log "${help_message}"; log "Error: --test_sets is required"; exit 2; };

# Check feature type
if [ "${feats_type}" = raw ]; then
    data_feats=${dumpdir}/raw
elif [ "${feats_type}" = fbank ]; then
    data_feats=${dumpdir}/fbank
else
    log "${help_message}"
    log "Error: not supported: --feats_type ${feats_type} (raw or fbank)"
    exit 2
fi
case "${audio_format}" in
    wav | flac | wav.ark | flac.ark) ;;
    *) log "Error: not supported: --audio_format ${audio_format} (wav, flac, wav.ark or flac.ark)"; exit 2 ;;
esac
_fs=$(python3 -c "import sys; v = sys.argv[1].lower(); print(int(float(v[:-1]) * 1000) if v.endswith('k') else int(v))" "${fs}")

# Use the same text as ASR for bpe and lm training if not specified; with speed perturbation, the text of the
# original training set (the perturbed copies repeat it).
if [ -n "${speed_perturb_factors}" ]; then
    _train_text="data/${train_set}/text"
else
    _train_text="${data_feats}/${train_set}/text"
fi
[ -z "${bpe_train_text}" ] && bpe_train_text="${_train_text}"
[ -z "${lm_train_text}" ] && lm_train_text="${_train_text}"
# Use the same text as ASR for lm training if not specified.
[ -z "${lm_dev_text}" ] && lm_dev_text="${data_feats}/${valid_set}/text"
# Use the text of the 1st evaldir if lm_test is not specified
[ -z "${lm_test_text}" ] && lm_test_text="${data_feats}/${test_sets%% *}/text"

# Check tokenization type
if [ "${lang}" != noinfo ]; then
    token_listdir=data/${lang}_token_list
else
    token_listdir=data/token_list
fi
bpedir="${token_listdir}/bpe_${bpemode}${nbpe}"
bpeprefix="${bpedir}"/bpe
bpemodel="${bpeprefix}".model
bpetoken_list="${bpedir}"/tokens.txt
chartoken_list="${token_listdir}"/char/tokens.txt
wordtoken_list="${token_listdir}"/word/tokens.txt
lexicon="${token_listdir}"/lexicon.txt

if [ "${token_type}" = bpe ]; then
    token_list="${bpetoken_list}"
elif [ "${token_type}" = char ]; then
    token_list="${chartoken_list}"
    bpemodel=none
elif [ "${token_type}" = word ]; then
    token_list="${wordtoken_list}"
    bpemodel=none
else
    log "Error: not supported --token_type '${token_type}' (bpe, char or word)"
    exit 2
fi
lm_token_list="${token_list}"
lm_token_type="${token_type}"
if "${use_lexicon}" && [ "${token_type}" = word ]; then
    log "Error: --use_lexicon true constrains bpe or char tokens to words; --token_type word decodes words already"
    exit 2
fi
if "${use_streaming}" && { "${use_lexicon}" || "${use_ngram}"; }; then
    log "Error: --use_streaming true decodes with a CTC prefix search and attention rescoring, without a lexicon or" \
        "an n-gram LM: set --use_lexicon false --use_ngram false"
    exit 2
fi


# Set tag for naming of model directory
if [ -z "${asr_tag}" ]; then
    if [ -n "${asr_config}" ]; then
        asr_tag="$(basename "${asr_config}" .yaml)_${feats_type}"
    else
        asr_tag="train_${feats_type}"
    fi
    if [ "${lang}" != noinfo ]; then
        asr_tag+="_${lang}_${token_type}"
    else
        asr_tag+="_${token_type}"
    fi
    if [ "${token_type}" = bpe ]; then
        asr_tag+="${nbpe}"
    fi
    # Add overwritten arg's info
    if [ -n "${asr_args}" ]; then
        asr_tag+="$(echo "${asr_args}" | sed -e "s/--/\_/g" -e "s/[ |=/]//g")"
    fi
    if [ -n "${speed_perturb_factors}" ]; then
        asr_tag+="_sp"
    fi
fi
if [ -z "${lm_tag}" ]; then
    if [ -n "${lm_config}" ]; then
        lm_tag="$(basename "${lm_config}" .yaml)"
    else
        lm_tag="train"
    fi
    if [ "${lang}" != noinfo ]; then
        lm_tag+="_${lang}_${lm_token_type}"
    else
        lm_tag+="_${lm_token_type}"
    fi
    if [ "${lm_token_type}" = bpe ]; then
        lm_tag+="${nbpe}"
    fi
    # Add overwritten arg's info
    if [ -n "${lm_args}" ]; then
        lm_tag+="$(echo "${lm_args}" | sed -e "s/--/\_/g" -e "s/[ |=/]//g")"
    fi
fi

# The directory used for collect-stats mode
if [ -z "${asr_stats_dir}" ]; then
    if [ "${lang}" != noinfo ]; then
        asr_stats_dir="${expdir}/asr_stats_${feats_type}_${lang}_${token_type}"
    else
        asr_stats_dir="${expdir}/asr_stats_${feats_type}_${token_type}"
    fi
    if [ "${token_type}" = bpe ]; then
        asr_stats_dir+="${nbpe}"
    fi
    if [ -n "${speed_perturb_factors}" ]; then
        asr_stats_dir+="_sp"
    fi
fi
if [ -z "${lm_stats_dir}" ]; then
    if [ "${lang}" != noinfo ]; then
        lm_stats_dir="${expdir}/lm_stats_${lang}_${lm_token_type}"
    else
        lm_stats_dir="${expdir}/lm_stats_${lm_token_type}"
    fi
    if [ "${lm_token_type}" = bpe ]; then
        lm_stats_dir+="${nbpe}"
    fi
fi
# The directory used for training commands
if [ -z "${asr_exp}" ]; then
    asr_exp="${expdir}/asr_${asr_tag}"
fi
if [ -z "${lm_exp}" ]; then
    lm_exp="${expdir}/lm_${lm_tag}"
fi
if [ -z "${ngram_exp}" ]; then
    ngram_exp="${expdir}/ngram"
fi


if [ -z "${inference_tag}" ]; then
    if [ -n "${inference_config}" ]; then
        inference_tag="$(basename "${inference_config}" .yaml)"
    else
        inference_tag=inference
    fi
    # Add overwritten arg's info
    if [ -n "${inference_args}" ]; then
        inference_tag+="$(echo "${inference_args}" | sed -e "s/--/\_/g" -e "s/[ |=]//g")"
    fi
    if "${use_lm}"; then
        inference_tag+="_lm_$(basename "${lm_exp}")_$(echo "${inference_lm}" | sed -e "s/\//_/g" -e "s/\.[^.]*$//g")"
    fi
    if "${use_ngram}"; then
        inference_tag+="_ngram_$(basename "${ngram_exp}")_$(echo "${inference_ngram}" | sed -e "s/\//_/g" -e "s/\.[^.]*$//g")"
    fi
    if "${use_lexicon}"; then
        inference_tag+="_lexicon"
    fi
    if "${use_streaming}"; then
        inference_tag+="_streaming"
        if [ "${streaming_chunk_length}" -gt 0 ]; then
            inference_tag+="_chunk${streaming_chunk_length}"
        fi
    fi
    inference_tag+="_asr_model_$(echo "${inference_asr_model}" | sed -e "s/\//_/g" -e "s/\.[^.]*$//g")"
fi

# The input of the ASR model: "<scp>,speech,<type>" and options for espnet2.bin.asr_train.
# raw: audio, with ESPnet's default frontend (fbank computed on the fly); fbank: features extracted in stage 3,
# so --input_size is given, which makes ASRTask build the model without a frontend.
asr_input_opts() {
    local _dir=$1
    local _feats_type
    _feats_type="$(<"${_dir}/feats_type")"
    if [ "${_feats_type}" = raw ]; then
        _scp=wav.scp
        if [[ "${audio_format}" == *ark* ]]; then
            _type=kaldi_ark
        else
            # "sound" supports "wav", "flac", etc.
            _type=sound
        fi
        _input_opts="--frontend_conf fs=${fs} "
    else
        _scp=feats.scp
        _type=kaldi_ark
        _input_opts="--input_size=$(<"${_dir}/feats_dim") "
    fi
}

# ========================== Main stages start from here. ==========================

if ! "${skip_data_prep}"; then
    if [ ${stage} -le 1 ] && [ ${stop_stage} -ge 1 ]; then
        log "Stage 1: Data preparation for data/${train_set}, data/${valid_set}, etc."
        begin_stage "1: data preparation" "the output of local/data.sh above"
        if [ ! -x local/data.sh ]; then
            log "Error: local/data.sh is missing or not executable; every recipe provides one (see README.md)"
            exit 1
        fi
        # [Task dependent] Need to create data.sh for new corpus
        # shellcheck disable=SC2086
        local/data.sh ${local_data_opts}
    fi

    if [ ${stage} -le 2 ] && [ ${stop_stage} -ge 2 ]; then
        if [ -n "${speed_perturb_factors}" ]; then
            log "Stage 2: Speed perturbation: data/${train_set} -> data/${train_set}_sp"
            begin_stage "2: speed perturbation" "the messages above"
            _dirs=""
            for factor in ${speed_perturb_factors}; do
                if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) != 1.0 else 1)" "${factor}"; then
                    scripts/utils/perturb_data_dir_speed.sh "${factor}" "data/${train_set}" "data/${train_set}_sp${factor}"
                    _dirs+="data/${train_set}_sp${factor} "
                else
                    # If speed factor is 1, same as the original
                    _dirs+="data/${train_set} "
                fi
            done
            # shellcheck disable=SC2086
            utils/combine_data.sh "data/${train_set}_sp" ${_dirs}
        else
            log "Skip stage 2: Speed perturbation"
        fi
    fi

    if [ -n "${speed_perturb_factors}" ]; then
        train_set="${train_set}_sp"
    fi

    if [ ${stage} -le 3 ] && [ ${stop_stage} -ge 3 ]; then
        if [ "${feats_type}" = raw ]; then
            log "Stage 3: Format wav.scp: data/ -> ${data_feats}"
        else
            log "Stage 3: ${feats_type} extract: data/ -> ${data_feats}"
        fi

        for dset in "${train_set}" "${valid_set}" ${test_sets}; do
            if [ "${dset}" = "${train_set}" ] || [ "${dset}" = "${valid_set}" ]; then
                _suf="/org"
            else
                _suf=""
            fi
            _out="${data_feats}${_suf}/${dset}"
            begin_stage "3: ${feats_type} for ${dset}" "${_out}/logs/*.log"
            [ -d "data/${dset}" ] || { log "Error: data/${dset} does not exist; stage 1 (local/data.sh) makes it"; exit 1; }
            # Validates data/${dset} too: unsorted files or ids that differ between files stop here, with the reason.
            # Empty transcripts are allowed here: stage 4 removes them from the training sets, test sets keep them.
            utils/copy_data_dir.sh --validate_opts "--non-print --allow-empty-text" "data/${dset}" "${_out}"
            _nj=$(min "${nj}" "$(<"${_out}/utt2spk" wc -l)")
            if [ "${feats_type}" = raw ]; then
                rm -f "${_out}"/{segments,wav.scp,reco2file_and_channel,reco2dur,utt2num_samples}
                _opts=
                if [ -e "data/${dset}/segments" ]; then
                    # "segments" is used for splitting wav files which are written in "wav".scp
                    # into utterances. The file format of segments:
                    #   <segment_id> <record_id> <start_time> <end_time>
                    #   "e.g. call-861225-A-0050-0065 call-861225-A 5.0 6.5"
                    # Where the time is written in seconds.
                    _opts+="--segments data/${dset}/segments "
                fi
                # shellcheck disable=SC2086
                scripts/audio/format_wav_scp.sh --nj "${_nj}" --cmd "${train_cmd}" \
                    --audio_format "${audio_format}" --fs "${fs}" ${_opts} \
                    "data/${dset}/wav.scp" "${_out}"
            else
                scripts/feats/make_fbank.sh --nj "${_nj}" --cmd "${train_cmd}" --fs "${fs}" "${_out}"
            fi
            # Utterances whose audio could not be read (listed in ${_out}/bad_audio.txt) are removed here.
            utils/fix_data_dir.sh "${_out}"
            echo "${feats_type}" > "${_out}/feats_type"
        done
    fi


    if [ ${stage} -le 4 ] && [ ${stop_stage} -ge 4 ]; then
        log "Stage 4: Remove long/short data: ${data_feats}/org -> ${data_feats}"

        # NOTE(kamo): Not applying to test_sets to keep original data
        for dset in "${train_set}" "${valid_set}"; do
            _org="${data_feats}/org/${dset}"
            _dir="${data_feats}/${dset}"
            begin_stage "4: filtering ${dset}" "the messages above; removed ids: ${_dir}/removed_*.txt"

            # Copy data dir
            utils/copy_data_dir.sh --validate_opts "--non-print --allow-empty-text" "${_org}" "${_dir}"
            cp "${_org}/feats_type" "${_dir}/feats_type"

            # Remove short and long utterances
            _feats_type="$(<"${_dir}/feats_type")"
            if [ "${_feats_type}" = raw ]; then
                _min_length=$(python3 -c "print(int(${min_wav_duration} * ${_fs}))")
                _max_length=$(python3 -c "print(int(${max_wav_duration} * ${_fs}))")
                _lengths=utt2num_samples
                _scp=wav.scp
            else
                # Frames per second from the frame shift (ms) used in stage 3
                _frame_shift="$(<"${_org}/frame_shift")"
                _min_length=$(python3 -c "print(int(${min_wav_duration} / ${_frame_shift} * 1000))")
                _max_length=$(python3 -c "print(int(${max_wav_duration} / ${_frame_shift} * 1000))")
                _lengths=feats_shape
                _scp=feats.scp
                cp "${_org}/feats_dim" "${_dir}/feats_dim"
            fi
            <"${_org}/${_lengths}" awk -F '[ ,]' -v min_length="${_min_length}" -v max_length="${_max_length}" \
                '{ if ($2 > min_length && $2 < max_length) print $0 > "/dev/stdout"; else print $1, "length", $2 > "/dev/stderr" }' \
                > "${_dir}/${_lengths}" 2> "${_dir}/removed_by_duration.txt"
            <"${_org}/${_scp}" utils/filter_scp.pl "${_dir}/${_lengths}" > "${_dir}/${_scp}"

            # Remove empty text
            <"${_org}/text" awk '{ if (NF != 1) print $0 > "/dev/stdout"; else print $1 > "/dev/stderr" }' \
                > "${_dir}/text" 2> "${_dir}/removed_empty_text.txt"

            log "${dset}: removed $(<"${_dir}/removed_by_duration.txt" wc -l) utterances outside" \
                "(${min_wav_duration}s, ${max_wav_duration}s) (list: ${_dir}/removed_by_duration.txt) and" \
                "$(<"${_dir}/removed_empty_text.txt" wc -l) with empty text (list: ${_dir}/removed_empty_text.txt)"
            # fix_data_dir.sh leaves only utts which exist in all files
            utils/fix_data_dir.sh "${_dir}"
        done

        begin_stage "4: LM text" "the messages above"
        # shellcheck disable=SC2002
        cat ${lm_train_text} | awk ' { if( NF != 1 ) print $0; } ' > "${data_feats}/lm_train.txt"
    fi


    if [ ${stage} -le 5 ] && [ ${stop_stage} -ge 5 ]; then
        if [ "${token_type}" = bpe ]; then
            log "Stage 5: Generate token_list from ${bpe_train_text} using BPE"
            begin_stage "5: sentencepiece training" "${bpedir}/spm_train.log"

            mkdir -p "${bpedir}"
            # shellcheck disable=SC2002
            cat ${bpe_train_text} | cut -f 2- -d" "  > "${bpedir}"/train.txt

            if [ -n "${bpe_nlsyms}" ]; then
                _opts_spm="--user_defined_symbols=${bpe_nlsyms}"
            else
                _opts_spm=""
            fi

            # shellcheck disable=SC2086
            spm_train \
                --input="${bpedir}"/train.txt \
                --vocab_size="${nbpe}" \
                --model_type="${bpemode}" \
                --model_prefix="${bpeprefix}" \
                --character_coverage=${bpe_char_cover} \
                --input_sentence_size="${bpe_input_sentence_size}" \
                ${_opts_spm} > "${bpedir}/spm_train.log" 2>&1

            {
            echo "${blank}"
            echo "${oov}"
            # Remove <unk>, <s>, </s> from the vocabulary
            <"${bpeprefix}".vocab awk '{ if( NR != 1 && NR != 2 && NR != 3 ){ print $1; } }'
            echo "${sos_eos}"
            } > "${token_list}"

        elif [ "${token_type}" = char ] || [ "${token_type}" = word ]; then
            log "Stage 5: Generate ${token_type} level token_list from ${data_feats}/lm_train.txt"
            begin_stage "5: token list" "the messages above"

            _opts="--non_linguistic_symbols ${nlsyms_txt}"

            # The first symbol in token_list must be "<blank>" and the last must be also sos/eos:
            # 0 is reserved for CTC-blank for ASR and also used as ignore-index in the other task
            # shellcheck disable=SC2086
            ${python} -m espnet2.bin.tokenize_text  \
                --token_type "${token_type}" \
                --input "${data_feats}/lm_train.txt" --output "${token_list}" ${_opts} \
                --field 2- \
                --cleaner "${cleaner}" \
                --g2p "${g2p}" \
                --write_vocabulary true \
                --add_symbol "${blank}:0" \
                --add_symbol "${oov}:1" \
                --add_symbol "${sos_eos}:-1"

        else
            log "Error: not supported --token_type '${token_type}'"
            exit 2
        fi
        log "Token list: ${token_list} ($(<"${token_list}" wc -l) tokens)"

        if "${use_lexicon}"; then
            # The words decoding may output (--use_lexicon): those of the LM text, the most frequent first.
            ${python} -m espnet2.bin.tokenize_text \
                --token_type word \
                --input "${data_feats}/lm_train.txt" --output "${lexicon}" \
                --field 2- \
                --non_linguistic_symbols "${nlsyms_txt}" \
                --cleaner "${cleaner}" \
                --write_vocabulary true \
                --vocabulary_size "${word_vocab_size}"
            log "Lexicon: ${lexicon} ($(<"${lexicon}" wc -l) words of ${data_feats}/lm_train.txt)"
        fi
    fi
else
    log "Skip the stages for data preparation"
fi


# ========================== Data preparation is done here. ==========================


if ! "${skip_train}"; then
    if "${use_lm}"; then
        if [ ${stage} -le 6 ] && [ ${stop_stage} -ge 6 ]; then
            log "Stage 6: LM collect stats: train_set=${data_feats}/lm_train.txt, dev_set=${lm_dev_text}"

            _opts=
            if [ -n "${lm_config}" ]; then
                # To generate the config file: e.g.
                #   % python3 -m espnet2.bin.lm_train --print_config --optim adam
                _opts+="--config ${lm_config} "
            fi

            # 1. Split the key file
            _logdir="${lm_stats_dir}/logdir"
            mkdir -p "${_logdir}"
            begin_stage "6: LM collect stats" "${_logdir}/stats.*.log"
            # Get the minimum number among ${nj} and the number lines of input files
            _nj=$(min "${nj}" "$(<"${data_feats}/lm_train.txt" wc -l)" "$(<"${lm_dev_text}" wc -l)")

            split_into_jobs "${data_feats}/lm_train.txt" "${_logdir}/train" "${_nj}"

            split_into_jobs "${lm_dev_text}" "${_logdir}/dev" "${_nj}"

            # 2. Generate run.sh
            log "Generate '${lm_stats_dir}/run.sh'. You can resume the process from stage 6 using this script"
            mkdir -p "${lm_stats_dir}"; echo "${run_args} --stage 6 \"\$@\"; exit \$?" > "${lm_stats_dir}/run.sh"; chmod +x "${lm_stats_dir}/run.sh"

            # 3. Submit jobs
            log "LM collect-stats started... log: '${_logdir}/stats.*.log'"
            # NOTE: --*_shape_file doesn't require length information if --batch_type=unsorted,
            #       but it's used only for deciding the sample ids.
            # shellcheck disable=SC2086
            ${train_cmd} JOB=1:"${_nj}" "${_logdir}"/stats.JOB.log \
                ${python} -m espnet2.bin.lm_train \
                    --collect_stats true \
                    --use_preprocessor true \
                    --bpemodel "${bpemodel}" \
                    --token_type "${lm_token_type}"\
                    --token_list "${lm_token_list}" \
                    --non_linguistic_symbols "${nlsyms_txt}" \
                    --cleaner "${cleaner}" \
                    --g2p "${g2p}" \
                    --train_data_path_and_name_and_type "${data_feats}/lm_train.txt,text,text" \
                    --valid_data_path_and_name_and_type "${lm_dev_text},text,text" \
                    --train_shape_file "${_logdir}/train.JOB.scp" \
                    --valid_shape_file "${_logdir}/dev.JOB.scp" \
                    --output_dir "${_logdir}/stats.JOB" \
                    ${_opts} ${lm_args}

            # 4. Aggregate shape files
            _opts=
            for i in $(seq "${_nj}"); do
                _opts+="--input_dir ${_logdir}/stats.${i} "
            done
            # shellcheck disable=SC2086
            ${python} -m espnet2.bin.aggregate_stats_dirs ${_opts} --output_dir "${lm_stats_dir}"

            # Append the num-tokens at the last dimensions. This is used for batch-bins count
            <"${lm_stats_dir}/train/text_shape" \
                awk -v N="$(<"${lm_token_list}" wc -l)" '{ print $0 "," N }' \
                >"${lm_stats_dir}/train/text_shape.${lm_token_type}"

            <"${lm_stats_dir}/valid/text_shape" \
                awk -v N="$(<"${lm_token_list}" wc -l)" '{ print $0 "," N }' \
                >"${lm_stats_dir}/valid/text_shape.${lm_token_type}"
        fi


        if [ ${stage} -le 7 ] && [ ${stop_stage} -ge 7 ]; then
            log "Stage 7: LM Training: train_set=${data_feats}/lm_train.txt, dev_set=${lm_dev_text}"
            begin_stage "7: LM training" "${lm_exp}/train.log"

            _opts=
            if [ -n "${lm_config}" ]; then
                # To generate the config file: e.g.
                #   % python3 -m espnet2.bin.lm_train --print_config --optim adam
                _opts+="--config ${lm_config} "
            fi
            _opts+="--train_data_path_and_name_and_type ${data_feats}/lm_train.txt,text,text "
            _opts+="--train_shape_file ${lm_stats_dir}/train/text_shape.${lm_token_type} "

            # NOTE(kamo): --fold_length is used only if --batch_type=folded and it's ignored in the other case

            log "Generate '${lm_exp}/run.sh'. You can resume the process from stage 7 using this script"
            mkdir -p "${lm_exp}"; echo "${run_args} --stage 7 \"\$@\"; exit \$?" > "${lm_exp}/run.sh"; chmod +x "${lm_exp}/run.sh"

            log "LM training started... log: '${lm_exp}/train.log'"
            # shellcheck disable=SC2086
            scripts/utils/run_with_progress.sh --total "$(max_epoch_of "${lm_args}" "${lm_config}")" \
                --label "LM training epochs (${lm_exp}/train.log)" \
                --files "${lm_exp}/train.log" --pattern '([0-9]+)epoch results:' -- \
            ${python} -m espnet2.bin.launch \
                --cmd "${cuda_cmd} --name ${lm_exp}/train.log --num_threads ${train_num_threads}" \
                --log "${lm_exp}"/train.log \
                --ngpu "${ngpu}" \
                --num_nodes "${num_nodes}" \
                --init_file_prefix "${lm_exp}"/.dist_init_ \
                --multiprocessing_distributed true -- \
                ${python} -m espnet2.bin.lm_train \
                    --ngpu "${ngpu}" \
                    --use_preprocessor true \
                    --bpemodel "${bpemodel}" \
                    --token_type "${lm_token_type}"\
                    --token_list "${lm_token_list}" \
                    --non_linguistic_symbols "${nlsyms_txt}" \
                    --cleaner "${cleaner}" \
                    --g2p "${g2p}" \
                    --valid_data_path_and_name_and_type "${lm_dev_text},text,text" \
                    --valid_shape_file "${lm_stats_dir}/valid/text_shape.${lm_token_type}" \
                    --fold_length "${lm_fold_length}" \
                    --resume true \
                    --output_dir "${lm_exp}" \
                    ${_opts} ${lm_args}

        fi


        if [ ${stage} -le 8 ] && [ ${stop_stage} -ge 8 ]; then
            log "Stage 8: Calc perplexity: ${lm_test_text}"
            begin_stage "8: LM perplexity" "${lm_exp}/perplexity_test/lm_calc_perplexity.log"
            log "Perplexity calculation started... log: '${lm_exp}/perplexity_test/lm_calc_perplexity.log'"
            # shellcheck disable=SC2086
            ${cuda_cmd} --gpu "${ngpu}" "${lm_exp}"/perplexity_test/lm_calc_perplexity.log \
                ${python} -m espnet2.bin.lm_calc_perplexity \
                    --ngpu "${ngpu}" \
                    --data_path_and_name_and_type "${lm_test_text},text,text" \
                    --train_config "${lm_exp}"/config.yaml \
                    --model_file "${lm_exp}/${inference_lm}" \
                    --output_dir "${lm_exp}/perplexity_test"
            log "PPL: ${lm_test_text}: $(cat "${lm_exp}/perplexity_test/ppl")"

        fi

    else
        log "Stage 6-8: Skip lm-related stages: use_lm=${use_lm}"
    fi


    if [ ${stage} -le 9 ] && [ ${stop_stage} -ge 9 ]; then
        if "${use_ngram}"; then
            log "Stage 9: Ngram Training: train_set=${data_feats}/lm_train.txt"
            begin_stage "9: n-gram training" "the messages above"
            if ! command -v lmplz > /dev/null || ! command -v build_binary > /dev/null; then
                log "Error: --use_ngram true needs KenLM's lmplz and build_binary on PATH (e.g. in local/path.sh)"
                exit 1
            fi
            mkdir -p "${ngram_exp}"
            cut -f 2- -d " " "${data_feats}/lm_train.txt" | lmplz -S "20%" --discount_fallback -o "${ngram_num}" - > "${ngram_exp}/${ngram_num}gram.arpa"
            build_binary -s "${ngram_exp}/${ngram_num}gram.arpa" "${ngram_exp}/${ngram_num}gram.bin"
        else
            log "Stage 9: Skip ngram stages: use_ngram=${use_ngram}"
        fi
    fi


    if [ ${stage} -le 10 ] && [ ${stop_stage} -ge 10 ]; then
        _asr_train_dir="${data_feats}/${train_set}"
        _asr_valid_dir="${data_feats}/${valid_set}"
        log "Stage 10: ASR collect stats: train_set=${_asr_train_dir}, valid_set=${_asr_valid_dir}"

        _opts=
        if [ -n "${asr_config}" ]; then
            # To generate the config file: e.g.
            #   % python3 -m espnet2.bin.asr_train --print_config --optim adam
            _opts+="--config ${asr_config} "
        fi
        asr_input_opts "${_asr_train_dir}"
        _opts+="${_input_opts}"

        # 1. Split the key file
        _logdir="${asr_stats_dir}/logdir"
        mkdir -p "${_logdir}"
        begin_stage "10: ASR collect stats" "${_logdir}/stats.*.log"

        # Get the minimum number among ${nj} and the number lines of input files
        _nj=$(min "${nj}" "$(<"${_asr_train_dir}/${_scp}" wc -l)" "$(<"${_asr_valid_dir}/${_scp}" wc -l)")

        split_into_jobs "${_asr_train_dir}/${_scp}" "${_logdir}/train" "${_nj}"

        split_into_jobs "${_asr_valid_dir}/${_scp}" "${_logdir}/valid" "${_nj}"

        # 2. Generate run.sh
        log "Generate '${asr_stats_dir}/run.sh'. You can resume the process from stage 10 using this script"
        mkdir -p "${asr_stats_dir}"; echo "${run_args} --stage 10 \"\$@\"; exit \$?" > "${asr_stats_dir}/run.sh"; chmod +x "${asr_stats_dir}/run.sh"

        # 3. Submit jobs
        log "ASR collect-stats started... log: '${_logdir}/stats.*.log'"

        # NOTE: --*_shape_file doesn't require length information if --batch_type=unsorted,
        #       but it's used only for deciding the sample ids.

        # shellcheck disable=SC2086
        ${train_cmd} JOB=1:"${_nj}" "${_logdir}"/stats.JOB.log \
            ${python} -m espnet2.bin.asr_train \
                --collect_stats true \
                --use_preprocessor true \
                --bpemodel "${bpemodel}" \
                --token_type "${token_type}" \
                --token_list "${token_list}" \
                --non_linguistic_symbols "${nlsyms_txt}" \
                --cleaner "${cleaner}" \
                --g2p "${g2p}" \
                --train_data_path_and_name_and_type "${_asr_train_dir}/${_scp},speech,${_type}" \
                --train_data_path_and_name_and_type "${_asr_train_dir}/text,text,text" \
                --valid_data_path_and_name_and_type "${_asr_valid_dir}/${_scp},speech,${_type}" \
                --valid_data_path_and_name_and_type "${_asr_valid_dir}/text,text,text" \
                --train_shape_file "${_logdir}/train.JOB.scp" \
                --valid_shape_file "${_logdir}/valid.JOB.scp" \
                --output_dir "${_logdir}/stats.JOB" \
                ${_opts} ${asr_args}

        # 4. Aggregate shape files
        _opts=
        for i in $(seq "${_nj}"); do
            _opts+="--input_dir ${_logdir}/stats.${i} "
        done
        # shellcheck disable=SC2086
        ${python} -m espnet2.bin.aggregate_stats_dirs ${_opts} --output_dir "${asr_stats_dir}"

        # Append the num-tokens at the last dimensions. This is used for batch-bins count
        <"${asr_stats_dir}/train/text_shape" \
            awk -v N="$(<"${token_list}" wc -l)" '{ print $0 "," N }' \
            >"${asr_stats_dir}/train/text_shape.${token_type}"

        <"${asr_stats_dir}/valid/text_shape" \
            awk -v N="$(<"${token_list}" wc -l)" '{ print $0 "," N }' \
            >"${asr_stats_dir}/valid/text_shape.${token_type}"
    fi


    if [ ${stage} -le 11 ] && [ ${stop_stage} -ge 11 ]; then
        _asr_train_dir="${data_feats}/${train_set}"
        _asr_valid_dir="${data_feats}/${valid_set}"
        log "Stage 11: ASR Training: train_set=${_asr_train_dir}, valid_set=${_asr_valid_dir}"
        begin_stage "11: ASR training" "${asr_exp}/train.log"

        _opts=
        if [ -n "${asr_config}" ]; then
            # To generate the config file: e.g.
            #   % python3 -m espnet2.bin.asr_train --print_config --optim adam
            _opts+="--config ${asr_config} "
        fi
        asr_input_opts "${_asr_train_dir}"
        _opts+="${_input_opts}"
        if [ "${_scp}" = wav.scp ]; then
            _fold_length="$((asr_speech_fold_length * 100))"
        else
            _fold_length="${asr_speech_fold_length}"
        fi
        if [ "${feats_normalize}" = global_mvn ]; then
            # Default normalization is utterance_mvn and changes to global_mvn
            _opts+="--normalize=global_mvn --normalize_conf stats_file=${asr_stats_dir}/train/feats_stats.npz "
        fi
        _opts+="--train_data_path_and_name_and_type ${_asr_train_dir}/${_scp},speech,${_type} "
        _opts+="--train_data_path_and_name_and_type ${_asr_train_dir}/text,text,text "
        _opts+="--train_shape_file ${asr_stats_dir}/train/speech_shape "
        _opts+="--train_shape_file ${asr_stats_dir}/train/text_shape.${token_type} "
        if [ -n "${pretrained_model}" ]; then
            _opts+="--init_param ${pretrained_model} "
        fi

        log "Generate '${asr_exp}/run.sh'. You can resume the process from stage 11 using this script"
        mkdir -p "${asr_exp}"; echo "${run_args} --stage 11 \"\$@\"; exit \$?" > "${asr_exp}/run.sh"; chmod +x "${asr_exp}/run.sh"

        # NOTE(kamo): --fold_length is used only if --batch_type=folded and it's ignored in the other case
        log "ASR training started... log: '${asr_exp}/train.log'"
        # shellcheck disable=SC2086
        scripts/utils/run_with_progress.sh --total "$(max_epoch_of "${asr_args}" "${asr_config}")" \
            --label "ASR training epochs (${asr_exp}/train.log)" \
            --files "${asr_exp}/train.log" --pattern '([0-9]+)epoch results:' -- \
        ${python} -m espnet2.bin.launch \
            --cmd "${cuda_cmd} --name ${asr_exp}/train.log --num_threads ${train_num_threads}" \
            --log "${asr_exp}"/train.log \
            --ngpu "${ngpu}" \
            --num_nodes "${num_nodes}" \
            --init_file_prefix "${asr_exp}"/.dist_init_ \
            --multiprocessing_distributed true -- \
            ${python} -m espnet2.bin.asr_train \
                --use_preprocessor true \
                --bpemodel "${bpemodel}" \
                --token_type "${token_type}" \
                --token_list "${token_list}" \
                --non_linguistic_symbols "${nlsyms_txt}" \
                --cleaner "${cleaner}" \
                --g2p "${g2p}" \
                --valid_data_path_and_name_and_type "${_asr_valid_dir}/${_scp},speech,${_type}" \
                --valid_data_path_and_name_and_type "${_asr_valid_dir}/text,text,text" \
                --valid_shape_file "${asr_stats_dir}/valid/speech_shape" \
                --valid_shape_file "${asr_stats_dir}/valid/text_shape.${token_type}" \
                --resume true \
                --ignore_init_mismatch ${ignore_init_mismatch} \
                --fold_length "${_fold_length}" \
                --fold_length "${asr_text_fold_length}" \
                --output_dir "${asr_exp}" \
                ${_opts} ${asr_args}
        if [ ! -d "${asr_exp}/images" ]; then
            log "Warning: no training curves in ${asr_exp}/images (ESPnet draws them with matplotlib)"
        fi
    fi
else
    log "Skip the training stages"
fi


if ! "${skip_eval}"; then
    if [ ${stage} -le 12 ] && [ ${stop_stage} -ge 12 ]; then
        log "Stage 12: Decoding: training_dir=${asr_exp}"

        if ${gpu_inference}; then
            _cmd="${cuda_cmd}"
            _ngpu=1
        else
            _cmd="${decode_cmd}"
            _ngpu=0
        fi

        _opts=
        if [ -n "${inference_config}" ]; then
            _opts+="--config ${inference_config} "
        fi
        if "${use_lm}"; then
            _opts+="--lm_train_config ${lm_exp}/config.yaml "
            _opts+="--lm_file ${lm_exp}/${inference_lm} "
        fi
        if "${use_ngram}"; then
             _opts+="--ngram_file ${ngram_exp}/${inference_ngram} "
        fi
        # ESPnet's decoding with the CTC prefix scores computed by a scan (the same hypotheses, faster;
        # --inference_args "--ctc_prefix_scorer loop" keeps ESPnet's scorer) and the optional lexicon.
        _inference_tool=espnet_samba.bin.asr_inference
        if "${use_lexicon}"; then
            if [ ! -f "${lexicon}" ]; then
                begin_stage "12: decoding" "(none)"
                log "Error: --use_lexicon true but ${lexicon} is missing; run stage 5 with --use_lexicon true first"
                exit 1
            fi
            _opts+="--lexicon ${lexicon} "
        fi
        if "${use_streaming}"; then
            _inference_tool=espnet_samba.bin.asr_inference_streaming
            _opts+="--sim_chunk_length ${streaming_chunk_length} "
        fi

        # 2. Generate run.sh
        log "Generate '${asr_exp}/${inference_tag}/run.sh'. You can resume the process from stage 12 using this script"
        mkdir -p "${asr_exp}/${inference_tag}"; echo "${run_args} --stage 12 \"\$@\"; exit \$?" > "${asr_exp}/${inference_tag}/run.sh"; chmod +x "${asr_exp}/${inference_tag}/run.sh"

        for dset in ${test_sets}; do
            _data="${data_feats}/${dset}"
            _dir="${asr_exp}/${inference_tag}/${dset}"
            _logdir="${_dir}/logdir"
            mkdir -p "${_logdir}"
            begin_stage "12: decoding ${dset}" "${_logdir}/asr_inference.*.log"

            asr_input_opts "${_data}"

            # 1. Split the key file
            key_file=${_data}/${_scp}
            _nj=$(min "${inference_nj}" "$(<"${key_file}" wc -l)")
            split_into_jobs "${key_file}" "${_logdir}/keys" "${_nj}"

            # 2. Submit decoding jobs
            log "Decoding started... log: '${_logdir}/asr_inference.*.log'"
            rm -f "${_logdir}"/asr_inference.*.log
            # shellcheck disable=SC2086
            scripts/utils/run_with_progress.sh --total "$(<"${key_file}" wc -l)" --label "decoding ${dset}" \
                --files "${_logdir}/asr_inference.*.log" --pattern "total log probability" -- \
            ${_cmd} --gpu "${_ngpu}" JOB=1:"${_nj}" "${_logdir}"/asr_inference.JOB.log \
                ${python} -m ${_inference_tool} \
                    --batch_size ${batch_size} \
                    --ngpu "${_ngpu}" \
                    --data_path_and_name_and_type "${_data}/${_scp},speech,${_type}" \
                    --key_file "${_logdir}"/keys.JOB.scp \
                    --asr_train_config "${asr_exp}"/config.yaml \
                    --asr_model_file "${asr_exp}"/"${inference_asr_model}" \
                    --output_dir "${_logdir}"/output.JOB \
                    ${_opts} ${inference_args}

            # 3. Concatenates the output files from each jobs
            for f in token token_int score text; do
                if [ -f "${_logdir}/output.1/1best_recog/${f}" ]; then
                  for i in $(seq "${_nj}"); do
                      cat "${_logdir}/output.${i}/1best_recog/${f}"
                  done | sort -k1 >"${_dir}/${f}"
                fi
            done
            log "Decoded $(<"${_dir}/text" wc -l) of $(<"${key_file}" wc -l) utterances of ${dset}: ${_dir}/text"
        done
    fi


    if [ ${stage} -le 13 ] && [ ${stop_stage} -ge 13 ]; then
        log "Stage 13: Scoring"
        if ! command -v sclite > /dev/null; then
            begin_stage "13: scoring" "(none)"
            log "Error: sclite is not on PATH; install SCTK (Debian/Ubuntu: apt-get install sctk) or tools/sctk"
            exit 1
        fi
        _score_types="cer wer"
        [ "${token_type}" = bpe ] && _score_types+=" ter"
        "${score_open_asr_normalizer}" && _score_types+=" wer_open_asr"

        for dset in ${test_sets}; do
            _data="${data_feats}/${dset}"
            _dir="${asr_exp}/${inference_tag}/${dset}"

            for _type in ${_score_types}; do
                _scoredir="${_dir}/score_${_type}"
                mkdir -p "${_scoredir}"
                begin_stage "13: scoring ${dset} (${_type})" "${_scoredir}/make_trn.log and ${_scoredir}/result.txt"
                case "${_type}" in
                    wer) _trn_opts="--token_type word" ;;
                    cer) _trn_opts="--token_type char" ;;
                    ter) _trn_opts="--token_type bpe --bpemodel ${bpemodel}" ;;
                    wer_open_asr) _trn_opts="--token_type word --normalizer open_asr" ;;
                esac
                # shellcheck disable=SC2086
                ${python} pyscripts/utils/make_trn.py ${_trn_opts} \
                    --ref_text "${_data}/text" --hyp_text "${_dir}/text" --utt2spk "${_data}/utt2spk" \
                    --cleaner "${cleaner}" --non_linguistic_symbols "${nlsyms_txt}" \
                    --ref_trn "${_scoredir}/ref.trn" --hyp_trn "${_scoredir}/hyp.trn" > "${_scoredir}/make_trn.log" 2>&1

                # shellcheck disable=SC2086
                sclite \
                    ${score_opts} \
                    -r "${_scoredir}/ref.trn" trn \
                    -h "${_scoredir}/hyp.trn" trn \
                    -i rm -o all stdout > "${_scoredir}/result.txt"

                log "Write ${_type} result in ${_scoredir}/result.txt"
                grep -e Avg -e SPKR -m 2 "${_scoredir}/result.txt"
            done
        done

        if [ -f local/score.sh ]; then
            begin_stage "13: local/score.sh" "the messages above"
            # shellcheck disable=SC2086
            local/score.sh ${local_score_opts} "${asr_exp}"
        fi

        # Show results in Markdown syntax
        begin_stage "13: RESULTS.md" "the messages above"
        ${python} pyscripts/utils/show_asr_result.py "${asr_exp}" > "${asr_exp}"/RESULTS.md
        cat "${asr_exp}"/RESULTS.md

    fi
else
    log "Skip the evaluation stages"
fi


packed_model="${asr_exp}/${asr_exp##*/}_${inference_asr_model%.*}.zip"
if ! "${skip_packing}" && [ ${stage} -le 14 ] && [ ${stop_stage} -ge 14 ]; then
    log "Stage 14: Pack model: ${packed_model}"
    begin_stage "14: packing" "the messages above"

    _opts=
    if "${use_lm}"; then
        _opts+="--lm_train_config ${lm_exp}/config.yaml "
        _opts+="--lm_file ${lm_exp}/${inference_lm} "
        _opts+="--option ${lm_exp}/perplexity_test/ppl "
        _opts+="--option ${lm_exp}/images "
    fi
    if [ "${feats_normalize}" = global_mvn ]; then
        _opts+="--option ${asr_stats_dir}/train/feats_stats.npz "
    fi
    if [ "${token_type}" = bpe ]; then
        _opts+="--option ${bpemodel} "
    fi
    if [ "${nlsyms_txt}" != none ]; then
        _opts+="--option ${nlsyms_txt} "
    fi
    if "${use_lexicon}"; then
        _opts+="--option ${lexicon} "
    fi
    if [ -f "${asr_exp}/RESULTS.md" ]; then
        _opts+="--option ${asr_exp}/RESULTS.md "
    fi
    if [ -d "${asr_exp}/images" ]; then
        _opts+="--option ${asr_exp}/images "
    fi
    # shellcheck disable=SC2086
    ${python} -m espnet2.bin.pack asr \
        --asr_train_config "${asr_exp}"/config.yaml \
        --asr_model_file "${asr_exp}"/"${inference_asr_model}" \
        ${_opts} \
        --outpath "${packed_model}"
    log "Packed model: ${packed_model}"
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
