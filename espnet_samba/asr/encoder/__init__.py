"""ASR encoders: `MambaEncoder` (`encoder: mamba`) and `SpeechMambaEncoder` (`encoder: speech_mamba`)."""
