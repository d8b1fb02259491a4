#!/usr/bin/env python3
"""Run a command, or an array of commands, on the local machine with per-job logs.

Usage:
    run.pl [options] [JOB=1:N] <log-file> <command> [<args>...]

e.g.
    run.pl JOB=1:4 exp/foo/log/stats.JOB.log python -m espnet2.bin.asr_train ... --output_dir out.JOB

The variable on the left of "=" ("JOB" here) is replaced by the job number in the log file name and in every
argument. Each job runs with bash; its stdout and stderr go to its own log, framed by a header (the command,
start time) and a footer (exit code, run time). Arguments without whitespace are passed to bash as they are, so
"\\|" builds a pipeline as in Kaldi's run.pl; arguments with whitespace are quoted.

Options (the interface is shared with slurm.pl; scheduler-only options are accepted and ignored here):
    --max-jobs-run N   run at most N jobs at once (default: the number of CPUs).
    --num_threads N    each job runs with N CPU threads (OMP_NUM_THREADS and MKL_NUM_THREADS set to N).
    --gpu N, --mem M, --num_nodes N, --time T, --name NAME, --config FILE: ignored locally.

While more than one job runs, progress (jobs done / total, elapsed time, ETA) is printed to stderr.
Exit status: 0 if every job succeeded; 1 otherwise, naming the failed jobs and their logs.

Named "run.pl" for compatibility with Kaldi/ESPnet tooling: espnet2.bin.launch dispatches on this file name.
"""
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Dict, List, NoReturn, Optional, Tuple, Union

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import job_command_line  # noqa: E402 (lives beside this script)

PROGRESS_INTERVAL_S = float(os.environ.get("RUN_PL_PROGRESS_INTERVAL", "10"))


def die(message: str) -> NoReturn:
    job_command_line.die("run.pl", message)


def substitute(text: str, variable: Optional[str], job: Union[int, str]) -> str:
    """Replace every occurrence of the job variable (e.g. "JOB") by the job number, as Kaldi does."""
    return text if variable is None else text.replace(variable, str(job))


def format_seconds(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def start_job(command: str, log_path: Path, env: Optional[Dict[str, str]]) -> Tuple[subprocess.Popen, float]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w", encoding="utf-8") as log:
        log.write(f"# {command}\n# Started at {datetime.now().ctime()}\n#\n")
    log = log_path.open("a", encoding="utf-8")
    process = subprocess.Popen(
        ["bash", "-c", f"set -o pipefail; {command}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    log.close()
    return process, time.time()


def finish_log(log_path: Path, return_code: int, started: float, threads: str) -> None:
    elapsed = time.time() - started
    with log_path.open("a", encoding="utf-8") as log:
        log.write(f"# Accounting: time={int(elapsed)} threads={threads}\n")
        log.write(f"# Ended (code {return_code}) at {datetime.now().ctime()}, elapsed time {int(elapsed)} seconds\n")


def thread_environment(num_threads: Optional[int]) -> Optional[Dict[str, str]]:
    """The environment of a job with num_threads CPU threads for OpenMP/MKL (None: inherit ours unchanged)."""
    if num_threads is None:
        return None
    return {**os.environ, "OMP_NUM_THREADS": str(num_threads), "MKL_NUM_THREADS": str(num_threads)}


def positive_int_option(options: Dict[str, str], flag: str, default: Optional[int]) -> Optional[int]:
    """The value of option --flag (dashes or underscores) as a positive integer, default if absent."""
    name = flag.replace("-", "_")
    if name not in options:
        return default
    value = options[name]
    if not value.isdigit() or int(value) < 1:
        die(f"--{flag} must be a positive integer, got '{value}'")
    return int(value)


def main() -> None:
    options, job_range, log_template, command_args = job_command_line.parse_args("run.pl", sys.argv[1:])
    max_jobs = positive_int_option(options, "max-jobs-run", os.cpu_count() or 1)
    num_threads = positive_int_option(options, "num_threads", None)
    variable, first, last = job_range if job_range else (None, 1, 1)
    command_template = job_command_line.build_command(command_args)
    jobs = [
        (job, substitute(command_template, variable, job), Path(substitute(log_template, variable, job)))
        for job in range(first, last + 1)
    ]
    running: Running = {}
    failed: List[Failure] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(f"run.pl: terminated by signal {signum}"))
    try:
        run_all(jobs, running, failed, max_jobs, substitute(log_template, variable, "*"), num_threads)
    finally:
        for process, _, _ in running.values():
            process.terminate()
    report_failures(failed, last - first + 1)


Job = Tuple[int, str, Path]
Running = Dict[int, Tuple[subprocess.Popen, float, Path]]
Failure = Tuple[int, int, Path]


def run_all(
    pending: List[Job],
    running: Running,
    failed: List[Failure],
    max_jobs: int,
    logs_pattern: str,
    num_threads: Optional[int],
) -> None:
    """Start jobs, at most max_jobs at a time, until all have ended; record failures and print progress.

    Args:
        pending: (job number, bash command, log path) of the jobs not started yet; consumed.
        running: filled with the jobs running now, so the caller can terminate them on interruption.
        failed: filled with (job number, exit status, log path) of each failed job.
        max_jobs: the most jobs run at once.
        logs_pattern: the log path with "*" for the job number, shown in progress lines.
        num_threads: CPU threads of each job (OMP_NUM_THREADS/MKL_NUM_THREADS); None: inherited.
    """
    env = thread_environment(num_threads)
    # as the jobs see it; OpenMP also accepts lists such as "4,2"
    threads = str(num_threads) if num_threads else os.environ.get("OMP_NUM_THREADS", "1")
    total = len(pending)
    started_all = time.time()
    last_report = started_all
    done = 0
    while pending or running:
        while pending and len(running) < max_jobs:
            job, command, log_path = pending.pop(0)
            process, started = start_job(command, log_path, env)
            running[job] = (process, started, log_path)
        time.sleep(0.05)
        for job in list(running):
            process, started, log_path = running[job]
            if process.poll() is None:
                continue
            del running[job]
            finish_log(log_path, process.returncode, started, threads)
            done += 1
            if process.returncode != 0:
                failed.append((job, process.returncode, log_path))
        now = time.time()
        if total > 1 and (now - last_report >= PROGRESS_INTERVAL_S or (done == total and now > started_all)):
            elapsed = now - started_all
            eta = "?" if done == 0 else format_seconds(elapsed / done * (total - done))
            print(
                f"run.pl: {done}/{total} jobs done, elapsed {format_seconds(elapsed)}, ETA {eta} (logs: {logs_pattern})",
                file=sys.stderr,
            )
            last_report = now


def report_failures(failed: List[Failure], total: int) -> None:
    """Exit 1 naming the failed jobs and their logs, if any failed."""
    if not failed:
        return
    if total == 1:
        _, code, log_path = failed[0]
        die(f"job failed with status {code}, log is in {log_path}")
    failed = sorted(failed)
    listing = ", ".join(f"{job} (status {code})" for job, code, _ in failed)
    die(f"{len(failed)} / {total} failed: jobs {listing}; first failed log: {failed[0][2]}")


if __name__ == "__main__":
    main()
