"""The espeak_en demo recipe (egs2/espeak_en/asr1), as ESPnet's CI runs mini_an4: stages 1-14 of run.sh on a
handful of utterances with a tiny model, then the results table and the packed model decoding a wav file through
ESPnet's Speech2Text; and its training configs built through ESPnet's own ASR task.

The recipe runs in a copy of its directory inside a miniature checkout (symlinks to this repository's
egs2/TEMPLATE, tools and package), so it never touches data/, dump/ or exp/ of the real recipe directory.
"""
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, Optional, Tuple

import pytest
from espnet2.tasks.asr import ASRTask

import espnet_samba  # noqa: F401  (registers encoder/decoder "mamba" in ESPnet's ASR task)

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "egs2" / "espeak_en" / "asr1"
TEST_SETS = ("test_espeak", "test_flite", "test_festival", "test_unseen_pico", "test_noisy")
NUM_TEST = 4
LM_EXP = "exp/lm_train_lm_ci_en_char"
ASR_EXP = "exp/asr_train_asr_samba_ci_raw_en_char"
SAMBA_FORMS = {  # conf/tuning/train_asr_samba_<form>.yaml: (encoder bidirectional, decoder cross-connection)
    "bidir_attention": (True, "attention"),
    "bidir_prefix": (True, "prefix"),
    "causal_prefix": (False, "prefix"),
    "causal_attention": (False, "attention"),
}

needs_tools = pytest.mark.skipif(
    not all(shutil.which(p) for p in ("espeak-ng", "flite", "festival", "sox"))
    or not (shutil.which("sclite") or os.access("/usr/lib/sctk/bin/sclite", os.X_OK)),
    reason="needs espeak-ng, flite, festival, sox and sclite (tools/install.sh installs them)",
)


def miniature_checkout(root: Path) -> Path:
    """Copy the recipe dir into ``root/egs2/espeak_en/asr1`` beside symlinks to the repository's shared parts."""
    (root / "egs2").mkdir(parents=True)
    for shared in ("tools", "espnet_samba"):
        (root / shared).symlink_to(REPO / shared)
    (root / "egs2" / "TEMPLATE").symlink_to(REPO / "egs2" / "TEMPLATE")
    recipe = root / "egs2" / "espeak_en" / "asr1"
    shutil.copytree(
        RECIPE, recipe, symlinks=True, ignore=shutil.ignore_patterns("data", "dump", "exp", "downloads")
    )
    return recipe


def result_rows(results: str, table: str) -> dict:
    """Rows of one RESULTS.md table (``### WER`` or ``### CER``) as {dataset path: [Snt, Wrd, Corr, ..., S.Err]}."""
    section = results.split(f"### {table}\n", 1)[1].split("###", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 9 and re.fullmatch(r"\d+", cells[1]):
            rows[cells[0]] = [float(c) for c in cells[1:]]
    return rows


# run.sh's options for the CI run: the tiny model and LM, a handful of utterances.
CI_OPTIONS = (
    "--asr_config", "conf/tuning/train_asr_samba_ci.yaml",
    "--lm_config", "conf/tuning/train_lm_ci.yaml",
    "--token_type", "char",
    "--local_data_opts", f"--num_train 30 --num_dev 3 --num_test {NUM_TEST} --nj 2 --train_readings 1",
)


def run_ci_recipe(recipe: Path, first: int, last: int, *options: str, env: Optional[Dict[str, str]] = None,
                  timeout: int = 900) -> subprocess.CompletedProcess:
    """``./run.sh --stage first --stop_stage last`` with the CI options (and ``options``), output captured."""
    command = ["./run.sh", "--stage", str(first), "--stop_stage", str(last), *CI_OPTIONS, *options]
    return subprocess.run(command, cwd=recipe, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> Tuple[Path, subprocess.CompletedProcess]:
    """Stages 1-14 with run.pl, the default backend."""
    recipe = miniature_checkout(tmp_path_factory.mktemp("espeak_ci_local"))
    return recipe, run_ci_recipe(recipe, 1, 14)


@pytest.mark.slow
@needs_tools
def test_recipe_runs_stages_1_to_14(local_run):
    recipe, result = local_run
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]

    results_files = sorted((recipe / "exp").glob("asr_*/RESULTS.md"))
    assert [p.parent.name for p in results_files] == [ASR_EXP.split("/")[1]]
    results = results_files[0].read_text()
    assert "## Environments" in results
    for table in ("WER", "CER"):
        rows = result_rows(results, table)
        assert sorted(name.rsplit("/", 1)[1] for name in rows) == sorted(TEST_SETS), results
        for name, (snt, wrd, corr, sub, dele, ins, err, s_err) in rows.items():
            assert snt == NUM_TEST, name
            assert wrd > 0 and err == pytest.approx(sub + dele + ins, abs=0.2), name
    for test_set in TEST_SETS:  # decoded with run.sh's LM (shallow fusion), open vocabulary
        decoded = next((recipe / ASR_EXP).glob(f"decode_asr_lm_lm_train_lm_ci_en_char_*_asr_model_*/{test_set}/text"))
        assert len(decoded.read_text().splitlines()) == NUM_TEST
    assert (recipe / "exp" / "lm_train_lm_ci_en_char" / "perplexity_test" / "ppl").exists()
    lm_text = (recipe / "dump" / "raw" / "lm_train.txt").read_text().splitlines()
    assert len(lm_text) > 1000, "the LM must read data/local/other_text/text besides the 30 training transcripts"


@pytest.mark.slow
@needs_tools
def test_packed_model_decodes_a_wav_file_through_speech2text(local_run, tmp_path, monkeypatch):
    """Stage 14's archive, unpacked elsewhere, takes raw audio: the README's lines give stage 12's hypothesis of
    the utterance (same model, LM and decoding options), with no feature extraction by the user."""
    import soundfile
    import yaml
    from espnet2.bin.asr_inference import Speech2Text
    from espnet2.main_funcs.pack_funcs import unpack

    recipe, result = local_run
    assert result.returncode == 0, "the run.pl run failed: see test_recipe_runs_stages_1_to_14"
    (archive,) = (recipe / ASR_EXP).glob("*.zip")
    utt_id, wav = (recipe / "data" / "test_flite" / "wav.scp").read_text().splitlines()[0].split(" ", 1)
    decoded = next((recipe / ASR_EXP).glob("decode_asr_lm_*/test_flite/text")).read_text().splitlines()
    expected = dict((line.split(" ", 1) + [""])[:2] for line in decoded)[utt_id]
    options = yaml.safe_load((recipe / "conf" / "decode_asr.yaml").read_text())
    monkeypatch.chdir(tmp_path)  # nothing may resolve against the recipe dir
    speech2text = Speech2Text(**unpack(str(archive), "model"), **options)
    assert speech2text(soundfile.read(wav, dtype="float32")[0])[0][0] == expected


def build_model(config: Path, tmp_path: Path, vocabulary: int = 150):
    token_list = tmp_path / "tokens.txt"
    tokens = ["<blank>", "<unk>"] + [f"t{i}" for i in range(vocabulary - 3)] + ["<sos/eos>"]
    token_list.write_text("\n".join(tokens) + "\n")
    args = ASRTask.get_parser().parse_args(
        ["--config", str(config), "--token_list", str(token_list), "--output_dir", str(tmp_path)]
    )
    return ASRTask.build_model(args)


def test_samba_and_baseline_configs_build_at_equal_size(tmp_path):
    """Samba-ASR and the Conformer + Transformer baseline are built by ESPnet with parameter counts within 10 %,
    both computing their features from raw audio (frontend kaldi_fbank, 40 bins)."""
    samba = build_model(RECIPE / "conf" / "train_asr_samba.yaml", tmp_path)
    baseline = build_model(RECIPE / "conf" / "train_asr_conformer.yaml", tmp_path)
    assert type(samba.encoder).__name__ == "MambaEncoder" and type(samba.decoder).__name__ == "MambaDecoder"
    assert type(baseline.encoder).__name__ == "ConformerEncoder"
    assert type(baseline.decoder).__name__ == "TransformerDecoder"
    for model in (samba, baseline):
        assert type(model.frontend).__name__ == "KaldiFbankFrontend" and model.frontend.output_size() == 40
    sizes = [sum(p.numel() for p in model.parameters()) for model in (samba, baseline)]
    assert sizes[1] == pytest.approx(sizes[0], rel=0.1), sizes


@pytest.mark.parametrize("form", SAMBA_FORMS)
def test_every_samba_form_builds_with_its_direction_and_cross_connection(form, tmp_path):
    bidirectional, cross_connection = SAMBA_FORMS[form]
    model = build_model(RECIPE / "conf" / "tuning" / f"train_asr_samba_{form}.yaml", tmp_path)
    layers = [m for m in model.encoder.modules() if type(m).__name__ == "MambaEncoderLayer"]
    assert len(layers) == 8 and all(layer.bidirectional == bidirectional for layer in layers)
    assert type(model.decoder.decoders).__name__ == f"{cross_connection.capitalize()}CrossConnection"


def test_ci_config_builds(tmp_path):
    model = build_model(RECIPE / "conf" / "tuning" / "train_asr_samba_ci.yaml", tmp_path, vocabulary=30)
    assert sum(p.numel() for p in model.parameters()) < 100_000


# ----- the same run on a real Slurm cluster (cmd_backend=slurm; the conftest fixture starts the cluster) -----

DDP_TAG = "ddp_2nodes"
SUBMITTED = re.compile(r"slurm\.pl: submitted Slurm job \d+ \((\d+) task\(s\)\), logs: (\S+)")


def running_job(name_part: str, env: Dict[str, str], timeout_s: float = 300) -> Tuple[str, str]:
    """(job id, node) of the first running Slurm job whose name contains name_part, waiting for it."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        listing = subprocess.run(["squeue", "-h", "-t", "R", "-o", "%A %j %N"], capture_output=True, text=True,
                                 env={**os.environ, **env}).stdout
        for line in listing.splitlines():
            job_id, name, node = line.split()
            if name_part in name:
                return job_id, node
        time.sleep(0.2)
    raise AssertionError(f"no Slurm job named *{name_part}* started within {timeout_s} s")


def interrupted_stage(recipe: Path, stage: int, job_name: str, interrupt, env: Dict[str, str]):
    """Run one stage of run.sh, and once its job (named *job_name*) has run for 3 s, interrupt(job id, node)."""
    output = recipe / f"stage{stage}_interrupted.out"
    with output.open("w") as sink:
        process = subprocess.Popen(["./run.sh", "--stage", str(stage), "--stop_stage", str(stage), *CI_OPTIONS],
                                   cwd=recipe, stdout=sink, stderr=subprocess.STDOUT, text=True,
                                   env={**os.environ, **env})
        try:
            job_id, node = running_job(job_name, env)
            time.sleep(3)
            interrupt(job_id, node)
            process.wait(timeout=300)
        finally:
            process.kill()
    return subprocess.CompletedProcess(process.args, process.returncode, output.read_text(), "")


@pytest.fixture(scope="module")
def slurm_run(local_run, slurm_cluster, tmp_path_factory) -> SimpleNamespace:
    """The CI run again with cmd_backend=slurm, and at each kind of job a failure, then the stage run again.

    Stage 1 (local/data.sh, no jobs) and the LM (stages 6-8) are the run.pl run's, copied; every other stage
    submits its jobs to the cluster: 3-5 and 10 (several jobs each); 11 (the training job: cancelled with scancel
    once it runs, then run again; and a DDP training on both nodes, --num_nodes 2, into another experiment);
    12 (decoding jobs: one run exits non-zero, one loses its node, set DOWN while they run; then 12 and 13 again).
    """
    local_recipe, local_result = local_run
    assert local_result.returncode == 0, "the run.pl run failed: see test_recipe_runs_stages_1_to_13"
    recipe = miniature_checkout(tmp_path_factory.mktemp("espeak_ci_slurm"))
    for shared in ("data", "downloads", LM_EXP):
        shutil.copytree(local_recipe / shared, recipe / shared, symlinks=True)
    env = {"cmd_backend": "slurm", **slurm_cluster}

    def scontrol(*args: str) -> None:
        subprocess.run(["scontrol", *args], check=True, env={**os.environ, **env})

    def cancel(job_id: str, node: str) -> None:
        subprocess.run(["scancel", job_id], check=True, env={**os.environ, **env})

    def set_node_down(job_id: str, node: str) -> None:
        scontrol("update", f"NodeName={node}", "State=DOWN", "Reason=test_recipe_espeak_en")
        steps.down_node = node

    steps = SimpleNamespace(recipe=recipe)
    steps.features = run_ci_recipe(recipe, 2, 5, env=env)
    steps.statistics = run_ci_recipe(recipe, 10, 10, env=env)
    steps.cancelled = interrupted_stage(recipe, 11, f"{ASR_EXP}/train.log", cancel, env)
    steps.training = run_ci_recipe(recipe, 11, 11, env=env)
    steps.two_node_training = run_ci_recipe(recipe, 11, 11, "--num_nodes", "2", "--asr_tag", DDP_TAG, env=env)
    steps.failing = run_ci_recipe(recipe, 12, 12, "--inference_args", "--no_such_option 1", env=env)
    try:
        steps.node_down = interrupted_stage(recipe, 12, "asr_inference", set_node_down, env)
    finally:
        if getattr(steps, "down_node", None):
            scontrol("update", f"NodeName={steps.down_node}", "State=RESUME")
    steps.decoding = run_ci_recipe(recipe, 12, 13, env=env)
    return steps


def output_of(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


@pytest.mark.slow
@needs_tools
def test_slurm_backend_reaches_the_run_pl_results(local_run, slurm_run):
    for step in ("features", "statistics", "training", "decoding"):
        result = getattr(slurm_run, step)
        assert result.returncode == 0, f"{step}:\n{output_of(result)[-5000:]}"
    for step, log_part, tasks in (("features", "format_wav_scp", 2), ("statistics", "stats.", 2),
                                  ("training", "train.log", 1), ("decoding", "asr_inference", 2)):
        jobs = [(int(count), log) for count, log in SUBMITTED.findall(output_of(getattr(slurm_run, step)))]
        assert any(count == tasks and log_part in log for count, log in jobs), (step, jobs)
    decode_log = next(slurm_run.recipe.glob(f"{ASR_EXP}/decode_*/test_espeak/logdir/asr_inference.1.log")).read_text()
    assert re.search(r"# Started at .* on node\d, Slurm job \d+", decode_log)
    local_results = (local_run[0] / ASR_EXP / "RESULTS.md").read_text()
    slurm_results = (slurm_run.recipe / ASR_EXP / "RESULTS.md").read_text()
    for table in ("WER", "CER"):
        assert result_rows(slurm_results, table) == result_rows(local_results, table), table


def assert_stopped(result: subprocess.CompletedProcess, stage: str, log: str, reason: str) -> None:
    output = output_of(result)
    assert result.returncode != 0, output[-3000:]
    assert f"Error: stage {stage}" in output and log in output and reason in output, output[-3000:]


@pytest.mark.slow
@needs_tools
def test_slurm_job_exiting_non_zero_stops_asr_sh_and_the_stage_reruns(slurm_run):
    assert_stopped(slurm_run.failing, "12", "logdir/asr_inference.1.log", "task(s) of Slurm job")
    assert "no_such_option" in output_of(slurm_run.failing)
    assert slurm_run.decoding.returncode == 0


@pytest.mark.slow
@needs_tools
def test_slurm_job_cancelled_stops_asr_sh_and_the_stage_reruns(slurm_run):
    assert_stopped(slurm_run.cancelled, "11", f"{ASR_EXP}/train.log", "CANCELLED")
    assert slurm_run.training.returncode == 0 and (slurm_run.recipe / ASR_EXP / "valid.acc.ave.pth").exists()


@pytest.mark.slow
@needs_tools
def test_slurm_node_down_stops_asr_sh_and_the_stage_reruns(slurm_run):
    assert_stopped(slurm_run.node_down, "12", "logdir/asr_inference.1.log", "NODE_FAIL")
    assert slurm_run.decoding.returncode == 0


@pytest.mark.slow
@needs_tools
def test_slurm_two_node_ddp_training_through_asr_sh(slurm_run):
    result = slurm_run.two_node_training
    assert result.returncode == 0, output_of(result)[-5000:]
    train_log = (slurm_run.recipe / f"exp/asr_{DDP_TAG}/train.log").read_text()
    for option in ("srun --export=ALL", "--dist_launcher slurm", "--dist_backend gloo"):
        assert option in train_log, option
    assert re.search(r"\[\S+:0/2\]", train_log), "rank 0 of a world of 2 must log"
    assert (slurm_run.recipe / f"exp/asr_{DDP_TAG}/1epoch.pth").exists()
