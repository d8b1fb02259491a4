"""`--quantize_asr_model true`: ESPnet's dynamic int8 quantisation of every `nn.Linear`, through `Speech2Text`.

The same checkpoint is decoded in float and quantized. It is a tiny model trained for a few steps to say one
sentence for one input, so that its best hypothesis is decided by a margin (a random model's near-uniform scores
would tie, and any perturbation would flip them): int8 may move the encoder output and the decoder's scores a
little, not the result.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pytest
import soundfile
import torch
from torch.ao.nn.quantized.dynamic import Linear as QuantizedLinear

from espnet2.bin.asr_inference import Speech2Text
from espnet2.tasks.asr import ASRTask
from espnet_samba.bin import asr_inference_streaming
from espnet_samba.bin.asr_inference_streaming import Speech2TextStreaming, simulate_stream
from espnet_samba.modules import MambaMixer
from test_asr_config_support import write_asr_config

TOKENS = ["<blank>", "<unk>", "a", "b", "c", "d", "<sos/eos>"]
MODELS = {
    "samba": (
        ("mamba", "{'output_size': 16, 'num_blocks': 2, 'd_state': 4, 'input_layer': 'conv2d'}"),
        ("mamba", "{'num_blocks': 2, 'd_state': 4}"),
    ),
    "speech_mamba": (
        (
            "speech_mamba",
            "{'output_size': 16, 'num_blocks': 2, 'num_attention_blocks': 1, 'attention_heads': 2, "
            "'linear_units': 32, 'attention_chunk_size': 4, 'd_state': 4, 'input_layer': 'conv2d'}",
        ),
        ("mamba", "{'cross_connection': 'attention', 'num_blocks': 1, 'd_state': 4, 'attention_heads': 2, "
                  "'linear_units': 32}"),
    ),
}
SPEECH = np.random.RandomState(0).randn(8000)
TEXT = ["a", "b", "c", "d", "a", "b"]
TRAINING_STEPS = 20


def trained_experiment(root: Path, name: str, options: Sequence[str] = ()) -> Path:
    """An experiment dir with config.yaml and a model file of MODELS[name] trained to transcribe SPEECH as TEXT;
    `options`: further asr_train options."""
    token_list = root / "tokens.txt"
    token_list.write_text("\n".join(TOKENS) + "\n")
    encoder, decoder = MODELS[name]
    config = write_asr_config(root / "exp", token_list, encoder, decoder, options)
    torch.manual_seed(0)
    model, _ = ASRTask.build_model_from_file(config, None, "cpu")
    overfit(model)
    torch.save(model.state_dict(), root / "exp" / "model.pth")
    return root / "exp"


@pytest.fixture(scope="module", params=sorted(MODELS))
def experiment(request, tmp_path_factory) -> Path:
    return trained_experiment(tmp_path_factory.mktemp(f"quantize_{request.param}"), request.param)


@pytest.fixture(scope="module")
def causal_experiment(tmp_path_factory) -> Path:
    """The Samba-ASR model of MODELS (causal encoder) without utterance_mvn (ESPnet's default, which cannot stream)."""
    return trained_experiment(tmp_path_factory.mktemp("quantize_streaming"), "samba", ("--normalize", "none"))


def overfit(model: torch.nn.Module) -> None:
    speech = torch.tensor(SPEECH, dtype=torch.float32)[None]
    text = torch.tensor([[TOKENS.index(token) for token in TEXT]])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(TRAINING_STEPS):
        loss, _, _ = model(speech, torch.tensor([speech.size(1)]), text, torch.tensor([text.size(1)]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def speech_to_text(experiment: Path, quantize: bool) -> Speech2Text:
    return Speech2Text(
        asr_train_config=experiment / "config.yaml", asr_model_file=experiment / "model.pth",
        quantize_asr_model=quantize, beam_size=3, ctc_weight=0.3, maxlenratio=0.0, nbest=1,
    )


def encode(speech2text: Speech2Text) -> torch.Tensor:
    speech = torch.tensor(SPEECH, dtype=torch.float32)[None]
    with torch.no_grad():
        encoded, _ = speech2text.asr_model.encode(speech, torch.tensor([speech.size(1)]))
    return encoded[0]


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual - expected).norm() / expected.norm())


def test_every_linear_but_the_step_size_projection_is_quantized(experiment):
    model = speech_to_text(experiment, quantize=True).asr_model
    mixers = [m for m in model.modules() if isinstance(m, MambaMixer)]
    assert mixers and all(isinstance(m.in_proj, QuantizedLinear) for m in mixers)
    assert all(isinstance(m.out_proj, QuantizedLinear) and isinstance(m.x_proj, QuantizedLinear) for m in mixers)
    assert all(type(m.dt_proj) is torch.nn.Linear for m in mixers)
    assert isinstance(model.decoder.output_layer, QuantizedLinear)


def test_quantized_decoding_is_close_to_float(experiment):
    """Encoder forward, decoder step-by-step scoring in ESPnet's beam search, and the result."""
    floating, quantized = speech_to_text(experiment, quantize=False), speech_to_text(experiment, quantize=True)
    float_encoded, quantized_encoded = encode(floating), encode(quantized)
    assert relative_error(quantized_encoded, float_encoded) < 0.05

    ys = torch.tensor([[floating.asr_model.sos, 2], [floating.asr_model.sos, 3]])
    with torch.no_grad():
        float_logp, _ = floating.asr_model.decoder.batch_score(ys, [None, None], float_encoded.expand(2, -1, -1))
        quantized_logp, _ = quantized.asr_model.decoder.batch_score(
            ys, [None, None], quantized_encoded.expand(2, -1, -1)
        )
    assert relative_error(quantized_logp, float_logp) < 0.05

    (_, float_tokens, _, _), = floating(SPEECH)
    (_, quantized_tokens, _, _), = quantized(SPEECH)
    assert float_tokens == TEXT, "the model has not learnt its sentence: the comparison would be meaningless"
    assert quantized_tokens == float_tokens


def streaming(experiment: Path, **options) -> Speech2TextStreaming:
    return Speech2TextStreaming(
        experiment / "config.yaml", experiment / "model.pth", beam_size=3, ctc_weight=0.3, **options
    )


@pytest.mark.parametrize("chunk", [1600, 8000])
def test_the_streaming_recogniser_quantizes_as_espnet_and_says_the_same(causal_experiment, chunk):
    """`quantize_asr_model` in `Speech2TextStreaming`: the modules ESPnet's option quantizes, and the sentence that
    ESPnet's quantized offline `Speech2Text` decodes (int8 activations are scaled per call, so a stream is close to
    offline decoding, not equal)."""
    recogniser = streaming(causal_experiment, quantize_asr_model=True)
    quantized_types = {type(m) for m in recogniser.asr_model.modules()}
    offline = speech_to_text(causal_experiment, quantize=True)
    assert quantized_types == {type(m) for m in offline.asr_model.modules()} and QuantizedLinear in quantized_types
    (_, offline_tokens, _, _), = offline(SPEECH)
    assert offline_tokens == TEXT, "the model has not learnt its sentence: the comparison would be meaningless"
    (_, tokens, _, _), *_ = simulate_stream(recogniser, torch.tensor(SPEECH, dtype=torch.float32), chunk)
    assert tokens == offline_tokens


def test_the_streaming_command_line_takes_espnet_quantization_options(causal_experiment, tmp_path):
    wav = tmp_path / "speech.wav"
    soundfile.write(wav, SPEECH.astype(np.float32), 16000, subtype="FLOAT")  # unclipped: the training input
    (tmp_path / "wav.scp").write_text(f"utt {wav}\n")
    asr_inference_streaming.main([
        "--output_dir", str(tmp_path / "out"), "--asr_train_config", str(causal_experiment / "config.yaml"),
        "--asr_model_file", str(causal_experiment / "model.pth"), "--beam_size", "3", "--ctc_weight", "0.3",
        "--data_path_and_name_and_type", f"{tmp_path / 'wav.scp'},speech,sound", "--sim_chunk_length", "1600",
        "--quantize_asr_model", "true", "--quantize_modules", "Linear", "--quantize_dtype", "qint8",
    ])
    assert (tmp_path / "out" / "1best_recog" / "token").read_text().split() == ["utt", *TEXT]


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(quantize_modules=["Linearr"]), r"--quantize_modules Linearr: not a module class of torch.nn"),
        (dict(quantize_dtype="qint4"), r"--quantize_dtype must be one of \('qint8', 'float16'\)"),
        (dict(device="cuda"), r"dynamic quantisation .* runs on CPU only"),
    ],
)
def test_quantization_options_that_cannot_apply_are_refused_before_loading(causal_experiment, options, message):
    with pytest.raises(ValueError, match=message):
        streaming(causal_experiment, quantize_asr_model=True, **options)
