"""espnet-samba: Samba-ASR (Mamba encoder and Mamba cross-connected decoder) as a plugin for ESPnet's ASR task.

Importing this package is cheap (no torch); `register()` adds `encoder: mamba`, `encoder: speech_mamba` and
`decoder: mamba` to ESPnet's ASR task. Installed with pip, the package does that automatically whenever ESPnet's
ASR task is imported (see `espnet_samba.registration`).
"""
from espnet_samba.registration import register

__version__ = "0.1.0"
__all__ = ["register", "__version__"]
