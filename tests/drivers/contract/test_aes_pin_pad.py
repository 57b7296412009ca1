"""The PIN pad with an AES master key (key scheme A), on the simulated backend and on the
ZT588 serial driver talking to the PIN pad simulator over a pseudo-terminal: the working key
arrives as the host builds it (``KeyBlock``: RFC 3394 wrap under the TMK, AES-CMAC check
value), and PIN entry gives ISO 9564 format 4 blocks. Decrypting them here plays the host's
verification step."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from drivers.errors import PinPadFault
from drivers.simulated import SimulatedPinPad
from drivers.transport import FAMILY_DEFAULTS, open_serial
from drivers.zt588 import Zt588PinPad
from protocol.pinblock import decrypt_format4
from protocol.security import KeyBlock, KeyScheme, WorkingKeys, generate_key
from simulators.pin_pad import PinPadSimulator
from simulators.ports import PtyPort
from tests.drivers.conftest import FAST, MASTER_KEY, Rig

PAN = "4000001234567899"
LONG_PAN = "6011000990139424123"  # 19 digits: format 4 binds all of them


@pytest.fixture(params=["sim", "serial"])
async def aes_pad(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    if request.param == "sim":
        pad = SimulatedPinPad(MASTER_KEY, scheme=KeyScheme.AES)
        await pad.open()
        yield Rig(pad, pad)
        return
    sim = PinPadSimulator(MASTER_KEY, scheme=KeyScheme.AES)
    port = PtyPort(sim)
    await port.start()
    device: Any = Zt588PinPad(
        lambda: open_serial(port.path, FAMILY_DEFAULTS["pin-pad"]), grace=0.5, pin_format=4, **FAST
    )
    await device.open()
    try:
        yield Rig(device, sim, port)
    finally:
        await device.close()
        port.close()


def _keys() -> tuple[WorkingKeys, KeyBlock]:
    keys = WorkingKeys(KeyScheme.AES, generate_key(KeyScheme.AES), generate_key(KeyScheme.AES))
    return keys, KeyBlock.build(keys, MASTER_KEY)


@pytest.mark.parametrize("pan", [PAN, LONG_PAN])
async def test_aes_working_key_then_format4_block(aes_pad, pan):
    keys, block = _keys()
    assert len(block.tpk_encrypted) == 24
    await aes_pad.device.load_working_key(block.tpk_encrypted, block.tpk_kcv)
    aes_pad.customer.type_digits("2580")
    aes_pad.customer.press("ENTER")
    pin_block = await aes_pad.device.read_pin(pan, 5.0)
    assert pin_block.format == 4 and len(pin_block.ciphertext) == 16
    assert decrypt_format4(pin_block.ciphertext, pan, keys.tpk) == "2580"
    # Format 4 blocks carry random fill: the same PIN twice gives two different blocks.
    aes_pad.customer.type_digits("2580")
    aes_pad.customer.press("ENTER")
    again = await aes_pad.device.read_pin(pan, 5.0)
    assert again.ciphertext != pin_block.ciphertext
    assert decrypt_format4(again.ciphertext, pan, keys.tpk) == "2580"


async def test_aes_working_key_with_a_wrong_check_value_is_refused(aes_pad):
    _, block = _keys()
    wrong = f"{int(block.tpk_kcv, 16) ^ 1:06X}"
    with pytest.raises(PinPadFault) as error:
        await aes_pad.device.load_working_key(block.tpk_encrypted, wrong)
    assert error.value.code == "kcv"


async def test_aes_working_key_under_another_master_key_is_refused(aes_pad):
    keys = WorkingKeys(KeyScheme.AES, generate_key(KeyScheme.AES), generate_key(KeyScheme.AES))
    block = KeyBlock.build(keys, bytes(range(16)))
    with pytest.raises(PinPadFault) as error:
        await aes_pad.device.load_working_key(block.tpk_encrypted, block.tpk_kcv)
    assert error.value.code == "unwrap"


async def test_a_tdes_length_key_is_refused_by_an_aes_pad(aes_pad):
    with pytest.raises(PinPadFault) as error:
        await aes_pad.device.load_working_key(bytes(16), "000000")
    assert error.value.code == "key_length"


async def test_zt588_pad_refuses_the_other_format():
    """A TDES pad asked for format 4 answers E5 (format not supported)."""
    sim = PinPadSimulator(MASTER_KEY)
    port = PtyPort(sim)
    await port.start()
    device = Zt588PinPad(
        lambda: open_serial(port.path, FAMILY_DEFAULTS["pin-pad"]), grace=0.5, pin_format=4, **FAST
    )
    await device.open()
    try:
        with pytest.raises(PinPadFault) as error:
            await device.read_pin(PAN, 5.0)
        assert error.value.code == "format"
    finally:
        await device.close()
        port.close()


async def test_aes_pad_compares_two_format4_blocks_inside(aes_pad):
    """New PIN and confirmation: format 4 blocks of one PIN differ, so the pad compares."""
    _, block = _keys()
    await aes_pad.device.load_working_key(block.tpk_encrypted, block.tpk_kcv)
    blocks = []
    for pin in ("4826", "4826", "4827"):
        aes_pad.customer.type_digits(pin)
        aes_pad.customer.press("ENTER")
        blocks.append(await aes_pad.device.read_pin(PAN, 5.0))
    assert blocks[0].ciphertext != blocks[1].ciphertext
    assert await aes_pad.device.same_pin(blocks[0], blocks[1], PAN)
    assert not await aes_pad.device.same_pin(blocks[0], blocks[2], PAN)
