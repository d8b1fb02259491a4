"""Adding our encoders, decoders and frontend to ESPnet's ASR task.

ESPnet 2 has no plugin entry points: `espnet2.tasks.asr` builds module-level `ClassChoices` dicts, and argparse
reads their keys as `choices` when `ASRTask.get_parser()` runs, as does `ASRTask.build_model_from_file`. A name
must therefore be in those dicts before either runs, in processes the user starts with ESPnet's own unmodified
`python -m espnet2.bin.asr_train` / `asr_inference` or `Speech2Text`.

Mechanism (see `espnet_samba.autoregister`): the package installs `espnet_samba_autoregister.pth` into
site-packages. Python executes it at start-up; it only adds a tiny import hook (no torch, no ESPnet import), so
unrelated programs start as fast as before. When, and only when, a program imports `espnet2.tasks.asr`, the hook
lets the module execute and then calls `register()`, which imports our classes and adds them to the choices.
`register()` is public too, for programs that prefer to be explicit; calling it twice is harmless.
"""
from __future__ import annotations

import importlib
from typing import Dict, Tuple

# choices attribute of espnet2.tasks.asr -> {config name: (module, class)}
ASR_CHOICES: Dict[str, Dict[str, Tuple[str, str]]] = {
    "encoder_choices": {
        "mamba": ("espnet_samba.asr.encoder.mamba_encoder", "MambaEncoder"),
        "speech_mamba": ("espnet_samba.asr.encoder.speech_mamba_encoder", "SpeechMambaEncoder"),
    },
    "decoder_choices": {
        "mamba": ("espnet_samba.asr.decoder.mamba_decoder", "MambaDecoder"),
    },
    "frontend_choices": {
        "kaldi_fbank": ("espnet_samba.asr.frontend.kaldi_fbank", "KaldiFbankFrontend"),
    },
}


def register() -> None:
    """Make `encoder: mamba`, `encoder: speech_mamba`, `decoder: mamba` and `frontend: kaldi_fbank` resolvable in
    ESPnet's ASR task, and let a distributed run of it exit cleanly (see `espnet_samba.process_group_teardown`)."""
    # Imported here, not at the top: `import espnet_samba` must not import torch.
    from espnet_samba.process_group_teardown import tear_down_process_group_at_exit

    tear_down_process_group_at_exit()
    asr_task = importlib.import_module("espnet2.tasks.asr")
    for choices_name, entries in ASR_CHOICES.items():
        choices = getattr(asr_task, choices_name)
        for name, (module_name, class_name) in entries.items():
            choices.classes[name] = getattr(importlib.import_module(module_name), class_name)
