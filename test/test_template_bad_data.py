"""asr.sh on bad data: stages 3-4 remove unreadable audio and empty transcripts (reported, with the id lists
on disk) and stop with a clear error on unsorted or mismatched data directories."""
from pathlib import Path

import pytest

from test_template_support import corpus, make_recipe, run_asr, write_data_dir


@pytest.fixture
def recipe(tmp_path):
    recipe = make_recipe(tmp_path)
    downloads = recipe / "downloads"
    write_data_dir(recipe / "data" / "train", downloads / "train", corpus("spka", 6))
    write_data_dir(recipe / "data" / "dev", downloads / "dev", corpus("spkb", 2))
    write_data_dir(recipe / "data" / "test", downloads / "test", corpus("spkc", 2))
    return recipe


def stages_3_4(recipe: Path):
    return run_asr(recipe, "--stage", "3", "--stop_stage", "4", "--nj", "1", "--use_lm", "false")


def replace_line(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new))


def test_missing_corrupt_audio_and_empty_text_are_removed_and_listed(recipe):
    train = recipe / "data" / "train"
    (recipe / "downloads" / "train" / "spka-001.wav").unlink()
    (recipe / "downloads" / "train" / "spka-002.wav").write_bytes(b"RIFF\x00\x00garbage")
    (train / "text").write_text("".join(
        f"{line.split()[0]}\n" if line.startswith("spka-003 ") else f"{line}\n"
        for line in (train / "text").read_text().splitlines()))
    result = stages_3_4(recipe)
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    bad_audio = recipe / "dump" / "raw" / "org" / "train" / "bad_audio.txt"
    assert "2 of 6 utterances have missing or unreadable audio" in output
    assert str(bad_audio.relative_to(recipe)) in output
    reasons = dict(line.split(" ", 1) for line in bad_audio.read_text().splitlines())
    assert set(reasons) == {"spka-001", "spka-002"} and "spka-001.wav" in reasons["spka-001"]
    removed = (recipe / "dump" / "raw" / "org" / "train" / ".backup" / "removed_utts.txt").read_text()
    assert "spka-001 missing from utt2num_samples; missing from wav.scp\n" in removed
    assert "spka-002 missing from utt2num_samples; missing from wav.scp\n" in removed
    assert (recipe / "dump" / "raw" / "train" / "removed_empty_text.txt").read_text() == "spka-003\n"
    assert "1 with empty text (list: dump/raw/train/removed_empty_text.txt)" in output
    kept = [line.split()[0] for line in (recipe / "dump" / "raw" / "train" / "wav.scp").read_text().splitlines()]
    assert kept == ["spka-000", "spka-004", "spka-005"]


def test_unsorted_ids_stop_stage_3_with_the_reason(recipe):
    text = recipe / "data" / "train" / "text"
    lines = text.read_text().splitlines()
    text.write_text("\n".join([lines[1], lines[0], *lines[2:]]) + "\n")
    result = stages_3_4(recipe)
    assert result.returncode != 0
    assert "text: not sorted (LC_ALL=C) or has duplicate ids at line 2" in result.stderr
    assert "Error: stage 3: raw for train failed" in result.stdout


def test_ids_not_matching_across_files_stop_stage_3(recipe):
    replace_line(recipe / "data" / "train" / "wav.scp", "spka-004 ", "spka-004x ")
    result = stages_3_4(recipe)
    assert result.returncode != 0
    assert "wav.scp: 1 ids not in utt2spk: spka-004x" in result.stderr
    assert "wav.scp: 1 utt2spk ids missing: spka-004" in result.stderr
    assert "Error: stage 3: raw for train failed" in result.stdout and "see the log" in result.stdout
