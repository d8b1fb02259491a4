"""espnet-samba."""
