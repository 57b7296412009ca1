"""AES terminals on the ATM side (issue 3: format 0 under TDES, format 4 under AES, per
terminal): a full withdrawal from terminal ATM00003 on key scheme A against the real host over
TCP (configured with that terminal on scheme A), once with the in-process simulated PIN pad and
once with the ZT588 driver talking to the PIN pad simulator over a real pseudo-terminal. The
frames are read as they crossed a real TCP relay."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from atm.demo import HoldingRelay
from atm.devices import open_kit
from atm.scripts import ALICE_CHECKING, Customer
from device.config import DeviceConfig
from device.controller import AtmController
from device.errors import DeviceConfigError
from device.states import State
from host.app import Host
from host.config import HostConfig
from host.link.config import LinkConfig
from protocol.framing import Framer
from protocol.messages import decode
from protocol.security import KeyScheme
from tests.device.conftest import Atm

AES_TERMINAL = "ATM00003"


@pytest.fixture
async def aes_host(host_config: HostConfig) -> AsyncIterator[tuple[Host, HoldingRelay, int]]:
    config = dataclasses.replace(
        host_config, link=LinkConfig(schemes={AES_TERMINAL: KeyScheme.AES})
    )
    host = Host(config)
    await asyncio.to_thread(host.upgrade_and_seed)
    port = await host.start("127.0.0.1", 0)
    relay = HoldingRelay("127.0.0.1", port)
    relay_port = await relay.start()
    try:
        yield host, relay, relay_port
    finally:
        await relay.close()
        await host.close()


def _config(relay_port: int, tmp_path: Path, host: Host) -> DeviceConfig:
    return DeviceConfig(
        terminal_id=AES_TERMINAL,
        key_scheme=KeyScheme.AES,
        port=relay_port,
        state_dir=tmp_path / "device",
        reconnect_delay=0.05,
    )


def _sent_messages(relay: HoldingRelay) -> list[dict[str, str]]:
    return [decode(frame) for frame in Framer().feed(bytes(relay.sent))]


async def _withdraw_100(atm: Atm) -> None:
    await atm.start()
    await atm.login("alice", "1234")
    atm.keys("F1")
    await atm.screen("select_account")
    atm.keys("F1")
    await atm.screen("select_amount")
    atm.keys("F4")
    await atm.screen("take_cash")
    atm.customer.take_cash()
    await atm.screen("take_card")
    atm.customer.take_card()
    await atm.state(State.idle)


def _check_aes_withdrawal(atm: Atm, host: Host, relay: HoldingRelay, before: int) -> None:
    assert host.balance(ALICE_CHECKING) == before - 10_000
    sent = _sent_messages(relay)
    signon = next(m for m in sent if m["t"] == "0800" and m.get("70") == "001")
    assert signon["48"] == "A"
    withdrawal = next(m for m in sent if m["t"] == "0200")
    assert withdrawal["41"] == AES_TERMINAL
    assert len(withdrawal["52"]) == 32  # a format 4 block: 16 bytes, 32 hex digits
    int(withdrawal["52"], 16)
    # The MAC on an AES terminal is AES-CMAC, still 16 hex characters in DE 64/128.
    assert len(withdrawal.get("64") or withdrawal["128"]) == 16
    assert [r["format"] for r in atm.events("PIN_ENTERED")] == ["4"]
    assert atm.events("DISPENSE_RESULT")[0]["dispensed"] == "10000"
    text = "\n".join(atm.journal())
    assert withdrawal["52"] not in text and "4000001234567899" not in text


async def test_aes_terminal_withdrawal_with_the_simulated_pin_pad(aes_host, tmp_path):
    host, relay, relay_port = aes_host
    before = host.balance(ALICE_CHECKING)
    config = _config(relay_port, tmp_path, host)
    kit = await open_kit({}, config)
    assert kit.card_reader and kit.pin_pad and kit.dispenser
    atm = Atm(
        AtmController(config, kit.devices), Customer(kit.card_reader, kit.pin_pad, kit.dispenser)
    )
    try:
        await _withdraw_100(atm)
    finally:
        await atm.stop()
        kit.close()
    _check_aes_withdrawal(atm, host, relay, before)


async def test_aes_terminal_withdrawal_with_the_serial_pin_pad(aes_host, tmp_path):
    """The PIN pad is the ZT588 simulator on a pty, driven by the serial driver."""
    host, relay, relay_port = aes_host
    before = host.balance(ALICE_CHECKING)
    config = _config(relay_port, tmp_path, host)
    kit = await open_kit({"pin-pad": "pty"}, config)
    assert kit.card_reader and kit.pin_pad and kit.dispenser
    assert kit.urls["pin-pad"].startswith("serial://")
    atm = Atm(
        AtmController(config, kit.devices), Customer(kit.card_reader, kit.pin_pad, kit.dispenser)
    )
    try:
        await _withdraw_100(atm)
    finally:
        await atm.stop()
        kit.close()
    _check_aes_withdrawal(atm, host, relay, before)


@pytest.mark.parametrize("pin_pad", ["sim", "pty"])
async def test_aes_terminal_pin_change(aes_host, tmp_path, pin_pad):
    """PIN change on an AES terminal: the two format 4 entries differ (random fill) and the
    pad compares them; the host then knows only the new PIN."""
    host, _, relay_port = aes_host
    config = _config(relay_port, tmp_path, host)
    kit = await open_kit({"pin-pad": pin_pad}, config)
    assert kit.card_reader and kit.pin_pad and kit.dispenser
    atm = Atm(
        AtmController(config, kit.devices), Customer(kit.card_reader, kit.pin_pad, kit.dispenser)
    )
    try:
        await atm.start()
        await atm.login("charlie", "9012")
        atm.keys("F4")
        await atm.screen("new_pin")
        atm.customer.type("4826")
        await atm.screen("confirm_pin")
        atm.customer.type("4826")
        await atm.screen("another")
        atm.keys("F8")
        await atm.screen("take_card")
        atm.customer.take_card()
        await atm.state(State.idle)
        await atm.login("charlie", "4826")
        atm.keys("F2")
        await atm.screen("select_account")
        atm.keys("F1")
        await atm.screen("balance")
    finally:
        await atm.stop()
        kit.close()
    assert "NEW_PIN_MISMATCH" not in "\n".join(atm.journal())
    assert [r["code"] for r in atm.events("TXN_RESPONSE")] == ["00", "00"]


def test_key_scheme_is_validated():
    assert DeviceConfig(key_scheme="a").key_scheme is KeyScheme.AES  # type: ignore[arg-type]
    with pytest.raises(DeviceConfigError, match="key scheme must be T"):
        DeviceConfig(key_scheme="X")  # type: ignore[arg-type]
    with pytest.raises(DeviceConfigError, match="terminal_master_key"):
        DeviceConfig(terminal_master_key="00")
