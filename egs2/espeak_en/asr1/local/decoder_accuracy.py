#!/usr/bin/env python3
"""Where does a decoder go wrong? Its teacher-forced token accuracy by position in the output and by utterance
length, on a data dir, for several trained models side by side.

For each model (``NAME=EXP_DIR/xxx.pth``, its ``config.yaml`` beside it, built through ESPnet's ``ASRTask``) the
audio of ``--data_dir`` is encoded and the decoder predicts every token from the true previous ones (teacher
forcing, as ``acc`` in ESPnet's training log, without label smoothing or dropout). A prediction is correct when
its arg-max is the reference token; the end-of-sentence token counts as the last position. Writes
``decoder_accuracy.md`` and ``decoder_accuracy.png`` (accuracy against the token position) into ``--out_dir``.

    local/decoder_accuracy.py --data_dir dump/raw/dev_mc --out_dir exp/diag a=exp/asr_a/8epoch.pth ...
"""
import argparse
import sys
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import soundfile
import torch

from report_outputs import finish_axes, named_path, new_figure, publish

POSITION_BUCKETS = ((1, 4), (5, 8), (9, 12), (13, 16), (17, 24), (25, 1000))
LENGTH_BUCKETS = ((1, 8), (9, 12), (13, 16), (17, 24), (25, 1000))  # reference tokens per utterance, eos included


def read_table(path: Path) -> Dict[str, str]:
    with path.open(encoding="utf-8") as f:
        return dict(line.rstrip("\n").split(" ", 1) for line in f if line.strip())


def token_ids(train_args) -> "callable":
    """text -> the model's token ids (its BPE model and token list)."""
    from espnet2.text.build_tokenizer import build_tokenizer
    from espnet2.text.token_id_converter import TokenIDConverter

    bpemodel = train_args.bpemodel
    tokenizer = build_tokenizer(train_args.token_type, bpemodel=bpemodel)
    converter = TokenIDConverter(train_args.token_list)
    return lambda text: converter.tokens2ids(tokenizer.text2tokens(text))


def correct_by_position(model, speech: List[np.ndarray], targets: List[List[int]]) -> List[np.ndarray]:
    """Teacher-forced correctness (1/0) of every target token and eos, per utterance of the batch."""
    from espnet.nets.pytorch_backend.nets_utils import pad_list

    lengths = torch.tensor([len(s) for s in speech])
    padded = pad_list([torch.from_numpy(s).float() for s in speech], 0.0)
    encoded, encoded_lengths = model.encode(padded, lengths)
    sos = eos = model.sos
    ys_in = [torch.tensor([sos] + t) for t in targets]
    ys_out = [torch.tensor(t + [eos]) for t in targets]
    ys_in_lengths = torch.tensor([len(y) for y in ys_in])
    logits, _ = model.decoder(encoded, encoded_lengths, pad_list(ys_in, eos), ys_in_lengths)
    predicted = logits.argmax(-1)
    return [(predicted[b, : len(y)] == y).numpy().astype(np.float64) for b, y in enumerate(ys_out)]


def bucket_accuracy(results: List[np.ndarray], buckets, key) -> List[Tuple[float, int]]:
    """(accuracy, tokens) per bucket; `key(utterance_correctness, position)` gives the value bucketed."""
    totals = {bucket: [0.0, 0] for bucket in buckets}
    for correct in results:
        for position, value in enumerate(correct, 1):
            measure = key(correct, position)
            for low, high in buckets:
                if low <= measure <= high:
                    totals[(low, high)][0] += value
                    totals[(low, high)][1] += 1
    return [(s / n if n else float("nan"), n) for s, n in totals.values()]


@torch.no_grad()
def evaluate(checkpoint: Path, data_dir: Path, batch_size: int) -> List[np.ndarray]:
    from espnet2.tasks.asr import ASRTask

    model, train_args = ASRTask.build_model_from_file(checkpoint.parent / "config.yaml", checkpoint, "cpu")
    model.eval()
    to_ids = token_ids(train_args)
    wavs, texts = read_table(data_dir / "wav.scp"), read_table(data_dir / "text")
    keys = sorted(wavs, key=lambda k: soundfile.info(wavs[k]).frames)
    results = []
    for start in range(0, len(keys), batch_size):
        batch = keys[start:start + batch_size]
        speech = [soundfile.read(wavs[k], dtype="float32")[0] for k in batch]
        results += correct_by_position(model, speech, [to_ids(texts[k]) for k in batch])
    return results


def bucket_name(bucket: Tuple[int, int]) -> str:
    return f"{bucket[0]}+" if bucket[1] >= 1000 else f"{bucket[0]}-{bucket[1]}"


def report(all_results: Dict[str, List[np.ndarray]]) -> str:
    names = list(all_results)
    lines = ["Teacher-forced token accuracy by the token's position in the output", "",
             "| position | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    by_position = {n: bucket_accuracy(r, POSITION_BUCKETS, lambda c, p: p) for n, r in all_results.items()}
    for i, bucket in enumerate(POSITION_BUCKETS):
        lines.append(f"| {bucket_name(bucket)} | " + " | ".join(f"{by_position[n][i][0]:.3f}" for n in names) + " |")
    lines += ["", "... and by the utterance's length in tokens (eos included)", "",
              "| tokens | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    by_length = {n: bucket_accuracy(r, LENGTH_BUCKETS, lambda c, p: len(c)) for n, r in all_results.items()}
    for i, bucket in enumerate(LENGTH_BUCKETS):
        lines.append(f"| {bucket_name(bucket)} | " + " | ".join(f"{by_length[n][i][0]:.3f}" for n in names) + " |")
    overall = {n: float(np.concatenate(r).mean()) for n, r in all_results.items()}
    lines += ["", "| all | " + " | ".join(f"{overall[n]:.3f}" for n in names) + " |"]
    return "\n".join(lines) + "\n"


MIN_TOKENS_PLOTTED = 100  # positions fewer utterances reach are left out of the plot (the tables bucket them)


def plot(all_results: Dict[str, List[np.ndarray]]):
    """Accuracy against the token position, one curve per model, where at least MIN_TOKENS_PLOTTED tokens are."""
    figure, axis = new_figure()
    for name, results in all_results.items():
        positions = [p for p in range(1, max(len(c) for c in results) + 1)
                     if sum(len(c) >= p for c in results) >= MIN_TOKENS_PLOTTED]
        accuracy = [np.mean([c[p - 1] for c in results if len(c) >= p]) for p in positions]
        axis.plot(positions, accuracy, marker="o", markersize=3, label=name)
    finish_axes(axis, "token position in the output", "teacher-forced accuracy")
    return figure


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", type=named_path, help="NAME=EXP_DIR/MODEL.pth (config.yaml in EXP_DIR)")
    parser.add_argument("--data_dir", type=Path, required=True, help="a dump/raw data dir: wav.scp and text")
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--batch_size", type=int, default=16)
    args = parser.parse_args(argv)
    all_results = {}
    for name, checkpoint in args.models:
        if not checkpoint.is_file():
            raise FileNotFoundError(f"{checkpoint} not found (NAME=EXP_DIR/MODEL.pth)")
        all_results[name] = evaluate(checkpoint, args.data_dir, args.batch_size)
    publish(args.out_dir, "decoder_accuracy", report(all_results), plot(all_results))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except FileNotFoundError as error:
        sys.exit(f"{Path(__file__).name}: error: {error}")
