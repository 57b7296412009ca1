"""The link codec benchmark runs (``--short``) and prints both rates and the ratio."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_short_run_prints_rates_and_ratios():
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_link_codec.py"), "--short"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    lines = result.stdout.splitlines()
    assert any(line.startswith("bare pyiso8583") and "msg/s" in line for line in lines)
    assert sum("ratio" in line for line in lines) == 3
