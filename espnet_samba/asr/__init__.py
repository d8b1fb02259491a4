"""ESPnet ASR components: encoders (`espnet_samba.asr.encoder`) and decoders (`espnet_samba.asr.decoder`)."""
