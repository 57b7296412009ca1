"""``bench/procstat.py``, the /proc CPU reader of ``bench/run.py`` and ``scripts/pg_cost.py``:
a server's figure (``tree_ticks``) counts a child while it runs and after it has exited and
been reaped, so it never drops when a backend ends between two readings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.scripts import load_script

procstat = load_script("procstat")

# A child that uses at least 0.3 s of CPU, says so, and waits for its stdin to close.
BURN = (
    "import sys, time\n"
    "while time.process_time() < 0.3:\n"
    "    pass\n"
    "print('burnt', flush=True)\n"
    "sys.stdin.read()\n"
)
# /proc counts in clock ticks, apportioned between user and system time: a tick or two less
# than the nanosecond clock the child watched.
BURNT_TICKS = int(0.3 / procstat.TICK_SECONDS) - 2


def test_a_child_counts_while_it_runs_and_after_it_is_reaped() -> None:
    me = os.getpid()
    before = procstat.tree_ticks(me)
    child = subprocess.Popen(
        [sys.executable, "-c", BURN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdin is not None
    assert child.stdout.readline() == "burnt\n"  # the CPU is spent; it waits now
    running = procstat.tree_ticks(me)
    assert procstat.process_ticks(child.pid) >= BURNT_TICKS
    assert running - before >= BURNT_TICKS
    child.stdin.close()
    child.wait()  # reaped: its time moves to this process's cutime/cstime
    reaped = procstat.tree_ticks(me)
    assert reaped >= running
    assert procstat.process_ticks(child.pid) == 0  # gone
    assert procstat.process_ticks(me, reaped=True) - procstat.process_ticks(me) >= BURNT_TICKS


def test_this_process_reads_its_own_time() -> None:
    assert procstat.process_ticks() == procstat.process_ticks("self") > 0


def _burner(cpu: int) -> subprocess.Popen[str]:
    """A child on core ``cpu`` alone that burns 0.3 s of CPU and says so."""
    return subprocess.Popen(
        [sys.executable, "-c", BURN],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
    )


@pytest.mark.skipif(not Path("/proc/pressure/cpu").exists(), reason="a kernel without PSI")
def test_two_children_on_one_core_make_the_machine_wait_for_a_core() -> None:
    # Each needs 0.3 s of the one core they share: one waits while the other runs, and the
    # machine-wide figure counts that wait (whatever else the machine does meanwhile).
    cpu = min(os.sched_getaffinity(0))
    waited, _io = procstat.pressure()
    children = [_burner(cpu), _burner(cpu)]
    for child in children:
        assert child.stdout is not None and child.stdout.readline() == "burnt\n"
    after, _io = procstat.pressure()
    for child in children:
        child.communicate("")
    assert after - waited >= 0.2
