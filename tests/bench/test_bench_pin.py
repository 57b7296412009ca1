"""The PIN capacity figure's accounting (bench/run.py): the CPU of the host's bcrypt threads
is told apart from the rest of the process, and the pool threads' time on a CPU is read
from the kernel. Checked on a real PIN pool in this process (Linux /proc)."""

import importlib.util
import os
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

import bcrypt

from host.bank.pins import PinVerifier

ROOT = Path(__file__).resolve().parents[2]


def _bench_run() -> ModuleType:
    """bench/ is a folder of scripts, not a package: load bench/run.py as a module (it
    imports its siblings from bench/)."""
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
        sys.path.remove(str(ROOT / "bench"))
    return module


def test_bcrypt_threads_cpu_is_counted_as_bcrypt_and_theirs_only():
    run = _bench_run()
    pid = os.getpid()
    pins = PinVerifier(pepper="p", secret_key="k", workers=2)
    hashed = bcrypt.hashpw(b"2580p", bcrypt.gensalt(8))

    def verify_and_time() -> int:
        started = time.thread_time_ns()
        for _ in range(3):
            assert bcrypt.checkpw(b"2580p", hashed)
        return time.thread_time_ns() - started

    started = threading.Barrier(pins.workers + 1)
    try:
        # Every pool thread exists (a pool starts its threads as work comes).
        waiting = [pins.submit(started.wait) for _ in range(pins.workers)]
        started.wait()
        for future in waiting:
            future.result()
        threads, running0, _ = run.pool_schedstat(pid)
        bcrypt0, rest0 = run.process_cpu(pid)
        futures = [pins.submit(verify_and_time) for _ in range(4)]
        spent_here = verify_and_time()  # this thread: not the pool's
        spent_in_pool = sum(f.result() for f in futures)
        _, running1, _ = run.pool_schedstat(pid)
        bcrypt1, rest1 = run.process_cpu(pid)
    finally:
        pins.close()
    assert threads == pins.workers  # the pool's threads, not this one nor any other
    # What the pool's threads spent hashing shows up as theirs (schedstat in ns; stat in
    # clock ticks, each thread's count truncated), and this thread's as the rest's.
    assert running1 - running0 >= spent_in_pool
    tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    assert bcrypt1 - bcrypt0 >= spent_in_pool // tick - pins.workers
    assert rest1 - rest0 >= spent_here // tick - 1
    assert threading.get_native_id() not in {
        int(task.name) for task, in_pool, _ in run._threads(pid) if in_pool
    }
