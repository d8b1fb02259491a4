#!/usr/bin/env bash
# The normalised WER of a model trained on the fully formatted (_unnorm) text: references and hypotheses are
# normalised by local/spgispeech_normalize.py (the normalisation of the data preparation) and sclite scores
# them again. asr.sh's own scoring gives the unnormalised WER; asr.sh runs this afterwards as
# `local/score.sh ${local_score_opts} <asr_exp>`; the totals land in <asr_exp>/RESULTS_normalized.md.
exec local/score_normalized.sh --normalizer local/spgispeech_normalize.py --name normalized "$@"
