"""``atm demo`` with no options in a real terminal (a pseudo-terminal) opens the console on a
fresh embedded host; Ctrl+Q closes it cleanly. Reads wait on the terminal's output (select),
never on sleeps."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(rb"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|.)")


def read_until(fd: int, wanted: bytes, seen: bytearray, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while wanted not in ANSI.sub(b"", bytes(seen)):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return False
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the other side closed
            return wanted in ANSI.sub(b"", bytes(seen))
        if not chunk:
            return False
        seen += chunk
    return True


def test_demo_opens_the_console_in_a_terminal(tmp_path):
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 180, 0, 0))
    env = {
        **os.environ,
        "TERM": "xterm-256color",
        "BCRYPT_ROUNDS": "4",
        "ENVIRONMENT": "testing",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("TEXTUAL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "atm", "demo"],
        stdin=child,
        stdout=child,
        stderr=child,
        cwd=tmp_path,
        env=env,
        start_new_session=True,
    )
    os.close(child)
    seen = bytearray()
    try:
        assert read_until(main, b"Please insert your card", seen), ANSI.sub(b"", bytes(seen))
        assert read_until(main, b"Receipt roll", seen)
        os.write(main, b"\x11")  # Ctrl+Q
        assert read_until(main, b"finishing the session", seen), ANSI.sub(b"", bytes(seen))
        assert read_until(main, b"ATM ATM00001: idle", seen), ANSI.sub(b"", bytes(seen))
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main)
    assert b"Traceback" not in ANSI.sub(b"", bytes(seen))
