#!/usr/bin/env bash
# Samba-ASR on espeak_en, the offline demo corpus: fortune-cookie sentences read by espeak-ng voices,
# tested on held-out voices, clean and with 10 dB noise. CPU only; see README.md for timings and results.
#
#   ./run.sh                                                   # Samba-ASR (Mamba encoder + Mamba decoder)
#   ./run.sh --stage 10 --asr_config conf/train_asr_conformer.yaml   # Conformer + Transformer baseline
# Set bash to 'debug' mode, it will exit on :
# -e 'error', -u 'undefined variable', -o ... 'error in pipeline', -x 'print commands',
set -e
set -u
set -o pipefail

train_set="train_mc"    # multi-condition: half of it with noise at 5-20 dB (local/data.sh stage 4)
valid_set="dev_mc"
test_sets="test test_noisy"

asr_config=conf/train_asr_samba.yaml
lm_config=conf/train_lm.yaml
# The LM reads the training transcripts and the fortune sentences nobody reads aloud (local/data.sh stage 5;
# no sentence of a dev/test fortune), as LibriSpeech's recipe adds data/local/other_text.
lm_train_text="data/${train_set}/text data/local/other_text/text"
inference_config=conf/decode_asr.yaml
# Decoding outputs only words of the LM text (--use_lexicon: stage 5 lists them, 14,670 words): the model spells
# rarely heard words the way they sound ("PERSENT"); the lexicon keeps the spellings that exist.

./asr.sh \
    --lang en \
    --ngpu 0 \
    --train_num_threads 2 \
    --nj 2 \
    --inference_nj 2 \
    --feats_type fbank \
    --token_type bpe \
    --nbpe 150 \
    --use_lm true \
    --use_lexicon true \
    --lm_config "${lm_config}" \
    --lm_train_text "${lm_train_text}" \
    --max_wav_duration 10 \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --asr_config "${asr_config}" \
    --inference_config "${inference_config}" \
    --inference_asr_model valid.acc.ave.pth \
    --local_data_opts "--nj 2" "$@"
