"""One-pass transcription of long recordings: peak memory and time against length, WER against per-utterance decoding.

A recording of N minutes is built from the test set's utterances in order (repeating the set as often as needed),
with pauses of 0.5-2.5 s between them (seeded), and transcribed in one call of `transcribe_long_audio` (what
`espnet_samba.bin.asr_transcribe_long` runs, its default endpoint rules) in a fresh process, whose peak resident
memory (ru_maxrss, the whole process) and transcription time (model loading excluded) are measured. Oracle for the WER: the same utterances decoded one by one, whole, by the same two-pass
recogniser (`Speech2TextStreaming`); both hypotheses are scored against the reference words of the recording, in
order (word edit distance over the whole recording, so words moved across a segment boundary count right).

    cd egs2/espeak_en/asr1
    ../../../tools/venv/bin/python ../../../bench/bench_long_form.py \
        --exp_dir exp/asr_train_asr_samba_streaming_raw_en_bpe150 --lm_exp_dir exp/lm_train_lm_en_bpe150 \
        --decode_config conf/decode_asr.yaml --data_dir data/test_espeak --minutes 5 20 60

Also reports what ESPnet's offline Conformer encoder of the demo's size (conf/train_asr_conformer.yaml, random
weights) would need for the same recordings in one pass: its peak memory measured on the first minutes, in a
subprocess per length, and the self-attention's share, which grows with the square of the length.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

import editdistance
import numpy as np
import soundfile
import torch
import yaml

from espnet_samba.decoding.audio_input import read_scp

HERE = Path(__file__).resolve().parent
RATE = 16000


def build_recording(data_dir: Path, minutes: float, seed: int, path: Path) -> List[str]:
    """Write the recording to `path` (16-bit mono); returns the keys of the utterances it holds, in order."""
    wavs = dict(read_scp(data_dir / "wav.scp"))
    keys = sorted(wavs)
    rng = np.random.RandomState(seed)
    target = round(minutes * 60 * RATE)
    written, held = 0, []
    with soundfile.SoundFile(str(path), "w", RATE, 1, "PCM_16") as out:
        while written < target:
            key = keys[len(held) % len(keys)]
            speech, rate = soundfile.read(wavs[key], dtype="float32")
            assert rate == RATE, f"{wavs[key]}: {rate} Hz"
            pause = np.zeros(round(rng.uniform(0.5, 2.5) * RATE), dtype=np.float32)
            out.write(np.concatenate([speech, pause]))
            written += speech.size + pause.size
            held.append(key)
    return held


TRANSCRIBE_PROBE = """
import json, resource, sys, time
from pathlib import Path
import torch
from espnet_samba.bin.asr_inference_streaming import Speech2TextStreaming
from espnet_samba.bin.asr_transcribe_long import transcribe_long_audio
from espnet_samba.decoding.endpoint import EndpointRules
arguments = json.loads(sys.argv[1])
torch.set_num_threads(arguments["threads"])
speech2text = Speech2TextStreaming(*arguments["model"], **arguments["keywords"],
                                   endpoint_rules=EndpointRules(arguments["trailing_silence"],
                                                                onset_margin=arguments["onset_margin"]))
loaded_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
started = time.perf_counter()
count = transcribe_long_audio(speech2text, Path(arguments["wav"]), Path(arguments["output_dir"]))
print(json.dumps({"seconds": time.perf_counter() - started, "segments": count, "loaded_mib": loaded_mib,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def transcribe_measured(options: argparse.Namespace, wav: Path, output_dir: Path) -> Dict[str, float]:
    """`transcribe_long_audio` (asr_transcribe_long's one call) in a fresh process, default endpoint rules but
    `--trailing_silence` and `--onset_margin`:
    its time (model loading excluded), segments, and the process's peak memory after loading and at the end."""
    (config, model), keywords = recogniser_arguments(options)
    arguments = {"model": [str(config), str(model)], "keywords": {k: str(v) if isinstance(v, Path) else v
                                                                 for k, v in keywords.items()},
                 "wav": str(wav), "output_dir": str(output_dir), "threads": options.threads,
                 "trailing_silence": options.trailing_silence, "onset_margin": options.onset_margin}
    result = subprocess.run([sys.executable, "-c", TRANSCRIBE_PROBE, json.dumps(arguments)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"transcription of {wav} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def words_of(text_file: Path) -> List[str]:
    """The hypothesis words of asr_transcribe_long's `text`, segments in time order."""
    lines = sorted(text_file.read_text().splitlines()) if text_file.exists() else []
    return [word for line in lines for word in line.split()[1:]]


def per_utterance_words(options: argparse.Namespace, data_dir: Path, keys: List[str]) -> Dict[str, List[str]]:
    """Each distinct utterance decoded alone, whole (the oracle)."""
    from espnet_samba.bin.asr_inference_streaming import Speech2TextStreaming

    (config, model), keywords = recogniser_arguments(options)
    speech2text = Speech2TextStreaming(config, model, **keywords)
    wavs = dict(read_scp(data_dir / "wav.scp"))
    words = {}
    for key in sorted(set(keys)):
        speech, _ = soundfile.read(wavs[key], dtype="float32")
        text = speech2text(torch.from_numpy(speech), is_final=True)[0][0]
        words[key] = text.split() if text else []
    return words


def add_recogniser_options(parser: argparse.ArgumentParser) -> None:
    """The model, LM, decoding settings and test set the recogniser benchmarks read (see `recogniser_arguments`)."""
    parser.add_argument("--exp_dir", type=Path, required=True)
    parser.add_argument("--model_name", default="valid.acc.ave.pth")
    parser.add_argument("--lm_exp_dir", type=Path, default=None)
    parser.add_argument("--lm_model_name", default="valid.loss.ave.pth")
    parser.add_argument("--decode_config", type=Path, default=None)
    parser.add_argument("--fbank_conf", type=Path, default=None)
    parser.add_argument("--data_dir", type=Path, required=True)


def recogniser_arguments(options: argparse.Namespace):
    exp, lm = options.exp_dir, options.lm_exp_dir
    decode = yaml.safe_load(options.decode_config.read_text()) if options.decode_config else {}
    keywords = {name: decode[name] for name in ("beam_size", "ctc_weight", "lm_weight", "penalty") if name in decode}
    if lm is not None:
        keywords.update(lm_train_config=lm / "config.yaml", lm_file=lm / options.lm_model_name)
    if options.fbank_conf is not None:
        keywords.update(fbank_conf=options.fbank_conf, fs=RATE)
    return (exp / "config.yaml", exp / options.model_name), keywords


CONFORMER_PROBE = """
import json, resource, sys, time, torch, yaml
from espnet2.asr.encoder.conformer_encoder import ConformerEncoder
torch.set_num_threads(int(sys.argv[3]))
conf = yaml.safe_load(open(sys.argv[1]))["encoder_conf"]
encoder = ConformerEncoder(40, **conf).eval()
frames = int(float(sys.argv[2]) * 60 * 100)
with torch.no_grad():
    started = time.perf_counter()
    encoder(torch.randn(1, frames, 40), torch.tensor([frames]))
print(json.dumps({"seconds": time.perf_counter() - started,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def conformer_peak(config: Path, minutes: float, threads: int) -> Dict[str, float]:
    result = subprocess.run([sys.executable, "-c", CONFORMER_PROBE, str(config), str(minutes), str(threads)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        return {"error": (result.stderr.strip().splitlines() or ["killed"])[-1], "returncode": result.returncode}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_recogniser_options(parser)
    parser.add_argument("--minutes", type=float, nargs="+", default=[5, 20, 60])
    parser.add_argument("--conformer_config", type=Path, default=Path("conf/train_asr_conformer.yaml"))
    parser.add_argument("--conformer_minutes", type=float, nargs="*", default=[1, 2, 4])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--trailing_silence", type=float, default=1.0,
                        help="The endpoint rule trailing_silence_after_speech (seconds); the others at their defaults")
    parser.add_argument("--onset_margin", type=float, default=0.0, help="EndpointRules.onset_margin (seconds)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work_dir", type=Path, default=None, help="Where the recordings go (default: a temp dir)")
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    os.environ["OMP_NUM_THREADS"] = str(options.threads)
    work = options.work_dir or Path(tempfile.mkdtemp(prefix="long_form_"))
    work.mkdir(parents=True, exist_ok=True)
    texts = dict(read_scp(options.data_dir / "text"))

    rows, all_keys = [], []
    for index, minutes in enumerate(options.minutes, start=1):
        wav = work / f"recording_{minutes:g}min.wav"
        keys = build_recording(options.data_dir, minutes, options.seed, wav)
        all_keys.append(keys)
        measured = transcribe_measured(options, wav, work / f"out_{minutes:g}min")
        seconds, peak = measured["seconds"], measured["peak_mib"]
        hypothesis = words_of(work / f"out_{minutes:g}min" / "text")
        reference = [word for key in keys for word in texts[key].split()]
        audio = soundfile.info(str(wav)).duration
        rows.append((minutes, audio, seconds, peak, editdistance.eval(hypothesis, reference), len(reference)))
        print(f"[{index}/{len(options.minutes)}] {minutes:g} min: {seconds:.0f} s, {measured['segments']} segments, "
              f"peak {peak:.0f} MiB ({measured['loaded_mib']:.0f} MiB after loading the model)", flush=True)

    print("per-utterance oracle: decoding each distinct utterance alone", flush=True)
    alone = per_utterance_words(options, options.data_dir, max(all_keys, key=len))
    base_time, base_peak = rows[0][2] / rows[0][1], rows[0][3]
    print(f"\nOne pass (asr_transcribe_long, {options.threads} threads), {options.exp_dir.name}:\n")
    print("| recording | time | RTF | time per audio s vs first | peak memory | vs first | WER one pass "
          "| WER per utterance | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (minutes, audio, seconds, peak, errors, words), keys in zip(rows, all_keys):
        reference = [word for key in keys for word in texts[key].split()]
        oracle = editdistance.eval([w for key in keys for w in alone[key]], reference) / len(reference)
        wer = errors / words
        print(f"| {minutes:g} min | {seconds:.0f} s | {seconds / audio:.3f} | {seconds / audio / base_time:.2f}x "
              f"| {peak:.0f} MiB | {peak / base_peak:.2f}x | {100 * wer:.2f} % | {100 * oracle:.2f} % "
              f"| {wer / oracle if oracle else float('nan'):.3f} |")

    print(f"\nESPnet ConformerEncoder of {options.conformer_config} (random weights), the whole recording at once:\n")
    print("| audio | encoder time | peak memory |")
    print("|---|---|---|")
    for minutes in options.conformer_minutes:
        probe = conformer_peak(options.conformer_config, minutes, options.threads)
        if "error" in probe:
            print(f"| {minutes:g} min | failed (exit {probe['returncode']}): {probe['error']} | |")
        else:
            print(f"| {minutes:g} min | {probe['seconds']:.1f} s | {probe['peak_mib']:.0f} MiB |")


if __name__ == "__main__":
    main()
