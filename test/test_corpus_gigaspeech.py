"""GigaSpeech recipe (egs2/gigaspeech): data preparation from the release layout and official-style scoring.

A miniature release (GigaSpeech.json + Opus audio) is generated in tmp_path.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest
import soundfile

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "egs2" / "gigaspeech" / "asr1"
TEMPLATE = REPO / "egs2" / "TEMPLATE" / "asr1"
PREPARE = RECIPE / "local" / "prepare_gigaspeech.py"
NORMALIZE = RECIPE / "local" / "gigaspeech_normalize.py"
SAMPLE_RATE = 16000
SCTK_BIN = Path("/usr/lib/sctk/bin")

sys.path.insert(0, str(RECIPE / "local"))
from gigaspeech_normalize import normalize  # noqa: E402


def segment(sid: str, begin: float, end: float, text: str, *subsets: str) -> Dict[str, Any]:
    return {"sid": sid, "begin_time": begin, "end_time": end, "text_tn": text, "subsets": list(subsets)}


def mini_release() -> List[Dict[str, Any]]:
    """Two podcasts and one YouTube video, with segments in several subsets and some garbage."""
    return [
        {
            "aid": "POD0000000001",
            "path": "audio/podcast/P0000/POD0000000001.opus",
            "duration": 6.0,
            "format": "opus",
            "sample_rate": 16000,
            "segments": [
                segment("POD0000000001_S0000008", 0.5, 2.25, "AS THEY'RE LEAVING <COMMA> CAN KASH PULL ZAHRA ASIDE "
                        "REALLY QUICKLY <QUESTIONMARK>", "{XL}", "{L}", "{M}", "{S}", "{XS}"),
                segment("POD0000000001_S0000009", 2.25, 3.0, "<MUSIC>", "{XL}", "{L}"),
                segment("POD0000000001_S0000010", 3.0, 5.5, "WELL <COMMA> I THINK IT'S STATE-OF-THE-ART <PERIOD>",
                        "{XL}", "{L}"),
            ],
        },
        {
            "aid": "POD1000000004",
            "path": "audio/podcast/P0001/POD1000000004.opus",
            "duration": 4.0,
            "format": "opus",
            "sample_rate": 16000,
            "segments": [
                segment("POD1000000004_S0000001", 0.0, 1.5, "THE DEV SEGMENT <EXCLAMATIONPOINT>", "{DEV}"),
                segment("POD1000000004_S0000002", 1.5, 2.0, "<SIL>", "{DEV}"),
            ],
        },
        {
            "aid": "YOU1000000006",
            "path": "audio/youtube/P0000/YOU1000000006.opus",
            "duration": 3.0,
            "format": "opus",
            "sample_rate": 16000,
            "segments": [
                segment("YOU1000000006_S0000003", 1.0, 2.5, "A TEST SEGMENT", "{TEST}"),
            ],
        },
    ]


def write_release(root: Path, audios: List[Dict[str, Any]], skip_audio: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for index, audio in enumerate(audios):
        if audio["aid"] == skip_audio:
            continue
        path = root / audio["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(int(audio["duration"] * SAMPLE_RATE)) / SAMPLE_RATE
        soundfile.write(path, 0.3 * np.sin(2 * np.pi * (200 + 50 * index) * t), SAMPLE_RATE,
                        format="OGG", subtype="OPUS")
    (root / "GigaSpeech.json").write_text(json.dumps({"dataset": "GigaSpeech", "audios": audios}))
    return root


def run_prepare(corpus: Path, output: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(PREPARE), *options, str(corpus), str(output)], capture_output=True, text=True
    )


def read(data_dir: Path) -> Dict[str, List[str]]:
    names = ("wav.scp", "segments", "text", "utt2spk", "spk2utt")
    return {name: (data_dir / name).read_text().splitlines() for name in names}


def test_prepare_selects_subsets_and_cleans_text(tmp_path):
    corpus = write_release(tmp_path / "GigaSpeech", mini_release())
    result = run_prepare(corpus, tmp_path / "data", "--train_subset", "L")
    assert result.returncode == 0, result.stderr
    pod1 = (corpus / "audio/podcast/P0000/POD0000000001.opus").resolve()
    assert read(tmp_path / "data" / "train") == {
        "wav.scp": [f"POD0000000001 {pod1}"],
        "segments": [
            "POD0000000001_S0000008 POD0000000001 0.500 2.250",
            "POD0000000001_S0000010 POD0000000001 3.000 5.500",
        ],
        "text": [
            "POD0000000001_S0000008 AS THEY'RE LEAVING CAN KASH PULL ZAHRA ASIDE REALLY QUICKLY",
            "POD0000000001_S0000010 WELL I THINK IT'S STATE-OF-THE-ART",
        ],
        "utt2spk": [
            "POD0000000001_S0000008 POD0000000001_S0000008",
            "POD0000000001_S0000010 POD0000000001_S0000010",
        ],
        "spk2utt": [
            "POD0000000001_S0000008 POD0000000001_S0000008",
            "POD0000000001_S0000010 POD0000000001_S0000010",
        ],
    }
    pod2 = (corpus / "audio/podcast/P0001/POD1000000004.opus").resolve()
    dev = read(tmp_path / "data" / "dev")
    assert dev["wav.scp"] == [f"POD1000000004 {pod2}"]
    assert dev["text"] == ["POD1000000004_S0000001 THE DEV SEGMENT"]
    assert read(tmp_path / "data" / "test")["segments"] == ["YOU1000000006_S0000003 YOU1000000006 1.000 2.500"]
    assert "train: 2 segments, 1 garbage segments dropped" in result.stdout
    assert "dev: 1 segments, 1 garbage segments dropped" in result.stdout


def test_smallest_subset_and_audio_are_readable(tmp_path):
    corpus = write_release(tmp_path / "GigaSpeech", mini_release())
    assert run_prepare(corpus, tmp_path / "data", "--train_subset", "XS").returncode == 0
    train = read(tmp_path / "data" / "train")
    assert train["text"] == ["POD0000000001_S0000008 AS THEY'RE LEAVING CAN KASH PULL ZAHRA ASIDE REALLY QUICKLY"]
    recording, path = train["wav.scp"][0].split()
    _, _, begin, end = train["segments"][0].split()
    info = soundfile.info(path)
    assert (recording, info.samplerate) == ("POD0000000001", SAMPLE_RATE)
    cut, _ = soundfile.read(path, start=int(float(begin) * SAMPLE_RATE), stop=int(float(end) * SAMPLE_RATE))
    assert cut.shape == (int(1.75 * SAMPLE_RATE),)


def test_unknown_subset_is_rejected(tmp_path):
    corpus = write_release(tmp_path / "GigaSpeech", mini_release())
    result = run_prepare(corpus, tmp_path / "data", "--train_subset", "XXL")
    assert result.returncode != 0 and "invalid choice: 'XXL'" in result.stderr


def test_truncated_json_is_reported_with_position(tmp_path):
    corpus = write_release(tmp_path / "GigaSpeech", mini_release())
    metadata = corpus / "GigaSpeech.json"
    metadata.write_text(metadata.read_text()[:200])
    result = run_prepare(corpus, tmp_path / "data")
    assert result.returncode != 0
    assert f"{metadata}:1:" in result.stderr and "not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_metadata_names_the_fix(tmp_path):
    result = run_prepare(tmp_path / "nowhere", tmp_path / "data")
    assert result.returncode != 0 and "set GIGASPEECH in db.sh" in result.stderr


def _drop_field(audios: List[Dict[str, Any]]) -> str:
    del audios[0]["segments"][2]["end_time"]
    return "audio POD0000000001, segment POD0000000001_S0000010: missing field 'end_time'"


def _empty_text(audios: List[Dict[str, Any]]) -> str:
    audios[2]["segments"][0]["text_tn"] = "  "
    return "segment YOU1000000006_S0000003: empty text_tn"


def _reversed_times(audios: List[Dict[str, Any]]) -> str:
    audios[1]["segments"][0]["begin_time"] = 3.0
    return "segment POD1000000004_S0000001: begin_time 3.0 and end_time 1.5 do not form a segment"


def _subsets_not_list(audios: List[Dict[str, Any]]) -> str:
    audios[0]["segments"][0]["subsets"] = "{XL}"
    return "field 'subsets' should be a list"


@pytest.mark.parametrize("damage", [_drop_field, _empty_text, _reversed_times, _subsets_not_list])
def test_malformed_metadata_is_reported(tmp_path, damage):
    audios = mini_release()
    expected = damage(audios)
    corpus = write_release(tmp_path / "GigaSpeech", audios)
    result = run_prepare(corpus, tmp_path / "data")
    assert result.returncode != 0
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_audio_is_reported(tmp_path):
    corpus = write_release(tmp_path / "GigaSpeech", mini_release(), skip_audio="YOU1000000006")
    result = run_prepare(corpus, tmp_path / "data")
    assert result.returncode != 0
    assert "audio YOU1000000006: audio file" in result.stderr
    assert "YOU1000000006.opus is missing" in result.stderr


@pytest.mark.parametrize(
    "text, expected",
    [
        ("uh the state-of-the-art model", "THE STATE OF THE ART MODEL"),
        ("UM I MEAN <COMMA> E-COMMERCE <PERIOD>", "I MEAN E COMMERCE"),
        ("HUH <UNK> WHAT <QUESTIONMARK> <unk>", "WHAT"),
        ("<NOISE> <SIL>", ""),
        ("HAH THE UHM ERR", "HAH THE UHM ERR"),
        ("ER EW HEE OOF ACH EEE HM MM EH UHH HA AH", ""),
    ],
)
def test_normalize_follows_the_official_scoring_rules(text, expected):
    assert normalize(text) == expected


def test_normalize_trn_keeps_ids(tmp_path):
    source = tmp_path / "hyp.trn"
    source.write_text("uh hello-world\t(spk-utt1)\n\t(spk-utt2)\n")
    target = tmp_path / "out.trn"
    subprocess.run([sys.executable, str(NORMALIZE), str(source), str(target)], check=True)
    assert target.read_text() == "HELLO WORLD\t(spk-utt1)\n\t(spk-utt2)\n"


def test_normalize_trn_rejects_lines_without_id(tmp_path):
    source = tmp_path / "hyp.trn"
    source.write_text("hello world\n")
    result = subprocess.run([sys.executable, str(NORMALIZE), str(source), str(tmp_path / "o")],
                            capture_output=True, text=True)
    assert result.returncode != 0 and f"{source}:1: expected '<text> (<utt-id>)'" in result.stderr


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
def test_data_sh_prepares_the_release(tmp_path):
    corpus = write_release(tmp_path / "GigaSpeech", mini_release())
    work = recipe_copy(tmp_path)
    env = dict(os.environ, GIGASPEECH=str(corpus))
    result = subprocess.run(
        ["local/data.sh", "--train_subset", "M"], cwd=work, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert read(work / "data" / "train")["text"] == [
        "POD0000000001_S0000008 AS THEY'RE LEAVING CAN KASH PULL ZAHRA ASIDE REALLY QUICKLY"
    ]
    assert read(work / "data" / "test")["text"] == ["YOU1000000006_S0000003 A TEST SEGMENT"]


@template_ready
@pytest.mark.skipif(shutil.which("sclite") is None and not (SCTK_BIN / "sclite").exists(), reason="needs sclite")
def test_score_sh_removes_fillers_before_sclite(tmp_path):
    work = recipe_copy(tmp_path)
    score_dir = work / "exp" / "asr_x" / "decode_asr" / "test" / "score_wer"
    score_dir.mkdir(parents=True)
    (score_dir / "ref.trn").write_text(
        "THE STATE-OF-THE-ART MODEL\t(a-a)\nUH SO WE WENT HOME\t(b-b)\nHELLO THERE\t(c-c)\n"
    )
    (score_dir / "hyp.trn").write_text(
        "THE STATE OF THE ART MODEL UM\t(a-a)\nSO WE WENT HOME\t(b-b)\nHELLO WHERE\t(c-c)\n"
    )
    env = dict(os.environ, PATH=f"{SCTK_BIN}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(
        ["local/score.sh", "exp/asr_x"], cwd=work, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # 12 reference words once hyphens are split and UH removed; the only error left is THERE -> WHERE
    row = "|decode_asr/test|3|12|91.7|8.3|0.0|0.0|8.3|33.3|"
    assert row in (work / "exp" / "asr_x" / "RESULTS_gigaspeech.md").read_text()
    assert (score_dir.parent / "score_wer_gigaspeech" / "result.txt").is_file()
