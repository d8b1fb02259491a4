"""End-to-end: a throw-away recipe around egs2/TEMPLATE/asr1 runs asr.sh stages 1-13 (ESPnet's tiny transformer,
--ngpu 0, 1 epoch, char tokens, speed perturbation, an RNN LM, two training threads), then packing (stage 14) and
fbank features."""
import re
import zipfile

import pytest

from test_template_support import make_recipe, run_asr, write_local_data_sh

pytestmark = pytest.mark.slow

ASR_EXP = "exp/asr_train_asr_raw_char_sp"
DECODE_DIR = f"{ASR_EXP}/decode_asr_lm_lm_train_lm_char_valid.loss.ave_asr_model_valid.acc.ave/test"


@pytest.fixture(scope="module")
def trained_recipe(tmp_path_factory):
    recipe = make_recipe(tmp_path_factory.mktemp("e2e"))
    write_local_data_sh(recipe)
    # One job per stage except decoding (two jobs, merged): the machine running the tests may have two cores.
    result = run_asr(recipe, "--stop_stage", "13", "--speed_perturb_factors", "0.9 1.0 1.1",
                     "--score_open_asr_normalizer", "true", "--python", "python3 -X utf8", "--nj", "1",
                     "--train_num_threads", "2")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    return recipe, result


def test_stages_1_to_13_write_results_md(trained_recipe):
    recipe, result = trained_recipe
    train_ids = [line.split()[0] for line in (recipe / "dump/raw/train_sp/wav.scp").read_text().splitlines()]
    assert len(train_ids) == 72 and sum(utt.startswith("sp0.9-") for utt in train_ids) == 24
    assert (recipe / "exp/lm_train_lm_char/perplexity_test/ppl").exists()
    assert len((recipe / DECODE_DIR / "text").read_text().splitlines()) == 4
    # stage 12 decodes with espnet_samba's Speech2Text: ESPnet's search, the CTC prefix scores by a scan
    assert "-m espnet_samba.bin.asr_inference " in (recipe / DECODE_DIR / "logdir/asr_inference.1.log").read_text()
    results = (recipe / ASR_EXP / "RESULTS.md").read_text()
    for section in ("## Environments", "## asr_train_asr_raw_char_sp", "- Params: ", "### WER", "### CER",
                    "### WER (Open ASR Leaderboard normalisation)", "|dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|",
                    "![loss](images/loss.png)", "![acc](images/acc.png)"):
        assert section in results
    assert (recipe / ASR_EXP / "images" / "loss.png").exists()
    row = next(line for line in results.splitlines() if line.startswith("|decode_asr_lm"))
    assert row.split("|")[2:4] == ["4", "12"]  # 4 test sentences of 3 words
    assert "Stage 11: ASR Training" in result.stdout and "log: 'exp/asr_train_asr_raw_char_sp/train.log'" in result.stdout
    assert "run.pl: 2/2 jobs done" in result.stderr and "decoding test: " in result.stderr
    for label in ("LM training epochs (exp/lm_train_lm_char/train.log)", f"ASR training epochs ({ASR_EXP}/train.log)"):
        assert f"{label}: " in result.stderr, label
    for train_log in (f"{ASR_EXP}/train.log", "exp/lm_train_lm_char/train.log"):  # --train_num_threads 2
        assert re.search(r"# Accounting: time=\d+ threads=2\n", (recipe / train_log).read_text()), train_log


def test_stage_14_packs_the_model(trained_recipe):
    recipe, _ = trained_recipe
    result = run_asr(recipe, "--stage", "14", "--skip_packing", "false", "--speed_perturb_factors", "0.9 1.0 1.1")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    packed = recipe / ASR_EXP / "asr_train_asr_raw_char_sp_valid.acc.ave.zip"
    names = zipfile.ZipFile(packed).namelist()
    assert any(name.endswith("config.yaml") for name in names)
    # pack stores the file that the valid.acc.ave.pth symlink points to (the only epoch here)
    model = (recipe / ASR_EXP / "valid.acc.ave.pth").resolve()
    assert f"{ASR_EXP}/{model.name}" in names
    assert any(name.endswith("RESULTS.md") for name in names)


def test_fbank_features_feed_asr_statistics(trained_recipe):
    recipe, _ = trained_recipe
    result = run_asr(recipe, "--stage", "3", "--stop_stage", "10", "--feats_type", "fbank", "--dumpdir", "dump_fbank",
                     "--use_lm", "false", "--skip_train", "false", "--asr_stats_dir", "exp/asr_stats_fbank")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (recipe / "dump_fbank/fbank/train/feats_dim").read_text().strip() == "80"
    shapes = (recipe / "dump_fbank/fbank/train/feats_shape").read_text().splitlines()
    assert len(shapes) == 24 and all(line.split()[1].endswith(",80") for line in shapes)
    assert "--input_size=80" in (recipe / "exp/asr_stats_fbank/logdir/stats.1.log").read_text()
    assert (recipe / "exp/asr_stats_fbank/train/feats_stats.npz").exists()


def test_use_lexicon_decodes_only_words_of_the_lm_text(trained_recipe):
    recipe, _ = trained_recipe
    sp = ("--speed_perturb_factors", "0.9 1.0 1.1")
    missing = run_asr(recipe, "--stage", "12", "--stop_stage", "12", "--use_lexicon", "true", *sp)
    assert missing.returncode != 0
    assert "--use_lexicon true but data/token_list/lexicon.txt is missing; run stage 5" in missing.stdout

    result = run_asr(recipe, "--stage", "5", "--stop_stage", "14", "--use_lexicon", "true", "--skip_train", "true",
                     "--skip_packing", "false", *sp)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lm_words = {w for line in (recipe / "dump/raw/lm_train.txt").read_text().splitlines() for w in line.split()[1:]}
    lexicon = (recipe / "data/token_list/lexicon.txt").read_text().split()
    assert sorted(lexicon) == sorted(lm_words)
    decode_dir = recipe / DECODE_DIR.replace("_asr_model_", "_lexicon_asr_model_")
    hypotheses = [line.split()[1:] for line in (decode_dir / "text").read_text().splitlines()]
    assert len(hypotheses) == 4 and any(hypotheses), hypotheses
    assert all(w in lm_words for words in hypotheses for w in words), hypotheses
    assert "espnet_samba.bin.asr_inference" in (decode_dir / "logdir/asr_inference.1.log").read_text()
    assert "_lexicon_asr_model_" in (recipe / ASR_EXP / "RESULTS.md").read_text()
    packed = zipfile.ZipFile(recipe / ASR_EXP / "asr_train_asr_raw_char_sp_valid.acc.ave.zip").namelist()
    assert "data/token_list/lexicon.txt" in packed, packed


def test_use_lexicon_with_word_tokens_is_refused(tmp_path):
    recipe = make_recipe(tmp_path)
    result = run_asr(recipe, "--stage", "5", "--token_type", "word", "--use_lexicon", "true")
    assert result.returncode == 2
    assert "--use_lexicon true constrains bpe or char tokens to words; --token_type word decodes words" in result.stdout


def test_use_streaming_decodes_a_causal_model_into_results_md(trained_recipe):
    recipe, _ = trained_recipe
    sp = ("--speed_perturb_factors", "0.9 1.0 1.1")
    refused = run_asr(recipe, "--stage", "12", "--stop_stage", "12", "--use_streaming", "true", *sp)
    assert refused.returncode != 0  # the Transformer encoder cannot run chunk by chunk
    refused_log = recipe / DECODE_DIR.replace("_asr_model_", "_streaming_asr_model_") / "logdir/asr_inference.1.log"
    assert "streaming decoding needs an encoder that runs chunk by chunk; TransformerEncoder" in refused_log.read_text()

    result = run_asr(recipe, "--stage", "11", "--stop_stage", "13", "--asr_config", "conf/train_asr_causal.yaml",
                     "--use_streaming", "true", "--streaming_chunk_length", "1600", *sp)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    causal_exp = recipe / "exp/asr_train_asr_causal_raw_char_sp"
    decode_dir = causal_exp / DECODE_DIR.split("/", 2)[2].replace("_asr_model_", "_streaming_chunk1600_asr_model_")
    assert len((decode_dir / "text").read_text().splitlines()) == 4
    log = (decode_dir / "logdir/asr_inference.1.log").read_text()
    assert "espnet_samba.bin.asr_inference_streaming" in log and "--sim_chunk_length 1600" in log
    assert (decode_dir / "score_wer/result.txt").exists()
    row = next(line for line in (causal_exp / "RESULTS.md").read_text().splitlines() if "_streaming_chunk1600_" in line)
    assert row.split("|")[2:4] == ["4", "12"]


def test_use_streaming_with_a_lexicon_is_refused(tmp_path):
    recipe = make_recipe(tmp_path)
    result = run_asr(recipe, "--stage", "12", "--use_streaming", "true", "--use_lexicon", "true")
    assert result.returncode == 2
    message = "--use_streaming true decodes with a CTC prefix search and attention rescoring, without a lexicon"
    assert message in result.stdout
