"""espeak_en demo corpus (egs2/espeak_en/asr1/local): text normalisation, sentence and voice selection, synthesis
with espeak-ng, the noisy test copy, and the Kaldi data dirs that local/data.sh writes.

local/data.sh runs on a handful of utterances; the data dirs are checked with the template's
utils/validate_data_dir.sh as well as directly.
"""
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import soundfile

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "egs2" / "espeak_en" / "asr1"
SUBSETS = ("train", "dev", "test", "test_noisy", "train_mc", "dev_mc")
KALDI_FILES = ("wav.scp", "text", "utt2spk", "spk2utt")
# One reading per training sentence: 15 sentences (two readings) leave too few closed-vocabulary ones for dev/test.
TINY = ["--num_train", "30", "--num_dev", "3", "--num_test", "4", "--nj", "2", "--train_readings", "1"]

sys.path.insert(0, str(RECIPE / "local"))
from fortune_text import DEFAULT_CATEGORIES, DEFAULT_FORTUNE_DIR, split_fortunes, split_sentences  # noqa: E402
from add_noise import parse_snr  # noqa: E402
from make_plan import collect_transcripts, limit_vocabulary, main as make_plan_main, read_plan  # noqa: E402
from lm_text import main as lm_text_main, other_text  # noqa: E402
from text_normalization import normalize_transcript  # noqa: E402

needs_tools = pytest.mark.skipif(
    not (DEFAULT_FORTUNE_DIR.is_dir() and all(os.access(f"/usr/bin/{p}", os.X_OK) for p in ("espeak-ng", "sox"))),
    reason="needs espeak-ng, sox and the fortunes database (tools/install.sh installs them)",
)


def run_data_sh(out: Path, *options: str, env: Dict[str, str] = None) -> subprocess.CompletedProcess:
    """Run local/data.sh from the recipe dir, writing data dirs and audio under ``out``."""
    command = ["local/data.sh", "--data_dir", str(out / "data"), "--audio_dir", str(out / "audio"), *options]
    return subprocess.run(command, cwd=RECIPE, capture_output=True, text=True, env=env, check=False)


def read_table(path: Path) -> Dict[str, str]:
    return dict(line.rstrip("\n").split(" ", 1) for line in path.read_text().splitlines(keepends=True))


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(clean**2) / np.sum((noisy - clean) ** 2)))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("espeak_en")
    result = run_data_sh(out, *TINY)
    assert result.returncode == 0, result.stdout + result.stderr
    (out / "stdout.txt").write_text(result.stdout + result.stderr)
    return out


@pytest.mark.parametrize(
    "sentence, transcript",
    [
        ("You can't fool me.", "YOU CAN'T FOOL ME"),
        ('"Well-begun is half done," she said!', "WELL BEGUN IS HALF DONE SHE SAID"),
        ("I think, therefore I am?", "I THINK THEREFORE I AM"),
        ("'Tis a fine day to write a recursive macro.", "TIS A FINE DAY TO WRITE A RECURSIVE MACRO"),
        ("Take 2 aspirins and call me.", None),  # digits
        ("Buy IBM stock now.", None),  # acronym
        ("Ask Mr.", None),  # abbreviation
        ("Money & power corrupt.", None),  # symbol read aloud
        ("Hmm, that is odd.", None),  # no vowel
        ("-- Mark Twain, on the weather.", None),  # attribution
        ("and then it was over.", None),  # fragment: no capital
        ("Life is a journey", None),  # fragment: no final punctuation
        ("Call J. Smith today.", None),  # initial
    ],
)
def test_normalize_transcript(sentence, transcript):
    assert normalize_transcript(sentence) == transcript


def test_fortune_file_parsing():
    text = "First one.  Second\none!\n%\n\n%\nThird? \"Fourth,\" he said.\n%\n"
    fortunes = split_fortunes(text)
    assert fortunes == ["First one. Second one!", 'Third? "Fourth," he said.']
    assert [s for f in fortunes for s in split_sentences(f)] == [
        "First one.",
        "Second one!",
        "Third?",
        '"Fourth," he said.',
    ]


def data_sh_defaults() -> Dict[str, str]:
    """The option defaults of local/data.sh (its `name=value` lines before parse_options.sh)."""
    text = (RECIPE / "local" / "data.sh").read_text().split(". utils/parse_options.sh")[0]
    return {m.group(1): m.group(2) for m in re.finditer(r'^([a-z_]+)="?([^"\n#]*?)"?\s*(?:#.*)?$', text, re.M)}


def default_voices(defaults: Dict[str, str], subset: str) -> List[str]:
    accents, variants = defaults[f"{subset}_accents"].split(), defaults[f"{subset}_variants"].split()
    return [f"{accent}+{variant}" for accent in accents for variant in variants]


@needs_tools
def test_default_plan_has_a_real_vocabulary_and_held_out_speakers(tmp_path):
    """local/data.sh's defaults: >= 3000 utterances, >= 1000 distinct words, closed-vocabulary dev/test,
    ASR-style transcripts of 4-12 words, several voices; the test voices' variants (the speakers) are never
    heard in train or dev, under any accent."""
    defaults = data_sh_defaults()
    train_voices, test_voices = default_voices(defaults, "train"), default_voices(defaults, "test")
    options = ["num_train", "num_dev", "num_test", "vocab_size", "train_readings", "min_words", "max_words"]
    make_plan_main(["--out_dir", str(tmp_path), *[a for o in options for a in (f"--{o}", defaults[o])],
                    "--train_voices", *train_voices, "--test_voices", *test_voices])
    plans = {subset: read_plan(tmp_path / f"{subset}.tsv") for subset in ("train", "dev", "test")}
    assert [len(plans[s]) for s in ("train", "dev", "test")] == [int(defaults[f"num_{s}"]) for s in ("train", "dev", "test")]
    assert sum(len(plan) for plan in plans.values()) >= 3000
    words = {subset: {w for u in plan for w in u.transcript.split()} for subset, plan in plans.items()}
    assert len(words["train"]) >= 1000
    assert words["dev"] <= words["train"] and words["test"] <= words["train"]
    transcripts = [u.transcript for plan in plans.values() for u in plan]
    assert len(set(transcripts)) == len(transcripts), "subsets must not share sentences"
    for transcript in transcripts:
        assert re.fullmatch(r"[A-Z]+(?:'[A-Z]+)*(?: [A-Z]+(?:'[A-Z]+)*){3,11}", transcript), transcript
    assert {u.voice for u in plans["test"]} == set(test_voices)
    assert {u.voice for s in ("train", "dev") for u in plans[s]} <= set(train_voices)
    heard_variants = {u.voice.split("+")[1] for s in ("train", "dev") for u in plans[s]}
    assert len(heard_variants) >= 4 and heard_variants.isdisjoint(v.split("+")[1] for v in test_voices)


@needs_tools
def test_limited_vocabulary_plan_repeats_its_words(tmp_path):
    """--vocab_size 2200 --train_readings 2: >= 3000 training utterances, every word within the 2200 most frequent
    of the pool, >= 1000 distinct words, each training sentence read twice."""
    voices = ["--train_voices", "en-us+m1", "en-gb+f1", "--test_voices", "en-us+m2"]
    make_plan_main(["--out_dir", str(tmp_path), "--vocab_size", "2200", "--train_readings", "2", *voices])
    plans = {subset: read_plan(tmp_path / f"{subset}.tsv") for subset in ("train", "dev", "test")}
    assert [len(plans[s]) for s in ("train", "dev", "test")] == [3000, 200, 300]
    pool = collect_transcripts(DEFAULT_FORTUNE_DIR, DEFAULT_CATEGORIES, 4, 12)
    counts: Dict[str, int] = {}
    for transcript in pool:
        for word in transcript.split():
            counts[word] = counts.get(word, 0) + 1
    top = set(sorted(counts, key=lambda w: (-counts[w], w))[:2200])
    words = {subset: {w for u in plan for w in u.transcript.split()} for subset, plan in plans.items()}
    assert 1000 <= len(words["train"]) <= 2200 and words["train"] <= top
    assert words["dev"] <= words["train"] and words["test"] <= words["train"]
    train_sentences: Dict[str, int] = {}
    for u in plans["train"]:
        train_sentences[u.transcript] = train_sentences.get(u.transcript, 0) + 1
    assert set(train_sentences.values()) == {2} and len(train_sentences) == 1500
    held_out = [u.transcript for s in ("dev", "test") for u in plans[s]]
    assert len(set(held_out)) == len(held_out) and set(held_out).isdisjoint(train_sentences)


def test_limit_vocabulary_keeps_sentences_of_frequent_words():
    transcripts = ["A B", "A C", "A B D", "B C"]  # counts: A 3, B 3, C 2, D 1
    assert limit_vocabulary(transcripts, 2) == ["A B"]
    assert limit_vocabulary(transcripts, 3) == ["A B", "A C", "B C"]


def test_parse_snr():
    assert parse_snr("10") == (10.0, 10.0)
    assert parse_snr("5-20") == (5.0, 20.0)
    assert parse_snr("-5") == (-5.0, -5.0)
    with pytest.raises(Exception, match="LOW must not exceed HIGH"):
        parse_snr("20-5")


@needs_tools
def test_sentence_pool_is_deterministic():
    first = collect_transcripts(DEFAULT_FORTUNE_DIR, DEFAULT_CATEGORIES, 4, 12)
    assert first == collect_transcripts(DEFAULT_FORTUNE_DIR, DEFAULT_CATEGORIES, 4, 12)
    assert len(first) > 5000


@needs_tools
def test_data_dirs_are_valid_and_sorted(corpus):
    for subset in SUBSETS:
        data_dir = corpus / "data" / subset
        check = subprocess.run(
            ["utils/validate_data_dir.sh", "--no-feats", str(data_dir)], cwd=RECIPE, capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
        for name in KALDI_FILES:
            keys = [line.split(" ", 1)[0] for line in (data_dir / name).read_text().splitlines()]
            assert keys == sorted(keys) and len(set(keys)) == len(keys), f"{subset}/{name} not sorted and unique"
        utt2spk = read_table(data_dir / "utt2spk")
        assert all(utt.startswith(spk + "-") for utt, spk in utt2spk.items())
        spk2utt = {spk: utts.split() for spk, utts in read_table(data_dir / "spk2utt").items()}
        assert sorted((u, s) for s, us in spk2utt.items() for u in us) == sorted(utt2spk.items())
    sizes = {s: len(read_table(corpus / "data" / s / "text")) for s in SUBSETS}
    assert sizes == {"train": 30, "dev": 3, "test": 4, "test_noisy": 4, "train_mc": 30, "dev_mc": 3}


@needs_tools
def test_audio_is_16k_mono_speech(corpus):
    for subset in SUBSETS:
        for path in read_table(corpus / "data" / subset / "wav.scp").values():
            info = soundfile.info(path)
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            assert 0.5 < info.duration < 10.0


@needs_tools
def test_test_voices_are_held_out(corpus):
    speakers = {s: set(read_table(corpus / "data" / s / "utt2spk").values()) for s in SUBSETS}
    assert speakers["test"].isdisjoint(speakers["train"] | speakers["dev"])
    assert speakers["dev"] <= speakers["train"]
    assert speakers["test_noisy"] == speakers["test"]
    assert speakers["train_mc"] == speakers["train"] and speakers["dev_mc"] == speakers["dev"]
    # Speaker ids name espeak-ng voices: accent_variant.
    assert all(re.fullmatch(r"en(-[a-z0-9]+)*_[mf]\d", spk) for spk in set().union(*speakers.values()))


@needs_tools
def test_noisy_copy_has_same_utterances_and_10db_snr(corpus):
    clean_dir, noisy_dir = corpus / "data" / "test", corpus / "data" / "test_noisy"
    for name in ("text", "utt2spk", "spk2utt"):
        assert (clean_dir / name).read_text() == (noisy_dir / name).read_text()
    clean_wavs, noisy_wavs = read_table(clean_dir / "wav.scp"), read_table(noisy_dir / "wav.scp")
    assert clean_wavs.keys() == noisy_wavs.keys()
    for utt_id in clean_wavs:
        assert clean_wavs[utt_id] != noisy_wavs[utt_id]
        clean, _ = soundfile.read(clean_wavs[utt_id])
        noisy, _ = soundfile.read(noisy_wavs[utt_id])
        assert clean.shape == noisy.shape
        assert snr_db(clean, noisy) == pytest.approx(10.0, abs=0.1)


@needs_tools
def test_multi_condition_copies_noise_a_share_at_5_to_20_db(corpus):
    """train_mc/dev_mc: the same utterances and texts; about half the audio with noise at 5-20 dB SNR, the rest
    the clean files themselves; no noise realisation is shared with test_noisy (other utterances, other seed)."""
    num_noisy = 0
    for subset in ("train", "dev"):
        clean_dir, mc_dir = corpus / "data" / subset, corpus / "data" / f"{subset}_mc"
        for name in ("text", "utt2spk", "spk2utt"):
            assert (clean_dir / name).read_text() == (mc_dir / name).read_text()
        clean_wavs, mc_wavs = read_table(clean_dir / "wav.scp"), read_table(mc_dir / "wav.scp")
        assert clean_wavs.keys() == mc_wavs.keys()
        for utt_id, mc_path in mc_wavs.items():
            if mc_path == clean_wavs[utt_id]:
                continue
            num_noisy += 1
            assert Path(mc_path).parent.name == f"{subset}_mc"
            clean, _ = soundfile.read(clean_wavs[utt_id])
            noisy, _ = soundfile.read(mc_path)
            assert 4.9 < snr_db(clean, noisy) < 20.1
    assert 0.2 * 33 < num_noisy < 0.8 * 33
    assert read_table(corpus / "data" / "train_mc" / "text").keys().isdisjoint(
        read_table(corpus / "data" / "test_noisy" / "text").keys()
    )


@needs_tools
def test_progress_and_log_are_reported(corpus):
    output = (corpus / "stdout.txt").read_text()
    assert re.search(r"\[train\] 30/30 utterances \(100%\), elapsed \d+ s, ETA 0 s", output)
    assert "data/local/log/synthesize.*.log" in output
    log_lines = (corpus / "data" / "local" / "log" / "synthesize.train.log").read_text().splitlines()
    assert len(log_lines) == 30 and all(re.search(r"voice=\S+ rate=\d+ pitch=\d+ dur=", line) for line in log_lines)


def test_lm_text_leaves_out_training_sentences_and_whole_evaluation_fortunes(tmp_path):
    """other_text keeps every normalisable sentence once, drops the training transcripts one by one and every
    sentence of a fortune that holds a dev/test transcript (its neighbours too)."""
    (tmp_path / "quotes").write_text(
        "The cat sat down. A dog barked loudly.\n%\n"
        "Never trust a smiling cat! The sky was grey.\n%\n"
        "Buy IBM stock now. Rain falls on the plain.\n%\n"
        "A dog barked loudly.\n%\n"
    )
    (tmp_path / "sayings").write_text("Rain falls on the plain.\n%\nEvery word counts twice.\n%\n")
    kept = other_text(tmp_path, ["quotes", "sayings"], spoken={"THE CAT SAT DOWN"}, held_out={"THE SKY WAS GREY"})
    assert kept == ["A DOG BARKED LOUDLY", "EVERY WORD COUNTS TWICE", "RAIN FALLS ON THE PLAIN"]


def test_lm_text_without_the_corpus_says_which_stage_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing/text not found: run local/data.sh's stages 1-2 first"):
        lm_text_main(["--out", str(tmp_path / "other"), "--train_text", str(tmp_path / "missing" / "text"),
                      "--held_out_text", str(tmp_path / "missing" / "text")])
    assert not (tmp_path / "other").exists()


@needs_tools
def test_lm_text_holds_no_evaluation_sentence(corpus):
    """data/local/other_text/text (data.sh stage 5): Kaldi-style, sorted keys, more text than the training
    transcripts, no training, dev or test sentence."""
    table = read_table(corpus / "data" / "local" / "other_text" / "text")
    keys = list(table)
    assert keys == sorted(keys) and len(table) > 1000
    sentences = set(table.values())
    assert len(sentences) == len(table)
    for subset in ("train", "dev", "test"):
        assert sentences.isdisjoint(read_table(corpus / "data" / subset / "text").values()), subset


def _corpus_fingerprint(out: Path) -> Dict[str, bytes]:
    files = {f"{s}/{n}": (out / "data" / s / n).read_bytes() for s in SUBSETS for n in ("text", "utt2spk")}
    for subset in SUBSETS:
        for utt_id, path in read_table(out / "data" / subset / "wav.scp").items():
            files[f"{subset}/{utt_id}.wav"] = Path(path).read_bytes()
    return files


@needs_tools
def test_same_seed_same_corpus_other_seed_other_corpus(corpus, tmp_path):
    again, other = tmp_path / "again", tmp_path / "other"
    assert run_data_sh(again, *TINY).returncode == 0
    assert run_data_sh(other, *TINY, "--seed", "1").returncode == 0
    assert _corpus_fingerprint(again) == _corpus_fingerprint(corpus)
    assert (other / "data/train/text").read_text() != (corpus / "data/train/text").read_text()


@needs_tools
def test_test_voices_must_be_held_out(tmp_path):
    result = run_data_sh(tmp_path, *TINY, "--test_accents", "en-us", "--test_variants", "m1", "--stop_stage", "1")
    assert result.returncode != 0
    assert "--test_voices must be held out from --train_voices, both contain: en-us_m1" in result.stderr


def _path_without(program: str, tmp_path: Path) -> str:
    """A PATH with every executable of the current PATH except ``program``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            target = Path(directory) / name
            if name != program and not (bin_dir / name).exists() and os.access(target, os.X_OK):
                (bin_dir / name).symlink_to(target)
    return str(bin_dir)


@needs_tools
def test_missing_espeak_ng_is_a_clear_error(tmp_path):
    env = {**os.environ, "PATH": _path_without("espeak-ng", tmp_path)}
    result = run_data_sh(tmp_path, *TINY, env=env)
    assert result.returncode != 0
    assert "'espeak-ng' not found on PATH: install it (Debian/Ubuntu: apt-get install espeak-ng" in result.stdout
    assert not (tmp_path / "data" / "train").exists()
