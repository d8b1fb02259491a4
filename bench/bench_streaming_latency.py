"""Streaming latency, real-time factor and WER per chunk size on a trained causal model (the demo's, by default).

For each test utterance and chunk size, the audio is fed chunk by chunk to `Speech2TextStreaming` (one CPU
thread unless --threads says otherwise); after every chunk the partial text is recorded with the audio time
received so far. A word's latency is the delay between the end of the word in the audio and its first appearance,
at its place, in the partial results (or the final result, at the end of the utterance):

    latency = (audio received when the word first appears) - (the word's end in the audio)
    latency + compute = that plus the time the chunk that showed it took to decode

Word end times come from a CTC forced alignment of the reference transcript with an offline model
(--align_asr_train_config: a bidirectional model, whose CTC spikes follow the acoustics more closely than a causal
model's; default: the streaming model itself, decoded offline). Only words the final result gets right (matched to
the reference by difflib's longest matching blocks) are timed. WER: the final results, word edit distance.

    cd egs2/espeak_en/asr1
    ../../../tools/venv/bin/python ../../../bench/bench_streaming_latency.py \
        --exp_dir exp/asr_train_asr_samba_streaming_raw_en_bpe150 \
        --align_exp_dir exp/asr_train_asr_samba_raw_en_bpe150 --data_dir data/test_espeak \
        --lm_exp_dir exp/lm_train_lm_en_bpe150 --decode_config conf/decode_asr.yaml \
        --plot ../../../bench/streaming_latency.png

Prints a markdown table (one row per chunk size) and saves the plot of latency and real-time factor against
chunk size. With --also_int8 the same utterances are decoded by the int8 model of ESPnet's `--quantize_asr_model
true` too, chunk size by chunk size beside the float one, and a comparison table follows.
"""
from __future__ import annotations

import argparse
import difflib
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import editdistance
import numpy as np
import soundfile
import torch
import yaml

from espnet2.tasks.asr import ASRTask
from espnet2.text.build_tokenizer import build_tokenizer
from espnet2.text.token_id_converter import TokenIDConverter

from espnet_samba.decoding.audio_input import read_scp
from espnet_samba.bin.asr_inference_streaming import Speech2TextStreaming
from espnet_samba.decoding.kaldi_fbank import StreamingKaldiFbank, read_fbank_conf
from espnet_samba.decoding.long_form import group_words, token_spans
from espnet_samba.decoding.streaming_features import StreamingFeatures


@dataclass
class Utterance:
    key: str
    speech: np.ndarray
    words: List[str]
    word_ends: List[float]  # seconds


@dataclass
class ChunkSizeResult:
    chunk_ms: float
    latencies: List[float]
    compute_latencies: List[float]
    errors: int
    reference_words: int
    audio_seconds: float
    decoding_seconds: float

    @property
    def rtf(self) -> float:
        return self.decoding_seconds / self.audio_seconds


def model_files(exp_dir: Path, model_name: str) -> Tuple[Path, Path]:
    return exp_dir / "config.yaml", exp_dir / model_name


class WordAligner:
    """Word end times of a transcript: the Viterbi CTC alignment of its tokens with an offline model.

    A model without frontend (--feats_type fbank) is given the Kaldi fbank features of `fbank_conf`.
    """

    def __init__(self, exp_dir: Path, model_name: str, fbank_conf: Optional[Path], rate: int) -> None:
        self.model, args = ASRTask.build_model_from_file(*model_files(exp_dir, model_name), "cpu")
        self.model.eval()
        self.token_type = args.token_type
        self.tokenizer = build_tokenizer(args.token_type, args.bpemodel)
        self.converter = TokenIDConverter(args.token_list)
        self.fbank = None
        if self.model.frontend is None:
            self.fbank = StreamingKaldiFbank(read_fbank_conf(fbank_conf), rate)
            shift = self.fbank.frame_shift
        else:  # ESPnet's frontend or kaldi_fbank: the shift of the frames they compute
            shift = StreamingFeatures(self.model.frontend, None, torch.float32).frame_shift
        self.frame_shift = shift * self.model.encoder.frame_stride()

    @torch.no_grad()
    def word_ends(self, speech: np.ndarray, text: str) -> Tuple[List[str], List[float]]:
        tokens = self.tokenizer.text2tokens(text)
        ids = self.converter.tokens2ids(tokens)
        tensor = torch.from_numpy(speech)
        if self.fbank is not None:
            self.fbank.reset()
            tensor = self.fbank(tensor)
        memory, _ = self.model.encode(tensor[None], torch.tensor([tensor.size(0)]))
        spans = token_spans(self.model.ctc.log_softmax(memory)[0], ids, self.model.blank_id)
        words = group_words(tokens, self.token_type)
        return [word for word, _, _ in words], [spans[stop - 1][1] * self.frame_shift for _, _, stop in words]


def load_utterances(data_dir: Path, aligner: WordAligner, limit: int) -> List[Utterance]:
    wavs, texts = dict(read_scp(data_dir / "wav.scp")), dict(read_scp(data_dir / "text"))
    utterances = []
    for key in sorted(wavs)[:limit]:
        speech, _ = soundfile.read(wavs[key], dtype="float32")
        words, ends = aligner.word_ends(speech, texts[key])
        utterances.append(Utterance(key, speech, words, ends))
    return utterances


def first_appearances(partials: Sequence[List[str]], final: List[str]) -> List[int]:
    """For each word j of the final result, the first update whose words hold it at place j."""
    return [
        next(index for index, words in enumerate(partials) if len(words) > place and words[place] == word)
        for place, word in enumerate(final)
    ]


def stream_utterance(speech2text: Speech2TextStreaming, speech: np.ndarray, chunk: int, rate: int):
    """Feed one utterance; returns the audio times, decoding times and words after each chunk (the last: final)."""
    speech2text.reset()
    times, costs, words = [], [], []
    for start in range(0, speech.size, chunk):
        is_final = start + chunk >= speech.size
        started = time.perf_counter()
        results = speech2text(speech[start : start + chunk], is_final=is_final)
        costs.append(time.perf_counter() - started)
        times.append(min(start + chunk, speech.size) / rate)
        words.append(results[0][0].split() if results and results[0][0] else [])
    return times, costs, words


def measure(speech2text: Speech2TextStreaming, utterances: List[Utterance], chunk_ms: float) -> ChunkSizeResult:
    rate = speech2text.recognizer.features.sample_rate
    chunk = round(chunk_ms / 1000 * rate)
    result = ChunkSizeResult(chunk_ms, [], [], 0, 0, 0.0, 0.0)
    for utterance in utterances:
        times, costs, words = stream_utterance(speech2text, utterance.speech, chunk, rate)
        final = words[-1]
        result.errors += editdistance.eval(final, utterance.words)
        result.reference_words += len(utterance.words)
        result.audio_seconds += utterance.speech.size / rate
        result.decoding_seconds += sum(costs)
        shown = first_appearances(words, final)
        matcher = difflib.SequenceMatcher(a=utterance.words, b=final, autojunk=False)
        for block in matcher.get_matching_blocks():
            for offset in range(block.size):
                update = shown[block.b + offset]
                delay = times[update] - utterance.word_ends[block.a + offset]
                result.latencies.append(delay)
                result.compute_latencies.append(delay + costs[update])
    return result


def percentile(values: Sequence[float], fraction: float) -> float:
    return float(np.percentile(np.asarray(values), 100 * fraction)) if values else float("nan")


def mean(values: Sequence[float]) -> float:
    return statistics.mean(values) if values else float("nan")


def print_table(results: List[ChunkSizeResult], threads: int) -> None:
    print(f"| chunk | RTF ({threads} thread{'s' if threads > 1 else ''}) | mean latency | p90 latency "
          "| mean latency + compute | words timed | WER |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r.chunk_ms:.0f} ms | {r.rtf:.3f} | {1000 * mean(r.latencies):.0f} ms "
              f"| {1000 * percentile(r.latencies, 0.9):.0f} ms | {1000 * mean(r.compute_latencies):.0f} ms "
              f"| {len(r.latencies)} | {100 * r.errors / r.reference_words:.1f} % |")


def print_int8_comparison(float32: List[ChunkSizeResult], int8: List[ChunkSizeResult]) -> None:
    print("\nint8 (--quantize_asr_model true) against float32, same run:\n")
    print("| chunk | RTF float32 | RTF int8 | int8 time / float32 time | WER float32 | WER int8 |")
    print("|---|---|---|---|---|---|")
    for f, q in zip(float32, int8):
        print(f"| {f.chunk_ms:.0f} ms | {f.rtf:.3f} | {q.rtf:.3f} | {q.rtf / f.rtf:.2f}x "
              f"| {100 * f.errors / f.reference_words:.1f} % | {100 * q.errors / q.reference_words:.1f} % |")


def plot(results: List[ChunkSizeResult], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chunks = [r.chunk_ms for r in results]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    left.plot(chunks, [1000 * mean(r.latencies) for r in results], "o-", label="mean")
    left.plot(chunks, [1000 * percentile(r.latencies, 0.9) for r in results], "s--", label="90th percentile")
    left.plot(chunks, [1000 * mean(r.compute_latencies) for r in results], "^:", label="mean + compute")
    left.set(xlabel="chunk (ms)", ylabel="word latency (ms)", title="end of word -> first shown")
    left.legend()
    right.plot(chunks, [r.rtf for r in results], "o-", color="tab:green")
    right.set(xlabel="chunk (ms)", ylabel="real-time factor", title="decoding time / audio time")
    right.set_ylim(bottom=0)
    for axis in (left, right):
        axis.set_xscale("log", base=2)
        axis.set_xticks(chunks, [f"{c:.0f}" for c in chunks])
        axis.grid(alpha=0.3)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"plot: {path}")


def decode_options(path: Optional[Path]) -> Dict[str, float]:
    if path is None:
        return {}
    options = yaml.safe_load(path.read_text())
    return {name: options[name] for name in ("beam_size", "ctc_weight", "lm_weight", "penalty") if name in options}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--exp_dir", type=Path, required=True, help="The causal model's experiment directory")
    parser.add_argument("--model_name", default="valid.acc.ave.pth")
    parser.add_argument("--align_exp_dir", type=Path, default=None, help="Offline model for word times")
    parser.add_argument("--align_model_name", default="valid.acc.ave.pth")
    parser.add_argument("--lm_exp_dir", type=Path, default=None)
    parser.add_argument("--lm_model_name", default="valid.loss.ave.pth")
    parser.add_argument("--decode_config", type=Path, default=None, help="beam_size, ctc_weight, lm_weight, penalty")
    parser.add_argument("--fbank_conf", type=Path, default=None,
                        help="The recipe's conf/fbank.conf, for models trained with --feats_type fbank")
    parser.add_argument("--fs", type=int, default=16000)
    parser.add_argument("--data_dir", type=Path, required=True, help="wav.scp and text")
    parser.add_argument("--max_utterances", type=int, default=300)
    parser.add_argument("--chunk_ms", type=float, nargs="+", default=[160, 320, 640, 1280])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--also_int8", action="store_true",
                        help="Also decode with ESPnet's --quantize_asr_model true (int8 nn.Linear) in the same run")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    aligner = WordAligner(args.align_exp_dir or args.exp_dir,
                          args.align_model_name if args.align_exp_dir else args.model_name, args.fbank_conf, args.fs)
    utterances = load_utterances(args.data_dir, aligner, args.max_utterances)
    lm = {}
    if args.lm_exp_dir is not None:
        lm = dict(zip(("lm_train_config", "lm_file"), model_files(args.lm_exp_dir, args.lm_model_name)))
    options = decode_options(args.decode_config)
    fbank = {} if args.fbank_conf is None else {"fbank_conf": args.fbank_conf, "fs": args.fs}
    model = model_files(args.exp_dir, args.model_name)
    speech2text = Speech2TextStreaming(*model, **lm, **options, **fbank)
    recognisers = {"float32": speech2text}
    if args.also_int8:
        recognisers["int8"] = Speech2TextStreaming(*model, **lm, **options, **fbank, quantize_asr_model=True)
    seconds = sum(u.speech.size for u in utterances) / speech2text.recognizer.features.sample_rate
    print(f"{len(utterances)} utterances of {args.data_dir} ({seconds / 60:.1f} min), model {args.exp_dir}, "
          f"word ends aligned by {args.align_exp_dir or args.exp_dir}, decoding {options or 'defaults'}"
          f"{', LM ' + str(args.lm_exp_dir) if lm else ''}")
    by_model: Dict[str, List[ChunkSizeResult]] = {name: [] for name in recognisers}
    for index, chunk_ms in enumerate(args.chunk_ms, start=1):
        started = time.perf_counter()
        for name, recogniser in recognisers.items():
            by_model[name].append(measure(recogniser, utterances, chunk_ms))
        print(f"[{index}/{len(args.chunk_ms)}] {chunk_ms:.0f} ms chunks: {time.perf_counter() - started:.0f} s",
              flush=True)
    results = by_model["float32"]
    for name, model_results in by_model.items():
        print(f"\n{name}:\n")
        print_table(model_results, args.threads)
    if args.also_int8:
        print_int8_comparison(results, by_model["int8"])
    if args.plot is not None:
        plot(results, args.plot, f"streaming Samba-ASR, {args.exp_dir.name}, {len(utterances)} utterances, "
             f"{args.threads} CPU thread{'s' if args.threads > 1 else ''}")


if __name__ == "__main__":
    main()
