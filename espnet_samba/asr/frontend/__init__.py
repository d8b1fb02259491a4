"""ESPnet frontends: `frontend: kaldi_fbank` (Kaldi-compatible filterbanks from raw audio, on the fly)."""
