"""A checkpoint that does not fit the config: ESPnet loads model files with `strict=False`, so without our check a
Conformer checkpoint under a Samba-ASR config.yaml decodes with a randomly initialised encoder, silently.

Models are built and loaded through ESPnet's own `ASRTask.build_model_from_file`, as `asr_inference` does.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from espnet2.tasks.asr import ASRTask
from espnet2.torch_utils.load_pretrained_model import load_pretrained_model

from test_asr_config_support import write_asr_config

TOKENS = ["<blank>", "<unk>", "a", "b", "c", "<sos/eos>"]
MAMBA_ENCODER = ("mamba", "{'output_size': 16, 'num_blocks': 2, 'd_state': 4, 'input_layer': 'conv2d'}")
CONFORMER_ENCODER = (
    "conformer",
    "{'output_size': 16, 'attention_heads': 2, 'linear_units': 32, 'num_blocks': 2, 'input_layer': 'conv2d'}",
)
MAMBA_DECODER = ("mamba", "{'num_blocks': 1, 'd_state': 4}")
TRANSFORMER_DECODER = ("transformer", "{'attention_heads': 2, 'linear_units': 32, 'num_blocks': 1}")


def experiment(root: Path, name: str, encoder, decoder) -> Path:
    """An ESPnet experiment dir with config.yaml (dry run) and a model file of that config's random weights."""
    output_dir = root / name
    token_list = root / "tokens.txt"
    token_list.write_text("\n".join(TOKENS) + "\n")
    model, _ = ASRTask.build_model_from_file(write_asr_config(output_dir, token_list, encoder, decoder), None, "cpu")
    torch.save(model.state_dict(), output_dir / "valid.acc.ave.pth")
    return output_dir


@pytest.fixture(scope="module")
def experiments(tmp_path_factory):
    root = tmp_path_factory.mktemp("checkpoints")
    return {
        "samba": experiment(root, "samba", MAMBA_ENCODER, MAMBA_DECODER),
        "conformer": experiment(root, "conformer", CONFORMER_ENCODER, TRANSFORMER_DECODER),
        "samba_3_blocks": experiment(
            root, "samba_3_blocks", ("mamba", MAMBA_ENCODER[1].replace("'num_blocks': 2", "'num_blocks': 3")),
            MAMBA_DECODER,
        ),
        "conformer_mamba_decoder": experiment(root, "conformer_mamba_decoder", CONFORMER_ENCODER, MAMBA_DECODER),
    }


def load(experiments, config_of: str, checkpoint_of: str):
    return ASRTask.build_model_from_file(
        experiments[config_of] / "config.yaml", experiments[checkpoint_of] / "valid.acc.ave.pth", "cpu"
    )


def test_a_fitting_checkpoint_loads_every_parameter(experiments):
    model, _ = load(experiments, "samba", "samba")
    saved = torch.load(experiments["samba"] / "valid.acc.ave.pth")
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, saved[name], rtol=0, atol=0)


def test_conformer_checkpoint_under_samba_config_names_the_mismatch(experiments):
    with pytest.raises(RuntimeError) as error:
        load(experiments, "samba", "conformer")
    message = str(error.value)
    assert "the checkpoint does not fit MambaEncoder at 'encoder.'" in message
    assert "parameters are missing ('encoder.encoders.0." in message
    assert "parameters it does not have are given ('encoder." in message
    assert "load it with the config it was trained with (config.yaml beside it in exp/asr_*)" in message
    assert "the checkpoint does not fit MambaDecoder at 'decoder.'" in message


def test_only_the_mismatched_part_is_reported(experiments):
    with pytest.raises(RuntimeError) as error:
        load(experiments, "samba", "conformer_mamba_decoder")
    assert "MambaEncoder" in str(error.value) and "MambaDecoder" not in str(error.value)


def test_same_architecture_another_size_is_refused(experiments):
    with pytest.raises(RuntimeError, match=r"does not fit MambaEncoder at 'encoder.': \d+ parameters it does not "
                                           r"have are given \('encoder.encoders.2."):
        load(experiments, "samba", "samba_3_blocks")
    with pytest.raises(RuntimeError, match=r"does not fit MambaEncoder at 'encoder.': \d+ of its \d+ parameters "
                                           r"are missing \('encoder.encoders.2."):
        load(experiments, "samba_3_blocks", "samba")


def test_the_suggested_fix_starts_from_the_matching_parts(experiments):
    """--init_param with --ignore_init_mismatch (ESPnet's load_pretrained_model) still takes what fits."""
    model, _ = ASRTask.build_model_from_file(experiments["samba_3_blocks"] / "config.yaml", None, "cpu")
    checkpoint = experiments["samba"] / "valid.acc.ave.pth"
    saved = torch.load(checkpoint)
    block = {name: value.clone() for name, value in model.encoder.encoders[1].state_dict().items()}
    assert any(not torch.equal(value, saved[f"encoder.encoders.1.{name}"]) for name, value in block.items())
    load_pretrained_model(f"{checkpoint}:encoder:encoder", model, ignore_init_mismatch=True, map_location="cpu")
    for name, value in model.encoder.encoders[1].state_dict().items():
        torch.testing.assert_close(value, saved[f"encoder.encoders.1.{name}"], rtol=0, atol=0)
