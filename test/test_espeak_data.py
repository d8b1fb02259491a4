"""espeak_en demo corpus (egs2/espeak_en/asr1/local): text sources and normalisation, sentence and voice selection,
synthesis by espeak-ng, flite, festival and SVOX Pico, the noisy test set, the LM text, and the Kaldi data dirs that
local/data.sh writes.

local/data.sh runs on a handful of utterances; the data dirs are checked with the template's
utils/validate_data_dir.sh as well as directly. Tests that need the synthesizers, sox and the text databases skip
without them, except in CI (CI=true), where tools/install.sh has installed them and a skip would hide a broken
installation.
"""
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import soundfile

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "egs2" / "espeak_en" / "asr1"
TRAIN_SUBSETS = ("train", "dev", "train_mc", "dev_mc")
HELD_OUT_TEST_SETS = ("test_espeak", "test_flite", "test_festival")
TEST_SETS = (*HELD_OUT_TEST_SETS, "test_unseen_pico", "test_mixed", "test_noisy")
SUBSETS = (*TRAIN_SUBSETS, *TEST_SETS)
KALDI_FILES = ("wav.scp", "text", "utt2spk", "spk2utt")
TINY = ["--num_train", "30", "--num_dev", "3", "--num_test", "4", "--nj", "2"]

sys.path.insert(0, str(RECIPE / "local"))
from add_noise import parse_snr  # noqa: E402
from fortune_text import DEFAULT_FORTUNE_DIR, split_fortunes, split_sentences  # noqa: E402
from lm_text import main as lm_text_main, other_text  # noqa: E402
from make_plan import family_balanced_voices, limit_vocabulary, main as make_plan_main, read_plan  # noqa: E402
from synthesizers import SynthesisRequest, Voice, sox_pitch_effect, sox_tempo_effect, synthesizer  # noqa: E402
from text_normalization import normalize_transcript  # noqa: E402
from text_sources import Passage, iter_passages  # noqa: E402
from wordnet_text import DEFAULT_WORDNET_DIR, as_sentence, iter_examples  # noqa: E402

REQUIRED_PROGRAMS = ("espeak-ng", "flite", "festival", "sox")


def _missing_tools() -> List[str]:
    missing = [program for program in REQUIRED_PROGRAMS if shutil.which(program) is None]
    missing += [str(path) for path in (DEFAULT_FORTUNE_DIR, DEFAULT_WORDNET_DIR) if not path.is_dir()]
    try:
        import ttspico  # noqa: F401
    except ImportError:
        missing.append("ttspico")
    return missing


def require_recipe_tools() -> None:
    """The synthesizers, sox and text databases: skip without them, fail in CI (tools/install.sh's job)."""
    missing = _missing_tools()
    if missing:
        message = f"needs {', '.join(missing)} (tools/install.sh installs them)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def recipe_tools() -> None:
    require_recipe_tools()


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
    require_recipe_tools()
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


def write_wordnet(directory: Path) -> Path:
    """A WordNet database of two synsets per part of speech, in WordNet 3.0's data-file layout."""
    directory.mkdir()
    header = "  1 This software and database is being provided to you, the LICENSEE\n"
    glosses = {
        "noun": ['00001740 03 n 01 joy 0 000 | a state of happiness; "she was full of joy"; "the joy of the day"',
                 '00002137 03 n 01 day 0 000 | a time; "a day-to-day job"'],
        "verb": ['00001740 29 v 01 sit 0 000 | be seated; "we sat up all night."'],
        "adj": ['00001740 00 a 01 able 0 000 | having skill; "able to swim!"'],
        "adv": ['00001740 02 r 01 fast 0 000 | quickly'],
    }
    for part, lines in glosses.items():
        (directory / f"data.{part}").write_text(header + "".join(line + "  \n" for line in lines), encoding="latin-1")
    return directory


def test_wordnet_examples_are_read_with_their_synsets(tmp_path):
    examples = list(iter_examples(write_wordnet(tmp_path / "wordnet")))
    assert examples == [
        ("noun.00001740", "She was full of joy."),
        ("noun.00001740", "The joy of the day."),
        ("noun.00002137", "A day-to-day job."),
        ("verb.00001740", "We sat up all night."),
        ("adj.00001740", "Able to swim!"),
    ]
    assert as_sentence(" we left ") == "We left."


def test_text_sources_group_transcripts_by_passage_and_drop_hyphenated_examples(tmp_path):
    wordnet = write_wordnet(tmp_path / "wordnet")
    (tmp_path / "fortunes").mkdir()
    (tmp_path / "fortunes" / "quotes").write_text("The cat sat down. Buy IBM now.\n%\nA dog barked.\n%\n")
    passages = list(iter_passages(["fortunes", "wordnet"], tmp_path / "fortunes", ["quotes"], wordnet))
    assert passages == [
        Passage("fortunes", "quotes.0", ["THE CAT SAT DOWN"]),
        Passage("fortunes", "quotes.1", ["A DOG BARKED"]),
        Passage("wordnet", "noun.00001740", ["SHE WAS FULL OF JOY", "THE JOY OF THE DAY"]),
        Passage("wordnet", "verb.00001740", ["WE SAT UP ALL NIGHT"]),
        Passage("wordnet", "adj.00001740", ["ABLE TO SWIM"]),
    ]
    with pytest.raises(FileNotFoundError, match="install Debian's 'wordnet-base' package"):
        list(iter_passages(["wordnet"], tmp_path, [], tmp_path / "no_wordnet"))


def test_limit_vocabulary_keeps_sentences_of_frequent_words():
    transcripts = ["A B", "A C", "A B D", "B C"]  # counts: A 3, B 3, C 2, D 1
    assert limit_vocabulary(transcripts, 2) == ["A B"]
    assert limit_vocabulary(transcripts, 3) == ["A B", "A C", "B C"]


def test_families_share_the_utterances_equally_and_their_voices_in_turn():
    voices = [Voice("espeak-ng", f"en-us+m{i}") for i in range(1, 9)] + [Voice("festival", "kal_diphone")]
    slots = family_balanced_voices(voices, 100, random.Random(0))
    families = [voice.family for voice in slots]
    assert families.count("espeak-ng") == 50 and families.count("festival") == 50
    counts = {voice: slots.count(voice) for voice in set(slots) if voice.family == "espeak-ng"}
    assert sorted(counts.values()) == [6, 6, 6, 6, 6, 6, 7, 7]


def test_voice_specs_and_sox_effects():
    assert Voice.parse("espeak-ng:en-us+f2").speaker == "espeak-ng_en-us_f2"
    assert Voice.parse("festival:kal_diphone").spec == "festival:kal_diphone"
    for spec, message in [("awb", "FAMILY:NAME"), ("mbrola:us1", "unknown synthesizer family 'mbrola'")]:
        with pytest.raises(ValueError, match=message):
            Voice.parse(spec)
    assert sox_pitch_effect(2.0) == ["pitch", "1200"] and sox_pitch_effect(1.0) == []
    assert sox_tempo_effect(1.25) == ["tempo", "-s", "1.250"] and sox_tempo_effect(1.0) == []


def test_parse_snr():
    assert parse_snr("10") == (10.0, 10.0)
    assert parse_snr("5-20") == (5.0, 20.0)
    assert parse_snr("-5") == (-5.0, -5.0)
    with pytest.raises(Exception, match="LOW must not exceed HIGH"):
        parse_snr("20-5")


def fundamental_frequency(audio: np.ndarray, fs: int) -> float:
    """The median F0 (Hz) of the voiced 40 ms frames of `audio`, from the autocorrelation peak in 60-400 Hz."""
    frame, lags = int(0.04 * fs), np.arange(fs // 400, fs // 60)
    estimates = []
    for start in range(0, len(audio) - frame, frame):
        x = audio[start:start + frame] - audio[start:start + frame].mean()
        if np.sqrt(np.mean(x**2)) < 0.02:
            continue
        correlation = np.array([np.dot(x[:-lag], x[lag:]) for lag in lags]) / np.dot(x, x)
        if correlation.max() > 0.5:
            estimates.append(fs / lags[correlation.argmax()])
    return float(np.median(estimates))


@pytest.mark.parametrize("voice", ["espeak-ng:en-us+m1", "flite:awb", "flite:kal16", "festival:kal_diphone",
                                   "festival:cmu_us_slt_arctic_hts", "pico:en-US"])
def test_every_family_reads_text_at_the_asked_tempo_and_pitch(voice, recipe_tools, tmp_path):
    """Each synthesizer's tempo and pitch reach the audio, natively or through sox: 1.5x the tempo shortens the
    utterance by about a third, 1.3x the pitch raises the F0 by 1.15x or more (espeak-ng's -p is not a factor)."""
    from synthesize import finish_audio

    parsed = Voice.parse(voice)
    results = {}
    for tempo, pitch in [(0.8, 1.0), (1.2, 1.0), (1.0, 0.9), (1.0, 1.17)]:
        request = SynthesisRequest(f"u{tempo}-{pitch}", parsed, tempo, pitch, "the cat sat on the mat with a hat")
        (result,) = synthesizer(parsed.family).synthesize([request], tmp_path)
        wav = tmp_path / f"{request.utt_id}.16k.wav"
        finish_audio(result, wav, 16000, shutil.which("sox"))
        audio, fs = soundfile.read(str(wav))
        results[(tempo, pitch)] = (len(audio) / fs, fundamental_frequency(audio, fs))
    assert 1.3 < results[(0.8, 1.0)][0] / results[(1.2, 1.0)][0] < 1.8
    assert results[(1.0, 1.17)][1] / results[(1.0, 0.9)][1] > 1.15


def data_sh_plan(tmp_path: Path, *options: str) -> Dict[str, list]:
    """local/data.sh's stage 1 (the plans) with its defaults and `options`, read back per subset."""
    result = run_data_sh(tmp_path, "--stop_stage", "1", *options)
    assert result.returncode == 0, result.stdout + result.stderr
    plan_dir = tmp_path / "data" / "local" / "plan"
    return {path.stem: read_plan(path) for path in sorted(plan_dir.glob("*.tsv"))}


def test_default_plan_has_everyday_english_three_families_and_held_out_voices(recipe_tools, tmp_path):
    """local/data.sh's defaults: >= 5000 training utterances from both text sources, >= 1000 distinct words,
    closed-vocabulary dev/test, ASR-style transcripts of 4-12 words; three families reading equal shares of
    train; every test set reads the same sentences; held-out voices are never heard in train or dev; the unseen
    set's family reads nothing else."""
    plans = data_sh_plan(tmp_path)
    assert set(plans) == {"train", "dev", *HELD_OUT_TEST_SETS, "test_unseen_pico", "test_mixed"}
    assert len(plans["train"]) >= 5000
    words = {subset: {w for u in plan for w in u.transcript.split()} for subset, plan in plans.items()}
    assert len(words["train"]) >= 1000
    assert words["dev"] <= words["train"] and words["test_mixed"] <= words["train"]
    test_sentences = sorted(u.transcript for u in plans["test_mixed"])
    for name in (*HELD_OUT_TEST_SETS, "test_unseen_pico"):
        assert sorted(u.transcript for u in plans[name]) == test_sentences, name
    evaluation = [u.transcript for s in ("dev", "test_mixed") for u in plans[s]]
    training = {u.transcript for u in plans["train"]}
    assert len(set(evaluation)) == len(evaluation) and training.isdisjoint(evaluation)
    for transcript in training | set(evaluation):
        assert re.fullmatch(r"[A-Z]+(?:'[A-Z]+)*(?: [A-Z]+(?:'[A-Z]+)*){3,11}", transcript), transcript
    family_counts = {family: sum(Voice.parse(u.voice).family == family for u in plans["train"])
                     for family in ("espeak-ng", "flite", "festival")}
    assert max(family_counts.values()) - min(family_counts.values()) <= 1, family_counts
    heard = {u.speaker for s in ("train", "dev") for u in plans[s]}
    for name in HELD_OUT_TEST_SETS:
        speakers = {u.speaker for u in plans[name]}
        assert speakers and speakers.isdisjoint(heard), name
    assert {Voice.parse(u.voice).family for u in plans["test_unseen_pico"]} == {"pico"}
    assert "pico" not in {Voice.parse(u.voice).family for s in ("train", "dev") for u in plans[s]}
    held_out_variants = {u.voice.split("+")[1] for u in plans["test_espeak"]}
    assert held_out_variants.isdisjoint(u.voice.split("+")[1] for u in plans["train"] if "+" in u.voice)
    # Both sources read: some training sentences are WordNet examples, some are fortunes.
    wordnet = {t for _, s in iter_examples(DEFAULT_WORDNET_DIR) for t in [normalize_transcript(s)] if t}
    from_wordnet = sum(u.transcript in wordnet for u in plans["train"])
    assert 0.2 * len(plans["train"]) < from_wordnet < 0.9 * len(plans["train"])


@pytest.mark.parametrize(
    "options, message",
    [
        (["--flite_test_voices", "awb"], "--test_set test_flite must hold voices out of --train_voices; both have: flite_awb"),
        (["--unseen_voices", "flite:rms"], "--unseen_test_set test_unseen_pico: family flite also reads the training data"),
        (["--synthesizers", "espeak-ng mbrola"], "--synthesizers: 'mbrola' is not a training family"),
    ],
)
def test_inconsistent_voices_stop_the_plan_with_the_reason(recipe_tools, tmp_path, options, message):
    result = run_data_sh(tmp_path, *TINY, "--stop_stage", "1", *options)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


def test_a_voice_this_machine_lacks_is_named_before_synthesis(recipe_tools, tmp_path):
    result = run_data_sh(tmp_path, *TINY, "--stop_stage", "2", "--festival_train_voices", "rab_diphone")
    assert result.returncode != 0
    assert "festival has no voice rab_diphone here; it has:" in result.stderr


def test_one_training_family_has_one_held_out_test_set(recipe_tools, tmp_path):
    plans = data_sh_plan(tmp_path, *TINY, "--synthesizers", "espeak-ng")
    assert set(plans) == {"train", "dev", "test_espeak", "test_unseen_pico", "test_mixed"}
    assert {Voice.parse(u.voice).family for u in plans["train"]} == {"espeak-ng"}


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
    assert sizes == {"train": 30, "dev": 3, "train_mc": 30, "dev_mc": 3, **{s: 4 for s in TEST_SETS}}


def test_audio_is_16k_mono_speech(corpus):
    for subset in SUBSETS:
        for path in read_table(corpus / "data" / subset / "wav.scp").values():
            info = soundfile.info(path)
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            assert 0.5 < info.duration < 10.0


def test_every_family_speaks_at_one_level_unclipped(corpus):
    """The synthesizers' own levels differ by 10 dB and more (Pico's clip at its default volume): every clean
    utterance is scaled to a peak of -1 dBFS."""
    for subset in ("train", "dev", *HELD_OUT_TEST_SETS, "test_unseen_pico", "test_mixed"):
        for path in read_table(corpus / "data" / subset / "wav.scp").values():
            audio, _ = soundfile.read(path)
            assert np.abs(audio).max() == pytest.approx(10 ** (-1 / 20), abs=0.01), path


def test_test_voices_are_held_out(corpus):
    speakers = {s: set(read_table(corpus / "data" / s / "utt2spk").values()) for s in SUBSETS}
    heard = speakers["train"] | speakers["dev"]
    for name in (*HELD_OUT_TEST_SETS, "test_unseen_pico", "test_noisy"):
        assert speakers[name].isdisjoint(heard), name
    assert speakers["dev"] <= speakers["train"]
    assert speakers["test_noisy"] == speakers["test_mixed"]
    assert speakers["train_mc"] == speakers["train"] and speakers["dev_mc"] == speakers["dev"]
    # Speaker ids name the voices: family_voice.
    families = {spk.split("_")[0] for spk in set().union(*speakers.values())}
    assert families == {"espeak-ng", "flite", "festival", "pico"}


def test_noisy_copy_has_same_utterances_and_10db_snr(corpus):
    clean_dir, noisy_dir = corpus / "data" / "test_mixed", corpus / "data" / "test_noisy"
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


def test_progress_and_log_are_reported(corpus):
    output = (corpus / "stdout.txt").read_text()
    assert re.search(r"\[train\] 30/30 utterances \(100%\), elapsed \d+ s, ETA 0 s", output)
    assert "data/local/log/synthesize.*.log" in output
    log_lines = (corpus / "data" / "local" / "log" / "synthesize.train.log").read_text().splitlines()
    assert len(log_lines) == 30
    assert all(re.search(r"voice=[a-z-]+:\S+ tempo=[\d.]+ pitch=[\d.]+ dur=", line) for line in log_lines)


def test_lm_text_leaves_out_training_sentences_and_whole_evaluation_passages():
    """other_text keeps every sentence once, drops the training transcripts one by one, every sentence of a
    passage (fortune or synset) that holds a dev/test transcript (its neighbours too), and with a vocabulary,
    every sentence with a word outside it."""
    passages = [
        Passage("fortunes", "quotes.0", ["THE CAT SAT DOWN", "A DOG BARKED LOUDLY"]),
        Passage("fortunes", "quotes.1", ["NEVER TRUST A SMILING CAT", "THE SKY WAS GREY"]),
        Passage("wordnet", "noun.1", ["RAIN FALLS ON THE PLAIN", "A DOG BARKED LOUDLY"]),
        Passage("wordnet", "noun.2", ["WE LEFT EARLY", "EVERY WORD COUNTS TWICE"]),
        Passage("wordnet", "verb.3", ["SHE SANG A SONG", "WE ATE"]),
    ]
    kept = other_text(passages, spoken={"THE CAT SAT DOWN"}, held_out={"THE SKY WAS GREY", "WE LEFT EARLY"})
    assert kept == ["A DOG BARKED LOUDLY", "RAIN FALLS ON THE PLAIN", "SHE SANG A SONG", "WE ATE"]
    within = other_text(passages, set(), set(), vocabulary={"WE", "ATE", "A", "DOG", "BARKED", "LOUDLY"})
    assert within == ["A DOG BARKED LOUDLY", "WE ATE"]


def test_lm_text_without_the_corpus_says_which_stage_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing/text not found: run local/data.sh's stages 1-2 first"):
        lm_text_main(["--out", str(tmp_path / "other"), "--train_text", str(tmp_path / "missing" / "text"),
                      "--held_out_text", str(tmp_path / "missing" / "text")])
    assert not (tmp_path / "other").exists()


def test_lm_text_holds_no_evaluation_sentence(corpus):
    """data/local/other_text/text (data.sh stage 5): Kaldi-style, sorted keys, more text than the training
    transcripts, no training, dev or test sentence, every word within the corpus's vocabulary limit."""
    table = read_table(corpus / "data" / "local" / "other_text" / "text")
    keys = list(table)
    assert keys == sorted(keys) and len(table) > 1000
    sentences = set(table.values())
    assert len(sentences) == len(table)
    for subset in ("train", "dev", *TEST_SETS):
        assert sentences.isdisjoint(read_table(corpus / "data" / subset / "text").values()), subset


def _corpus_fingerprint(out: Path) -> Dict[str, bytes]:
    files = {f"{s}/{n}": (out / "data" / s / n).read_bytes() for s in SUBSETS for n in ("text", "utt2spk")}
    for subset in SUBSETS:
        for utt_id, path in read_table(out / "data" / subset / "wav.scp").items():
            files[f"{subset}/{utt_id}.wav"] = Path(path).read_bytes()
    return files


def test_same_seed_same_corpus_other_seed_other_corpus(corpus, tmp_path):
    again, other = tmp_path / "again", tmp_path / "other"
    assert run_data_sh(again, *TINY).returncode == 0
    assert run_data_sh(other, *TINY, "--seed", "1", "--stop_stage", "2").returncode == 0
    assert _corpus_fingerprint(again) == _corpus_fingerprint(corpus)
    assert (other / "data/train/text").read_text() != (corpus / "data/train/text").read_text()


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


@pytest.mark.parametrize("program, package", [("espeak-ng", "espeak-ng"), ("flite", "flite")])
def test_missing_synthesizer_is_a_clear_error(recipe_tools, tmp_path, program, package):
    env = {**os.environ, "PATH": _path_without(program, tmp_path)}
    result = run_data_sh(tmp_path, *TINY, env=env)
    assert result.returncode != 0
    assert f"'{program}' not found on PATH: install it (Debian/Ubuntu: apt-get install {package}" in result.stderr
    assert not (tmp_path / "data" / "train" / "text").exists()
