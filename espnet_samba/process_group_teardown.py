"""Tearing down torch.distributed's default process group before the interpreter exits.

ESPnet's trainer initialises the default process group for DDP (torchrun, `espnet2.bin.launch`, srun) and never
destroys it. The gloo process group then outlives Python's finalisation, and its C++ worker threads are destroyed
while still joinable: `terminate called without an active exception`, SIGABRT, exit code 134, after "The training
was finished" and the last checkpoint were written. The launcher (torchrun, srun, asr.sh) then reports the whole
run as failed. With plain torch, 2 gloo ranks that exit without destroying their group abort this way in about one
run in four on a 2-core machine; with this hook, none do (test/test_process_group_teardown.py).

`register()` installs the hook in every process that imports ESPnet's ASR task, so ESPnet's own `asr_train` gets it
without any change to ESPnet.
"""
from __future__ import annotations

import atexit

import torch.distributed

_installed = False


def destroy_default_process_group() -> None:
    """Destroy the default process group if this process still has one (a no-op otherwise)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def tear_down_process_group_at_exit() -> None:
    """Run `destroy_default_process_group` at interpreter exit; calling this more than once installs it once."""
    global _installed
    if not _installed:
        atexit.register(destroy_default_process_group)
        _installed = True
