"""Unit tests of the Kaldi-style utilities of egs2/TEMPLATE/asr1 (utils/, scripts/, pyscripts/)."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile
import torch
import torchaudio.compliance.kaldi as kaldi_compliance

from test_template_support import TEMPLATE, write_tone

sys.path.insert(0, str(TEMPLATE / "pyscripts" / "audio"))
from audio_io import read_wav_entry  # noqa: E402

UTILS = TEMPLATE / "utils"
PYTHON_BIN = str(Path(sys.executable).parent)


def run(args, cwd=None, env=None, check=True, stdin=None, timeout=None):
    environment = dict(os.environ, PATH=f"{PYTHON_BIN}:{os.environ['PATH']}", LC_ALL="C")
    environment.update(env or {})
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=environment, capture_output=True, text=True,
                            input=stdin, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ----- parse_options.sh -----

OPTIONS_SCRIPT = """\
nj=32            # The number of parallel jobs.
some_name=abc
use_lm=true
help_message="Usage: x [options]; --nj (default=${nj}), --use_lm (default=${use_lm})"
. {utils}/parse_options.sh
echo "nj=${{nj}} some_name=${{some_name}} use_lm=${{use_lm}} rest=$*"
"""


@pytest.fixture
def options_script(tmp_path):
    return write(tmp_path / "script.sh", OPTIONS_SCRIPT.replace("{utils}", str(UTILS)).replace("{{", "{")
                 .replace("}}", "}"))


def test_parse_options_sets_variables(options_script, tmp_path):
    out = run(["bash", options_script, "--nj", "4", "--some-name=x y", "--use_lm", "false", "pos1", "--nj"]).stdout
    assert out.strip() == "nj=4 some_name=x y use_lm=false rest=pos1 --nj"


def test_parse_options_config_file_is_overridden_by_command_line(options_script, tmp_path):
    config = write(tmp_path / "opts.conf", "nj=7\nsome_name=fromconf  # comment\n")
    out = run(["bash", options_script, "--config", config, "--nj", "9"]).stdout
    assert out.strip() == "nj=9 some_name=fromconf use_lm=true rest="


@pytest.mark.parametrize(
    "args, message",
    [(["--nnj", "3"], "invalid option '--nnj'"), (["--use_lm", "yes"], "takes true or false"),
     (["--nj"], "needs a value")],
)
def test_parse_options_rejects_bad_options(options_script, args, message):
    result = run(["bash", options_script, *args], check=False)
    assert result.returncode != 0 and message in result.stderr


def test_parse_options_help_prints_defaults(options_script):
    result = run(["bash", options_script, "--nj", "5", "--help"])
    assert "--nj (default=32)" in result.stdout and "--use_lm (default=true)" in result.stdout


# ----- run.pl -----

def test_run_pl_job_range_writes_one_log_per_job(tmp_path):
    run([UTILS / "run.pl", "JOB=2:4", tmp_path / "log" / "echo.JOB.log", "echo", "job", "JOB", "|", "tr", "a-z",
         "A-Z"], cwd=tmp_path)
    for job in (2, 3, 4):
        log = (tmp_path / "log" / f"echo.{job}.log").read_text()
        assert f"JOB {job}\n" in log and f"# echo job {job} | tr a-z A-Z" in log and "# Ended (code 0)" in log
    assert not (tmp_path / "log" / "echo.1.log").exists()


def test_run_pl_reports_failed_jobs_and_exit_code(tmp_path):
    result = run([UTILS / "run.pl", "--max-jobs-run", "1", "JOB=1:3", tmp_path / "f.JOB.log", "bash", "-c",
                  "exit $(( JOB == 2 ? 3 : 0 ))"], check=False)
    assert result.returncode == 1
    assert "1 / 3 failed" in result.stderr and "2 (status 3)" in result.stderr
    assert "# Ended (code 3)" in (tmp_path / "f.2.log").read_text()
    assert "# Ended (code 0)" in (tmp_path / "f.3.log").read_text()


def test_run_pl_single_job_and_scheduler_options(tmp_path):
    log = tmp_path / "one.log"
    run([UTILS / "run.pl", "--gpu", "1", "--mem", "4G", "--name", "x/y", log, "echo", "two words", "ok"])
    assert "two words ok" in log.read_text()
    result = run([UTILS / "run.pl", log, "false"], check=False)
    assert result.returncode == 1 and f"log is in {log}" in result.stderr


def test_run_pl_num_threads_sets_the_jobs_thread_count(tmp_path):
    """--num_threads N gives each job OMP_NUM_THREADS=N and MKL_NUM_THREADS=N; without it the caller's count."""
    run([UTILS / "run.pl", "--num_threads", "3", "JOB=1:2", tmp_path / "t.JOB.log", "echo",
         "threads=$OMP_NUM_THREADS,$MKL_NUM_THREADS"], env={"OMP_NUM_THREADS": "1"})
    for job in (1, 2):
        log = (tmp_path / f"t.{job}.log").read_text()
        assert "threads=3,3\n" in log and "# Accounting: time=0 threads=3" in log
    run([UTILS / "run.pl", tmp_path / "one.log", "echo", "threads=$OMP_NUM_THREADS"], env={"OMP_NUM_THREADS": "1"})
    assert "threads=1\n" in (tmp_path / "one.log").read_text()
    run([UTILS / "run.pl", tmp_path / "nested.log", "true"], env={"OMP_NUM_THREADS": "4,2"})  # OpenMP's list form
    assert "# Accounting: time=0 threads=4,2\n" in (tmp_path / "nested.log").read_text()
    result = run([UTILS / "run.pl", "--num_threads", "0", tmp_path / "x.log", "true"], check=False)
    assert result.returncode != 0 and "--num_threads must be a positive integer, got '0'" in result.stderr


# ----- slurm.pl (a fake sbatch records its arguments and runs the array tasks) -----

FAKE_SBATCH = """\
#!/usr/bin/env bash
printf '%s\\n' "$*" >> "${FAKE_SBATCH_LOG}"
script="${@: -1}"
array=""
prev=""
for a in "$@"; do
    case "$a" in --array=*) array="${a#--array=}";; esac
    [ "$prev" = --cpus-per-task ] && export SLURM_CPUS_PER_TASK="$a"
    prev="$a"
done
if [ -n "$array" ]; then
    range="${array%%\\%*}"
    for t in $(seq "${range%-*}" "${range#*-}"); do SLURM_ARRAY_TASK_ID=$t SLURM_JOB_ID=77 bash "$script"; done
else
    SLURM_JOB_ID=77 bash "$script"
fi
echo "Submitted batch job 77"
"""


@pytest.fixture
def fake_slurm(tmp_path):
    bin_dir = tmp_path / "bin"
    write(bin_dir / "sbatch", FAKE_SBATCH).chmod(0o755)
    record = tmp_path / "sbatch_args.txt"
    return {"PATH": f"{bin_dir}:{PYTHON_BIN}:{os.environ['PATH']}", "FAKE_SBATCH_LOG": str(record)}, record


def test_slurm_pl_builds_array_job_from_slurm_conf(tmp_path, fake_slurm):
    env, record = fake_slurm
    write(tmp_path / "conf" / "slurm.conf", (TEMPLATE / "conf" / "slurm.conf").read_text())
    run([UTILS / "slurm.pl", "--gpu", "2", "--mem", "4G", "--num_threads", "3", "--name", "exp/train.log",
         "--max-jobs-run", "2", "JOB=1:3", "exp/log/dec.JOB.log", "echo", "task", "JOB", "threads=$OMP_NUM_THREADS"],
        cwd=tmp_path, env=env)
    args = record.read_text().split()
    assert args[:1] == ["--export=PATH"]
    joined = " ".join(args)
    for expected in ("-p gpu --gres=gpu:2 -c 2", "--mem-per-cpu 4G", "--cpus-per-task 3", "--job-name exp/train.log",
                     "--array=1-3%2", "--output exp/log/q/dec.%a.out"):
        assert expected in joined
    for job in (1, 2, 3):
        log = (tmp_path / "exp" / "log" / f"dec.{job}.log").read_text()
        assert f"task {job} threads=3\n" in log and "Slurm job 77" in log and "# Ended (code 0)" in log


def test_slurm_pl_cpu_job_and_failures(tmp_path, fake_slurm):
    env, record = fake_slurm
    result = run([UTILS / "slurm.pl", "JOB=1:2", "log/f.JOB.log", "bash", "-c", "exit $(( JOB - 1 ))"], cwd=tmp_path,
                 env=env, check=False)
    assert "-p cpu" in record.read_text()  # the template's conf/slurm.conf: default gpu=0
    assert result.returncode == 1 and "1 / 2 task(s)" in result.stderr and "log/f.2.log" in result.stderr
    run([UTILS / "slurm.pl", "--num_nodes", "2", "log/single.log", "echo", "hi"], cwd=tmp_path, env=env)
    assert "--nodes 2" in record.read_text().splitlines()[-1]
    assert "--array" not in record.read_text().splitlines()[-1]


def test_slurm_pl_rejects_unmapped_option(tmp_path, fake_slurm):
    env, _ = fake_slurm
    result = run([UTILS / "slurm.pl", "--colour", "red", "log/x.log", "true"], cwd=tmp_path, env=env, check=False)
    assert result.returncode == 1 and "--colour is not mapped" in result.stderr


# ----- split_scp.pl, filter_scp.pl, utt2spk_to_spk2utt.pl -----

def test_split_scp_contiguous_nearly_equal(tmp_path):
    source = write(tmp_path / "in.scp", "".join(f"u{i} v{i}\n" for i in range(7)))
    outputs = [tmp_path / f"out.{n}.scp" for n in (1, 2, 3)]
    run([UTILS / "split_scp.pl", source, *outputs])
    parts = [o.read_text().splitlines() for o in outputs]
    assert [len(p) for p in parts] == [3, 2, 2]
    assert sum(parts, []) == source.read_text().splitlines()
    result = run([UTILS / "split_scp.pl", source, *[tmp_path / f"x.{n}" for n in range(8)]], check=False)
    assert result.returncode != 0 and "fewer than the 8" in result.stderr


def test_filter_scp_keep_exclude_and_field(tmp_path):
    ids = write(tmp_path / "ids", "b x\nc\n")
    table = write(tmp_path / "t", "a 1\nb 2\nc 3\nd 4\n")
    assert run([UTILS / "filter_scp.pl", ids, table]).stdout == "b 2\nc 3\n"
    assert run([UTILS / "filter_scp.pl", "--exclude", ids], stdin=table.read_text()).stdout == "a 1\nd 4\n"
    assert run([UTILS / "filter_scp.pl", "-f", "2", ids], stdin="u1 b\nu2 z\n").stdout == "u1 b\n"


def test_utt2spk_spk2utt_round_trip(tmp_path):
    utt2spk = write(tmp_path / "utt2spk", "s1-a s1\ns1-b s1\ns2-a s2\n")
    spk2utt = run([UTILS / "utt2spk_to_spk2utt.pl", utt2spk]).stdout
    assert spk2utt == "s1 s1-a s1-b\ns2 s2-a\n"
    assert run([UTILS / "spk2utt_to_utt2spk.pl"], stdin=spk2utt).stdout == utt2spk.read_text()


# ----- validate / fix / combine / copy -----

def make_data_dir(path: Path, ids, texts=None, wav_ids=None):
    write(path / "utt2spk", "".join(f"{u} {u.split('-')[0]}\n" for u in ids))
    write(path / "text", "".join(f"{u} {(texts or {}).get(u, 'hello world')}\n".replace(" \n", "\n") for u in ids))
    write(path / "wav.scp", "".join(f"{u} /audio/{u}.wav\n" for u in (wav_ids or ids)))
    speakers = {}
    for u in ids:
        speakers.setdefault(u.split("-")[0], []).append(u)
    write(path / "spk2utt", "".join(f"{s} {' '.join(us)}\n" for s, us in sorted(speakers.items())))
    return path


def test_validate_accepts_good_dir(tmp_path):
    make_data_dir(tmp_path / "d", ["a-1", "a-2", "b-1"])
    run([UTILS / "validate_data_dir.sh", tmp_path / "d"])


@pytest.mark.parametrize(
    "ids, kwargs, message",
    [
        (["b-1", "a-1"], {}, "utt2spk: not sorted (LC_ALL=C) or has duplicate ids at line 2"),
        (["a-1", "a-2"], {"wav_ids": ["a-1"]}, "wav.scp: 1 utt2spk ids missing: a-2"),
        (["a-1", "a-2"], {"wav_ids": ["a-1", "a-2", "a-3"]}, "wav.scp: 1 ids not in utt2spk: a-3"),
        (["a-1", "a-2"], {"texts": {"a-2": ""}}, "text: 1 empty transcripts: a-2"),
    ],
)
def test_validate_reports_problems(tmp_path, ids, kwargs, message):
    make_data_dir(tmp_path / "d", ids, **kwargs)
    result = run([UTILS / "validate_data_dir.sh", tmp_path / "d"], check=False)
    assert result.returncode == 1 and message in result.stderr


def test_validate_allows_empty_text_on_request(tmp_path):
    make_data_dir(tmp_path / "d", ["a-1", "a-2"], texts={"a-2": ""})
    run([UTILS / "validate_data_dir.sh", "--allow-empty-text", tmp_path / "d"])


def test_fix_keeps_intersection_and_lists_removed(tmp_path):
    data = make_data_dir(tmp_path / "d", ["b-1", "a-2", "a-1", "c-1"], wav_ids=["a-1", "b-1", "c-1", "z-9"])
    write(data / "text", "a-1 x\nb-1 y\na-2 z\n")
    result = run([UTILS / "fix_data_dir.sh", data])
    assert "kept 2 of 5 utterances" in result.stderr and "removed_utts.txt" in result.stderr
    removed = dict(line.split(" ", 1) for line in (data / ".backup" / "removed_utts.txt").read_text().splitlines())
    assert removed == {"a-2": "missing from wav.scp", "c-1": "missing from text",
                       "z-9": "missing from utt2spk; missing from text"}
    assert (data / "utt2spk").read_text() == "a-1 a\nb-1 b\n"
    assert (data / "spk2utt").read_text() == "a a-1\nb b-1\n"
    run([UTILS / "validate_data_dir.sh", data])


def test_combine_and_duplicate_ids(tmp_path):
    first = make_data_dir(tmp_path / "x", ["a-1", "b-1"])
    second = make_data_dir(tmp_path / "y", ["a-2", "c-1"])
    run([UTILS / "combine_data.sh", tmp_path / "xy", first, second])
    assert [line.split()[0] for line in (tmp_path / "xy" / "wav.scp").read_text().splitlines()] == [
        "a-1", "a-2", "b-1", "c-1"]
    run([UTILS / "validate_data_dir.sh", tmp_path / "xy"])
    result = run([UTILS / "combine_data.sh", tmp_path / "bad", first, first], check=False)
    assert result.returncode != 0 and "is in both" in result.stderr


def test_copy_data_dir_validates_copy(tmp_path):
    make_data_dir(tmp_path / "d", ["a-1", "a-2"], texts={"a-2": ""})
    result = run([UTILS / "copy_data_dir.sh", "--validate_opts", "--non-print", tmp_path / "d", tmp_path / "e"],
                 check=False)
    assert result.returncode != 0 and "empty transcripts" in result.stderr
    run([UTILS / "copy_data_dir.sh", "--validate_opts", "--allow-empty-text", tmp_path / "d", tmp_path / "f"])
    assert (tmp_path / "f" / "text").read_text() == (tmp_path / "d" / "text").read_text()


# ----- speed perturbation, audio formatting, fbank -----

def test_perturb_speed_changes_duration_by_factor(tmp_path):
    source = tmp_path / "src"
    write_tone(tmp_path / "a.wav", "hello", 16000, seed=0)
    write(source / "wav.scp", f"s-1 {tmp_path / 'a.wav'}\ns-2 cat {tmp_path / 'a.wav'} |\n")
    write(source / "utt2spk", "s-1 s\ns-2 s\n")
    write(source / "text", "s-1 hello\ns-2 hello\n")
    run([TEMPLATE / "scripts" / "utils" / "perturb_data_dir_speed.sh", "0.9", source, tmp_path / "sp"])
    wav_scp = dict(line.split(" ", 1) for line in (tmp_path / "sp" / "wav.scp").read_text().splitlines())
    assert set(wav_scp) == {"sp0.9-s-1", "sp0.9-s-2"}
    assert (tmp_path / "sp" / "utt2spk").read_text() == "sp0.9-s-1 sp0.9-s\nsp0.9-s-2 sp0.9-s\n"
    assert (tmp_path / "sp" / "utt2uniq").read_text() == "sp0.9-s-1 s-1\nsp0.9-s-2 s-2\n"
    original = soundfile.info(tmp_path / "a.wav").frames
    for command in wav_scp.values():
        samples, rate = read_wav_entry("sp0.9-s-1", command)
        assert rate == 16000 and abs(len(samples) - original / 0.9) < 0.01 * original


def test_format_wav_scp_resamples_and_lists_bad_audio(tmp_path):
    write_tone(tmp_path / "a.wav", "abc", 22050, seed=0)
    write(tmp_path / "corrupt.wav", "RIFF this is not audio")
    wav_scp = write(tmp_path / "wav.scp", f"u-1 {tmp_path / 'a.wav'}\nu-2 {tmp_path / 'missing.wav'}\n"
                                          f"u-3 {tmp_path / 'corrupt.wav'}\nu-4 false |\n")
    for audio_format in ("flac", "wav.ark"):
        out = tmp_path / audio_format
        run([sys.executable, TEMPLATE / "pyscripts" / "audio" / "format_wav_scp.py", "--wav_scp", wav_scp,
             "--audio_format", audio_format, "--fs", "16000", "--out_dir", out])
        assert (out / "wav.scp").read_text().split()[0] == "u-1"
        bad = dict(line.split(" ", 1) for line in (out / "bad_audio.txt").read_text().splitlines())
        assert set(bad) == {"u-2", "u-3", "u-4"} and "missing.wav" in bad["u-2"] and "failed" in bad["u-4"]
        expected = round(soundfile.info(tmp_path / "a.wav").frames * 16000 / 22050)
        assert (out / "utt2num_samples").read_text() == f"u-1 {expected}\n"
        location = (out / "wav.scp").read_text().split()[1]
        if audio_format.endswith("ark"):
            rate, samples = kaldiio.load_mat(location)
        else:
            samples, rate = soundfile.read(location)
        assert rate == 16000 and len(samples) == expected


def test_compute_fbank_matches_kaldi_compliance(tmp_path):
    write_tone(tmp_path / "a.wav", "abcd", 16000, seed=1)
    wav_scp = write(tmp_path / "wav.scp", f"u-1 {tmp_path / 'a.wav'}\n")
    out = tmp_path / "fbank"
    run([sys.executable, TEMPLATE / "pyscripts" / "feats" / "compute_fbank_feats.py", "--wav_scp", wav_scp,
         "--fs", "16000", "--out_dir", out])
    feats = kaldiio.load_scp(str(out / "feats.scp"))["u-1"]
    samples, _ = soundfile.read(tmp_path / "a.wav", dtype="int16")
    expected = kaldi_compliance.fbank(torch.from_numpy(samples.astype(np.float32)).unsqueeze(0), num_mel_bins=80,
                                      dither=0.0, sample_frequency=16000.0)
    np.testing.assert_allclose(feats, expected.numpy(), rtol=1e-5, atol=1e-4)
    assert (out / "feats_shape").read_text() == f"u-1 {expected.shape[0]},80\n"


# ----- scoring: make_trn.py, sclite, show_asr_result.py -----

def test_make_trn_tokenisation_and_open_asr_normaliser(tmp_path):
    write(tmp_path / "ref", "s-1 Mr. Smith couldn't\ns-2 hi there\n")
    write(tmp_path / "hyp", "s-1 mister smith could not\n")
    write(tmp_path / "utt2spk", "s-1 s\ns-2 s\n")
    common = ["--ref_text", tmp_path / "ref", "--hyp_text", tmp_path / "hyp", "--utt2spk", tmp_path / "utt2spk"]
    script = TEMPLATE / "pyscripts" / "utils" / "make_trn.py"
    result = run([sys.executable, script, *common, "--token_type", "char", "--ref_trn", tmp_path / "c.ref",
                  "--hyp_trn", tmp_path / "c.hyp"])
    assert "1 of 2 utterances have no hypothesis" in result.stderr
    assert (tmp_path / "c.ref").read_text().splitlines()[1] == "h i <space> t h e r e (s-s-2)"
    assert (tmp_path / "c.hyp").read_text().splitlines()[1] == " (s-s-2)"
    run([sys.executable, script, *common, "--token_type", "word", "--normalizer", "open_asr",
         "--ref_trn", tmp_path / "w.ref", "--hyp_trn", tmp_path / "w.hyp"])
    assert (tmp_path / "w.ref").read_text().splitlines()[0] == "mister smith could not (s-s-1)"
    assert (tmp_path / "w.hyp").read_text().splitlines()[0] == "mister smith could not (s-s-1)"


def sclite_path():
    for candidate in (os.environ.get("PATH", "").split(":") + ["/usr/lib/sctk/bin"]):
        if (Path(candidate) / "sclite").exists():
            return str(Path(candidate) / "sclite")
    pytest.skip("sclite (Debian package sctk) is not installed")


def test_results_md_from_real_sclite_output(tmp_path):
    score_dir = tmp_path / "exp" / "asr_x" / "decode_tag" / "test" / "score_wer"
    write(score_dir / "ref.trn", "a b c d (s-s-1)\ne f (s-s-2)\n")
    write(score_dir / "hyp.trn", "a x c (s-s-1)\ne f g (s-s-2)\n")
    with (score_dir / "result.txt").open("w") as result:
        subprocess.run([sclite_path(), "-r", score_dir / "ref.trn", "trn", "-h", score_dir / "hyp.trn", "trn", "-i",
                        "rm", "-o", "all", "stdout"], stdout=result, check=True)
    write(tmp_path / "exp" / "asr_x" / "train.log", "    Total Number of model parameters: 1.23 M\n")
    (tmp_path / "exp" / "asr_x" / "images").mkdir()
    (tmp_path / "exp" / "asr_x" / "images" / "loss.png").write_bytes(b"png")
    markdown = run([sys.executable, TEMPLATE / "pyscripts" / "utils" / "show_asr_result.py",
                    tmp_path / "exp" / "asr_x"], cwd=tmp_path).stdout
    # 6 reference words: 4 correct, 1 substitution (b->x), 1 deletion (d), 1 insertion (g); both sentences wrong.
    assert "|decode_tag/test|2|6|66.7|16.7|16.7|16.7|50.0|100.0|" in markdown
    lines = markdown.splitlines()
    assert lines[lines.index("### WER") + 2] == "|dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|"
    assert "## Environments" in markdown and "- Params: 1.23M" in markdown and "## asr_x" in markdown
    assert "![loss](images/loss.png)" in markdown and "### CER" not in markdown


def test_progress_monitor_counts_lines_until_total(tmp_path):
    write(tmp_path / "out.1", "a\nb\n")
    write(tmp_path / "out.2", "c\nskip\n")
    result = run([sys.executable, TEMPLATE / "pyscripts" / "utils" / "progress_monitor.py", "--total", "3",
                  "--label", "demo", "--interval", "0.1", "--pattern", "^[a-c]$", str(tmp_path / "out.*")])
    assert result.stderr.startswith("demo: 3/3 (100.0%), elapsed 0:00:00, ETA 0:00:00")


def test_progress_monitor_reads_epoch_numbers_of_a_resumed_run(tmp_path):
    """With a group in --pattern, done is the largest number captured: a run resumed at epoch 27 (a new log
    holding epochs 27 and 28) shows 28/28 and stops, where counting its lines would give 2/28."""
    log = ("[vm] (trainer:394) INFO: 27epoch results: [train] acc=0.7\n"
           "[vm] (trainer:811) INFO: 28epoch:train:1-15batch: acc=0.7\n"
           "[vm] (trainer:394) INFO: 28epoch results: [train] acc=0.7\n")
    write(tmp_path / "train.log", log)
    result = run([sys.executable, TEMPLATE / "pyscripts" / "utils" / "progress_monitor.py", "--total", "28",
                  "--label", "epochs", "--interval", "0.1", "--pattern", r"(\d+)epoch results:",
                  str(tmp_path / "train.log")], timeout=30)  # counting lines, it would wait at 2/28 forever
    assert result.stderr.startswith("epochs: 28/28 (100.0%), elapsed 0:00:00, ETA 0:00:00"), result.stderr


def test_progress_line_eta_counts_only_what_this_run_did():
    spec = importlib.util.spec_from_file_location("progress_monitor", TEMPLATE / "pyscripts/utils/progress_monitor.py")
    progress_monitor = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(progress_monitor)
    progress_line = progress_monitor.progress_line
    line = progress_line("epochs", 28, 30, 120.0, done_before=26)  # 2 epochs in 2 min: 2 more take 2 min
    assert line == "epochs: 28/30 (93.3%), elapsed 0:02:00, ETA 0:02:00"
    assert progress_line("epochs", 10, 30, 100.0) == "epochs: 10/30 (33.3%), elapsed 0:01:40, ETA 0:03:20"
    assert progress_line("epochs", 26, 30, 5.0, done_before=26).endswith("ETA ?")
