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
import time

import torch
from espnet2.bin.asr_inference import Speech2Text

from demo_model import RECIPE, demo_speech2text, read_recordings
from espnet_samba.decoding import constrain_to_lexicon, read_lexicon

LEXICON = RECIPE / "data" / "en_token_list" / "lexicon.txt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the recipe decodes with 1 per job)")
    parser.add_argument("--utterances", type=int, default=100)
    parser.add_argument("--test_set", default="test_espeak")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    decoder = demo_speech2text(
        Speech2Text, needed=[LEXICON], how=", then `./run.sh --stage 5 --stop_stage 5 --use_lexicon true` there"
    )
    searches = {
        "without lexicon": decoder.beam_search,
        "with lexicon": constrain_to_lexicon(decoder.beam_search, read_lexicon(LEXICON)),
    }
    seconds = {name: 0.0 for name in searches}
    differing = 0
    utterances = read_recordings(args.test_set, args.utterances)
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
