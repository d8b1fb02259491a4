"""Cost of one beam-search step vs prefix length: MambaDecoder (both cross-connections) vs ESPnet's Transformer.

One `batch_score` call for a beam of hypotheses over 30 s of encoder memory, after a prefix of L tokens, for
decoders of (nearly) equal parameter count. The Transformer's cache is built by teacher forcing the prefix; the
Mamba decoders' states by L real decoding steps from `batch_init_state` (which absorbs / projects the memory once
per utterance, timed separately). Ratios are against the Transformer measured in the same run, the decoders
timed in turn so that load from other processes affects them alike.

Run: tools/venv/bin/python bench/bench_decoder.py   (CPU; a few minutes)
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable, Dict, List

import torch

from espnet.nets.pytorch_backend.transformer.mask import subsequent_mask
from espnet2.asr.decoder.transformer_decoder import TransformerDecoder
from espnet_samba.asr.decoder import MambaDecoder


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def median_ms_interleaved(
    calls: Dict[str, Callable[[], object]], repeats: int, clock: Callable[[], float] = time.perf_counter
) -> Dict[str, float]:
    """Median time of each call on `clock`, taking the calls in turn so that a busy machine slows them all alike."""
    times: Dict[str, List[float]] = {name: [] for name in calls}
    for repeat in range(repeats + 1):
        for name, call in calls.items():
            start = clock()
            call()
            if repeat:  # the first round is a warm-up
                times[name].append(clock() - start)
    return {name: 1000 * statistics.median(values) for name, values in times.items()}


def transformer_step(decoder: TransformerDecoder, memory: torch.Tensor, prefix_length: int, beam: int):
    """A `batch_score` call for `beam` hypotheses whose cache holds `prefix_length` tokens (built by teacher
    forcing the prefix, which gives the cache that stepping would)."""
    vocab = decoder.output_layer.out_features
    xs = memory.expand(beam, -1, -1)
    prefix = torch.randint(0, vocab - 1, (beam, prefix_length))
    _, cache = decoder.forward_one_step(prefix, subsequent_mask(prefix_length).unsqueeze(0), xs, cache=None)
    states = [[layer[b] for layer in cache] for b in range(beam)]
    ys = torch.cat([prefix, torch.randint(0, vocab - 1, (beam, 1))], dim=1)
    return lambda: decoder.batch_score(ys, states, xs)


class MambaPrefixStates:
    """Decodes one hypothesis step by step from `batch_init_state`, to reach ever longer prefixes."""

    def __init__(self, decoder: MambaDecoder, memory: torch.Tensor) -> None:
        self.decoder, self.memory = decoder, memory
        self.ys = torch.full((1, 1), decoder.sos)
        self.state = decoder.batch_init_state(memory)
        self.vocab = decoder.output_layer.out_features

    def step_at(self, prefix_length: int, beam: int):
        """A `batch_score` call for `beam` hypotheses whose states have consumed `prefix_length` tokens (the
        step's cost does not depend on the tokens, so the beam repeats one hypothesis)."""
        while self.ys.size(1) <= prefix_length:
            _, (self.state,) = self.decoder.batch_score(self.ys, [self.state], self.memory[None])
            self.ys = torch.cat([self.ys, torch.randint(0, self.vocab - 1, (1, 1))], dim=1)
        ys, states, xs = self.ys.expand(beam, -1), [self.state] * beam, self.memory.expand(beam, -1, -1)
        return lambda: self.decoder.batch_score(ys, states, xs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab_size", type=int, default=5000)
    parser.add_argument("--encoder_output_size", type=int, default=256)
    parser.add_argument("--frames", type=int, default=750, help="30 s at 100 frames/s after 4x subsampling")
    parser.add_argument("--beam", type=int, default=10)
    parser.add_argument("--prefix_lengths", type=int, nargs="+", default=[10, 100, 400])
    parser.add_argument("--prefix_num_blocks", type=int, default=22, help="sized to match the Transformer")
    parser.add_argument("--attention_linear_units", type=int, default=1536, help="sized to match the Transformer")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--clock", choices=sorted(CLOCKS), default="wall",
        help="wall: elapsed time; cpu: the process's CPU time, which other processes on a shared machine barely "
        "disturb (use with --threads 1)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    clock = CLOCKS[args.clock]

    torch.manual_seed(0)
    size = args.encoder_output_size
    decoders: Dict[str, torch.nn.Module] = {
        "transformer": TransformerDecoder(
            args.vocab_size, size, attention_heads=4, linear_units=2048, num_blocks=6, use_flash_attn=False
        ),
        "mamba prefix": MambaDecoder(
            args.vocab_size, size, cross_connection="prefix", num_blocks=args.prefix_num_blocks
        ),
        "mamba attention": MambaDecoder(
            args.vocab_size, size, cross_connection="attention", num_blocks=6, attention_heads=4,
            linear_units=args.attention_linear_units,
        ),
    }
    memory = torch.randn(args.frames, size)
    baseline_parameters = parameter_count(decoders["transformer"])
    print(f"beam {args.beam}, memory {args.frames} x {size}, vocab {args.vocab_size}, "
          f"torch threads {torch.get_num_threads()}, {args.clock} clock")
    for name, decoder in decoders.items():
        decoder.eval()
        count = parameter_count(decoder)
        print(f"  {name:16s} {count / 1e6:6.2f}M parameters ({count / baseline_parameters:.2f}x transformer)")

    with torch.no_grad():
        for name in ("mamba prefix", "mamba attention"):
            absorb = median_ms_interleaved(
                {name: lambda: decoders[name].batch_init_state(memory)}, repeats=3, clock=clock
            )
            print(f"  {name:16s} batch_init_state (once per utterance): {absorb[name]:.1f} ms")
        mamba_states = {
            name: MambaPrefixStates(decoders[name], memory) for name in ("mamba prefix", "mamba attention")
        }
        step_ms: Dict[str, List[float]] = {name: [] for name in decoders}
        for prefix_length in args.prefix_lengths:
            calls = {"transformer": transformer_step(decoders["transformer"], memory, prefix_length, args.beam)}
            calls.update({name: states.step_at(prefix_length, args.beam) for name, states in mamba_states.items()})
            for name, milliseconds in median_ms_interleaved(calls, args.repeats, clock).items():
                step_ms[name].append(milliseconds)

    print(f"\n{args.clock}-clock ms per batch_score step (median); speed-up = transformer / mamba")
    print("| prefix | transformer | mamba prefix | speed-up | mamba attention | speed-up |")
    print("|---:|---:|---:|---:|---:|---:|")
    for i, prefix_length in enumerate(args.prefix_lengths):
        base = step_ms["transformer"][i]
        prefix, attention = step_ms["mamba prefix"][i], step_ms["mamba attention"][i]
        print(f"| {prefix_length} | {base:.1f} | {prefix:.1f} | {base / prefix:.1f}x | {attention:.1f} | "
              f"{base / attention:.1f}x |")
    first, last = args.prefix_lengths[0], args.prefix_lengths[-1]
    print(f"\ngrowth from prefix {first} to {last} (target for mamba: <= 1.3x)")
    for name, times in step_ms.items():
        print(f"  {name:16s} {times[-1] / times[0]:.2f}x")


if __name__ == "__main__":
    main()
