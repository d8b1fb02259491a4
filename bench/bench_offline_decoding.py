"""What the scanned CTC prefix scorer saves in offline decoding: the espeak_en demo decoded by ESPnet's
`Speech2Text` (its `CTCPrefixScorer`, a Python loop over the frames at every output step) and by
`espnet_samba.bin.asr_inference.Speech2Text` (the same search with `ScannedCTCPrefixScorer`), stage 12's decoder.

Loads the trained demo model, LM and decoding config of egs2/espeak_en/asr1 (run `make demo` first) into both, and
decodes the first `--utterances` recordings of `--test_set`, alternating per recording so that both see the same
machine state. `--join K` also decodes recordings made of K consecutive ones end to end: the loop's cost grows
with frames x output tokens, so longer audio shows more of it. Prints, per length, the seconds per recording of
each, their ratio, how many 1-best hypotheses differ and the largest difference of their total scores.

Usage: tools/venv/bin/python bench/bench_offline_decoding.py [--threads 1] [--utterances 100]
       [--test_set test_espeak] [--join 1 4]
"""
from __future__ import annotations

import argparse
import time
from typing import Dict, List

import numpy as np
import torch
from espnet2.bin.asr_inference import Speech2Text as EspnetSpeech2Text

from demo_model import demo_speech2text, read_recordings
from espnet_samba.bin.asr_inference import Speech2Text as ScannedSpeech2Text

SAMPLE_RATE = 16000


def joined(recordings: List[np.ndarray], join: int) -> List[np.ndarray]:
    """Consecutive groups of `join` recordings, each concatenated into one (a last, shorter group is dropped)."""
    return [np.concatenate(recordings[i : i + join]) for i in range(0, len(recordings) - join + 1, join)]


def compare(decoders: Dict[str, object], recordings: List[np.ndarray]) -> Dict[str, float]:
    """Decodes every recording with each decoder in turn; total seconds per decoder, differing 1-best texts and the
    largest absolute difference of their total scores."""
    seconds = {name: 0.0 for name in decoders}
    differing, score_gap = 0, 0.0
    for audio in recordings:
        best = {}
        for name, decoder in decoders.items():
            speech = torch.from_numpy(audio.copy())  # the model's frontend computes the features
            start = time.perf_counter()
            best[name] = decoder(speech)[0]
            seconds[name] += time.perf_counter() - start
        (loop_text, *_, loop_hyp), (scan_text, *_, scan_hyp) = best["loop"], best["scan"]
        differing += loop_text != scan_text
        score_gap = max(score_gap, abs(float(loop_hyp.score) - float(scan_hyp.score)))
    return {**seconds, "differing": differing, "score_gap": score_gap}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the recipe decodes with 1 per job)")
    parser.add_argument("--utterances", type=int, default=100)
    parser.add_argument("--test_set", default="test_espeak")
    parser.add_argument("--join", type=int, nargs="+", default=[1, 4], help="recordings joined into one")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    decoders = {"loop": demo_speech2text(EspnetSpeech2Text), "scan": demo_speech2text(ScannedSpeech2Text)}
    recordings = read_recordings(args.test_set, args.utterances)
    print(f"{args.test_set}, {args.threads} thread(s); seconds per recording decoded by ESPnet's Speech2Text (loop) "
          "and espnet_samba's (scan)")
    print(f"{'joined':>6} {'recordings':>10} {'audio s':>8} {'loop s':>8} {'scan s':>8} {'scan/loop':>9} "
          f"{'texts differ':>12} {'max score gap':>13}")
    for join in args.join:
        group = joined(recordings, join)
        result = compare(decoders, group)
        count = len(group)
        audio_seconds = sum(len(a) for a in group) / SAMPLE_RATE / count
        print(f"{join:>6} {count:>10} {audio_seconds:>8.1f} {result['loop'] / count:>8.3f} "
              f"{result['scan'] / count:>8.3f} {result['scan'] / result['loop']:>8.2f}x "
              f"{result['differing']:>12} {result['score_gap']:>13.2e}")


if __name__ == "__main__":
    main()
