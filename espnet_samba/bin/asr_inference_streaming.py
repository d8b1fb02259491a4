"""Streaming ASR decoding of models with a causal encoder: `python -m espnet_samba.bin.asr_inference_streaming`.

ESPnet's `espnet2.bin.asr_inference_streaming` decodes only its contextual-block encoders. This entry point keeps its
interface for a Samba-ASR model with `bidirectional: false` (see `espnet_samba.decoding.streaming_recognizer`):
`Speech2TextStreaming(...)(speech_chunk, is_final)` returns the n-best list `[(text, tokens, token_ids, hypothesis)]`
after every chunk (partial results: the CTC prefix search so far) and the second pass's n-best when `is_final`
(`--second_pass`: by default ESPnet's joint CTC/attention beam search over the segment's frames, which gives the
final text of offline decoding; or rescoring of the CTC n-best); `reset()` starts a new stream. Where an endpoint rule ends a segment within the utterance (by default only
`--endpoint_max_segment_length`, 60 s, which bounds what the recogniser keeps), the results are the best
hypothesis of each finished segment followed by the current segment's n-best. The command line takes ESPnet's
`asr_inference_streaming` options and the `--endpoint_*` rules, feeds each utterance in chunks of
`--sim_chunk_length` samples (0: the whole utterance at once) and writes ESPnet's output layout,
`<output_dir>/<n>best_recog/{text,token,token_int,score}`, so asr.sh's scoring reads it unchanged.

Before decoding, every file of a `sound` wav.scp is checked (`espnet_samba.decoding.audio_input`): a corrupt,
empty, multi-channel or wrong-rate file stops the run with an error that names it and the fix.

The options of ESPnet's block-synchronous attention search that this two-pass search has no use for
(`--maxlenratio`, `--minlenratio`, `--disable_repetition_detection`, `--encoded_feat_length_limit`,
`--decoder_text_length_limit`) are accepted at their defaults and refused with any other value.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from typeguard import typechecked

from espnet2.bin import asr_inference_streaming as espnet_streaming
from espnet2.fileio.datadir_writer import DatadirWriter
from espnet2.tasks.asr import ASRTask
from espnet2.tasks.lm import LMTask
from espnet2.text.build_tokenizer import build_tokenizer
from espnet2.text.token_id_converter import TokenIDConverter
from espnet2.torch_utils.set_all_random_seed import set_all_random_seed
from espnet2.utils.types import str2bool

from espnet_samba.compat import Hypothesis, get_commandline_args
from espnet_samba.decoding.attention_rescoring import AttentionRescorer, ScoredHypothesis
from espnet_samba.decoding.audio_input import AudioInputError, check_sound_scp
from espnet_samba.decoding.endpoint import EndpointRules
from espnet_samba.decoding.joint_beam_search import JointBeamSearchPass
from espnet_samba.decoding.kaldi_fbank import StreamingKaldiFbank, read_fbank_conf
from espnet_samba.decoding.streaming_recognizer import StreamingRecognizer

Result = Tuple[Optional[str], List[str], List[int], Hypothesis]

# ESPnet's options for its block-synchronous search, with the only value this search agrees with.
BLOCK_SEARCH_OPTIONS = {
    "maxlenratio": 0.0,
    "minlenratio": 0.0,
    "disable_repetition_detection": False,
    "encoded_feat_length_limit": 0,
    "decoder_text_length_limit": 0,
}
SECOND_PASSES = ("auto", "joint_beam_search", "attention_rescoring")
QUANTIZE_DTYPES = ("qint8", "float16")
# Utterance decoding: segments end only past 60 s, so that what the recogniser keeps stays bounded.
UTTERANCE_ENDPOINT_RULES = EndpointRules(None, None, 60.0)


class Speech2TextStreaming:
    """ESPnet's streaming recogniser interface over `StreamingRecognizer`.

    Examples:
        >>> speech2text = Speech2TextStreaming("exp/asr/config.yaml", "exp/asr/valid.acc.ave.pth")
        >>> for chunk in chunks[:-1]:
        ...     partial = speech2text(chunk, is_final=False)
        >>> [(text, tokens, token_ids, hypothesis), *_] = speech2text(chunks[-1], is_final=True)

    Args:
        asr_train_config, asr_model_file: the model (ASRTask.build_model_from_file).
        lm_train_config, lm_file: an optional LM for the second pass.
        token_type, bpemodel: for the text (default: the model's training options).
        device, dtype: where and in what precision to decode.
        beam_size: prefixes kept by the CTC search (all rescored at the end), and the beam of the second pass's
            joint beam search.
        ctc_weight, lm_weight, penalty: the second pass's weights (ESPnet's joint-decoding names).
        nbest: hypotheses returned.
        normalize_length: rank the final hypotheses by length-normalised score.
        endpoint_rules: where segments end within an utterance.
        feature_frame_shift: seconds between feature frames of a model without frontend (for the endpoint rules).
        fbank_conf: for a model trained on precomputed Kaldi fbank features (`--feats_type fbank`, no frontend),
            the recipe's fbank options (conf/fbank.conf): the recogniser then takes audio samples and computes
            the features as they arrive (`espnet_samba.decoding.kaldi_fbank`).
        fs: the audio's sampling rate with `fbank_conf` (asr.sh's --fs).
        second_pass: what gives each segment's final hypotheses: "joint_beam_search" (ESPnet's joint
            CTC/attention beam search over the segment's frames: the final text of offline `Speech2Text`
            decoding, see `espnet_samba.decoding.joint_beam_search`), "attention_rescoring" (the decoder and LM
            only rescore the CTC n-best, WeNet's U2: cheaper, and as accurate only where the CTC n-best holds the
            answer), or "auto": the joint search where the model has a decoder and ctc_weight < 1, else
            rescoring (CTC and LM).
        quantize_asr_model, quantize_lm, quantize_modules, quantize_dtype: ESPnet's `Speech2Text` options:
            torch's dynamic quantisation of the `torch.nn` modules named (default Linear, to int8) in the ASR
            model and/or the LM, on CPU. Streaming reads every weight once per chunk, so at short chunks int8
            weights (a quarter of the bytes) are most of the speed-up; results change slightly, as offline.
    """

    @typechecked
    def __init__(
        self,
        asr_train_config: Union[Path, str],
        asr_model_file: Union[Path, str, None] = None,
        lm_train_config: Union[Path, str, None] = None,
        lm_file: Union[Path, str, None] = None,
        token_type: Optional[str] = None,
        bpemodel: Optional[str] = None,
        device: str = "cpu",
        dtype: str = "float32",
        beam_size: int = 20,
        ctc_weight: float = 0.5,
        lm_weight: float = 1.0,
        penalty: float = 0.0,
        nbest: int = 1,
        normalize_length: bool = False,
        endpoint_rules: EndpointRules = UTTERANCE_ENDPOINT_RULES,
        feature_frame_shift: float = 0.01,
        fbank_conf: Union[Path, str, None] = None,
        fs: int = 16000,
        second_pass: str = "auto",
        quantize_asr_model: bool = False,
        quantize_lm: bool = False,
        quantize_modules: Sequence[str] = ("Linear",),
        quantize_dtype: str = "qint8",
    ) -> None:
        quantization = (
            DynamicQuantization(quantize_modules, quantize_dtype, device) if quantize_asr_model or quantize_lm else None
        )
        asr_model, asr_train_args = ASRTask.build_model_from_file(asr_train_config, asr_model_file, device)
        asr_model.to(dtype=getattr(torch, dtype)).eval()
        if quantize_asr_model:
            asr_model = quantization.apply(asr_model)
        lm = None
        if lm_train_config is not None:
            lm, _ = LMTask.build_model_from_file(lm_train_config, lm_file, device)
            lm.to(dtype=getattr(torch, dtype)).eval()
            if quantize_lm:
                lm = quantization.apply(lm)
        rescorer = AttentionRescorer(
            asr_model.decoder, lm, asr_model.sos, asr_model.eos, ctc_weight, lm_weight, penalty, normalize_length
        )
        if second_pass not in SECOND_PASSES:
            raise ValueError(f"second_pass must be one of {SECOND_PASSES}, got {second_pass!r}")
        if second_pass == "auto":
            joint = asr_model.decoder is not None and ctc_weight < 1.0
            second_pass = "joint_beam_search" if joint else "attention_rescoring"
        if second_pass == "joint_beam_search":
            rescorer = JointBeamSearchPass(
                asr_model, lm, beam_size, ctc_weight, lm_weight, penalty, normalize_length, rescorer
            )
        self.second_pass = second_pass
        kaldi_fbank = None if fbank_conf is None else StreamingKaldiFbank(read_fbank_conf(Path(fbank_conf)), fs)
        self.recognizer = StreamingRecognizer(
            asr_model, beam_size, rescorer, nbest, endpoint_rules, feature_frame_shift, kaldi_fbank
        )
        self.asr_model = asr_model
        self.asr_train_args = asr_train_args
        self.converter = TokenIDConverter(token_list=asr_model.token_list)
        self.token_type = token_type or asr_train_args.token_type
        self.tokenizer = _tokenizer(self.token_type, bpemodel or asr_train_args.bpemodel)
        self.nbest = nbest
        self._finished: List[ScoredHypothesis] = []  # the best hypothesis of each ended segment of the utterance

    def reset(self) -> None:
        """Forget the stream: the next call starts a new utterance."""
        self.recognizer.reset()
        self._finished = []

    @torch.no_grad()
    @typechecked
    def __call__(self, speech: Union[torch.Tensor, np.ndarray], is_final: bool = True) -> List[Result]:
        """Decode the next chunk of the utterance.

        Args:
            speech: the next samples (N_chunk,) (feature frames (T_chunk, F) for a model without frontend).
            is_final: the utterance ends with this chunk; the next call starts a new one.

        Returns:
            The n-best so far, best first: the CTC prefix search's partial hypotheses, or when `is_final` the
            rescored hypotheses, each after the best hypotheses of the segments that ended before.

        Raises:
            AudioInputError: `speech` is not one channel of samples (for a model with a frontend).
        """
        if isinstance(speech, np.ndarray):
            speech = torch.from_numpy(speech)
        if self.recognizer.features.takes_audio and speech.dim() != 1:
            raise AudioInputError(
                f"Speech2TextStreaming takes mono samples (N,); got shape {tuple(speech.shape)}: pass one channel "
                "(e.g. speech[:, 0]) or their mean"
            )
        segments = self.recognizer.accept(speech, is_final)
        if is_final:
            hypotheses = segments.pop().hypotheses
        else:
            hypotheses = [
                ScoredHypothesis(prefix.tokens, prefix.log_prob, {"ctc": prefix.log_prob})
                for prefix in self.recognizer.partial()
            ]
        self._finished += [segment.hypotheses[0] for segment in segments]
        results = [self.to_result(join(self._finished + [hypothesis])) for hypothesis in hypotheses]
        if is_final:
            self._finished = []
        return results

    def to_result(self, hypothesis: ScoredHypothesis) -> Result:
        """The n-best entry (text, tokens, token_ids, Hypothesis) of a hypothesis."""
        token_ids = list(hypothesis.tokens)
        tokens = self.converter.ids2tokens(token_ids)
        text = self.tokenizer.tokens2text(tokens) if self.tokenizer is not None else None
        yseq = torch.tensor([self.asr_model.sos, *token_ids, self.asr_model.eos])
        return text, tokens, token_ids, Hypothesis(yseq=yseq, score=hypothesis.score, scores=dict(hypothesis.scores))


class DynamicQuantization:
    """torch's dynamic quantisation as ESPnet's `Speech2Text` applies it (`--quantize_*` options), checked first.

    Args:
        modules: names of `torch.nn` module classes to quantise (e.g. "Linear", "LSTM").
        dtype: "qint8" or "float16".
        device: where the model decodes; the quantised modules run on CPU only.

    Raises:
        ValueError: an unknown module name or dtype, or a device other than CPU.
    """

    def __init__(self, modules: Sequence[str], dtype: str, device: str) -> None:
        if device != "cpu":
            raise ValueError(
                f"dynamic quantisation (--quantize_asr_model / --quantize_lm) runs on CPU only; decode with "
                f"--ngpu 0, or without quantisation on {device!r}"
            )
        unknown = [name for name in modules if not isinstance(getattr(torch.nn, name, None), type)]
        if unknown:
            raise ValueError(f"--quantize_modules {' '.join(unknown)}: not a module class of torch.nn (e.g. Linear)")
        if dtype not in QUANTIZE_DTYPES:
            raise ValueError(f"--quantize_dtype must be one of {QUANTIZE_DTYPES}, got {dtype!r}")
        self.modules = {getattr(torch.nn, name) for name in modules}
        self.dtype = getattr(torch, dtype)

    def apply(self, model: torch.nn.Module) -> torch.nn.Module:
        """A copy of the model with its selected modules quantised."""
        return torch.quantization.quantize_dynamic(model, qconfig_spec=self.modules, dtype=self.dtype)


def add_quantization_arguments(parser) -> None:
    """ESPnet's `asr_inference` "Quantization related" options (see `Speech2TextStreaming`)."""
    group = parser.add_argument_group("Quantization related")
    group.add_argument("--quantize_asr_model", type=str2bool, default=False,
                       help="Apply dynamic quantization to the ASR model (CPU)")
    group.add_argument("--quantize_lm", type=str2bool, default=False, help="Apply dynamic quantization to the LM")
    group.add_argument("--quantize_modules", type=str, nargs="*", default=["Linear"],
                       help="torch.nn module classes to quantize, e.g. Linear LSTM")
    group.add_argument("--quantize_dtype", type=str, default="qint8", choices=QUANTIZE_DTYPES,
                       help="Dtype for dynamic quantization")


def join(hypotheses: Sequence[ScoredHypothesis]) -> ScoredHypothesis:
    """Consecutive segments' hypotheses as one: tokens concatenated, scores added."""
    scores: Dict[str, float] = {}
    for hypothesis in hypotheses:
        for name, value in hypothesis.scores.items():
            scores[name] = scores.get(name, 0.0) + value
    tokens = tuple(token for hypothesis in hypotheses for token in hypothesis.tokens)
    return ScoredHypothesis(tokens, sum(hypothesis.score for hypothesis in hypotheses), scores)


def endpoint_rules_from_options(options: Dict[str, Any]) -> EndpointRules:
    """The rules of the --endpoint_* options (removed from `options`); 0 turns a rule off."""
    return EndpointRules(
        options.pop("endpoint_trailing_silence_after_speech") or None,
        options.pop("endpoint_silence_without_speech") or None,
        options.pop("endpoint_max_segment_length") or None,
        options.pop("endpoint_blank_threshold"),
        options.pop("endpoint_restart_encoder"),
    )


def add_second_pass_argument(parser) -> None:
    """--second_pass: what gives each segment's final text (see `Speech2TextStreaming`)."""
    parser.add_argument(
        "--second_pass", choices=SECOND_PASSES, default="auto",
        help="Final hypotheses of a segment: ESPnet's joint CTC/attention beam search over the segment's frames "
        "(joint_beam_search: offline accuracy, one attention search per segment), or the decoder and LM rescoring "
        "the CTC n-best (attention_rescoring: cheaper); auto: the joint search when the model has a decoder and "
        "ctc_weight < 1",
    )


def add_endpoint_arguments(parser, defaults: EndpointRules) -> None:
    """The --endpoint_* options (seconds; 0 turns a rule off, see `espnet_samba.decoding.endpoint`)."""
    group = parser.add_argument_group("Endpoint detection related")
    group.add_argument(
        "--endpoint_trailing_silence_after_speech", type=float, default=defaults.trailing_silence_after_speech or 0.0,
        help="Seconds of silence after decoded speech that end a segment (0: off)",
    )
    group.add_argument(
        "--endpoint_silence_without_speech", type=float, default=defaults.silence_without_speech or 0.0,
        help="Seconds of silence with nothing decoded after which the segment is dropped (0: off)",
    )
    group.add_argument(
        "--endpoint_max_segment_length", type=float, default=defaults.max_segment_length or 0.0,
        help="Seconds after which a segment ends regardless (0: off)",
    )
    group.add_argument(
        "--endpoint_blank_threshold", type=float, default=defaults.blank_threshold,
        help="A frame is silence when its CTC blank posterior is at least this",
    )
    group.add_argument(
        "--endpoint_restart_encoder", type=str2bool, default=defaults.restart_encoder,
        help="At an endpoint, encode the next segment from a fresh encoder state (false: the state runs on)",
    )
    group.add_argument(
        "--feature_frame_shift", type=float, default=0.01,
        help="Seconds between feature frames of a model without frontend (--feats_type fbank)",
    )


def _tokenizer(token_type: Optional[str], bpemodel: Optional[str]):
    """The text builder ESPnet's `Speech2Text` would use (None: no text, tokens only)."""
    if token_type is None:
        return None
    if token_type == "bpe":
        return build_tokenizer(token_type=token_type, bpemodel=bpemodel) if bpemodel is not None else None
    return build_tokenizer(token_type=token_type)


def simulate_stream(speech2text: Speech2TextStreaming, speech: torch.Tensor, chunk_length: int) -> List[Result]:
    """Feed an utterance in chunks of `chunk_length` samples (0: all at once); the final n-best."""
    if chunk_length <= 0:
        return speech2text(speech, is_final=True)
    last_start = (len(speech) - 1) // chunk_length * chunk_length if len(speech) else 0
    for start in range(0, last_start, chunk_length):
        speech2text(speech[start : start + chunk_length], is_final=False)
    return speech2text(speech[last_start:], is_final=True)


def check_block_search_options(options: Dict[str, Any]) -> None:
    """Refuse ESPnet's block-search options at values other than their defaults, naming them."""
    changed = {name: options[name] for name, default in BLOCK_SEARCH_OPTIONS.items() if options[name] != default}
    if changed:
        raise ValueError(
            f"{', '.join(f'--{name} {value}' for name, value in changed.items())}: these options belong to ESPnet's "
            "block-synchronous attention search; the CTC prefix search with attention rescoring has no use for them "
            "(leave them at their defaults)"
        )


@typechecked
def inference(
    output_dir: str,
    batch_size: int,
    dtype: str,
    beam_size: int,
    ngpu: int,
    seed: int,
    ctc_weight: float,
    lm_weight: float,
    penalty: float,
    nbest: int,
    normalize_length: bool,
    num_workers: int,
    log_level: Union[int, str],
    data_path_and_name_and_type: Sequence[Tuple[str, str, str]],
    key_file: Optional[str],
    asr_train_config: str,
    asr_model_file: str,
    lm_train_config: Optional[str],
    lm_file: Optional[str],
    word_lm_train_config: Optional[str],
    word_lm_file: Optional[str],
    token_type: Optional[str],
    bpemodel: Optional[str],
    allow_variable_data_keys: bool,
    sim_chunk_length: int,
    endpoint_rules: EndpointRules,
    feature_frame_shift: float,
    second_pass: str,
    quantize_asr_model: bool,
    quantize_lm: bool,
    quantize_modules: List[str],
    quantize_dtype: str,
    **block_search_options: Any,
) -> None:
    """Decode every utterance of the data as a stream and write ESPnet's `<n>best_recog` files."""
    logging.basicConfig(level=log_level, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    if batch_size > 1:
        raise NotImplementedError("batch decoding is not implemented: a stream is decoded alone (--batch_size 1)")
    if word_lm_train_config is not None:
        raise NotImplementedError("Word LM is not implemented")
    if ngpu > 1:
        raise NotImplementedError("only single GPU decoding is supported")
    check_block_search_options(block_search_options)
    set_all_random_seed(seed)
    speech2text = Speech2TextStreaming(
        asr_train_config=asr_train_config,
        asr_model_file=asr_model_file,
        lm_train_config=lm_train_config,
        lm_file=lm_file,
        token_type=token_type,
        bpemodel=bpemodel,
        device="cuda" if ngpu >= 1 else "cpu",
        dtype=dtype,
        beam_size=beam_size,
        ctc_weight=ctc_weight,
        lm_weight=lm_weight,
        penalty=penalty,
        nbest=nbest,
        normalize_length=normalize_length,
        endpoint_rules=endpoint_rules,
        feature_frame_shift=feature_frame_shift,
        second_pass=second_pass,
        quantize_asr_model=quantize_asr_model,
        quantize_lm=quantize_lm,
        quantize_modules=quantize_modules,
        quantize_dtype=quantize_dtype,
    )
    for path, _, data_type in data_path_and_name_and_type:
        if data_type == "sound":
            check_sound_scp(
                Path(path), speech2text.recognizer.features.sample_rate, None if key_file is None else Path(key_file)
            )
    loader = ASRTask.build_streaming_iterator(
        data_path_and_name_and_type,
        dtype=dtype,
        batch_size=1,
        key_file=key_file,
        num_workers=num_workers,
        preprocess_fn=ASRTask.build_preprocess_fn(speech2text.asr_train_args, False),
        collate_fn=ASRTask.build_collate_fn(speech2text.asr_train_args, False),
        allow_variable_data_keys=allow_variable_data_keys,
        inference=True,
    )
    with DatadirWriter(output_dir) as writer:
        for keys, batch in loader:
            key = keys[0]
            results = simulate_stream(speech2text, batch["speech"][0], sim_chunk_length)
            logging.info(f"{key}: total log probability: {results[0][3].score:.2f}; text: {results[0][0]}")
            for n, (text, tokens, token_ids, hypothesis) in enumerate(results[:nbest], start=1):
                best_writer = writer[f"{n}best_recog"]
                best_writer["token"][key] = " ".join(tokens)
                best_writer["token_int"][key] = " ".join(map(str, token_ids))
                best_writer["score"][key] = str(hypothesis.score)
                if text is not None:
                    best_writer["text"][key] = text


def get_parser():
    """ESPnet's `asr_inference_streaming` parser and the endpoint options."""
    parser = espnet_streaming.get_parser()
    parser.description = "Streaming ASR decoding of models with a causal encoder (CTC prefix search, then a second pass)"
    add_endpoint_arguments(parser, UTTERANCE_ENDPOINT_RULES)
    add_second_pass_argument(parser)
    add_quantization_arguments(parser)
    return parser


def main(cmd: Optional[List[str]] = None) -> None:
    print(get_commandline_args(), file=sys.stderr)
    kwargs = vars(get_parser().parse_args(cmd))
    kwargs.pop("config", None)
    inference(endpoint_rules=endpoint_rules_from_options(kwargs), **kwargs)


if __name__ == "__main__":
    main()
