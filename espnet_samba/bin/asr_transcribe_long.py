"""Transcribe one long recording in one pass: `python -m espnet_samba.bin.asr_transcribe_long`.

The audio file is read block by block and streamed through the two-pass recogniser of `Speech2TextStreaming` with
the endpoint rules on (`--endpoint_*`; defaults: 1 s of trailing silence after speech, 5 s of silence without
speech, 20 s at most per segment, see `espnet_samba.decoding.endpoint`). Each segment is rescored when it ends,
written with its times to `segments`, `text`, `ctm` and `subtitles.srt` in `--output_dir` (see
`espnet_samba.decoding.long_form`) and forgotten, so memory does not grow with the recording's length.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import soundfile
import torch

from espnet2.utils.types import str_or_none

from espnet_samba.bin.asr_inference_streaming import (
    Speech2TextStreaming,
    add_endpoint_arguments,
    add_quantization_arguments,
    add_second_pass_argument,
    endpoint_rules_from_options,
)
from espnet_samba.compat import get_commandline_args
from espnet_samba.decoding.audio_input import check_audio_file
from espnet_samba.decoding.endpoint import EndpointRules
from espnet_samba.decoding.long_form import LongFormWriter, TimedSegment, segment_id, timed_words, token_spans
from espnet_samba.decoding.streaming_features import NEEDS_AUDIO_FEATURES
from espnet_samba.decoding.streaming_recognizer import Segment


def transcribe_long_audio(
    speech2text: Speech2TextStreaming,
    wav_path: Path,
    output_dir: Path,
    recording_id: Optional[str] = None,
    block_seconds: float = 1.0,
) -> int:
    """Transcribe `wav_path` in blocks of `block_seconds` into the files of `LongFormWriter` in `output_dir`.

    Args:
        speech2text: the recogniser, built with the endpoint rules to cut the recording by.
        wav_path: a mono audio file at the model's sampling rate (checked first, see `check_audio_file`).
        output_dir: where `segments`, `text`, `ctm` and `subtitles.srt` go.
        recording_id: its id in those files (default: the file name without suffix).
        block_seconds: audio read and decoded at a time.

    Returns:
        The number of segments written (those with text).
    """
    if not speech2text.recognizer.features.takes_audio:
        raise ValueError(NEEDS_AUDIO_FEATURES)
    recognizer = speech2text.recognizer
    check_audio_file(Path(wav_path), recognizer.features.sample_rate)
    recognizer.reset()
    recording_id = recording_id or Path(wav_path).stem
    with soundfile.SoundFile(str(wav_path)) as audio, LongFormWriter(Path(output_dir), recording_id) as writer:
        block_size = max(1, round(block_seconds * audio.samplerate))
        for block in audio.blocks(blocksize=block_size, dtype="float32"):
            for segment in recognizer.accept(torch.from_numpy(block), is_final=False):
                _write(speech2text, segment, writer)
        for segment in recognizer.accept(torch.zeros(0), is_final=True):
            _write(speech2text, segment, writer)
        return writer.count


def _write(speech2text: Speech2TextStreaming, segment: Segment, writer: LongFormWriter) -> None:
    """Write a segment's best hypothesis with its times; a segment that decoded nothing is left out."""
    best = segment.hypotheses[0]
    if not best.tokens:
        return
    recognizer = speech2text.recognizer
    text, tokens, token_ids, _ = speech2text.to_result(best)
    spans = token_spans(segment.log_probs, token_ids, recognizer.asr_model.blank_id)
    words = timed_words(tokens, spans, speech2text.token_type, segment.start_time, segment.frame_shift)
    start, end = segment.start_time, segment.end_time
    text = text if text is not None else " ".join(word.text for word in words)
    writer.write(TimedSegment(segment_id(writer.recording_id, start, end), start, end, text, words))


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Transcribe one long recording in one pass (streaming, endpoint detection, rescoring)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--log_level", type=lambda x: x.upper(), default="INFO",
                        choices=("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "NOTSET"))
    parser.add_argument("--wav", type=Path, required=True, help="The recording (mono, the model's sampling rate)")
    parser.add_argument("--output_dir", type=Path, required=True)
    parser.add_argument("--recording_id", type=str_or_none, default=None, help="Default: the file name")
    parser.add_argument("--block_seconds", type=float, default=1.0, help="Audio read and decoded at a time")
    add_recogniser_arguments(parser)
    return parser


def add_recogniser_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that build a `Speech2TextStreaming` with endpoint rules (`recogniser_from_options`)."""
    parser.add_argument("--ngpu", type=int, default=0)
    parser.add_argument("--dtype", default="float32", choices=["float16", "float32", "float64"])
    group = parser.add_argument_group("The model configuration related")
    group.add_argument("--asr_train_config", type=str, required=True)
    group.add_argument("--asr_model_file", type=str, required=True)
    group.add_argument("--lm_train_config", type=str_or_none, default=None)
    group.add_argument("--lm_file", type=str_or_none, default=None)
    group.add_argument("--token_type", type=str_or_none, default=None)
    group.add_argument("--bpemodel", type=str_or_none, default=None)
    group.add_argument("--fbank_conf", type=str_or_none, default=None,
                       help="For a model trained with --feats_type fbank: the recipe's conf/fbank.conf, to compute "
                       "its features from the audio")
    group.add_argument("--fs", type=int, default=16000, help="The audio's sampling rate with --fbank_conf")
    group = parser.add_argument_group("Beam-search related")
    group.add_argument("--beam_size", type=int, default=10)
    group.add_argument("--ctc_weight", type=float, default=0.5)
    group.add_argument("--lm_weight", type=float, default=1.0)
    group.add_argument("--penalty", type=float, default=0.0)
    add_second_pass_argument(parser)
    add_endpoint_arguments(parser, EndpointRules())
    add_quantization_arguments(parser)


def recogniser_from_options(options: Dict[str, Any]) -> Speech2TextStreaming:
    """The recogniser of the `add_recogniser_arguments` options, which are removed from `options`."""
    endpoint_rules = endpoint_rules_from_options(options)
    device = "cuda" if options.pop("ngpu") >= 1 else "cpu"
    names = ("dtype", "asr_train_config", "asr_model_file", "lm_train_config", "lm_file", "token_type", "bpemodel",
             "fbank_conf", "fs", "beam_size", "ctc_weight", "lm_weight", "penalty", "second_pass",
             "quantize_asr_model", "quantize_lm", "quantize_modules", "quantize_dtype")
    return Speech2TextStreaming(**{name: options.pop(name) for name in names}, device=device,
                                endpoint_rules=endpoint_rules)


def main(cmd: Optional[List[str]] = None) -> None:
    print(get_commandline_args(), file=sys.stderr)
    options = vars(get_parser().parse_args(cmd))
    logging.basicConfig(level=options.pop("log_level"),
                        format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    wav, output_dir = options.pop("wav"), options.pop("output_dir")
    recording_id, block_seconds = options.pop("recording_id"), options.pop("block_seconds")
    speech2text = recogniser_from_options(options)
    count = transcribe_long_audio(speech2text, wav, output_dir, recording_id, block_seconds)
    logging.info(f"{wav}: {count} segments written to {output_dir}")


if __name__ == "__main__":
    main()
