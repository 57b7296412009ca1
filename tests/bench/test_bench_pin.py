"""The PIN capacity figure's accounting (bench/run.py): the CPU of the host's bcrypt threads
is told apart from the rest of the process, and the pool threads' time on a CPU is read
from the kernel. Checked on a real PIN pool in this process (Linux /proc)."""

import os
import threading
import time
from types import ModuleType

import bcrypt

from host.bank.pins import PinVerifier
from tests.bench.scripts import load_script


def _bench_run() -> ModuleType:
    return load_script("run")


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
