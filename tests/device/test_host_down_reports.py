"""A host that is down is reported once, then at growing intervals, then once when it is back;
not once per reconnect attempt. Real sockets (a port nobody listens on, then a real host);
the reporter's clock is injected, so no test waits for an interval to pass."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from device.config import DeviceConfig
from device.hostlink import DownReports, HostLink, LinkTiming
from protocol.stan import StanGenerator


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def reports(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "device.hostlink"]


async def test_down_is_reported_once_then_at_growing_intervals(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = DeviceConfig(host="127.0.0.1", port=dead_port(), state_dir=tmp_path)
    # The background keeper retries too; a long backoff keeps it to its first attempt.
    link = HostLink(config, StanGenerator(), timing=LinkTiming(backoff_initial=60))
    clock = Clock()
    link.down_reports = DownReports(clock, first_interval=30, max_interval=120)
    caplog.set_level(logging.WARNING, logger="device.hostlink")
    try:
        # One attempt every 5 s for 10 minutes, as the out-of-service screen retries.
        for _ in range(120):
            assert not await link.ensure_online()
            clock.now += 5
    finally:
        await link.close()
    said = reports(caplog)
    assert said[0].startswith("host link not available: ")
    later = said[1:]
    # 30 s, then 60, 120, 120, ... : 1 + 1 + 1 + 3 within 600 s, instead of 120 lines.
    assert 4 <= len(later) <= 6, said
    assert all(line.startswith("host link still not available after ") for line in later)
    assert link.down_reports.attempts >= 120


def test_back_is_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="device.hostlink")
    clock = Clock()
    down = DownReports(clock, first_interval=30)
    down.back()  # never down: nothing to say, nothing counted
    assert down.attempts == 0
    down.failed("refused")
    clock.now += 10
    down.failed("refused")
    down.back()
    assert down.attempts == 0
    assert reports(caplog) == [
        "host link not available: refused (retrying; reported again less often)",
        "host link back after 2 failed attempts in 10 s",
    ]
