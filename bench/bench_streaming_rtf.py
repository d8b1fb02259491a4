"""Real-time factor of streaming recognition on CPU: Samba-ASR against ESPnet's streaming Conformer, side by side.

RTF = processing time of the whole stream / audio duration, for raw 16 kHz audio fed in chunks of `--chunk-ms`
(the last one with is_final), batch 1, `--threads` torch threads (default 1, as one decoding job of asr.sh).
Both models take 80-dim fbank from ESPnet's `frontend: default` with the LibriSpeech recipes' settings (n_fft 512,
win_length 400, hop_length 160: 100 frames/s), `global_mvn` (statistics of the benchmark audio), a conv2d front end
(4x subsampling) and a 5000-token vocabulary; random weights, written as an ESPnet experiment (config.yaml by
ESPnet's own training entry point with --dry_run, model.pth) and loaded by each recogniser from those files:

- conformer (the baseline): `encoder: contextual_block_conformer` as in ESPnet's streaming recipes (block_size 40,
  hop_size 16, look_ahead 16, init_average, ctx_pos_enc, macaron, swish, kernel 15; 12 blocks x 256, 4 heads, 1024
  units) and `decoder: transformer` (6 blocks, 4 heads, 1024 units), decoded by ESPnet's
  `espnet2.bin.asr_inference_streaming.Speech2TextStreaming`: blockwise synchronous beam search with joint CTC
  (`BatchBeamSearchOnline`; maxlenratio 0, ESPnet's default and its recipes' decode configs);
- samba: `encoder: mamba` with `bidirectional: false` (`--samba-output-size`, default 512), its conv2d front end
  with `--samba-subsampling-channels` channels (default 128, as icefall's Zipformer front end; 0: ESPnet's layer,
  output_size channels), and `decoder: mamba` (cross_connection attention, 2 blocks, 4 heads, 1024 units), decoded
  by `espnet_samba.bin.asr_inference_streaming.Speech2TextStreaming`: CTC prefix beam search frame by frame, then
  its default second pass (ESPnet's joint CTC/attention beam search over the utterance's encoder frames, as
  offline decoding does) at the end. Its encoder's num_blocks is the one that brings the model's parameters closest
  to the conformer's (the run prints it). The front end's second convolution costs channels^2 per output
  position, so at 512 channels it is the encoder's largest cost (7.3 M parameters; 1.4 M at 128 channels, which
  leaves room for twice the Mamba blocks). The three vocabulary matrices (embedding, output, CTC) take 7.7 M.

Both: beam 10, ctc_weight 0.5, no LM, nbest 1. A third recogniser, "samba int8", is the same Samba-ASR with
`quantize_asr_model=True` (ESPnet's `--quantize_asr_model`: dynamic int8 `nn.Linear`s); ESPnet's streaming
recogniser has no such option. Streaming reads every weight once per chunk (at 160 ms chunks, 4 encoder frames
per read), so at short chunks a step is bound by memory traffic, which int8 weights cut to a quarter.

A fair, bounded workload with random weights. A random CTC layer spreads each frame's mass over the whole vocabulary
and emits a token almost everywhere: ESPnet's label-synchronous search then runs to its maxlen (one token per
encoder frame) and ours returns equally long hypotheses. So, once before timing, each model's CTC layer is given a
trained one's varied spikes on the encoder frames of the benchmark audio (offline encoder): its bias is set so that
it scores a frame's deviation from the mean frame (a random encoder's frames share a large common part, which picks
the same few tokens everywhere), its weights are scaled until the likeliest non-blank token takes 95 % of their mass
(median frame), then the blank bias is raised until the best CTC path emits `--tokens-per-second`. Both searches
then decode hypotheses of about that many tokens, which each run prints (and, for the conformer, its beam-search
steps: the decoder's `batch_score` calls). The default, 3.5 tokens/s, is roughly read English (LibriSpeech: ~2.7
words/s) in a 5000-unit BPE. The audio is random "syllables" (`synthetic_speech`) rather than a periodic signal,
whose frames, and tokens, would repeat.
ESPnet's repetition detection (on by default, as in its recipes) stops a non-final block's search when a hypothesis
repeats a token, as real transcripts often do ("the", "a"); from then on each block advances it a step or two and
most of the search is left to the final chunk (its latency is printed). `--disable-repetition-detection` turns it off.

Each (audio, chunk) point: the two recognisers alternate, `--repeats` streams each, after one 2 s warm-up stream
each; the median RTF is reported, on wall time and on process CPU time (a check on wall times taken on a loaded
machine), with the slowest single chunk call (latency of a chunk, the final one included).

Usage: tools/venv/bin/python bench/bench_streaming_rtf.py [--durations 20] [--chunk-ms 160 320 640 1280]
       [--threads 1] [--repeats 3] [--tokens-per-second 3.5] [--samba-output-size 512]
       [--samba-subsampling-channels 128]
       [--disable-repetition-detection] [--plot bench/streaming_rtf.png] [--quick]
`--quick`: tiny models, 2 s of audio, one chunk size, one repeat (a smoke test, not a measurement).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

RATE = 16000
N_MELS = 80
FRONTEND_CONF = {"n_fft": 512, "win_length": 400, "hop_length": 160, "n_mels": N_MELS, "fs": RATE}
BEAM = 10
SPIKE_MASS = 0.95
CTC_WEIGHT = 0.5
WARMUP_SECONDS = 2.0
BASELINE = "conformer"
QUANTIZED = "samba int8"
# audio seconds -> chunk ms -> recogniser -> figures of one point
Results = Dict[float, Dict[float, Dict[str, dict]]]


@dataclass(frozen=True)
class Sizes:
    """The benchmark's model sizes (`--quick`: tiny ones)."""

    vocab: int
    conformer_encoder: Dict
    conformer_decoder: Dict
    samba_decoder: Dict


FULL = Sizes(
    vocab=5000,
    conformer_encoder={
        "output_size": 256, "attention_heads": 4, "linear_units": 1024, "num_blocks": 12, "cnn_module_kernel": 15,
    },
    conformer_decoder={"attention_heads": 4, "linear_units": 1024, "num_blocks": 6},
    samba_decoder={"num_blocks": 2, "attention_heads": 4, "linear_units": 1024},
)
QUICK = Sizes(
    vocab=50,
    conformer_encoder={
        "output_size": 32, "attention_heads": 2, "linear_units": 64, "num_blocks": 2, "cnn_module_kernel": 15,
    },
    conformer_decoder={"attention_heads": 2, "linear_units": 64, "num_blocks": 1},
    samba_decoder={"num_blocks": 1, "attention_heads": 2, "linear_units": 64},
)
QUICK_SAMBA_OUTPUT_SIZE = 32


def conformer_model(sizes: Sizes) -> Dict[str, Dict]:
    encoder_conf = {
        **sizes.conformer_encoder, "input_layer": "conv2d", "normalize_before": True, "activation_type": "swish",
        "macaron_style": True, "use_cnn_module": True, "block_size": 40, "hop_size": 16, "look_ahead": 16,
        "init_average": True, "ctx_pos_enc": True, "dropout_rate": 0.0, "positional_dropout_rate": 0.0,
        "attention_dropout_rate": 0.0,
    }
    decoder_conf = {**sizes.conformer_decoder, "dropout_rate": 0.0}
    return {"encoder": ("contextual_block_conformer", encoder_conf), "decoder": ("transformer", decoder_conf)}


def samba_model(sizes: Sizes, output_size: int, num_blocks: int, subsampling_channels: int) -> Dict[str, Dict]:
    encoder_conf = {
        "output_size": output_size, "num_blocks": num_blocks, "bidirectional": False, "input_layer": "conv2d",
        "dropout_rate": 0.0,
    }
    if subsampling_channels:
        encoder_conf["subsampling_channels"] = subsampling_channels
    decoder_conf = {**sizes.samba_decoder, "cross_connection": "attention", "dropout_rate": 0.0}
    return {"encoder": ("mamba", encoder_conf), "decoder": ("mamba", decoder_conf)}


def synthetic_speech(seconds: float, seed: int = 0) -> torch.Tensor:
    """Random "syllables" (N,): 120-320 ms of harmonics of a random pitch shaped by two random formants, a few of
    them silent, plus noise: varied from syllable to syllable, as a periodic test signal is not."""
    rng = np.random.RandomState(seed)
    pieces, length = [], int(seconds * RATE)
    while sum(p.size for p in pieces) < length:
        t = np.arange(int(rng.uniform(0.12, 0.32) * RATE)) / RATE
        if rng.rand() < 0.15:
            pieces.append(np.zeros(t.size))
            continue
        pitch = rng.uniform(90, 250) * (1 + rng.uniform(-0.15, 0.15) * t / t[-1])
        phase = 2 * np.pi * np.cumsum(pitch) / RATE
        formants = rng.uniform(300, 900), rng.uniform(900, 3000)
        harmonics = np.arange(1, int(4000 / pitch.max()) + 1)
        gains = sum(np.exp(-0.5 * ((harmonics * pitch.mean() - f) / 150) ** 2) for f in formants) + 0.05
        voiced = (gains[:, None] * np.sin(harmonics[:, None] * phase)).sum(0)
        pieces.append(voiced / np.abs(voiced).max() * np.hanning(t.size))
    signal = 0.1 * np.concatenate(pieces)[:length] + 0.003 * rng.randn(length)
    return torch.from_numpy(signal.astype(np.float32))


def write_mvn_stats(path: Path, speech: torch.Tensor) -> Path:
    """feats_stats.npz (ESPnet's count, sum, sum_square) of the fbank of `speech`."""
    from espnet2.asr.frontend.default import DefaultFrontend

    with torch.no_grad():
        feats, _ = DefaultFrontend(**FRONTEND_CONF)(speech[None], torch.tensor([speech.numel()]))
    feats = feats[0].double().numpy()
    np.savez(path, count=np.array(feats.shape[0]), sum=feats.sum(0), sum_square=(feats**2).sum(0))
    return path


def write_config(root: Path, model: Dict[str, Dict], token_list: Path, stats: Path) -> Path:
    """root/config.yaml, by ESPnet's ASR training entry point with --dry_run (as asr.sh's stage 11 would)."""
    from espnet2.tasks.asr import ASRTask

    (encoder, encoder_conf), (decoder, decoder_conf) = model["encoder"], model["decoder"]
    ASRTask.main(cmd=[
        "--dry_run", "true", "--log_level", "WARNING", "--output_dir", str(root),
        "--token_list", str(token_list), "--token_type", "word",
        "--frontend", "default", "--frontend_conf", str(FRONTEND_CONF),
        "--normalize", "global_mvn", "--normalize_conf", f"stats_file={stats}",
        "--encoder", encoder, "--encoder_conf", str(encoder_conf),
        "--decoder", decoder, "--decoder_conf", str(decoder_conf),
    ])
    return root / "config.yaml"


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def greedy_tokens(log_probs: torch.Tensor, blank: int) -> int:
    """Tokens on the best CTC path of (T, V) scores: repeats collapsed, blanks dropped."""
    path = log_probs.argmax(-1)
    changes = torch.cat([torch.ones(1, dtype=torch.bool), path[1:] != path[:-1]])
    return int(((path != blank) & changes).sum())


def calibrate_ctc(model, speech: torch.Tensor, tokens_per_second: float) -> None:
    """Give the random CTC layer a trained one's varied spikes on the encoder frames of `speech` (offline encoder):
    its bias set to score each frame's deviation from their mean (a random encoder's frames share a large common
    part, which would pick the same few tokens everywhere), its weights scaled so that the likeliest token takes
    SPIKE_MASS of what the tokens other than blank share (median frame), then the blank bias raised until the best
    path emits `tokens_per_second`."""
    with torch.no_grad():
        encoded, _ = model.encode(speech[None], torch.tensor([speech.numel()]))
        layer, blank = model.ctc.ctc_lo, model.blank_id
        layer.bias.copy_(-layer.weight @ encoded[0].mean(0))
        logits = layer(encoded[0])
        tokens = torch.cat([logits[:, :blank], logits[:, blank + 1:]], dim=1)
        low, high = 1.0, 1e4
        for _ in range(40):  # bisection on the scale, geometric
            scale = (low * high) ** 0.5
            top_mass = (tokens * scale).softmax(-1).max(-1).values.median()
            low, high = (low, scale) if top_mass > SPIKE_MASS else (scale, high)
        layer.weight *= scale
        layer.bias *= scale
        logits = logits * scale
        target = tokens_per_second * speech.numel() / RATE
        margin = (logits.max(-1).values - logits[:, blank]).max().item()
        low, high = 0.0, margin + 1.0
        for _ in range(40):  # bisection on the blank bias: fewer tokens as it rises
            bias = (low + high) / 2
            shifted = logits.clone()
            shifted[:, blank] += bias
            low, high = (bias, high) if greedy_tokens(shifted, blank) > target else (low, bias)
        layer.bias[blank] += high


def encoder_frames(model, speech: torch.Tensor) -> int:
    """Encoder frames of `speech` (offline)."""
    with torch.no_grad():
        return model.encode(speech[None], torch.tensor([speech.numel()]))[0].size(1)


def write_experiment(
    root: Path, model: Dict[str, Dict], token_list: Path, stats: Path, speech: torch.Tensor, tokens_per_second: float
) -> dict:
    """config.yaml and model.pth of the model with random weights and a calibrated blank; paths and parameters."""
    from espnet2.tasks.asr import ASRTask

    root.mkdir(parents=True)
    config = write_config(root, model, token_list, stats)
    torch.manual_seed(0)
    asr_model, _ = ASRTask.build_model_from_file(config, None, "cpu")
    asr_model.eval()
    calibrate_ctc(asr_model, speech, tokens_per_second)
    torch.save(asr_model.state_dict(), root / "model.pth")
    return {"config": config, "model_file": root / "model.pth", "params": count_parameters(asr_model)}


def samba_encoder_blocks(sizes: Sizes, output_size: int, subsampling_channels: int, target_params: int, root: Path,
                         token_list: Path, stats: Path) -> int:
    """The encoder num_blocks that brings the Samba model's parameters closest to `target_params`."""
    from espnet2.tasks.asr import ASRTask

    from espnet_samba.asr.encoder.mamba_encoder import MambaEncoder

    config = write_config(root, samba_model(sizes, output_size, 1, subsampling_channels), token_list, stats)
    one_block = count_parameters(ASRTask.build_model_from_file(config, None, "cpu")[0])
    per_block = count_parameters(MambaEncoder(N_MELS, output_size, num_blocks=2)) - count_parameters(
        MambaEncoder(N_MELS, output_size, num_blocks=1)
    )
    return max(1, 1 + round((target_params - one_block) / per_block))


class CountingCalls:
    """Wraps a bound method and counts its calls (the conformer's label-synchronous search steps)."""

    def __init__(self, method: Callable) -> None:
        self.method = method
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.method(*args, **kwargs)


def build_recognizers(experiments: Dict[str, dict], disable_repetition_detection: bool) -> Dict[str, object]:
    from espnet2.bin.asr_inference_streaming import Speech2TextStreaming as ESPnetStreaming

    from espnet_samba.bin.asr_inference_streaming import Speech2TextStreaming as SambaStreaming

    conformer = ESPnetStreaming(
        experiments["conformer"]["config"], experiments["conformer"]["model_file"], beam_size=BEAM,
        ctc_weight=CTC_WEIGHT, lm_weight=0.0, nbest=1, disable_repetition_detection=disable_repetition_detection,
    )
    decoder = conformer.beam_search.full_scorers["decoder"]
    decoder.batch_score = CountingCalls(decoder.batch_score)
    samba, samba_int8 = (
        SambaStreaming(
            experiments["samba"]["config"], experiments["samba"]["model_file"], beam_size=BEAM,
            ctc_weight=CTC_WEIGHT, lm_weight=0.0, nbest=1, quantize_asr_model=quantize,
        )
        for quantize in (False, True)
    )
    return {"conformer": conformer, "samba": samba, QUANTIZED: samba_int8}


def decoder_steps(name: str, recognizer) -> int:
    return recognizer.beam_search.full_scorers["decoder"].batch_score.calls if name == BASELINE else 0


def run_stream(name: str, recognizer, speech: torch.Tensor, chunk: int) -> dict:
    """Feed `speech` in chunks of `chunk` samples; times and what was decoded."""
    steps_before = decoder_steps(name, recognizer)
    chunk_times: List[float] = []
    start, cpu_start = time.perf_counter(), time.process_time()
    for begin in range(0, speech.numel(), chunk):
        call_start = time.perf_counter()
        results = recognizer(speech[begin:begin + chunk], is_final=begin + chunk >= speech.numel())
        chunk_times.append(time.perf_counter() - call_start)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    seconds = speech.numel() / RATE
    return {
        "rtf": wall / seconds, "cpu_rtf": cpu / seconds, "slowest_ms": 1000 * max(chunk_times),
        "final_ms": 1000 * chunk_times[-1], "tokens": len(results[0][2]) if results else 0,
        "steps": decoder_steps(name, recognizer) - steps_before,
    }


def measure(recognizers: Dict[str, object], speech: torch.Tensor, chunk: int, repeats: int) -> Dict[str, dict]:
    """Median over `repeats` alternating streams of each recogniser."""
    runs: Dict[str, List[dict]] = {name: [] for name in recognizers}
    for _ in range(repeats):
        for name, recognizer in recognizers.items():
            runs[name].append(run_stream(name, recognizer, speech, chunk))
    return {
        name: {key: statistics.median(run[key] for run in name_runs) for key in name_runs[0]}
        for name, name_runs in runs.items()
    }


def print_table(results: Results, experiments: Dict[str, dict]) -> None:
    print("\nparameters: " + ", ".join(f"{n} {e['params'] / 1e6:.2f}M" for n, e in experiments.items()))
    print(
        "\n| audio | chunk | conformer RTF | samba RTF | samba / conformer | conformer CPU RTF | samba CPU RTF "
        "| samba / conformer (CPU) | slowest chunk, conformer / samba | final chunk, conformer / samba |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for seconds, points in results.items():
        for chunk_ms, point in points.items():
            conformer, samba = point["conformer"], point["samba"]
            print(
                f"| {seconds:g} s | {chunk_ms:g} ms | {conformer['rtf']:.3f} | {samba['rtf']:.3f} "
                f"| {samba['rtf'] / conformer['rtf']:.2f}x | {conformer['cpu_rtf']:.3f} | {samba['cpu_rtf']:.3f} "
                f"| {samba['cpu_rtf'] / conformer['cpu_rtf']:.2f}x "
                f"| {conformer['slowest_ms']:.0f} / {samba['slowest_ms']:.0f} ms "
                f"| {conformer['final_ms']:.0f} / {samba['final_ms']:.0f} ms |"
            )
    print(f"\n{QUANTIZED}: the same Samba-ASR with --quantize_asr_model true (ESPnet's dynamic int8 Linear layers)")
    print("\n| audio | chunk | samba int8 RTF | int8 / conformer | int8 / samba | samba int8 CPU RTF | tokens, samba / int8 |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for seconds, points in results.items():
        for chunk_ms, point in points.items():
            conformer, samba, quantized = point["conformer"], point["samba"], point[QUANTIZED]
            print(
                f"| {seconds:g} s | {chunk_ms:g} ms | {quantized['rtf']:.3f} | {quantized['rtf'] / conformer['rtf']:.2f}x "
                f"| {quantized['rtf'] / samba['rtf']:.2f}x | {quantized['cpu_rtf']:.3f} "
                f"| {samba['tokens']:.0f} / {quantized['tokens']:.0f} |"
            )


def print_workload(results: Results, frames: Dict[float, Dict[str, int]]) -> None:
    print("\nwhat each side decoded (final hypothesis; medians over the repeats):")
    for seconds, points in results.items():
        for chunk_ms, point in points.items():
            conformer, samba = point["conformer"], point["samba"]
            print(
                f"  {seconds:g} s, {chunk_ms:g} ms chunks: conformer {conformer['tokens']:.0f} tokens in "
                f"{conformer['steps']:.0f} beam-search steps over {frames[seconds]['conformer']} encoder frames; "
                f"samba {samba['tokens']:.0f} tokens, CTC prefix search over {frames[seconds]['samba']} frames, "
                f"then the second pass (its default: joint CTC/attention beam search, beam {BEAM})"
            )


def plot(results: Results, threads: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.4, 4.2))
    for seconds, points in results.items():
        chunks = list(points)
        for name, style in [("conformer", "s--"), ("samba", "o-"), (QUANTIZED, "^:")]:
            label = f"{name}, {seconds:g} s audio" if len(results) > 1 else name
            axis.plot(chunks, [points[c][name]["rtf"] for c in chunks], style, label=label)
    axis.set_xscale("log", base=2)
    axis.set_xticks(chunks, [f"{c:g}" for c in chunks])
    axis.set_xlabel("chunk (ms)")
    axis.set_ylabel("real-time factor (wall)")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    axis.set_title(f"Streaming recognition on CPU ({threads} thread{'s' if threads > 1 else ''}), beam {BEAM}")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    print(f"\nplot: {path}")


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--durations", type=float, nargs="+", default=[20.0], help="seconds of audio")
    parser.add_argument("--chunk-ms", type=float, nargs="+", default=[160, 320, 640, 1280])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokens-per-second", type=float, default=3.5)
    parser.add_argument("--samba-output-size", type=int, default=512)
    parser.add_argument(
        "--samba-subsampling-channels", type=int, default=128,
        help="channels of the samba encoder's conv2d front end (encoder_conf subsampling_channels); 0: ESPnet's "
        "layer as it is (output_size channels)",
    )
    parser.add_argument(
        "--disable-repetition-detection", action="store_true", help="ESPnet's option, for the conformer's search"
    )
    parser.add_argument("--plot", type=Path, default=Path(__file__).resolve().parent / "streaming_rtf.png")
    parser.add_argument("--quick", action="store_true", help="tiny models, 2 s, 320 ms chunks, one repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.durations, args.chunk_ms, args.repeats = [2.0], [320.0], 1
        args.samba_output_size, args.samba_subsampling_channels = QUICK_SAMBA_OUTPUT_SIZE, QUICK_SAMBA_OUTPUT_SIZE // 2
    sizes = QUICK if args.quick else FULL
    torch.set_num_threads(args.threads)

    import espnet_samba
    from espnet_samba.ops.cpu_kernels import load_cpu_kernels

    espnet_samba.register()
    durations = sorted(args.durations)
    speech = synthetic_speech(durations[-1])
    with tempfile.TemporaryDirectory(prefix="bench_streaming_rtf_") as tmp:
        root = Path(tmp)
        token_list = root / "tokens.txt"
        token_list.write_text("\n".join(["<blank>", "<unk>", *(f"t{i}" for i in range(sizes.vocab - 3)),
                                         "<sos/eos>"]) + "\n")
        stats = write_mvn_stats(root / "feats_stats.npz", speech)
        experiments = {"conformer": write_experiment(root / "conformer", conformer_model(sizes), token_list, stats,
                                                     speech, args.tokens_per_second)}
        channels = args.samba_subsampling_channels
        blocks = samba_encoder_blocks(sizes, args.samba_output_size, channels, experiments["conformer"]["params"],
                                      root / "samba_probe", token_list, stats)
        samba = samba_model(sizes, args.samba_output_size, blocks, channels)
        experiments["samba"] = write_experiment(root / "samba", samba, token_list, stats, speech,
                                                args.tokens_per_second)
        recognizers = build_recognizers(experiments, args.disable_repetition_detection)
        kernels = load_cpu_kernels()
        print(
            f"\nconformer: contextual_block_conformer {sizes.conformer_encoder} + transformer "
            f"{sizes.conformer_decoder}, ESPnet's Speech2TextStreaming\n"
            f"samba: mamba encoder (causal) output_size {args.samba_output_size}, num_blocks {blocks}, conv2d "
            f"subsampling with {channels or args.samba_output_size} channels + mamba decoder "
            f"(attention) {sizes.samba_decoder}, espnet_samba's Speech2TextStreaming\n"
            f"beam {BEAM}, ctc_weight {CTC_WEIGHT}, no LM; CTC calibrated for {args.tokens_per_second:g} tokens/s; "
            f"conformer's repetition detection {'off' if args.disable_repetition_detection else 'on'}; "
            f"torch threads {torch.get_num_threads()}; samba's Mamba ops on "
            f"{'the fused CPU kernels' if kernels.available else 'PyTorch: ' + kernels.unavailable_reason}",
            flush=True,
        )
        warmup = speech[: int(WARMUP_SECONDS * RATE)]
        for name, recognizer in recognizers.items():
            run_stream(name, recognizer, warmup, int(0.32 * RATE))

        results: Results = {}
        frames: Dict[float, Dict[str, int]] = {}
        for seconds in durations:
            audio = speech[: int(seconds * RATE)]
            frames[seconds] = {
                name: encoder_frames(recognizers[name].asr_model, audio) for name in recognizers
            }
            results[seconds] = {}
            for chunk_ms in args.chunk_ms:
                point = measure(recognizers, audio, int(chunk_ms * RATE / 1000), args.repeats)
                results[seconds][chunk_ms] = point
                print(
                    f"{seconds:6g} s, {chunk_ms:5g} ms chunks: conformer RTF {point['conformer']['rtf']:.3f} "
                    f"({point['conformer']['tokens']:.0f} tokens), samba RTF {point['samba']['rtf']:.3f} "
                    f"({point['samba']['tokens']:.0f} tokens), load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    print_table(results, experiments)
    print_workload(results, frames)
    plot(results, torch.get_num_threads(), args.plot)
    print(f"\nhost: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main(sys.argv[1:])
