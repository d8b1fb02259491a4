#!/usr/bin/env bash
# GigaSpeech's official scoring: references and hypotheses normalised by local/gigaspeech_normalize.py
# (fillers, tags and hyphens as SpeechColab's gigaspeech_scoring.py), then sclite. asr.sh runs this after its
# own scoring as `local/score.sh ${local_score_opts} <asr_exp>`; the totals land in <asr_exp>/RESULTS_gigaspeech.md.
exec local/score_normalized.sh --normalizer local/gigaspeech_normalize.py --name gigaspeech "$@"
