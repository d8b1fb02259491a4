#!/usr/bin/env bash
# Samba-ASR on espeak_en, the offline demo corpus: everyday English (WordNet's examples) and fortune-cookie
# sentences read by three speech synthesizers (espeak-ng, flite, festival), tested on held-out voices of each, on a
# synthesizer never used in training (SVOX Pico) and in noise. CPU only; see README.md for timings and results.
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
# test_<family>: held-out voices of a training family; test_unseen_pico: a family never used in training;
# test_noisy: one held-out voice per sentence, white noise at 10 dB.
test_sets="test_espeak test_flite test_festival test_unseen_pico test_noisy"

asr_config=conf/train_asr_samba.yaml
lm_config=conf/train_lm.yaml
# The LM reads the training transcripts and the sources' sentences nobody reads aloud (local/data.sh stage 5; no
# sentence of a passage that holds a dev/test sentence), as LibriSpeech's recipe adds data/local/other_text.
lm_train_text="data/${train_set}/text data/local/other_text/text"
inference_config=conf/decode_asr.yaml
# Open-vocabulary decoding: any spelling the model produces. `--use_lexicon true` restricts the output to the words
# of the LM text (the secondary rows of RESULTS.md).
# Stage 14 packs the model, its LM and BPE model into one archive that decodes a wav file through Speech2Text
# (README.md); ESPnet's asr.sh skips packing unless told.

./asr.sh \
    --lang en \
    --ngpu 0 \
    --train_num_threads 2 \
    --nj 2 \
    --inference_nj 2 \
    --feats_type raw \
    --audio_format wav \
    --token_type bpe \
    --nbpe 150 \
    --use_lm true \
    --use_lexicon false \
    --lm_config "${lm_config}" \
    --lm_train_text "${lm_train_text}" \
    --max_wav_duration 10 \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --asr_config "${asr_config}" \
    --inference_config "${inference_config}" \
    --inference_asr_model valid.acc.ave.pth \
    --skip_packing false \
    --local_data_opts "--nj 2" "$@"
