"""The espeak_en recipe's analysis scripts (egs2/espeak_en/asr1/local): the training logs they read (ESPnet's
``<N>epoch results`` lines, resumed runs' rotated logs) and the WER table of local/compare_models.py, which reads
sclite's own ``result.txt`` (written here by the real sclite, as stage 13 runs it, on transcripts whose errors
are counted by hand)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import humanfriendly
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "egs2" / "espeak_en" / "asr1" / "local"))
from compare_models import TEST_SETS, experiment_rows, main as compare_main, sclite_wer  # noqa: E402
from report_outputs import named_path  # noqa: E402
from training_curves import epochs_within, main as curves_main, read_epochs  # noqa: E402
from wer_by_family import main as by_family_main, split_by_family  # noqa: E402

SCLITE = shutil.which("sclite") or "/usr/lib/sctk/bin/sclite"
needs_sclite = pytest.mark.skipif(
    not os.access(SCLITE, os.X_OK) and os.environ.get("CI") != "true",
    reason="needs sclite (tools/install.sh installs Debian's sctk)",
)


def epoch_line(number: int, train_seconds: float, acc: float, cer_ctc: float, valid_seconds: float = 0.83) -> str:
    """One epoch's report as ESPnet's trainer logs it (fields abridged, order and punctuation kept; durations
    written by humanfriendly.format_timespan, as ESPnet's reporter writes them)."""
    train_time, valid_time = (humanfriendly.format_timespan(s) for s in (train_seconds, valid_seconds))
    return (f"[vm] 2026-12-07 05:15:57,712 (trainer:394) INFO: {number}epoch results: [train] iter_time=0.008, "
            f"loss_ctc=82.687, acc=0.178, optim0_lr0=3.000e-03, train_time=0.141, time={train_time}, "
            f"total_count=375, [valid] loss_ctc=72.097, cer_ctc={cer_ctc}, acc={acc}, wer=1.000, time={valid_time}, "
            f"total_count=19, [att_plot] time=1.31 seconds, total_count=0")


def write_training(exp_dir: Path, logs: dict) -> None:
    """``logs``: {file name: [(epoch, train seconds, valid acc, valid cer_ctc), ...]}, beside a model summary."""
    exp_dir.mkdir(parents=True, exist_ok=True)
    for name, epochs in logs.items():
        lines = ["    Total Number of model parameters: 1.25 M"]
        lines += [epoch_line(*epoch) for epoch in epochs]
        (exp_dir / name).write_text("\n".join(lines) + "\n")


def test_read_epochs_joins_a_resumed_runs_logs_in_order(tmp_path):
    """train.2.log is older than train.1.log, older than train.log; an epoch reported twice keeps the later."""
    write_training(tmp_path, {
        "train.2.log": [(1, 50.0, 0.25, 0.80), (2, 51.0, 0.30, 0.70)],
        "train.1.log": [(2, 40.0, 0.33, 0.66), (3, 41.0, 0.40, 0.60)],
        "train.log": [(4, 42.5, 0.45, 0.55)],
    })
    epochs = read_epochs(tmp_path)
    assert [e.number for e in epochs] == [1, 2, 3, 4]
    assert [e.train_seconds for e in epochs] == [50.0, 40.0, 41.0, 42.5]
    assert [e.valid["acc"] for e in epochs] == [0.25, 0.33, 0.40, 0.45]
    assert epochs[3].valid["cer_ctc"] == 0.55
    assert epochs[3].valid["time"] == 0.83  # the validation's own time, not the att_plot's after it


def test_read_epochs_reads_durations_of_a_minute_and_more(tmp_path):
    """ESPnet writes 95.83 s as "1 minute and 35.83 seconds": all of it is the epoch's time, not its first number."""
    write_training(tmp_path, {"train.log": [(1, 95.83, 0.3, 0.7, 61.0), (2, 3725.5, 0.4, 0.6), (3, 120.0, 0.5, 0.5)]})
    epochs = read_epochs(tmp_path)
    assert [e.train_seconds for e in epochs] == pytest.approx([95.83, 3725.5, 120.0])
    assert epochs[0].valid["time"] == pytest.approx(61.0)
    assert epochs[1].valid["time"] == pytest.approx(0.83)


def test_epochs_within_divides_the_budget_by_the_first_epochs_time(tmp_path):
    """compare_models.sh's equal training time: epoch 1's training + validation time sets the epoch count."""
    write_training(tmp_path, {"train.log": [(1, 109.13, 0.3, 0.8, 1.85)]})
    assert epochs_within(tmp_path, 12.5) == 7  # 750 s / 110.98 s = 6.76
    write_training(tmp_path, {"train.log": [(1, 29.17, 0.3, 0.8, 0.83)]})
    assert epochs_within(tmp_path, 12.5) == 25
    assert epochs_within(tmp_path, 0.1) == 1  # at least one epoch


def test_epochs_within_needs_epoch_one(tmp_path):
    write_training(tmp_path, {"train.log": [(2, 30.0, 0.3, 0.8)]})
    with pytest.raises(ValueError, match="no report of epoch 1"):
        epochs_within(tmp_path, 12.5)


def test_read_epochs_names_the_missing_log(tmp_path):
    with pytest.raises(FileNotFoundError, match="train.log not found"):
        read_epochs(tmp_path)


def test_training_curves_writes_the_table_and_plot(tmp_path, capsys):
    write_training(tmp_path / "exp_a", {"train.log": [(1, 30.0, 0.3, 0.9), (2, 30.0, 0.5, 0.7)]})
    write_training(tmp_path / "exp_b", {"train.log": [(1, 60.0, 0.2, 0.8)]})
    curves_main(["--out_dir", str(tmp_path / "out"), "--metric", "acc",
                 f"a={tmp_path / 'exp_a'}", f"b={tmp_path / 'exp_b'}"])
    table = (tmp_path / "out" / "acc.md").read_text()
    assert "| 1 | 0.300 | 0.200 |" in table and "| 2 | 0.500 |  |" in table
    assert "| training time | 1.0 min | 1.0 min |" in table
    assert (tmp_path / "out" / "acc.png").stat().st_size > 0
    assert table in capsys.readouterr().out


def test_named_path_refuses_a_bare_path():
    with pytest.raises(Exception, match="expected NAME=PATH"):
        named_path("exp/asr_a")


def score_with_sclite(score_dir: Path, references: dict, hypotheses: dict) -> None:
    """Stage 13's scoring: trn files and ``sclite -r ref.trn trn -h hyp.trn trn -i rm -o all stdout``."""
    score_dir.mkdir(parents=True)
    for name, texts in (("ref.trn", references), ("hyp.trn", hypotheses)):
        (score_dir / name).write_text("".join(f"{text} (spk-{utt})\n" for utt, text in texts.items()))
    with open(score_dir / "result.txt", "w") as result:
        subprocess.run([SCLITE, "-r", str(score_dir / "ref.trn"), "trn", "-h", str(score_dir / "hyp.trn"), "trn",
                        "-i", "rm", "-o", "all", "stdout"], stdout=result, check=True)


REFERENCES = {"1": "THE CAT SAT ON THE MAT", "2": "OPEN YOUR MOUTH"}  # 9 words


@needs_sclite
def test_compare_models_reads_sclites_wer_per_test_set(tmp_path):
    """1 substitution + 1 deletion + 1 insertion in 9 words: 33.3 %; a perfect set: 0.0 %; a streamed
    decoding is its own row, named by its chunk (samples at 16 kHz -> ms)."""
    exp_dir = tmp_path / "exp" / "asr_compare_form"
    write_training(exp_dir, {"train.log": [(1, 30.0, 0.3, 0.9), (2, 45.0, 0.5, 0.7)]})
    offline = exp_dir / "decode_asr_lm_lm_x_asr_model_valid.acc.ave"
    streamed = exp_dir / "decode_asr_lm_lm_x_streaming_chunk10240_asr_model_valid.acc.ave"
    errors = {"1": "THE DOG SAT ON THE MAT", "2": "OPEN MOUTH NOW"}
    score_with_sclite(offline / "test_espeak" / "score_wer", REFERENCES, errors)
    score_with_sclite(offline / "test_flite" / "score_wer", REFERENCES, REFERENCES)
    score_with_sclite(streamed / "test_espeak" / "score_wer", REFERENCES, REFERENCES)

    assert sclite_wer(offline / "test_espeak" / "score_wer" / "result.txt") == pytest.approx(33.3)
    rows = experiment_rows("form", exp_dir)
    assert [row.name for row in rows] == ["form", "form, streamed 640 ms"]
    assert rows[0].parameters == "1.25 M" and rows[0].epochs == 2
    assert rows[0].train_minutes == pytest.approx((30.0 + 45.0 + 2 * 0.83) / 60)
    assert rows[0].wer == {**{t: None for t in TEST_SETS}, "test_espeak": pytest.approx(33.3), "test_flite": 0.0}
    assert rows[1].wer["test_espeak"] == 0.0

    compare_main(["--out_dir", str(tmp_path / "out"), "--minutes", "12.5", f"form={exp_dir}"])
    table = (tmp_path / "out" / "wer.md").read_text()
    assert "at 12.5 minutes of training each" in table
    assert "| form | 1.25 M | 2 | 1.3 min | 33.3 | 0.0 |  |  |  |" in table
    assert (tmp_path / "out" / "wer.png").stat().st_size > 0


def test_compare_models_refuses_an_undecoded_experiment(tmp_path):
    write_training(tmp_path / "exp_a", {"train.log": [(1, 30.0, 0.3, 0.9)]})
    with pytest.raises(FileNotFoundError, match="no decode_\\* directory: run stages 12-13"):
        experiment_rows("a", tmp_path / "exp_a")


def test_sclite_wer_refuses_a_file_sclite_did_not_write(tmp_path):
    (tmp_path / "result.txt").write_text("not a report\n")
    with pytest.raises(ValueError, match="no Sum/Avg line"):
        sclite_wer(tmp_path / "result.txt")


def write_trn(path: Path, texts: dict) -> None:
    """A trn file as stage 13's make_trn.py writes it: ``TEXT (<speaker>-<utterance id>)``."""
    path.write_text("".join(f"{text} ({utt.rsplit('-', 1)[0]}-{utt})\n" for utt, text in texts.items()))


@needs_sclite
def test_wer_by_family_scores_each_family_with_sclite(tmp_path, capsys):
    """flite: 1 substitution in 6 words (16.7 %); espeak-ng: 1 deletion + 1 insertion in 3 words (66.7 %)."""
    score_dir = tmp_path / "score_wer"
    score_dir.mkdir()
    references = {"flite_awb-00001": "THE CAT SAT ON THE MAT", "espeak-ng_en-gb_f1-00002": "OPEN YOUR MOUTH"}
    hypotheses = {"flite_awb-00001": "THE CAT SAT IN THE MAT", "espeak-ng_en-gb_f1-00002": "OPEN MOUTH NOW"}
    write_trn(score_dir / "ref.trn", references)
    write_trn(score_dir / "hyp.trn", hypotheses)
    assert sorted(split_by_family(score_dir / "ref.trn")) == ["espeak-ng", "flite"]
    by_family_main(["--out_dir", str(tmp_path / "out"), f"dev={score_dir}"])
    table = (tmp_path / "out" / "wer_by_family.md").read_text()
    assert "| decoding | espeak-ng | flite |" in table and "| dev | 66.7 | 16.7 |" in table
    assert table in capsys.readouterr().out


def test_wer_by_family_refuses_a_line_without_utterance_id(tmp_path):
    (tmp_path / "ref.trn").write_text("THE CAT SAT\n")
    with pytest.raises(ValueError, match="does not end with an utterance id"):
        split_by_family(tmp_path / "ref.trn")
