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


# ESPnet's partial checkpoints (--save_strategy under --use_adapter), saved and loaded as its Trainer does.
LORA_OPTIONS = [
    "--use_adapter", "true", "--adapter", "lora", "--adapter_conf", "{'rank': 2, 'target_modules': ['in_proj']}",
]


@pytest.fixture(scope="module")
def lora_experiment(tmp_path_factory) -> Path:
    """A Samba-ASR experiment with LoRA adapters on every mixer's in_proj."""
    root = tmp_path_factory.mktemp("lora")
    token_list = root / "tokens.txt"
    token_list.write_text("\n".join(TOKENS) + "\n")
    write_asr_config(root / "exp", token_list, MAMBA_ENCODER, MAMBA_DECODER, LORA_OPTIONS)
    return root / "exp"


def trained_lora_model(lora_experiment: Path):
    """The model as training leaves it: built, adapters added, every parameter changed from its initial value."""
    model, _ = ASRTask.build_model_from_file(lora_experiment / "config.yaml", None, "cpu")
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter))
    return model


def assert_loaded(model, state):
    loaded = model.state_dict()
    for name, value in state.items():
        torch.testing.assert_close(loaded[name], value, rtol=0, atol=0)


def test_lora_targets_our_mixers(lora_experiment):
    model = trained_lora_model(lora_experiment)
    assert any(name.startswith("encoder.") and "lora_A" in name for name in model.state_dict())
    assert any(name.startswith("decoder.") and "lora_A" in name for name in model.state_dict())


def test_an_adapter_only_checkpoint_resumes_and_loads_from_file(lora_experiment, tmp_path):
    """save_strategy adapter_only: loralib's lora_state_dict, loaded with strict=False by Trainer.resume and by
    build_model_from_file (both create the adapters first)."""
    import loralib

    adapter_state = loralib.lora_state_dict(trained_lora_model(lora_experiment))
    resumed = trained_lora_model(lora_experiment)
    resumed.load_state_dict(adapter_state, strict=False)
    assert_loaded(resumed, adapter_state)

    torch.save(adapter_state, tmp_path / "1epoch.pth")
    model, _ = ASRTask.build_model_from_file(lora_experiment / "config.yaml", tmp_path / "1epoch.pth", "cpu")
    assert_loaded(model, adapter_state)


def frozen_first_blocks(model):
    """freeze_param: encoder.encoders.0 and decoder.decoders, as ESPnet's training sets them before resuming."""
    for name, parameter in model.named_parameters():
        if name.startswith(("encoder.encoders.0.", "decoder.decoders.")):
            parameter.requires_grad = False
    return model


def required_grad_only_state(model):
    """What the Trainer saves under save_strategy required_grad_only."""
    frozen = {name for name, parameter in model.named_parameters() if not parameter.requires_grad}
    return {name: value for name, value in model.state_dict().items() if name not in frozen}


def test_a_required_grad_only_checkpoint_resumes(lora_experiment):
    state = required_grad_only_state(frozen_first_blocks(trained_lora_model(lora_experiment)))
    assert any(name.startswith("encoder.encoders.1.") for name in state)
    resumed = frozen_first_blocks(trained_lora_model(lora_experiment))
    resumed.load_state_dict(state, strict=False)
    assert_loaded(resumed, state)


def test_a_required_grad_only_checkpoint_over_a_model_that_trains_the_rest_is_refused(lora_experiment, tmp_path):
    """build_model_from_file does not freeze anything: the left-out blocks would stay random."""
    state = required_grad_only_state(frozen_first_blocks(trained_lora_model(lora_experiment)))
    torch.save(state, tmp_path / "1epoch.pth")
    with pytest.raises(RuntimeError, match=r"does not fit MambaEncoder at 'encoder.': \d+ of its \d+ parameters "
                                           r"are missing \('encoder.encoders.0."):
        ASRTask.build_model_from_file(lora_experiment / "config.yaml", tmp_path / "1epoch.pth", "cpu")


def test_adapters_in_a_checkpoint_for_a_model_without_them_are_refused(experiments, lora_experiment):
    adapter_state = trained_lora_model(lora_experiment).state_dict()
    model, _ = ASRTask.build_model_from_file(experiments["samba"] / "config.yaml", None, "cpu")
    with pytest.raises(RuntimeError, match=r"parameters it does not have are given \('encoder.*lora_"):
        model.load_state_dict(adapter_state, strict=False)


def test_a_strict_load_of_another_architecture_names_the_mismatch(experiments):
    model, _ = ASRTask.build_model_from_file(experiments["samba"] / "config.yaml", None, "cpu")
    conformer_state = torch.load(experiments["conformer"] / "valid.acc.ave.pth")
    with pytest.raises(RuntimeError, match="the checkpoint does not fit MambaEncoder at 'encoder.'"):
        model.load_state_dict(conformer_state, strict=True)


def test_init_param_from_another_architecture_takes_what_fits(experiments):
    """--init_param conformer/model.pth --ignore_init_mismatch: what has the same name and shape is taken (the
    CTC layer, the conv2d subsampling), the rest (the Mamba layers, the decoder) keeps its values."""
    model, _ = ASRTask.build_model_from_file(experiments["samba"] / "config.yaml", None, "cpu")
    before = {name: value.clone() for name, value in model.state_dict().items()}
    checkpoint = experiments["conformer"] / "valid.acc.ave.pth"
    load_pretrained_model(str(checkpoint), model, ignore_init_mismatch=True, map_location="cpu")
    saved = torch.load(checkpoint)
    fitting = {name for name, value in before.items() if name in saved and saved[name].shape == value.shape}
    assert "ctc.ctc_lo.weight" in fitting and any(name.startswith("encoder.embed.") for name in fitting)
    assert any(name.startswith("encoder.encoders.") for name in set(before) - fitting)
    assert_loaded(model, {name: saved[name] if name in fitting else value for name, value in before.items()})
