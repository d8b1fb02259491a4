"""Where a training step of the espeak_en demo models goes on CPU, and what batch size buys.

Builds the demo's Samba-ASR (egs2/espeak_en/asr1/conf/train_asr_samba.yaml) and its Conformer + Transformer
baseline (conf/train_asr_conformer.yaml) through ESPnet's ASR task, 150 tokens, 40-dim features, and times on
random inputs (the cost does not depend on the values) of `--frames` frames (220 = 2.2 s, the corpus's typical
utterance) with 20 target tokens:

- one full training step (forward, backward, and the step of the optimizer each config names: Adam, fused) at
  batch 16, Samba-ASR against the Conformer;
- the Adam step alone on each model's parameters, torch's multi-tensor (foreach) form against the fused one the
  recipe's configs ask for (`optim_conf: {fused: true}`);
- forward + backward of each part of Samba-ASR at batch 16: the conv2d6 front end (`encoder.embed`), the whole
  encoder, one bidirectional Mamba layer, the decoder on a fixed encoder output; each as a share of the step;
- the time per utterance of a full step at batch 16, 32 and 48, as a ratio to batch 16;
- with `--variant '{subsampling_channels: 96, num_blocks: 6}'` (a YAML mapping, repeatable): Samba-ASR with its
  encoder_conf updated by the mapping, its parameters and its step against the Conformer's, measured again beside
  it: what another front end or depth costs before anyone retrains the demo with it.

Each figure is the best of `--repeats` means over `--steps` calls after two warm-up calls, all in one process.
Run it on a quiet machine with the thread count of the recipe's training (2). The process restarts itself with
malloc keeping freed buffers (bench/allocator.py), as the recipes train; `--glibc-default-malloc` measures with
glibc's defaults, where page faults of large buffers make the Samba-ASR step up to 1.5x slower from one process
to the next.

Usage: tools/venv/bin/python bench/bench_demo_step.py [--threads 2] [--frames 220] [--repeats 3] [--steps 6]
       [--variant YAML_MAPPING ...] [--glibc-default-malloc]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

import torch
import yaml
from espnet2.tasks.abs_task import optim_classes
from espnet2.tasks.asr import ASRTask

import espnet_samba  # noqa: F401  (registers encoder/decoder "mamba")
from allocator import GLIBC_DEFAULTS_FLAG, restart_keeping_freed_buffers

RECIPE_CONF = Path(__file__).resolve().parents[1] / "egs2" / "espeak_en" / "asr1" / "conf"
VOCABULARY = 150
FEATURES = 40
TOKENS = 20


def recipe_config(config_name: str) -> dict:
    """The recipe's training config `config_name` (conf/), as a dict."""
    return yaml.safe_load((RECIPE_CONF / config_name).read_text())


def build(config_name: str, **encoder_conf) -> torch.nn.Module:
    """The recipe's model of `config_name`, its encoder_conf updated by `encoder_conf`, in training mode."""
    config = recipe_config(config_name)
    config["encoder_conf"].update(encoder_conf)
    tokens = ["<blank>", "<unk>"] + [f"t{i}" for i in range(VOCABULARY - 3)] + ["<sos/eos>"]
    parser = ASRTask.get_parser()
    args = parser.parse_args(["--token_list", ",".join(tokens), "--input_size", str(FEATURES)])
    args.token_list = tokens
    for key, value in config.items():
        setattr(args, key, value)
    model = ASRTask.build_model(args)
    model.train()
    return model


def seconds(call: Callable[[], None], repeats: int, steps: int) -> float:
    """Best of `repeats` mean times of `steps` calls, after two warm-up calls."""
    call()
    call()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            call()
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def recipe_optimizer(model: torch.nn.Module, config_name: str) -> torch.optim.Optimizer:
    """The optimizer of the recipe's `config_name` (its optim and optim_conf) over `model`'s parameters, built from
    ESPnet's table of optimizers as its trainer builds it."""
    config = recipe_config(config_name)
    return optim_classes[config["optim"]](model.parameters(), **config["optim_conf"])


def training_step(model: torch.nn.Module, config_name: str, batch: int, frames: int) -> Callable[[], None]:
    """One forward, backward and optimizer step (`config_name`'s optimizer) on a random batch (B, frames, 40) with 20
    tokens per utterance."""
    optimizer = recipe_optimizer(model, config_name)
    speech, speech_lengths = torch.randn(batch, frames, FEATURES), torch.full((batch,), frames)
    text, text_lengths = torch.randint(2, VOCABULARY - 1, (batch, TOKENS)), torch.full((batch,), TOKENS)

    def step() -> None:
        loss = model(speech, speech_lengths, text, text_lengths)[0]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def adam_step(model: torch.nn.Module, **adam_conf) -> Callable[[], None]:
    """Adam's update alone (`adam_conf`: foreach or fused) on a copy of `model`'s parameters with random gradients."""
    parameters = [torch.nn.Parameter(p.detach().clone()) for p in model.parameters()]
    for parameter in parameters:
        parameter.grad = torch.randn_like(parameter)
    return torch.optim.Adam(parameters, lr=1e-3, **adam_conf).step


def samba_parts(model: torch.nn.Module, batch: int, frames: int) -> dict:
    """Forward + backward calls of the parts of the Samba-ASR model at batch `batch`."""
    encoder, decoder = model.encoder, model.decoder
    speech, lengths = torch.randn(batch, frames, FEATURES), torch.full((batch,), frames)
    with torch.no_grad():
        encoded, encoded_lengths, _ = encoder(speech, lengths)
    layer_input = torch.randn_like(encoded, requires_grad=True)
    memory = torch.randn_like(encoded, requires_grad=True)
    tokens, token_lengths = torch.randint(2, VOCABULARY - 1, (batch, TOKENS)), torch.full((batch,), TOKENS)
    return {
        "conv2d6 front end": lambda: encoder.embed(speech, None)[0].sum().backward(),
        f"encoder (front end + {len(encoder.encoders)} layers)": lambda: encoder(speech, lengths)[0].sum().backward(),
        "one bidirectional Mamba layer": lambda: encoder.encoders[0](layer_input, encoded_lengths).sum().backward(),
        "decoder": lambda: decoder(memory, encoded_lengths, tokens, token_lengths)[0].sum().backward(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frames", type=int, default=220)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--variant", type=yaml.safe_load, action="append", default=[],
                        help="also time Samba-ASR with its encoder_conf updated by this YAML mapping")
    parser.add_argument(GLIBC_DEFAULTS_FLAG, action="store_true", help="keep glibc's default malloc settings")
    args = parser.parse_args()
    malloc = restart_keeping_freed_buffers()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    samba_config, conformer_config = "train_asr_samba.yaml", "train_asr_conformer.yaml"
    samba, conformer = build(samba_config), build(conformer_config)
    time_of = lambda call: seconds(call, args.repeats, args.steps)  # noqa: E731
    print(f"threads {args.threads}, {args.frames} frames ({args.frames / 100:.1f} s), {TOKENS} tokens per utterance, "
          f"malloc: {malloc}")

    step = time_of(training_step(samba, samba_config, 16, args.frames))
    conformer_step = time_of(training_step(conformer, conformer_config, 16, args.frames))
    print(f"training step, batch 16: Samba-ASR {step * 1e3:.1f} ms, Conformer {conformer_step * 1e3:.1f} ms "
          f"(Samba / Conformer {step / conformer_step:.2f}x)")
    for name, call in samba_parts(samba, 16, args.frames).items():
        part = time_of(call)
        print(f"  {name:32s} fwd+bwd {part * 1e3:6.1f} ms = {part / step:.2f} of the Samba-ASR step")
    for name, model in (("Samba-ASR", samba), ("Conformer", conformer)):
        foreach, fused = time_of(adam_step(model, foreach=True)), time_of(adam_step(model, fused=True))
        print(f"  Adam step alone, {name}: foreach {foreach * 1e3:.1f} ms, fused {fused * 1e3:.1f} ms "
              f"(fused / foreach {fused / foreach:.2f}x)")
    per_utterance = {batch: time_of(training_step(samba, samba_config, batch, args.frames)) / batch
                     for batch in (16, 32, 48)}
    for batch, cost in per_utterance.items():
        print(f"  batch {batch}: {cost * 1e3:.2f} ms per utterance = {cost / per_utterance[16]:.2f}x batch 16's")
    parameters = lambda model: sum(p.numel() for p in model.parameters())  # noqa: E731
    print(f"parameters: Samba-ASR {parameters(samba) / 1e6:.3f} M, Conformer {parameters(conformer) / 1e6:.3f} M")
    for variant_conf in args.variant:
        variant = build("train_asr_samba.yaml", **variant_conf)
        variant_step = time_of(training_step(variant, samba_config, 16, args.frames))
        conformer_step = time_of(training_step(conformer, conformer_config, 16, args.frames))  # again, beside it
        print(f"Samba-ASR with encoder_conf {variant_conf} ({parameters(variant) / 1e6:.3f} M): step "
              f"{variant_step * 1e3:.1f} ms, Conformer {conformer_step * 1e3:.1f} ms "
              f"(Samba / Conformer {variant_step / conformer_step:.2f}x)")

if __name__ == "__main__":
    main()
