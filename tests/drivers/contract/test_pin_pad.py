"""PinPad contract, run on the simulated backend and on the ZT588 serial driver talking to
the PIN pad simulator over a pseudo-terminal. Decrypting the PIN block here plays the host's
verification step."""

import pytest

from drivers.errors import CancelledByCustomer, DeviceTimeout, PinPadFault
from protocol.pinblock import decrypt_format0
from protocol.security import KeyScheme, key_check_value, tdes_ecb
from tests.drivers.conftest import MASTER_KEY, PIN_KEY

PAN = "4000001234567899"


async def test_read_key(pin_pad):
    pin_pad.customer.press("F1", "5")
    assert await pin_pad.device.read_key(2.0) == "F1"
    assert await pin_pad.device.read_key(2.0) == "5"


async def test_read_key_times_out(pin_pad):
    with pytest.raises(DeviceTimeout):
        await pin_pad.device.read_key(0.05)


async def test_pin_entry_returns_an_encrypted_block_and_echoes_counts(pin_pad):
    echoes: list[int] = []
    pin_pad.customer.type_digits("99")
    pin_pad.customer.press("CLEAR")
    pin_pad.customer.type_digits("1234")
    pin_pad.customer.press("ENTER")
    block = await pin_pad.device.read_pin(PAN, 5.0, on_key=echoes.append)
    assert echoes == [1, 2, 0, 1, 2, 3, 4]
    assert b"1234" not in block.ciphertext and "1234" not in repr(block)
    assert decrypt_format0(block.ciphertext, PAN, PIN_KEY) == "1234"


async def test_enter_with_too_few_digits_is_ignored(pin_pad):
    pin_pad.customer.type_digits("12")
    pin_pad.customer.press("ENTER")
    pin_pad.customer.type_digits("34")
    pin_pad.customer.press("ENTER")
    block = await pin_pad.device.read_pin(PAN, 5.0)
    assert decrypt_format0(block.ciphertext, PAN, PIN_KEY) == "1234"


async def test_pin_entry_before_a_working_key_is_loaded_is_a_no_key_fault(pin_pad_without_key):
    pin_pad_without_key.customer.type_digits("1234")
    pin_pad_without_key.customer.press("ENTER")
    with pytest.raises(PinPadFault) as info:
        await pin_pad_without_key.device.read_pin(PAN, 5.0)
    assert info.value.code == "no_key"


async def test_cancel(pin_pad):
    pin_pad.customer.type_digits("12")
    pin_pad.customer.press("CANCEL")
    with pytest.raises(CancelledByCustomer):
        await pin_pad.device.read_pin(PAN, 5.0)


async def test_key_timeout_fault(pin_pad):
    pin_pad.customer.inject("key_timeout")
    with pytest.raises(DeviceTimeout):
        await pin_pad.device.read_pin(PAN, 5.0)
    with pytest.raises(DeviceTimeout):
        await pin_pad.device.read_key(5.0)


async def test_working_key_loading(pin_pad):
    new_key = bytes.fromhex("89ABCDEF0123456776543210FEDCBA98")
    encrypted = tdes_ecb(MASTER_KEY, new_key[:8]) + tdes_ecb(MASTER_KEY, new_key[8:])
    await pin_pad.device.load_working_key(encrypted, key_check_value(KeyScheme.TDES, new_key))
    pin_pad.customer.type_digits("5678")
    pin_pad.customer.press("ENTER")
    block = await pin_pad.device.read_pin(PAN, 5.0)
    assert decrypt_format0(block.ciphertext, PAN, new_key) == "5678"


async def test_working_key_with_wrong_check_value(pin_pad):
    encrypted = tdes_ecb(MASTER_KEY, bytes(8)) * 2
    with pytest.raises(PinPadFault) as info:
        await pin_pad.device.load_working_key(encrypted, "000000")
    assert info.value.code == "kcv"


async def test_silent_device_times_out(pin_pad):
    pin_pad.customer.inject("silent")
    with pytest.raises(DeviceTimeout):
        await pin_pad.device.read_key(5.0)
