"""`--quantize_asr_model true`: ESPnet's dynamic int8 quantisation of every `nn.Linear`, through `Speech2Text`.

The same checkpoint is decoded in float and quantized. It is a tiny model trained for a few steps to say one
sentence for one input, so that its best hypothesis is decided by a margin (a random model's near-uniform scores
would tie, and any perturbation would flip them): int8 may move the encoder output and the decoder's scores a
little, not the result.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.ao.nn.quantized.dynamic import Linear as QuantizedLinear

from espnet2.bin.asr_inference import Speech2Text
from espnet2.tasks.asr import ASRTask
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


@pytest.fixture(scope="module", params=sorted(MODELS))
def experiment(request, tmp_path_factory) -> Path:
    """An experiment dir with config.yaml and a model file trained to transcribe SPEECH as TEXT."""
    root = tmp_path_factory.mktemp(f"quantize_{request.param}")
    token_list = root / "tokens.txt"
    token_list.write_text("\n".join(TOKENS) + "\n")
    encoder, decoder = MODELS[request.param]
    config = write_asr_config(root / "exp", token_list, encoder, decoder)
    torch.manual_seed(0)
    model, _ = ASRTask.build_model_from_file(config, None, "cpu")
    overfit(model)
    torch.save(model.state_dict(), root / "exp" / "model.pth")
    return root / "exp"


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
