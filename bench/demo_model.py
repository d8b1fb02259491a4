"""The trained espeak_en demo (`make demo`) as the decoding benchmarks load it: the model, LM and decoding config
of egs2/espeak_en/asr1, and the audio of a test set."""
from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any, List, Sequence

import numpy as np
import soundfile
import yaml

RECIPE = Path(__file__).resolve().parents[1] / "egs2" / "espeak_en" / "asr1"
ASR_EXP = RECIPE / "exp" / "asr_train_asr_samba_raw_en_bpe150"
LM_EXP = RECIPE / "exp" / "lm_train_lm_en_bpe150"


def demo_speech2text(speech2text_class: type, needed: Sequence[Path] = (), how: str = "", **options: Any) -> Any:
    """`speech2text_class` (ESPnet's `Speech2Text` or a subclass) built from the demo model, its LM and
    conf/decode_asr.yaml, with `options` on top. Works in the recipe's directory, as ESPnet's configs name their
    files relative to it. `needed`: further files the caller reads, and `how` to make them if missing."""
    for path in (ASR_EXP / "valid.acc.ave.pth", LM_EXP / "valid.loss.ave.pth", *needed):
        if not path.exists():
            raise SystemExit(f"{path} not found: run `make demo` (egs2/espeak_en/asr1/run.sh) first{how}")
    os.chdir(RECIPE)
    decoding = yaml.safe_load((RECIPE / "conf" / "decode_asr.yaml").read_text())
    return speech2text_class(
        asr_train_config=ASR_EXP / "config.yaml",
        asr_model_file=ASR_EXP / "valid.acc.ave.pth",
        lm_train_config=LM_EXP / "config.yaml",
        lm_file=LM_EXP / "valid.loss.ave.pth",
        device="cpu",
        **{**decoding, **options},
    )


def read_recordings(test_set: str, utterances: int) -> List[np.ndarray]:
    """The first `utterances` recordings of dump/raw/`test_set`, float32 samples."""
    wav_scp = RECIPE / "dump" / "raw" / test_set / "wav.scp"
    with wav_scp.open(encoding="utf-8") as f:
        paths = [line.split(maxsplit=1)[1].strip() for line in itertools.islice(f, utterances)]
    return [soundfile.read(path, dtype="float32")[0] for path in paths]
