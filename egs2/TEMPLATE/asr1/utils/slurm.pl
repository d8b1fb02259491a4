#!/usr/bin/env python3
"""Run a command, or an array of commands, as a Slurm job with the interface of run.pl.

Usage:
    slurm.pl [options] [JOB=1:N] <log-file> <command> [<args>...]

The job is submitted with sbatch (an array job "--array=1-N" for JOB=1:N), and slurm.pl waits until every task
has ended, so a recipe can switch between run.pl and slurm.pl in cmd.sh without other changes. Each task writes
its own log (JOB replaced by the task number) framed like run.pl's, and its exit status to a marker file under
<log-dir>/q/; slurm.pl exits 1 naming the failed tasks and their logs if any task fails.

Options (mapped to sbatch options by the config file, see conf/slurm.conf):
    --config FILE      the mapping (default: conf/slurm.conf if it exists, else egs2/TEMPLATE/asr1/conf/slurm.conf).
    --gpu N            GPUs per task (e.g. "-p gpu --gres=gpu:N").
    --mem SIZE         memory (e.g. "--mem-per-cpu SIZE").
    --num_threads N    CPUs per task (e.g. "--cpus-per-task N"); the task runs with OMP_NUM_THREADS=N.
    --num_nodes N      nodes (e.g. "--nodes N"); the command itself then usually starts with "srun".
    --time T, --name NAME, and any other option that the config file maps.
    --max-jobs-run N   at most N array tasks at once ("--array=1-N%M").

Config file lines (the format of Kaldi's slurm.pl):
    command sbatch --export=PATH        the submission command and its fixed options
    option mem=* --mem-per-cpu $0       option value -> sbatch options, "$0" is the value
    option gpu=0 -p cpu                 a specific value takes precedence over "*"
    default gpu=0                       the value used when the option is not given

Implemented in Python; named "slurm.pl" because espnet2.bin.launch dispatches on this file name.
"""
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, NoReturn, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import job_command_line  # noqa: E402 (lives beside this script)

TEMPLATE_CONFIG = Path(__file__).resolve().parent.parent / "conf" / "slurm.conf"
# Seconds between looks for the tasks' exit-status files (the wait starts at 0.1 s and grows to this), and between
# asking Slurm whether the job is still queued (a job cancelled or killed with its node leaves no status file).
POLL_MAX_S = float(os.environ.get("SLURM_PL_POLL_MAX", "2"))
QUEUE_CHECK_S = float(os.environ.get("SLURM_PL_QUEUE_CHECK", "10"))
# How long the status files of a job that Slurm reports finished may take to appear on a shared file system.
FILE_SYSTEM_DELAY_S = 30.0
# Final job states in which the batch script ran to its end (and so wrote its status file).
RAN_TO_END = {"COMPLETED", "FAILED"}


def die(message: str) -> NoReturn:
    job_command_line.die("slurm.pl", message)


class SlurmConfig:
    """The mapping from run.pl-style options to sbatch options."""

    def __init__(self, text: str, origin: str):
        self.command: List[str] = []
        self.exact: Dict[Tuple[str, str], List[str]] = {}
        self.wildcard: Dict[str, List[str]] = {}
        self.defaults: Dict[str, str] = {}
        for number, raw_line in enumerate(text.splitlines(), 1):
            line = raw_line.split("#", 1)[0].strip()
            if not line:
                continue
            kind, _, rest = line.partition(" ")
            fields = rest.split()
            if kind == "command" and fields:
                self.command = fields
            elif kind in ("option", "default") and fields and "=" in fields[0]:
                name, value = fields[0].split("=", 1)
                name = name.replace("-", "_")
                if kind == "default":
                    self.defaults[name] = value
                elif value == "*":
                    self.wildcard[name] = fields[1:]
                else:
                    self.exact[(name, value)] = fields[1:]
            else:
                die(f"{origin}:{number}: cannot parse config line: {raw_line!r}")
        if not self.command:
            die(f"{origin}: no 'command' line (e.g. 'command sbatch --export=PATH')")

    def knows(self, name: str) -> bool:
        return name in self.wildcard or name in self.defaults or any(key[0] == name for key in self.exact)

    def sbatch_options(self, options: Dict[str, str]) -> List[str]:
        """Translate options like {"gpu": "2", "mem": "4G"} (plus defaults) into sbatch arguments."""
        values = dict(self.defaults)
        values.update(options)
        result: List[str] = []
        for name, value in values.items():
            if (name, value) in self.exact:
                result += self.exact[(name, value)]
            elif name in self.wildcard:
                result += [field.replace("$0", value) for field in self.wildcard[name]]
            elif name not in self.defaults:
                die(f"option --{name} is not mapped in the config file; add e.g. 'option {name}=* <sbatch options>'")
        return result


def write_batch_script(
    script: Path, done_prefix: Path, variable: Optional[str], first: int, last: int, log_template: str, command: str
) -> None:
    """Write the bash script that every array task runs: one "case" branch per task number."""
    lines = [
        "#!/usr/bin/env bash",
        f"cd {shlex.quote(os.getcwd())}",
        "[ -f ./path.sh ] && . ./path.sh",
        '[ -n "${SLURM_CPUS_PER_TASK:-}" ] && export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK}'
        " MKL_NUM_THREADS=${SLURM_CPUS_PER_TASK}",
        "task=${SLURM_ARRAY_TASK_ID:-%d}" % first,
        'case "${task}" in',
    ]
    for job in range(first, last + 1):
        log = log_template.replace(variable, str(job)) if variable else log_template
        job_command = command.replace(variable, str(job)) if variable else command
        lines += [
            f"  {job})",
            f"    log={shlex.quote(log)}",
            f"    cmd={shlex.quote(job_command)}",
            "    ;;",
        ]
    lines += [
        '  *) echo "unexpected task id ${task}" 1>&2; exit 1 ;;',
        "esac",
        'mkdir -p "$(dirname "${log}")"',
        '{ echo "# ${cmd}"; echo "# Started at $(date) on ${SLURMD_NODENAME:-$(hostname)},'
        ' Slurm job ${SLURM_JOB_ID:-?}"; echo "#"; } > "${log}"',
        "start=$(date +%s)",
        'bash -c "set -o pipefail; ${cmd}" >> "${log}" 2>&1',
        "status=$?",
        'echo "# Accounting: time=$(( $(date +%s) - start )) threads=${SLURM_CPUS_PER_TASK:-1}" >> "${log}"',
        'echo "# Ended (code ${status}) at $(date)" >> "${log}"',
        f'echo "${{status}}" > {shlex.quote(str(done_prefix))}."${{task}}"',
        'exit "${status}"',
    ]
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    script.chmod(0o755)


def submit(sbatch: List[str]) -> str:
    """Run the sbatch command line and return the job id it reports."""
    result = subprocess.run(sbatch, capture_output=True, text=True)
    if result.returncode != 0:
        die(f"submission failed (status {result.returncode}): {' '.join(sbatch)}\n{result.stdout}{result.stderr}")
    match = re.search(r"Submitted batch job (\d+)", result.stdout)
    if not match:
        die(f"could not find the job id in the output of {sbatch[0]}: {result.stdout!r}")
    return match.group(1)


def in_queue(job_id: str) -> bool:
    """Whether Slurm still lists the job (True when squeue is not available, so waiting continues)."""
    try:
        result = subprocess.run(["squeue", "-h", "-j", job_id], capture_output=True, text=True)
    except FileNotFoundError:
        return True
    return result.returncode == 0 and bool(result.stdout.strip())


def final_states(job_id: str, first: int) -> Dict[int, str]:
    """{task: Slurm's job state} of a job that has left the queue, e.g. {1: "CANCELLED", 2: "NODE_FAIL"}, as
    `scontrol show job` reports them (for MinJobAge seconds after the end); {} when Slurm no longer knows."""
    try:
        result = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True)
    except FileNotFoundError:
        return {}
    states: Dict[int, str] = {}
    for line in result.stdout.splitlines():
        fields = dict(field.split("=", 1) for field in line.split() if "=" in field)
        if "JobState" not in fields:
            continue
        state = fields["JobState"] + (f" ({fields['Reason']})" if fields.get("Reason", "None") != "None" else "")
        # One task ("3"), or the tasks that never started ("1-4%2", "2,5-6").
        for part in fields.get("ArrayTaskId", str(first)).split("%")[0].split(","):
            low, _, high = part.partition("-")
            if low.isdigit() and (high or low).isdigit():
                states.update({task: state for task in range(int(low), int(high or low) + 1)})
    return states


def wait_for_tasks(job_id: str, done_prefix: Path, jobs: List[int], task_log) -> Dict[int, int]:
    """Wait until every task has written its exit status; return {task: status}. Stop naming the tasks and their
    logs if the job leaves the queue without them (cancelled, killed with its node, out of time)."""
    statuses: Dict[int, int] = {}
    sleep_s = 0.1
    last_queue_check = time.time()
    gone_since: Optional[float] = None

    def collect() -> List[int]:
        for job in jobs:
            marker = Path(f"{done_prefix}.{job}")
            if job not in statuses and marker.exists():
                text = marker.read_text().strip()
                statuses[job] = int(text) if text.lstrip("-").isdigit() else 1
        return [job for job in jobs if job not in statuses]

    while collect():
        if gone_since is None and time.time() - last_queue_check > QUEUE_CHECK_S:
            last_queue_check = time.time()
            if not in_queue(job_id):
                gone_since = time.time()
        if gone_since is not None:
            missing = collect()
            if not missing:
                break
            states = final_states(job_id, jobs[0])
            killed = [job for job in missing if job in states and states[job].split()[0] not in RAN_TO_END]
            if killed or time.time() - gone_since > FILE_SYSTEM_DELAY_S:
                shown = killed or missing
                what = ", ".join(f"task {job} {states.get(job, 'in an unknown state')}" for job in shown)
                die(f"Slurm job {job_id} ended without finishing {len(shown)} / {len(jobs)} task(s): {what}; "
                    f"see {', '.join(task_log(job) for job in shown)}")
        time.sleep(sleep_s)
        sleep_s = min(sleep_s * 1.5, POLL_MAX_S)
    return statuses


def main() -> None:
    options, job_range, log_template, command_args = job_command_line.parse_args("slurm.pl", sys.argv[1:])
    config_path = Path(options.pop("config", "conf/slurm.conf"))
    if not config_path.exists():
        config_path = TEMPLATE_CONFIG
    config = SlurmConfig(config_path.read_text(encoding="utf-8"), str(config_path))
    max_jobs_run = options.pop("max_jobs_run", None)
    variable, first, last = job_range if job_range else (None, 1, 1)

    log_dir = Path(log_template).parent
    base = Path(log_template).name.replace(variable, "") if variable else Path(log_template).name
    base = re.sub(r"\.log$", "", base).strip(".") or "job"
    queue_dir = log_dir / "q"
    queue_dir.mkdir(parents=True, exist_ok=True)
    done_prefix = queue_dir / f"done.{base}"
    jobs = list(range(first, last + 1))
    for job in jobs:
        Path(f"{done_prefix}.{job}").unlink(missing_ok=True)
    script = queue_dir / f"{base}.sh"
    write_batch_script(script, done_prefix, variable, first, last, log_template, job_command_line.build_command(command_args))

    sbatch = config.command + config.sbatch_options(options)
    if job_range:
        array = f"{first}-{last}" + (f"%{max_jobs_run}" if max_jobs_run else "")
        sbatch += [f"--array={array}", "--output", str(queue_dir / f"{base}.%a.out")]
    else:
        sbatch += ["--output", str(queue_dir / f"{base}.out")]
    sbatch.append(str(script))
    job_id = submit(sbatch)
    print(f"slurm.pl: submitted Slurm job {job_id} ({len(jobs)} task(s)), logs: {log_template}", file=sys.stderr)

    def task_log(job: int) -> str:
        return log_template.replace(variable, str(job)) if variable else log_template

    statuses = wait_for_tasks(job_id, done_prefix, jobs, task_log)
    failed = sorted(job for job, status in statuses.items() if status != 0)
    if failed:
        die(f"{len(failed)} / {len(jobs)} task(s) of Slurm job {job_id} failed; see {', '.join(map(task_log, failed))}")


if __name__ == "__main__":
    main()
