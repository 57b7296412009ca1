"""CPU time of processes, from Linux /proc: the one reader of it for ``bench/run.py`` (this
process and the PostgreSQL server) and ``scripts/pg_cost.py`` (the server, and the backends
serving the host).

Figures are clock ticks (``TICK_SECONDS`` each), user plus system time, read as they stand:
a caller takes two readings and the difference. A process gone meanwhile reads 0.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "TICK_SECONDS",
    "pressure",
    "process_ticks",
    "run_queue_wait",
    "stat_ticks",
    "tree_ticks",
]

TICK_SECONDS = 1 / os.sysconf("SC_CLK_TCK")


def _fields(stat: Path) -> list[str] | None:
    """The fields of a /proc/PID/stat after the command name (which may hold spaces and
    parentheses): state is [0], the parent's pid [1], utime [11], stime [12], the reaped
    children's cutime [13] and cstime [14]. None if the process is gone."""
    try:
        return stat.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def stat_ticks(fields: list[str], *, reaped: bool = False) -> int:
    """utime + stime (with ``reaped``: + cutime + cstime) of a stat's fields after the
    command name (of a process, or of a thread: /proc/PID/task/TID/stat)."""
    own = int(fields[11]) + int(fields[12])
    return own + (int(fields[13]) + int(fields[14]) if reaped else 0)


def process_ticks(pid: int | str = "self", *, reaped: bool = False) -> int:
    """utime + stime of process ``pid`` (``"self"``: this one), and with ``reaped`` those of
    its children that have exited and been waited for."""
    fields = _fields(Path(f"/proc/{pid}/stat"))
    return 0 if fields is None else stat_ticks(fields, reaped=reaped)


def _children(parent: int) -> Iterator[tuple[int, list[str]]]:
    """(pid, stat fields) of the processes whose parent is ``parent`` now (one level)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _fields(stat)
        if fields is not None and int(fields[1]) == parent:
            yield int(stat.parent.name), fields


def tree_ticks(parent: int) -> int:
    """A server's CPU so far: ``parent``, its children that exited (reaped: a PostgreSQL
    backend or autovacuum worker that ended since the last reading still counts), and its
    children still running. One level deep, as PostgreSQL's processes all are children of
    the postmaster."""
    total = process_ticks(parent, reaped=True)  # first, as before: the same reading order
    return total + sum(stat_ticks(fields) for _, fields in _children(parent))


def run_queue_wait(pid: int | str = "self", *, with_children: bool = False) -> float:
    """Seconds the threads of process ``pid`` (with ``with_children``: and of its children
    now running) have spent runnable but waiting for a core (/proc/PID/task/TID/schedstat,
    its second figure; nanoseconds): what CPU contention costs them. Threads and processes
    gone meanwhile are skipped (with their figures)."""
    pids = [pid, *(child for child, _ in _children(int(pid)))] if with_children else [pid]
    waited = 0
    for one in pids:
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{one}/task").iterdir():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    waited += int((task / "schedstat").read_text().split()[1])
    return waited / 1e9


def pressure() -> tuple[float, float]:
    """Seconds so far during which some task waited for a core, and for I/O (Linux PSI,
    /proc/pressure, "some": the whole machine's, other tenants' work included); 0 for a
    kernel without it."""
    figures = []
    for kind in ("cpu", "io"):
        try:
            first = Path(f"/proc/pressure/{kind}").read_text().splitlines()[0]
            figures.append(int(first.rsplit("total=", 1)[1]) / 1e6)
        except (OSError, IndexError, ValueError):
            figures.append(0.0)
    return figures[0], figures[1]


def pin(pid: int, cpus: set[int], *, with_children: bool = False) -> None:
    """Every thread of process ``pid`` (and with ``with_children`` of its child processes)
    onto ``cpus``; threads and processes started later inherit it. Threads and processes that
    end meanwhile are skipped."""
    for one in [pid, *(child for child, _ in _children(pid))] if with_children else [pid]:
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{one}/task").iterdir():
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(task.name), cpus)
