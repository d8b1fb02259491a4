"""How much silence before the speech a streaming model tolerates: each test utterance decoded alone with N ms of
digital silence prepended, WER per N against N = 0 (the utterance as recorded).

A segment of a long recording starts where the recogniser restarts its encoder after a pause
(`espnet_samba.decoding.streaming_recognizer`); this measures what a start before the speech costs, which is why
the restart looks for the speech onset to the input frame (`espnet_samba.decoding.speech_onset`).

    cd egs2/espeak_en/asr1
    ../../../tools/venv/bin/python ../../../bench/bench_leading_silence.py \
        --exp_dir exp/asr_train_asr_samba_streaming_raw_en_bpe150 --lm_exp_dir exp/lm_train_lm_en_bpe150 \
        --decode_config conf/decode_asr.yaml --data_dir data/test_espeak --lead_ms 0 20 40 60 100
"""
from __future__ import annotations

import argparse
import time

import editdistance
import numpy as np
import soundfile
import torch

from bench_long_form import RATE, add_recogniser_options, recogniser_arguments
from espnet_samba.bin.asr_inference_streaming import Speech2TextStreaming
from espnet_samba.decoding.audio_input import read_scp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_recogniser_options(parser)
    parser.add_argument("--lead_ms", type=float, nargs="+", default=[0, 20, 40, 60, 100])
    parser.add_argument("--limit", type=int, default=None, help="Only the first N utterances (default: all)")
    parser.add_argument("--threads", type=int, default=2)
    options = parser.parse_args()
    torch.set_num_threads(options.threads)

    (config, model), keywords = recogniser_arguments(options)
    speech2text = Speech2TextStreaming(config, model, **keywords)
    wavs, texts = dict(read_scp(options.data_dir / "wav.scp")), dict(read_scp(options.data_dir / "text"))
    keys = sorted(wavs)[: options.limit]
    references = sum(len(texts[key].split()) for key in keys)
    rows = []
    started = time.perf_counter()
    for index, lead_ms in enumerate(options.lead_ms, start=1):
        silence = np.zeros(round(lead_ms / 1000 * RATE), dtype=np.float32)
        errors = 0
        for key in keys:
            speech, rate = soundfile.read(wavs[key], dtype="float32")
            assert rate == RATE, f"{wavs[key]}: {rate} Hz"
            text = speech2text(torch.from_numpy(np.concatenate([silence, speech])), is_final=True)[0][0]
            errors += editdistance.eval(text.split() if text else [], texts[key].split())
        rows.append((lead_ms, errors))
        elapsed = time.perf_counter() - started
        print(f"[{index}/{len(options.lead_ms)}] {lead_ms:g} ms: WER {100 * errors / references:.1f} %, "
              f"elapsed {elapsed:.0f} s, ETA {elapsed / index * (len(options.lead_ms) - index):.0f} s", flush=True)

    print(f"\nEach of {len(keys)} utterances of {options.data_dir} decoded alone, whole "
          f"(Speech2TextStreaming), {options.exp_dir.name}:\n")
    print("| silence prepended | WER | vs none |")
    print("|---|---|---|")
    base = next((errors for lead_ms, errors in rows if lead_ms == 0), rows[0][1])
    for lead_ms, errors in rows:
        ratio = f"{errors / base:.2f}x" if base else "-"
        print(f"| {lead_ms:g} ms | {100 * errors / references:.1f} % | {ratio} |")


if __name__ == "__main__":
    main()
