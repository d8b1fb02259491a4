"""Smoke test of bench/bench_streaming_rtf.py: `--quick` (tiny models, 2 s of audio) decodes with both recognisers
and prints its table and workload and writes its plot. Slow: ESPnet's imports and three dry-run model builds in a
subprocess take ~25 s on the project's machine."""
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_streaming_rtf.py"


@pytest.mark.slow
def test_quick_run_prints_the_table_and_writes_the_plot(tmp_path):
    plot = tmp_path / "streaming_rtf.png"
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--plot", str(plot)], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| 2 s | 320 ms |" in result.stdout
    assert "2 s, 320 ms chunks: conformer" in result.stdout
    assert plot.stat().st_size > 0
