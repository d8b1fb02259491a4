"""The command line shared by run.pl and slurm.pl: `[options] [JOB=1:N] <log-file> <command> [<args>...]`."""
import re
import shlex
import sys
from typing import Dict, List, NoReturn, Optional, Tuple

JOB_RANGE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(\d+):(\d+)$")
JOB_SINGLE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(\d+)$")


def die(program: str, message: str) -> NoReturn:
    print(f"{program}: {message}", file=sys.stderr)
    sys.exit(1)


def parse_args(
    program: str, argv: List[str]
) -> Tuple[Dict[str, str], Optional[Tuple[str, int, int]], str, List[str]]:
    """Split argv into (options, (job_var, first, last) or None, log template, command args).

    Options are `--name value` or `--name=value`, dashes in names read as underscores.
    """
    options: Dict[str, str] = {}
    while argv and argv[0].startswith("--"):
        name = argv.pop(0)[2:].replace("-", "_")
        if "=" in name:
            name, value = name.split("=", 1)
        elif argv:
            value = argv.pop(0)
        else:
            die(program, f"option --{name} needs a value")
        options[name] = value
    job_range = None
    if argv:
        match = JOB_RANGE.match(argv[0]) or JOB_SINGLE.match(argv[0])
        if match:
            argv.pop(0)
            first = int(match.group(2))
            last = int(match.group(3)) if match.lastindex == 3 else first
            if first < 1 or last < first:
                die(program, f"invalid job range {match.group(0)}: it must be VAR=a:b with 1 <= a <= b")
            job_range = (match.group(1), first, last)
    if len(argv) < 2:
        die(program, f"usage: {program} [options] [JOB=1:N] <log-file> <command> [<args>...]")
    log_template = argv.pop(0)
    return options, job_range, log_template, argv


def build_command(args: List[str]) -> str:
    """Join args into one bash command line as Kaldi's run.pl does: arguments without whitespace are kept as they
    are (so "\\|" builds a pipeline), arguments with whitespace are quoted."""
    return " ".join(arg if re.fullmatch(r"\S+", arg) else shlex.quote(arg) for arg in args)
