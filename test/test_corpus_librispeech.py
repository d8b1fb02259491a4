"""LibriSpeech recipes (egs2/librispeech_100, egs2/librispeech): data preparation and download.

A miniature corpus in the official layout is generated in tmp_path; nothing is fetched from the network
(the download path is exercised through curl with file:// URLs).
"""

import gzip
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pytest
import soundfile

REPO = Path(__file__).resolve().parents[1]
LS960 = REPO / "egs2" / "librispeech" / "asr1"
LS100 = REPO / "egs2" / "librispeech_100" / "asr1"
TEMPLATE = REPO / "egs2" / "TEMPLATE" / "asr1"
PREPARE = LS960 / "local" / "prepare_librispeech.py"
SAMPLE_RATE = 16000

# part -> reader -> chapter -> [(utterance number, transcript)]
Layout = Dict[str, Dict[str, Dict[str, List[Tuple[int, str]]]]]

MINI_CORPUS: Layout = {
    "dev-clean": {
        "19": {"198": [(0, "NORTHANGER ABBEY"), (1, "CHAPTER ONE")]},
        "103": {"1240": [(5, "A  WOMAN'S  HEART"), (0, "IN THE BEGINNING")]},
    },
    "dev-other": {"116": {"288045": [(2, "WHAT IS IT")]}},
    "test-clean": {"1089": {"134686": [(0, "HE HOPED THERE WOULD BE STEW")]}},
    "test-other": {"1688": {"142285": [(0, "THERE'S IRON THEY SAY")]}},
    "train-clean-100": {
        "103": {"1240": [(0, "CHAPTER ONE MISSUS RACHEL"), (1, "THAT HAD ITS SOURCE")]},
        "1034": {"121119": [(0, "THE BOY WAS THERE")]},
    },
    "train-clean-360": {"100": {"121669": [(0, "TOM THE PIPER'S SON")]}},
    "train-other-500": {"20": {"205": [(3, "OF THE VILLAGE")]}},
}


def write_part(root: Path, part: str, readers: Dict[str, Dict[str, List[Tuple[int, str]]]]) -> None:
    """Write one part as ``root/LibriSpeech/<part>/<reader>/<chapter>/`` with FLAC audio and transcript."""
    rng = np.random.default_rng(len(part))
    for reader, chapters in readers.items():
        for chapter, utterances in chapters.items():
            chapter_dir = root / "LibriSpeech" / part / reader / chapter
            chapter_dir.mkdir(parents=True)
            lines = []
            for number, text in utterances:
                utt_id = f"{reader}-{chapter}-{number:04d}"
                seconds = 0.2 + 0.1 * number
                t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
                wave = 0.3 * np.sin(2 * np.pi * 220.0 * t) + 0.01 * rng.standard_normal(t.size)
                soundfile.write(chapter_dir / f"{utt_id}.flac", wave, SAMPLE_RATE)
                lines.append(f"{utt_id} {text}\n")
            (chapter_dir / f"{reader}-{chapter}.trans.txt").write_text("".join(lines))


def write_corpus(root: Path, parts: List[str]) -> None:
    for part in parts:
        write_part(root, part, MINI_CORPUS[part])


def expected_dir(root: Path, parts: List[str]) -> Dict[str, List[str]]:
    """The data directory the recipe must produce, computed from the layout (byte-order sorted)."""
    rows = []
    for part in parts:
        for reader, chapters in MINI_CORPUS[part].items():
            for chapter, utterances in chapters.items():
                for number, text in utterances:
                    utt_id = f"{reader}-{chapter}-{number:04d}"
                    flac = root / "LibriSpeech" / part / reader / chapter / f"{utt_id}.flac"
                    rows.append((utt_id, f"{reader}-{chapter}", " ".join(text.split()), str(flac.resolve())))
    rows.sort(key=lambda row: row[0].encode())
    speakers: Dict[str, List[str]] = {}
    for utt_id, speaker, _, _ in rows:
        speakers.setdefault(speaker, []).append(utt_id)
    return {
        "wav.scp": [f"{utt} {flac}" for utt, _, _, flac in rows],
        "text": [f"{utt} {text}" for utt, _, text, _ in rows],
        "utt2spk": [f"{utt} {spk}" for utt, spk, _, _ in rows],
        "spk2utt": [f"{spk} {' '.join(utts)}" for spk, utts in sorted(speakers.items(), key=lambda i: i[0].encode())],
    }


def read_dir(data_dir: Path) -> Dict[str, List[str]]:
    assert not (data_dir / "segments").exists()
    return {name: (data_dir / name).read_text().splitlines() for name in ("wav.scp", "text", "utt2spk", "spk2utt")}


def run_prepare(output_dir: Path, *parts: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(PREPARE), "--output_dir", str(output_dir), *map(str, parts)],
        capture_output=True,
        text=True,
    )


def test_prepare_merges_parts_into_one_sorted_dir(tmp_path):
    write_corpus(tmp_path, ["dev-clean", "dev-other"])
    parts = [tmp_path / "LibriSpeech" / "dev-clean", tmp_path / "LibriSpeech" / "dev-other"]
    result = run_prepare(tmp_path / "data" / "dev", *parts)
    assert result.returncode == 0, result.stderr
    produced = read_dir(tmp_path / "data" / "dev")
    assert produced == expected_dir(tmp_path, ["dev-clean", "dev-other"])
    # byte order puts reader 103 before 116 before 19
    assert [line.split()[0] for line in produced["utt2spk"]][:3] == [
        "103-1240-0000",
        "103-1240-0005",
        "116-288045-0002",
    ]
    assert "103-1240-0005 A WOMAN'S HEART" in produced["text"]


def test_prepared_audio_paths_are_readable(tmp_path):
    write_corpus(tmp_path, ["test-other"])
    assert run_prepare(tmp_path / "out", tmp_path / "LibriSpeech" / "test-other").returncode == 0
    utt_id, path = (tmp_path / "out" / "wav.scp").read_text().split()
    audio, rate = soundfile.read(path)
    assert (utt_id, rate, audio.shape) == ("1688-142285-0000", SAMPLE_RATE, (int(0.2 * SAMPLE_RATE),))


def _empty_transcript(chapter: Path) -> str:
    trans = chapter / "19-198.trans.txt"
    trans.write_text("19-198-0000 NORTHANGER ABBEY\n19-198-0001\n")
    return f"{trans}:2"


def _missing_flac(chapter: Path) -> str:
    (chapter / "19-198-0001.flac").unlink()
    return "19-198-0001.flac is missing"


def _orphan_flac(chapter: Path) -> str:
    shutil.copy(chapter / "19-198-0001.flac", chapter / "19-198-0007.flac")
    return "19-198-0007.flac has no line"


def _missing_transcript(chapter: Path) -> str:
    (chapter / "19-198.trans.txt").unlink()
    return "19-198.trans.txt is missing"


def _foreign_utterance(chapter: Path) -> str:
    trans = chapter / "19-198.trans.txt"
    trans.write_text("19-198-0000 NORTHANGER ABBEY\n20-198-0001 CHAPTER ONE\n")
    return f"{trans}:2: utterance id 20-198-0001 does not start with '19-198-'"


@pytest.mark.parametrize(
    "damage", [_empty_transcript, _missing_flac, _orphan_flac, _missing_transcript, _foreign_utterance]
)
def test_damaged_corpus_is_reported_with_its_location(tmp_path, damage):
    write_corpus(tmp_path, ["dev-clean"])
    expected_message = damage(tmp_path / "LibriSpeech" / "dev-clean" / "19" / "198")
    result = run_prepare(tmp_path / "out", tmp_path / "LibriSpeech" / "dev-clean")
    assert result.returncode != 0
    assert expected_message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_part_is_reported(tmp_path):
    result = run_prepare(tmp_path / "out", tmp_path / "LibriSpeech" / "dev-clean")
    assert result.returncode != 0
    assert "dev-clean does not exist" in result.stderr


def _archive(tmp_path: Path, part: str) -> Path:
    """A ``<part>.tar.gz`` laid out like openslr's, served from a separate directory."""
    source = tmp_path / "source"
    write_part(source, part, MINI_CORPUS[part])
    server = tmp_path / "server"
    server.mkdir()
    with tarfile.open(server / f"{part}.tar.gz", "w:gz") as tar:
        tar.add(source / "LibriSpeech", arcname="LibriSpeech")
    return server / f"{part}.tar.gz"


@pytest.mark.skipif(shutil.which("curl") is None, reason="the download scripts need curl for file:// URLs")
def test_download_resumes_checks_size_and_unpacks(tmp_path):
    archive = _archive(tmp_path, "dev-other")
    size = archive.stat().st_size
    data = tmp_path / "downloads"
    data.mkdir()
    # an interrupted earlier download: the first half of the archive
    (data / "dev-other.tar.gz").write_bytes(archive.read_bytes()[: size // 2])
    script = LS960 / "local" / "download_and_untar.sh"
    cmd = [str(script), "--archive_size", str(size), str(data), archive.parent.as_uri(), "dev-other"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (data / "dev-other.tar.gz").read_bytes() == archive.read_bytes()
    assert (data / "LibriSpeech" / "dev-other" / ".complete").is_file()
    assert (data / "LibriSpeech" / "dev-other" / "116" / "288045" / "116-288045.trans.txt").is_file()

    rerun = subprocess.run(cmd, capture_output=True, text=True)
    assert rerun.returncode == 0 and "nothing to do" in rerun.stdout


@pytest.mark.skipif(shutil.which("curl") is None, reason="the download scripts need curl for file:// URLs")
def test_download_rejects_archive_of_wrong_size(tmp_path):
    archive = _archive(tmp_path, "dev-other")
    data = tmp_path / "downloads"
    size = archive.stat().st_size + 1
    script = LS960 / "local" / "download_and_untar.sh"
    result = subprocess.run(
        [str(script), "--archive_size", str(size), str(data), archive.parent.as_uri(), "dev-other"],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert f"but {size} were expected" in result.stderr
    assert not (data / "LibriSpeech").exists()


def test_download_rejects_unknown_part(tmp_path):
    result = subprocess.run(
        [str(LS960 / "local" / "download_and_untar.sh"), str(tmp_path), "file:///nowhere", "train-clean-960"],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "unknown LibriSpeech part 'train-clean-960'" in result.stderr


def fake_downloaders(tmp_path: Path) -> Tuple[Dict[str, str], Path]:
    """PATH with curl and wget replaced by scripts that record their call and fail."""
    bin_dir = tmp_path / "fake_bin"
    bin_dir.mkdir()
    record = tmp_path / "download_calls"
    for tool in ("curl", "wget"):
        script = bin_dir / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{record}"\nexit 1\n')
        script.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return env, record


def test_present_parts_are_not_downloaded(tmp_path):
    write_corpus(tmp_path, ["dev-clean", "dev-other"])
    env, record = fake_downloaders(tmp_path)
    result = subprocess.run(
        [str(LS960 / "local" / "download_missing_parts.sh"), str(tmp_path), "https://example.invalid", "dev-clean",
         "dev-other"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert not record.exists()


def test_absent_part_is_downloaded(tmp_path):
    write_corpus(tmp_path, ["dev-clean"])
    env, record = fake_downloaders(tmp_path)
    result = subprocess.run(
        [str(LS960 / "local" / "download_missing_parts.sh"), str(tmp_path), "https://example.invalid", "dev-clean",
         "test-clean"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode != 0
    assert "example.invalid/test-clean.tar.gz" in record.read_text()
    assert "dev-clean" not in record.read_text()


template_ready = pytest.mark.skipif(
    not all((TEMPLATE / name).exists() for name in ("db.sh", "path.sh", "utils/parse_options.sh")),
    reason="egs2/TEMPLATE/asr1 (db.sh, path.sh, utils/parse_options.sh) has not landed yet",
)


def recipe_copy(tmp_path: Path, recipe: Path) -> Path:
    """A working copy of ``recipe``: its scripts linked in, its data/ kept in tmp_path."""
    work = tmp_path / "recipe"
    work.mkdir()
    for name in ("local", "utils", "db.sh", "path.sh", "cmd.sh", "conf"):
        if (recipe / name).exists():
            (work / name).symlink_to((recipe / name).resolve())
    return work


@template_ready
@pytest.mark.parametrize(
    "recipe, train_set, train_parts",
    [
        (LS100, "train_clean_100", ["train-clean-100"]),
        (LS960, "train_960", ["train-clean-100", "train-clean-360", "train-other-500"]),
    ],
)
def test_data_sh_builds_every_set_without_downloading(tmp_path, recipe, train_set, train_parts):
    corpus = tmp_path / "corpus"
    eval_parts = ["dev-clean", "dev-other", "test-clean", "test-other"]
    write_corpus(corpus, eval_parts + train_parts)
    env, record = fake_downloaders(tmp_path)
    env["LIBRISPEECH"] = str(corpus)
    work = recipe_copy(tmp_path, recipe)
    # stage 4 of the 960 h recipe fetches the LM text: not part of this test
    result = subprocess.run(
        ["local/data.sh", "--stop_stage", "3"], cwd=work, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not record.exists()
    data = work / "data"
    assert read_dir(data / train_set) == expected_dir(corpus, train_parts)
    assert read_dir(data / "dev") == expected_dir(corpus, ["dev-clean", "dev-other"])
    for part in eval_parts:
        assert read_dir(data / part.replace("-", "_")) == expected_dir(corpus, [part])


@template_ready
@pytest.mark.skipif(shutil.which("curl") is None, reason="the download scripts need curl for file:// URLs")
def test_data_sh_lm_text_gets_one_id_per_line(tmp_path):
    lm_text = tmp_path / "server" / "librispeech-lm-norm.txt.gz"
    lm_text.parent.mkdir()
    with gzip.open(lm_text, "wt") as out:
        out.write("A BANK CHECK\n\nTHE SECOND LINE\n")
    work = recipe_copy(tmp_path, LS960)
    env = dict(os.environ, LIBRISPEECH=str(tmp_path / "corpus"))
    result = subprocess.run(
        ["local/data.sh", "--stage", "4", "--lm_text_url", lm_text.as_uri()],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (work / "data" / "local" / "other_text" / "text").read_text().splitlines() == [
        "librispeech_lm_00000001 A BANK CHECK",
        "librispeech_lm_00000002 THE SECOND LINE",
    ]
