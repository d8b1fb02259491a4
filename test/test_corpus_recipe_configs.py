"""Training configs of the corpus recipes (librispeech_100, librispeech, gigaspeech, spgispeech).

Every config is parsed by ESPnet's own ASR task parser and its model, optimizer and scheduler are built by
ESPnet's own classes; sizes are compared with the parameter counts ESPnet published for its baselines.
"""

from pathlib import Path
from typing import List

import pytest
import torch
import yaml
from espnet2.schedulers.piecewise_linear_warmup_lr import PiecewiseLinearWarmupLR
from espnet2.tasks.asr import ASRTask

import espnet_samba  # noqa: F401  (registers encoder/decoder "mamba" in ESPnet's ASR task)

EGS2 = Path(__file__).resolve().parents[1] / "egs2"
RECIPES = ("librispeech_100", "librispeech", "gigaspeech", "spgispeech")
ASR_CONFIGS = sorted(path for recipe in RECIPES for path in (EGS2 / recipe / "asr1" / "conf").rglob("train_asr_*.yaml"))
SAMBA_CONFIGS = [path for path in ASR_CONFIGS if path.name.startswith("train_asr_samba_")]
VOCABULARY = 5000  # --nbpe 5000 in every run.sh; ESPnet's published parameter counts use it too
# Parameter counts ESPnet publishes in the recipes' READMEs (M), the size each Samba config is set to match.
PUBLISHED_SIZE = {
    ("librispeech_100", "train_asr_e_branchformer.yaml"): 38.47,
    ("librispeech", "train_asr_conformer.yaml"): 116.15,
}
SAMBA_TARGET = {"librispeech_100": 38.47, "librispeech": 116.15, "gigaspeech": 116.15, "spgispeech": 116.15}


def recipe_of(config: Path) -> str:
    return config.relative_to(EGS2).parts[0]


def config_id(config: Path) -> str:
    return f"{recipe_of(config)}:{config.name}"


@pytest.fixture(scope="module")
def token_list(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tokens") / "tokens.txt"
    tokens: List[str] = ["<blank>", "<unk>"] + [f"t{i}" for i in range(VOCABULARY - 3)] + ["<sos/eos>"]
    path.write_text("\n".join(tokens) + "\n")
    return path


def build(config: Path, token_list: Path, tmp_path: Path):
    args = ASRTask.get_parser().parse_args(
        ["--config", str(config), "--token_list", str(token_list), "--output_dir", str(tmp_path)]
    )
    model = ASRTask.build_model(args)
    return args, model


def millions(model: torch.nn.Module) -> float:
    return sum(p.numel() for p in model.parameters()) / 1e6


def test_every_recipe_has_samba_and_baseline_configs():
    for recipe in RECIPES:
        names = {path.name for path in ASR_CONFIGS if recipe_of(path) == recipe}
        assert any(name.startswith("train_asr_samba_") for name in names), recipe
        assert "train_asr_conformer.yaml" in names, recipe


# Built in the default run (a few seconds each); the other configs build in the slow run.
FAST_BUILDS = {
    "librispeech_100:train_asr_e_branchformer.yaml",
    "librispeech_100:train_asr_samba_e28_d18_size256_bi.yaml",
}


@pytest.mark.parametrize(
    "config",
    [
        pytest.param(c, marks=[] if config_id(c) in FAST_BUILDS else [pytest.mark.slow], id=config_id(c))
        for c in ASR_CONFIGS
    ],
)
def test_config_builds_in_espnet_at_the_intended_size(config, token_list, tmp_path):
    args, model = build(config, token_list, tmp_path)
    optimizer = ASRTask.build_optimizers(args, model)[0]
    assert optimizer is not None
    size = millions(model)
    published = PUBLISHED_SIZE.get((recipe_of(config), config.name))
    if published is not None:
        assert round(size, 2) == published
    if config in SAMBA_CONFIGS:
        assert size == pytest.approx(SAMBA_TARGET[recipe_of(config)], rel=0.02)


@pytest.mark.parametrize("config", SAMBA_CONFIGS, ids=config_id)
def test_samba_config_follows_the_paper_recipe(config):
    conf = yaml.safe_load(config.read_text())
    assert conf["encoder"] == "mamba" and conf["decoder"] == "mamba"
    assert conf["decoder_conf"]["cross_connection"] == "prefix"
    assert conf["optim"] == "adamw"
    assert conf["optim_conf"] == {"lr": 1.0e-4, "weight_decay": 0.01, "eps": 1.0e-8}
    assert conf["batch_type"] == "sorted"
    assert conf["batch_size"] * conf["accum_grad"] == 256
    assert conf["max_epoch"] == 80
    assert conf["use_amp"] is True and conf["grad_clip"] > 0


@pytest.mark.parametrize("config", SAMBA_CONFIGS, ids=config_id)
def test_samba_learning_rate_decays_linearly_to_zero_at_the_last_update(config):
    conf = yaml.safe_load(config.read_text())
    assert conf["scheduler"] == "piecewiselinearwarmuplr"
    updates_per_epoch = conf["num_iters_per_epoch"] // conf["accum_grad"]
    assert conf["num_iters_per_epoch"] % conf["accum_grad"] == 0
    last_update = conf["max_epoch"] * updates_per_epoch
    assert conf["scheduler_conf"]["warmup_steps_list"] == [0, last_update]

    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], **conf["optim_conf"])
    scheduler = PiecewiseLinearWarmupLR(optimizer, **conf["scheduler_conf"])

    def lr_at(update: int) -> float:
        """The lr of the given optimizer update (1-based; ESPnet steps the scheduler after each update)."""
        scheduler.last_epoch = update - 1
        return scheduler.get_lr()[0]

    assert lr_at(1) == pytest.approx(1.0e-4, rel=1e-3)
    assert lr_at(last_update // 2) == pytest.approx(0.5e-4, rel=1e-3)
    assert lr_at(last_update) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("recipe", RECIPES)
def test_decode_config_is_joint_ctc_attention(recipe):
    conf = yaml.safe_load((EGS2 / recipe / "asr1" / "conf" / "decode_asr.yaml").read_text())
    assert conf["beam_size"] >= 20 and 0 < conf["ctc_weight"] < 1
