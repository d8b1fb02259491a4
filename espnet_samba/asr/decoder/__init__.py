"""ASR decoders: `MambaDecoder` (`decoder: mamba`)."""
from espnet_samba.asr.decoder.mamba_decoder import MambaDecoder

__all__ = ["MambaDecoder"]
