"""Build the fused CPU kernels for this machine now, instead of on first use, and say where they are.

    python -m espnet_samba.bin.build_cpu_kernels [--verbose]

tools/install.sh runs it. Exits 1, with the reason, when they cannot be built (the ops then use their
pure-PyTorch path).
"""
from __future__ import annotations

import argparse
import sys
import time

from espnet_samba.ops.cpu_kernels import load_cpu_kernels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--verbose", action="store_true", help="show the compiler's commands and output")
    args = parser.parse_args()
    start = time.perf_counter()
    kernels = load_cpu_kernels(verbose=args.verbose)
    if not kernels.available:
        print(f"fused CPU kernels unavailable: {kernels.unavailable_reason}", file=sys.stderr)
        return 1
    print(f"fused CPU kernels ready in {time.perf_counter() - start:.0f} s: {kernels.library_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
