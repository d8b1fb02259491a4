"""The espeak_en demo recipe (egs2/espeak_en/asr1), as ESPnet's CI runs mini_an4: stages 1-13 of run.sh on a
handful of utterances with a tiny model, then the results table; and its training configs built through
ESPnet's own ASR task.

The recipe runs in a copy of its directory inside a miniature checkout (symlinks to this repository's
egs2/TEMPLATE, tools and package), so it never touches data/, dump/ or exp/ of the real recipe directory.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from espnet2.tasks.asr import ASRTask

import espnet_samba  # noqa: F401  (registers encoder/decoder "mamba" in ESPnet's ASR task)

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "egs2" / "espeak_en" / "asr1"
TEST_SETS = ("test", "test_noisy")
NUM_TEST = 4

needs_tools = pytest.mark.skipif(
    not all(shutil.which(p) for p in ("espeak-ng", "sox", "sclite"))
    and not os.access("/usr/lib/sctk/bin/sclite", os.X_OK),
    reason="needs espeak-ng, sox and sclite (tools/install.sh installs them)",
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


@pytest.mark.slow
@needs_tools
def test_recipe_runs_stages_1_to_13(tmp_path):
    recipe = miniature_checkout(tmp_path)
    command = [
        "./run.sh",
        "--stage", "1",
        "--stop_stage", "13",
        "--asr_config", "conf/tuning/train_asr_samba_ci.yaml",
        "--lm_config", "conf/tuning/train_lm_ci.yaml",
        "--token_type", "char",
        "--local_data_opts", f"--num_train 30 --num_dev 3 --num_test {NUM_TEST} --nj 2 --train_readings 1",
    ]
    result = subprocess.run(command, cwd=recipe, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]

    results_files = sorted((recipe / "exp").glob("asr_*/RESULTS.md"))
    assert [p.parent.name for p in results_files] == ["asr_train_asr_samba_ci_fbank_en_char"]
    results = results_files[0].read_text()
    assert "## Environments" in results
    for table in ("WER", "CER"):
        rows = result_rows(results, table)
        assert sorted(name.rsplit("/", 1)[1] for name in rows) == sorted(TEST_SETS), results
        for name, (snt, wrd, corr, sub, dele, ins, err, s_err) in rows.items():
            assert snt == NUM_TEST, name
            assert wrd > 0 and err == pytest.approx(sub + dele + ins, abs=0.2), name
    lexicon = set((recipe / "data" / "en_token_list" / "lexicon.txt").read_text().split())
    for test_set in TEST_SETS:  # decoded with run.sh's LM (shallow fusion) and lexicon, as the full recipe does
        decoded = next((recipe / "exp").glob(f"asr_*/decode_asr_lm_lm_train_lm_ci_en_char_*_lexicon_*/{test_set}/text"))
        hypotheses = [line.split()[1:] for line in decoded.read_text().splitlines()]
        assert len(hypotheses) == NUM_TEST
        assert all(word in lexicon for words in hypotheses for word in words), hypotheses
    assert (recipe / "exp" / "lm_train_lm_ci_en_char" / "perplexity_test" / "ppl").exists()
    lm_text = (recipe / "dump" / "fbank" / "lm_train.txt").read_text().splitlines()
    assert len(lm_text) > 1000, "the LM must read data/local/other_text/text besides the 30 training transcripts"


def build_model(config: Path, tmp_path: Path, vocabulary: int = 150):
    token_list = tmp_path / "tokens.txt"
    tokens = ["<blank>", "<unk>"] + [f"t{i}" for i in range(vocabulary - 3)] + ["<sos/eos>"]
    token_list.write_text("\n".join(tokens) + "\n")
    args = ASRTask.get_parser().parse_args(
        ["--config", str(config), "--token_list", str(token_list), "--input_size", "40", "--output_dir", str(tmp_path)]
    )
    return ASRTask.build_model(args)


def test_samba_and_baseline_configs_build_at_equal_size(tmp_path):
    """Samba-ASR and the Conformer + Transformer baseline are built by ESPnet with parameter counts within 10 %."""
    samba = build_model(RECIPE / "conf" / "train_asr_samba.yaml", tmp_path)
    baseline = build_model(RECIPE / "conf" / "train_asr_conformer.yaml", tmp_path)
    assert type(samba.encoder).__name__ == "MambaEncoder" and type(samba.decoder).__name__ == "MambaDecoder"
    assert type(baseline.encoder).__name__ == "ConformerEncoder"
    assert type(baseline.decoder).__name__ == "TransformerDecoder"
    sizes = [sum(p.numel() for p in model.parameters()) for model in (samba, baseline)]
    assert sizes[1] == pytest.approx(sizes[0], rel=0.1), sizes


def test_ci_config_builds(tmp_path):
    model = build_model(RECIPE / "conf" / "tuning" / "train_asr_samba_ci.yaml", tmp_path, vocabulary=30)
    assert sum(p.numel() for p in model.parameters()) < 100_000
