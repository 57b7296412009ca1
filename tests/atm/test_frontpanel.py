"""The front-panel model and its bench without any UI: clear errors for an unreachable host or
a wrong device URL, external simulators driven through their control channel (real TCP), and
quitting that never leaves a session half done. Waits are on the panel's events."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from atm.devices import simulator_for
from atm.frontpanel import Bench, BenchError, BenchOptions, FrontPanel, PanelError
from atm.frontpanel.model import track2_for
from atm.frontpanel.sides import parse_state
from atm.steps import TRACKS
from device.config import DeviceConfig
from host.app import Host
from host.config import HostConfig
from simulators.control import ControlChannel, serve_control
from simulators.dispenser import DispenserSimulator
from simulators.ports import TcpPort

ALICE_CHECKING = "1000-0001-0001"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def bench(
    host_config: HostConfig | None, tmp_path: Path, **options: Any
) -> AsyncIterator[tuple[Bench, FrontPanel]]:
    device = {"reconnect_delay": 0.05, **options.pop("device", {})}
    b = Bench(BenchOptions(work_dir=tmp_path / "console", device=device, **options), host_config)
    panel = await b.start()
    try:
        yield b, panel
    finally:
        await b.close()


def on(screen_id: str) -> Any:
    return lambda p: p.screen is not None and p.screen.id == screen_id


async def withdraw_100(panel: FrontPanel) -> None:
    await panel.wait_for(on("welcome"))
    await panel.insert_card("alice")
    await panel.wait_for(on("enter_pin"))
    await panel.type_pin("1234")
    await panel.wait_for(on("main_menu"))
    await panel.press("F1")
    await panel.wait_for(on("select_account"))
    await panel.press("F1")
    await panel.wait_for(on("select_amount"))
    await panel.press("F4")


async def test_unreachable_host_is_a_clear_error(tmp_path):
    port = free_port()
    b = Bench(BenchOptions(host=f"127.0.0.1:{port}", work_dir=tmp_path))
    with pytest.raises(BenchError) as caught:
        await b.start()
    message = str(caught.value)
    assert f"cannot reach the host at 127.0.0.1:{port}" in message
    assert "atm host" in message and "leave out --host" in message


@pytest.mark.parametrize(
    ("urls", "controls", "expected"),
    [
        ({"dispenser": "ftp://x"}, {}, "device URL: 'ftp://x': unknown device URL"),
        ({"printer": "serial:///dev/no-such-port"}, {}, "device not answering: printer at"),
        ({}, {"coffee-machine": "1"}, "unknown device 'coffee-machine'"),
    ],
)
async def test_wrong_device_is_a_clear_error(host_config, tmp_path, urls, controls, expected):
    b = Bench(BenchOptions(urls=urls, controls=controls, work_dir=tmp_path), host_config)
    with pytest.raises(BenchError) as caught:
        await b.start()
    assert expected in str(caught.value)
    assert b.host is None and b.relay is None  # nothing left running


async def test_missing_control_channel_is_a_clear_error(host_config, tmp_path):
    sim = simulator_for("dispenser", DeviceConfig())
    port = TcpPort(sim)
    device_port = await port.start()
    control_port = free_port()
    try:
        b = Bench(
            BenchOptions(
                urls={"dispenser": f"socket://127.0.0.1:{device_port}"},
                controls={"dispenser": f"127.0.0.1:{control_port}"},
                work_dir=tmp_path,
            ),
            host_config,
        )
        with pytest.raises(BenchError) as caught:
            await b.start()
    finally:
        await port.close()
    assert f"dispenser control channel at 127.0.0.1:{control_port}" in str(caught.value)
    assert "atm sim dispenser" in str(caught.value)


def test_any_card_number_and_expiry():
    assert track2_for("4000 0012 3456 7899", "12/30") == TRACKS["alice"]
    assert track2_for("4000001234567899", "3012") == TRACKS["alice"]
    with pytest.raises(PanelError, match="12 to 19 digits"):
        track2_for("4000-0012", "3012")
    with pytest.raises(PanelError, match="YYMM"):
        track2_for("4000001234567899", "3013")


def test_state_line_of_a_remote_simulator():
    state = parse_state(
        "faults=jam position='gate' tray={0: 2, 1: 1} reject_bin={} retracted=0 "
        "cassettes=[2000c x 498, 5000c x 199] captured=1"
    )
    assert state.faults == ("jam",)
    assert state.card_position == "gate"
    assert state.tray == {0: 2, 1: 1}
    assert state.cassettes == ((2000, 498), (5000, 199))
    assert state.cards_captured == 1


async def test_external_dispenser_through_its_control_channel(host_config, tmp_path):
    """``atm sim dispenser --tcp`` in all but process: the LCDM simulator on TCP and its
    control channel; the panel takes the cash and injects faults over that channel."""
    sim = simulator_for("dispenser", DeviceConfig())
    assert isinstance(sim, DispenserSimulator)
    port = TcpPort(sim)
    device_port = await port.start()
    control = await serve_control(ControlChannel(sim, TRACKS))
    control_port = control.sockets[0].getsockname()[1]
    try:
        async with bench(
            host_config,
            tmp_path,
            urls={"dispenser": f"socket://127.0.0.1:{device_port}"},
            controls={"dispenser": f"127.0.0.1:{control_port}"},
        ) as (_, panel):
            side = panel.side("dispenser")
            assert "control channel" in side.where and "jam" in side.fault_names
            await withdraw_100(panel)
            await panel.wait_for(on("take_cash"))
            await panel.refresh_devices()
            assert panel.cash_tray() == [(5000, 2)]
            assert await panel.take_cash() == "ok"
            await panel.wait_for(on("take_card"))
            await panel.take_card()
            await panel.wait_for(on("welcome"))
            assert panel.balance(ALICE_CHECKING) == 515_000
            assert sim.taken_total == {1: 2}
            reply = await panel.inject("dispenser", "jam")
            assert reply == "ok injected jam" and sim.faults == {"jam"}
            with pytest.raises(PanelError, match="no fault 'melt'"):
                await panel.inject("dispenser", "melt")
            await panel.clear("dispenser")
            assert sim.faults == set()
    finally:
        await port.close()
        control.close()
        await control.wait_closed()


async def test_real_hardware_says_so(host_config, tmp_path):
    sim = simulator_for("printer", DeviceConfig())
    port = TcpPort(sim)
    device_port = await port.start()
    try:
        async with bench(
            host_config, tmp_path, urls={"printer": f"socket://127.0.0.1:{device_port}"}
        ) as (_, panel):
            reply = await panel.inject("printer", "paper_out")
            assert reply.startswith("error: the printer at socket://") and "real device" in reply
            assert panel.notices[-1].error
    finally:
        await port.close()


async def test_quitting_with_cash_in_the_tray_retracts_and_reverses(host_config, tmp_path):
    async with bench(host_config, tmp_path, device={"cash_take_timeout": 0.5}) as (b, panel):
        await withdraw_100(panel)
        await panel.wait_for(on("take_cash"))
        assert panel.cash_tray_cents() == 10_000
        lines = await b.close()  # the person quits, leaving the cash
        assert lines == ["ATM ATM00001: idle"]
        journal = "\n".join(panel.journal_tail)
        assert "CASH_RETRACTED" in journal and "reason=4018" in journal
        assert "CARD_RETURNED" in journal and "CARD_CAPTURED" not in journal
        assert [e for e in panel.link_log if e.mti == "0430"]  # the host acknowledged the reversal
    # The ledger of the console's host: nothing was taken from Alice.
    url = f"sqlite:///{tmp_path / 'console' / 'host.db'}"
    check = Host(dataclasses.replace(host_config, database_url=url))
    try:
        assert check.balance(ALICE_CHECKING) == 525_000
    finally:
        await check.close()


async def test_quitting_at_the_pin_gives_the_card_back(host_config, tmp_path):
    async with bench(host_config, tmp_path) as (b, panel):
        await panel.wait_for(on("welcome"))
        await panel.insert_card("bob")
        await panel.wait_for(on("enter_pin"))
        await panel.press("5", "6")
        assert await b.close() == ["ATM ATM00001: idle"]
        journal = "\n".join(panel.journal_tail)
        assert "CANCELLED" in journal and "CARD_RETURNED" in journal
        assert panel.state == "idle"


def test_console_command_needs_a_terminal(capsys):
    from atm.cli import main

    assert main(["console"]) == 2  # pytest's stdin and stdout are no terminal
    assert "atm console: needs an interactive terminal" in capsys.readouterr().err


async def test_console_command_reports_an_unreachable_host(capsys, tmp_path):
    from atm.commands.console import run_console

    port = free_port()
    options = BenchOptions(host=f"127.0.0.1:{port}", work_dir=tmp_path)
    assert await run_console(options, None) == 2
    err = capsys.readouterr().err
    assert f"atm console: cannot reach the host at 127.0.0.1:{port}" in err


async def test_quitting_during_the_more_time_warning_gives_the_card_back(host_config, tmp_path):
    async with bench(host_config, tmp_path, device={"key_timeout": 0.2}) as (b, panel):
        await panel.wait_for(on("welcome"))
        await panel.insert_card("alice")
        await panel.wait_for(on("enter_pin"))
        await panel.type_pin("1234")
        await panel.wait_for(on("more_time"))
        assert await b.close() == ["ATM ATM00001: idle"]
        journal = "\n".join(panel.journal_tail)
        assert "MORE_TIME_ASKED" in journal and "CARD_RETURNED" in journal


async def test_serial_simulators_show_their_last_bytes_without_card_data(host_config, tmp_path):
    urls = dict.fromkeys(("card-reader", "pin-pad", "dispenser", "printer"), "pty")
    async with bench(host_config, tmp_path, urls=urls) as (_, panel):
        await withdraw_100(panel)
        await panel.wait_for(on("take_cash"))
        assert panel.cash_tray() == [(5000, 2)]
        await panel.take_cash()
        await panel.wait_for(on("take_card"))
        states = {kind: panel.device_state(kind) for kind in urls}  # the four on serial
        for kind, state in states.items():
            assert "last out" in state.frames and "(" in state.frames, kind
            assert "4000001234567899" not in state.summary + state.frames
            assert "34 30 30 30 30 31 32 33" not in state.frames  # the PAN's digits in hex
        assert "pty serial://" in panel.side("dispenser").where
        await panel.take_card()
        await panel.wait_for(on("welcome"))
        assert panel.balance(ALICE_CHECKING) == 515_000
