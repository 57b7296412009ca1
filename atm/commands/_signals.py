"""Stopping a long-running command on SIGINT (Ctrl-C) and SIGTERM (``docker stop``). Its own
module, importing nothing of ours: the thin commands (``atm device``, ``atm sim``) use it and
must not load the host."""

from __future__ import annotations

import asyncio
import contextlib
import signal

__all__ = ["stop_on_signals"]


def stop_on_signals(
    signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM),
) -> asyncio.Event:
    """An event that ``signals`` set (SIGINT and SIGTERM: Ctrl-C and ``docker stop``), where
    the running loop can take signal handlers (not on a thread other than the main one)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in signals:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    return stop
