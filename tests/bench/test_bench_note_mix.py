"""The note-mix benchmark runs (``--short``): it reports the dynamic programme under 1 ms for
five cassettes and $2,000, and the same choice as the exhaustive search it replaced."""

import os

import pytest

from tests.bench.scripts import HANG_GUARD_SECONDS, run_script


@pytest.mark.timeout(HANG_GUARD_SECONDS)
def test_short_run_reports_the_dp_under_a_millisecond_and_the_same_choices():
    result = run_script("bench_note_mix", "--short", env={**os.environ}, check=False)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("dp 5 cassettes $2,000:") and "us per mix" in lines[0]
    comparisons = [line for line in lines[1:] if "exhaustive" in line]
    assert len(comparisons) == 3
    assert all(line.endswith("same choice: True") for line in comparisons)
    # The exit status says whether the 1 ms target held; a loaded CI machine may miss it, so
    # the figure is reported rather than asserted here.
    assert result.returncode in (0, 1), result.stderr
