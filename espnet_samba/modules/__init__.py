"""nn.Modules built on `espnet_samba.ops`: the Mamba mixer, its residual block, normalisation layers."""
from espnet_samba.modules.mamba_block import MambaBlock
from espnet_samba.modules.mamba_mixer import MambaMixer, MambaState

__all__ = ["MambaBlock", "MambaMixer", "MambaState"]
