"""SPGISpeech recipe (egs2/spgispeech): data preparation from the CSV manifests and normalised scoring.

A miniature copy of the release (train.csv, val.csv, WAV slices under train/ and val/) is generated in tmp_path.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pytest
import soundfile

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "egs2" / "spgispeech" / "asr1"
TEMPLATE = REPO / "egs2" / "TEMPLATE" / "asr1"
PREPARE = RECIPE / "local" / "prepare_spgispeech.py"
SAMPLE_RATE = 16000
SCTK_BIN = Path("/usr/lib/sctk/bin")
HEADER = "wav_filename|wav_filesize|transcript"

sys.path.insert(0, str(RECIPE / "local"))
from spgispeech_normalize import normalize  # noqa: E402

TRAIN = [
    ("13aa6c0669adb5544a0d62beef677189/12.wav", "Daniel, how do we think about the importance of those assets?"),
    ("13aa6c0669adb5544a0d62beef677189/3.wav", "Revenue was $1.5 billion, up 12% year-over-year."),
    ("0018ad922e541b415ae60e175160b976/21.wav", "Thank you. Operator, next question."),
    ("0018ad922e541b415ae60e175160b976/118.wav", "We're -- I mean, it's the Q2 results."),
]
VAL = [("002d12258ff802d65f79ae2eef99e4ab/7.wav", "Good morning, everyone.")]


def write_part(root: Path, part: str, rows: List[Tuple[str, str]]) -> List[str]:
    """Write the WAV slices of ``rows`` under ``root/part`` and return the manifest lines."""
    lines = [HEADER]
    for index, (wav_filename, transcript) in enumerate(rows):
        path = root / part / wav_filename
        path.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(int((0.3 + 0.1 * index) * SAMPLE_RATE)) / SAMPLE_RATE
        soundfile.write(path, 0.3 * np.sin(2 * np.pi * 300.0 * t), SAMPLE_RATE, subtype="PCM_16")
        lines.append(f"{wav_filename}|{path.stat().st_size}|{transcript}")
    return lines


def write_release(root: Path) -> Path:
    for part, rows in (("train", TRAIN), ("val", VAL)):
        (root / f"{part}.csv").write_text("\n".join(write_part(root, part, rows)) + "\n")
    return root


def run_prepare(corpus: Path, output: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(PREPARE), *options, str(corpus), str(output)], capture_output=True, text=True
    )


def read(data_dir: Path) -> Dict[str, List[str]]:
    assert not (data_dir / "segments").exists()
    return {name: (data_dir / name).read_text().splitlines() for name in ("wav.scp", "text", "utt2spk", "spk2utt")}


def utt_id(wav_filename: str) -> str:
    return wav_filename[: -len(".wav")].replace("/", "-", 1)


def test_prepare_splits_train_and_writes_both_text_forms(tmp_path):
    corpus = write_release(tmp_path / "spgispeech")
    result = run_prepare(corpus, tmp_path / "data", "--dev_size", "2")
    assert result.returncode == 0, result.stderr
    # byte order of the ids: 0018...-118 < 0018...-21 < 13aa...-12 < 13aa...-3
    dev = read(tmp_path / "data" / "dev_2_unnorm")
    assert dev["text"] == [
        "0018ad922e541b415ae60e175160b976-118 We're -- I mean, it's the Q2 results.",
        "0018ad922e541b415ae60e175160b976-21 Thank you. Operator, next question.",
    ]
    assert dev["utt2spk"] == [f"{line.split()[0]} {line.split()[0]}" for line in dev["text"]]
    assert dev["spk2utt"] == dev["utt2spk"]
    audio = (corpus / "train" / "0018ad922e541b415ae60e175160b976" / "118.wav").resolve()
    assert dev["wav.scp"][0] == f"0018ad922e541b415ae60e175160b976-118 {audio}"
    assert read(tmp_path / "data" / "dev_2")["text"] == [
        "0018ad922e541b415ae60e175160b976-118 were i mean its the q2 results",
        "0018ad922e541b415ae60e175160b976-21 thank you operator next question",
    ]
    assert read(tmp_path / "data" / "train_nodev")["text"] == [
        "13aa6c0669adb5544a0d62beef677189-12 daniel how do we think about the importance of those assets",
        "13aa6c0669adb5544a0d62beef677189-3 revenue was 15 billion up 12 yearoveryear",
    ]
    val = read(tmp_path / "data" / "val_unnorm")
    assert val["text"] == ["002d12258ff802d65f79ae2eef99e4ab-7 Good morning, everyone."]
    assert read(tmp_path / "data" / "val")["wav.scp"] == val["wav.scp"]


def test_default_dev_set_is_named_like_espnet(tmp_path):
    corpus = write_release(tmp_path / "spgispeech")
    result = run_prepare(corpus, tmp_path / "data")
    assert result.returncode != 0
    assert "train.csv has 4 utterances, not more than --dev_size 4000" in result.stderr
    assert run_prepare(corpus, tmp_path / "data", "--dev_size", "1000").returncode != 0


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Yes. It's up 12%, we think.", "yes its up 12 we think"),
        ("EBITDA -- margins & cash-flow: $2.3M!", "ebitda margins cashflow 23m"),
        ("...", ""),
    ],
)
def test_normalize_mirrors_espnet(text, expected):
    assert normalize(text) == expected


def _manifest_lines(corpus: Path) -> List[str]:
    return (corpus / "train.csv").read_text().splitlines()


def _bad_header(corpus: Path) -> str:
    lines = _manifest_lines(corpus)
    lines[0] = "wav_filename,wav_filesize,transcript"
    (corpus / "train.csv").write_text("\n".join(lines) + "\n")
    return f"{corpus / 'train.csv'}:1: header should be '{HEADER}'"


def _missing_column(corpus: Path) -> str:
    lines = _manifest_lines(corpus)
    lines[3] = lines[3].rsplit("|", 1)[0].rsplit("|", 1)[0]
    (corpus / "train.csv").write_text("\n".join(lines) + "\n")
    return f"{corpus / 'train.csv'}:4: expected 3 '|'-separated fields"


def _empty_transcript(corpus: Path) -> str:
    lines = _manifest_lines(corpus)
    lines[2] = lines[2].rsplit("|", 1)[0] + "|  "
    (corpus / "train.csv").write_text("\n".join(lines) + "\n")
    return f"{corpus / 'train.csv'}:3: 13aa6c0669adb5544a0d62beef677189/3.wav has an empty transcript"


def _missing_audio(corpus: Path) -> str:
    (corpus / "val" / "002d12258ff802d65f79ae2eef99e4ab" / "7.wav").unlink()
    return f"{corpus / 'val.csv'}:2: audio {corpus / 'val' / '002d12258ff802d65f79ae2eef99e4ab' / '7.wav'} is missing"


def _truncated_audio(corpus: Path) -> str:
    path = corpus / "train" / "0018ad922e541b415ae60e175160b976" / "21.wav"
    path.write_bytes(path.read_bytes()[:100])
    return f"{corpus / 'train.csv'}:4: {path} has 100 bytes"


def _missing_manifest(corpus: Path) -> str:
    (corpus / "val.csv").unlink()
    return f"{corpus / 'val.csv'} not found: set SPGISPEECH in db.sh"


@pytest.mark.parametrize(
    "damage", [_bad_header, _missing_column, _empty_transcript, _missing_audio, _truncated_audio, _missing_manifest]
)
def test_damaged_release_is_reported_with_its_location(tmp_path, damage):
    corpus = write_release(tmp_path / "spgispeech")
    expected = damage(corpus)
    result = run_prepare(corpus, tmp_path / "data", "--dev_size", "1")
    assert result.returncode != 0
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


template_ready = pytest.mark.skipif(
    not all((TEMPLATE / name).exists() for name in ("db.sh", "path.sh", "utils/parse_options.sh")),
    reason="egs2/TEMPLATE/asr1 (db.sh, path.sh, utils/parse_options.sh) has not landed yet",
)


def recipe_copy(tmp_path: Path) -> Path:
    work = tmp_path / "recipe"
    work.mkdir()
    for name in ("local", "utils", "db.sh", "path.sh", "conf"):
        if (RECIPE / name).exists():
            (work / name).symlink_to((RECIPE / name).resolve())
    return work


@template_ready
def test_data_sh_prepares_every_set(tmp_path):
    corpus = write_release(tmp_path / "spgispeech")
    work = recipe_copy(tmp_path)
    env = dict(os.environ, SPGISPEECH=str(corpus))
    result = subprocess.run(["local/data.sh", "--dev_size", "3"], cwd=work, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("train_nodev", "dev_3", "val"):
        assert read(work / "data" / name)["utt2spk"] == read(work / "data" / f"{name}_unnorm")["utt2spk"]
    assert read(work / "data" / "train_nodev")["text"] == [
        "13aa6c0669adb5544a0d62beef677189-3 revenue was 15 billion up 12 yearoveryear"
    ]


@template_ready
@pytest.mark.skipif(shutil.which("sclite") is None and not (SCTK_BIN / "sclite").exists(), reason="needs sclite")
def test_score_sh_adds_the_normalised_wer(tmp_path):
    work = recipe_copy(tmp_path)
    score_dir = work / "exp_unnorm" / "asr_x" / "decode_asr" / "val_unnorm" / "score_wer"
    score_dir.mkdir(parents=True)
    (score_dir / "ref.trn").write_text("Revenue was $1.5 billion.\t(a-a)\nThank you, operator.\t(b-b)\n")
    (score_dir / "hyp.trn").write_text("revenue was 1.5 billion\t(a-a)\nThank you operator, please.\t(b-b)\n")
    env = dict(os.environ, PATH=f"{SCTK_BIN}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(
        ["local/score.sh", "--score_opts", "-s", "exp_unnorm/asr_x"], cwd=work, capture_output=True, text=True,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # normalised: 7 reference words, one insertion (please) left
    row = "|decode_asr/val_unnorm|2|7|100.0|0.0|0.0|14.3|14.3|50.0|"
    assert row in (work / "exp_unnorm" / "asr_x" / "RESULTS_normalized.md").read_text()
