"""What the lexicon constraint costs in decoding time: the espeak_en demo's model decoded with and without it.

Loads the trained demo model, LM, decoding config and lexicon of egs2/espeak_en/asr1 (run `make demo` first, then
`./run.sh --stage 5 --stop_stage 5 --use_lexicon true` there for the lexicon) into ESPnet's `Speech2Text`, and
decodes the audio of the first `--utterances` of `--test_set` with its beam search as built and with the copy
`constrain_to_lexicon` makes, alternating per utterance so that both see the same machine state. Prints the
seconds per utterance of each, their ratio, and how many hypotheses differ.

Usage: tools/venv/bin/python bench/bench_lexicon_decoding.py [--threads 1] [--utterances 100] [--test_set test_espeak]
"""
from __future__ import annotations

import argparse
import itertools
import os
import time
from pathlib import Path

import soundfile
import torch
import yaml
from espnet2.bin.asr_inference import Speech2Text

from espnet_samba.decoding import constrain_to_lexicon, read_lexicon

RECIPE = Path(__file__).resolve().parents[1] / "egs2" / "espeak_en" / "asr1"
ASR_EXP = RECIPE / "exp" / "asr_train_asr_samba_raw_en_bpe150"
LM_EXP = RECIPE / "exp" / "lm_train_lm_en_bpe150"
LEXICON = RECIPE / "data" / "en_token_list" / "lexicon.txt"


def speech2text() -> Speech2Text:
    """The demo model with the recipe's LM and decoding config (`conf/decode_asr.yaml`)."""
    for needed in (ASR_EXP / "valid.acc.ave.pth", LM_EXP / "valid.loss.ave.pth", LEXICON):
        if not needed.exists():
            raise SystemExit(
                f"{needed} not found: run `make demo` (egs2/espeak_en/asr1/run.sh) first, then "
                "`./run.sh --stage 5 --stop_stage 5 --use_lexicon true` there for the lexicon"
            )
    decoding = yaml.safe_load((RECIPE / "conf" / "decode_asr.yaml").read_text())
    return Speech2Text(
        asr_train_config=ASR_EXP / "config.yaml",
        asr_model_file=ASR_EXP / "valid.acc.ave.pth",
        lm_train_config=LM_EXP / "config.yaml",
        lm_file=LM_EXP / "valid.loss.ave.pth",
        device="cpu",
        **decoding,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the recipe decodes with 1 per job)")
    parser.add_argument("--utterances", type=int, default=100)
    parser.add_argument("--test_set", default="test_espeak")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.chdir(RECIPE)  # the model's config.yaml names its files relative to the recipe, as ESPnet's do

    decoder = speech2text()
    searches = {
        "without lexicon": decoder.beam_search,
        "with lexicon": constrain_to_lexicon(decoder.beam_search, read_lexicon(LEXICON)),
    }
    wav_scp = RECIPE / "dump" / "raw" / args.test_set / "wav.scp"
    with wav_scp.open(encoding="utf-8") as f:
        paths = [line.split(maxsplit=1)[1].strip() for line in itertools.islice(f, args.utterances)]
    seconds = {name: 0.0 for name in searches}
    differing = 0
    utterances = [soundfile.read(path, dtype="float32")[0] for path in paths]
    for audio in utterances:
        texts = {}
        for name, search in searches.items():
            decoder.beam_search = search
            speech = torch.from_numpy(audio.copy())  # the model's frontend computes the features
            start = time.perf_counter()
            texts[name] = decoder(speech)[0][0]
            seconds[name] += time.perf_counter() - start
        differing += texts["without lexicon"] != texts["with lexicon"]
    count = len(utterances)
    for name, total in seconds.items():
        print(f"{name:>16}: {total / count * 1000:7.1f} ms per utterance ({count} utterances of {args.test_set})")
    print(f"with / without lexicon: {seconds['with lexicon'] / seconds['without lexicon']:.2f}x; "
          f"{differing} of {count} hypotheses differ")


if __name__ == "__main__":
    main()
