"""What one ESPnet process spends before it does any work: the imports of its entry points, and where they go.

Every stage of a recipe starts fresh Python processes of ESPnet's entry points (collect-stats jobs, training, one
decoding job per test set and `--inference_nj`, perplexity), and `Speech2Text` pays the same start in a user's
script. Their start is dominated by imports, and three causes stand out:

- typeguard's `@typechecked` (ESPnet decorates its constructors with it; typeguard 4 re-parses, transforms and
  compiles the decorated function's whole module once per decorated function, at import);
- `inflect`, imported at every ESPnet start through `espnet2.text.phoneme_tokenizer` -> `g2p_en`. From release 7
  on, inflect decorates its methods with `@typechecked` (23 instrumented at import, each compiling its 4,000-line
  module again), about 2 s of every start. setup.py pins `inflect<6`, the pure-Python release g2p_en was written
  for (it only spells numbers).
- HuggingFace `transformers`, which ESPnet imports at every start where it is installed (its optional HuggingFace
  encoders, decoders and frontends, and BEATs through BART). Nothing here uses it: mamba-ssm declares it for its
  language-model generation code, and tools/install.sh installs mamba-ssm's reference code without it.

Each figure is the median over `--repeats` fresh processes, run in turns, of: `import torch` alone (the floor any
torch program pays), the import of each entry point, and inside the latter the time spent importing inflect and transformers (where
installed) and the time spent in typeguard's instrumentation (typeguard's `instrument`, wrapped with a timer;
calls counted). The shares are of the entry point's import in the same processes. The transformers column is
`import transformers` alone: ESPnet's modules then import its submodules (BART, generation, hub kernels, and
through them torch._dynamo), so what it costs in all is the difference of the totals with and without it (run
once with `PYTHONPATH=DIR`, DIR from `pip install --no-deps --target DIR transformers==5.25.0`, once without).
The children's output other than their JSON line (ESPnet's nltk download notices on a machine without network)
is captured and dropped.

Usage: tools/venv/bin/python bench/bench_startup.py [--repeats 5] [--entry_points espnet2.bin.asr_inference ...]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from typing import Dict, List

ENTRY_POINTS = ("espnet2.bin.asr_train", "espnet2.bin.asr_inference", "espnet2.bin.lm_train")

# Runs in a fresh interpreter: times inflect's and transformers' imports and typeguard's instrumentation inside the
# import of the module named by argv[1] (or only `import torch` when it is "torch"), prints one JSON line.
CHILD = r"""
import json, sys, time
start = time.perf_counter()
if sys.argv[1] == "torch":
    import torch
    print(json.dumps({"total": time.perf_counter() - start}))
    raise SystemExit
import importlib
from importlib.metadata import version
import typeguard._decorators as decorators
spent = {"instrument": 0.0, "calls": 0}
original_instrument = decorators.instrument
def timed_instrument(function):
    began = time.perf_counter()
    try:
        return original_instrument(function)
    finally:
        spent["instrument"] += time.perf_counter() - began
        spent["calls"] += 1
decorators.instrument = timed_instrument
began = time.perf_counter()
import inflect
inflect_import = time.perf_counter() - began
began = time.perf_counter()
try:
    import transformers
    transformers_version = version("transformers")
except ImportError:
    transformers_version = None
transformers_import = time.perf_counter() - began
importlib.import_module(sys.argv[1])
print(json.dumps({"total": time.perf_counter() - start, "inflect": inflect_import,
                  "transformers": transformers_import, "typeguard": spent["instrument"],
                  "typeguard_calls": spent["calls"], "inflect_version": version("inflect"),
                  "transformers_version": transformers_version}))
"""


def measure(module: str) -> Dict[str, float]:
    """One fresh process importing `module` (or only torch): its figures (seconds, calls)."""
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, module], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"importing {module} failed:\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per module, run in turns")
    parser.add_argument("--entry_points", nargs="+", default=list(ENTRY_POINTS))
    args = parser.parse_args()

    modules = ["torch"] + args.entry_points
    runs: Dict[str, List[Dict[str, float]]] = {module: [] for module in modules}
    measure("torch")  # warm the page cache before anything is timed
    for repeat in range(args.repeats):
        for module in modules:
            runs[module].append(measure(module))
        print(f"[bench_startup] {repeat + 1}/{args.repeats} rounds done", file=sys.stderr, flush=True)

    def median(module: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[module])

    torch_alone = median("torch", "total")
    first = runs[modules[1]][0]
    print(f"median over {args.repeats} fresh processes each; inflect {first['inflect_version']}, transformers "
          f"{first['transformers_version'] or 'not installed'}")
    print(f"{'import':32s} {'total':>8s} {'/ torch':>8s} {'inflect':>8s} {'share':>6s} {'transformers':>12s} "
          f"{'share':>6s} {'typeguard':>10s} {'share':>6s} {'decorated':>9s}")
    print(f"{'torch (alone)':32s} {torch_alone:7.2f}s {1.0:7.2f}x")
    for module in args.entry_points:
        total = median(module, "total")
        inflect_time = median(module, "inflect")
        transformers_time = median(module, "transformers")
        typeguard_time = median(module, "typeguard")
        calls = int(median(module, "typeguard_calls"))
        print(f"{module:32s} {total:7.2f}s {total / torch_alone:7.2f}x {inflect_time:7.2f}s "
              f"{inflect_time / total:6.2f} {transformers_time:11.2f}s {transformers_time / total:6.2f} "
              f"{typeguard_time:9.2f}s {typeguard_time / total:6.2f} {calls:9d}")
    print("(typeguard's time includes inflect's own decorated methods, when its release has them)")


if __name__ == "__main__":
    main()
