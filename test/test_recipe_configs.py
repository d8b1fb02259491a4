"""Like ESPnet's CI (ci/test_configuration_espnet2.sh): every recipe's ASR and LM training config builds its model
through ESPnet's training entry point with --dry_run, every decoding config is read by ESPnet's inference parser,
and every recipe's cmd.sh and conf/slurm.conf equal the template's. The entry point (ASRTask.main / LMTask.main,
what `python -m espnet2.bin.asr_train` calls) runs in this process so that ESPnet is imported once for all
configs."""
import os
from pathlib import Path

import pytest
from espnet2.tasks.asr import ASRTask
from espnet2.tasks.lm import LMTask

REPO_ROOT = Path(__file__).resolve().parent.parent
EGS2 = REPO_ROOT / "egs2"
TEMPLATE = EGS2 / "TEMPLATE" / "asr1"


def configs(pattern: str):
    found = sorted(EGS2.glob(f"*/asr1/conf/{pattern}")) + sorted(EGS2.glob(f"*/asr1/conf/tuning/{pattern}"))
    return [pytest.param(path, id=str(path.relative_to(EGS2))) for path in found]


def dry_run(task, config: Path, tmp_path: Path) -> None:
    """Run the task's CLI on the config as ESPnet's CI does; it raises or exits non-zero on a bad config."""
    token_list = tmp_path / "dummy_token_list"
    token_list.write_text("<blank>\n")
    cwd = os.getcwd()
    os.chdir(tmp_path)  # relative paths in configs resolve against a throw-away directory
    try:
        task.main(cmd=["--config", str(config), "--iterator_type", "none", "--dry_run", "true",
                       "--output_dir", str(tmp_path / "out"), "--token_list", str(token_list)])
    finally:
        os.chdir(cwd)
    assert (tmp_path / "out" / "config.yaml").exists()


@pytest.mark.parametrize("config", configs("train_asr*.yaml"))
def test_asr_config_builds_model(config, tmp_path):
    dry_run(ASRTask, config, tmp_path)


@pytest.mark.parametrize("config", configs("train_lm*.yaml"))
def test_lm_config_builds_model(config, tmp_path):
    dry_run(LMTask, config, tmp_path)


@pytest.mark.parametrize("config", configs("decode_asr*.yaml"))
def test_decode_config_is_read_by_espnets_inference(config):
    """ESPnet's asr_inference parser refuses unknown keys: a decode config must work without --use_lexicon too."""
    from espnet2.bin.asr_inference import get_parser

    args = get_parser().parse_args(["--config", str(config), "--output_dir", "unused",
                                    "--data_path_and_name_and_type", "unused,speech,sound"])
    assert args.beam_size >= 1


@pytest.mark.parametrize("config", configs("decode_asr*.yaml") + configs("decode_streaming*.yaml"))
def test_decode_config_is_read_by_the_streaming_inference(config):
    """asr.sh --use_streaming true passes the inference config to espnet_samba.bin.asr_inference_streaming."""
    from espnet_samba.bin.asr_inference_streaming import get_parser

    args = get_parser().parse_args(["--config", str(config), "--output_dir", "unused",
                                    "--data_path_and_name_and_type", "unused,speech,sound",
                                    "--asr_train_config", "unused", "--asr_model_file", "unused"])
    assert args.beam_size >= 1 and args.second_pass in ("auto", "joint_beam_search", "attention_rescoring")


@pytest.mark.parametrize("name", ["cmd.sh", "conf/slurm.conf"])
def test_recipes_use_the_template_copy(name):
    template = (TEMPLATE / name).read_text()
    different = [str(path.relative_to(EGS2)) for path in sorted(EGS2.glob(f"*/asr1/{name}"))
                 if path.read_text() != template]
    assert not different, f"differ from egs2/TEMPLATE/asr1/{name} (copy it over): {different}"


def test_recipes_link_the_template():
    for recipe in sorted(path.parent for path in EGS2.glob("*/asr1/run.sh")):
        for name in ("asr.sh", "path.sh", "db.sh", "utils", "scripts", "pyscripts"):
            link = recipe / name
            assert link.is_symlink() and link.resolve() == (TEMPLATE / name).resolve(), f"{link} must link the template"
