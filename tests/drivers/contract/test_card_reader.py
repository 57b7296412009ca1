"""CardReader contract, run on the simulated backend and on the Sankyo serial driver talking
to the card reader simulator over a pseudo-terminal."""

import pytest

from drivers.errors import CardReaderFault, DeviceTimeout
from tests.drivers.conftest import TRACK2


async def test_insert_read_eject_take(card_reader):
    card_reader.customer.insert(TRACK2)
    await card_reader.device.accept_card()
    card = await card_reader.device.read_card()
    assert card.pan == "4000001234567899" and card.expiry == "3012"
    card_reader.customer.take_card()
    assert await card_reader.device.eject(2.0) is True


async def test_card_not_taken_is_captured(card_reader):
    card_reader.customer.insert(TRACK2)
    await card_reader.device.accept_card()
    assert await card_reader.device.eject(0.05) is False
    await card_reader.device.capture()
    assert len(card_reader.customer.captured) == 1
    assert "4000001234567899" not in str(card_reader.customer.captured)


async def test_unreadable_card_stays_inside_and_can_be_ejected(card_reader):
    card_reader.customer.inject("unreadable")
    card_reader.customer.insert(TRACK2)
    await card_reader.device.accept_card()
    with pytest.raises(CardReaderFault) as info:
        await card_reader.device.read_card()
    assert info.value.code == "read_error"
    card_reader.customer.take_card()
    assert await card_reader.device.eject(2.0) is True


async def test_garbage_track_is_a_read_error(card_reader):
    card_reader.customer.insert("not a track")
    await card_reader.device.accept_card()
    with pytest.raises(CardReaderFault) as info:
        await card_reader.device.read_card()
    assert info.value.code == "read_error"


async def test_card_jam(card_reader):
    card_reader.customer.insert(TRACK2)
    await card_reader.device.accept_card()
    card_reader.customer.inject("card_jam")
    with pytest.raises(CardReaderFault) as info:
        await card_reader.device.read_card()
    assert info.value.code == "jam"
    with pytest.raises(CardReaderFault) as info:
        await card_reader.device.eject(1.0)
    assert info.value.code == "jam"


async def test_capture_bin_full(card_reader):
    card_reader.customer.inject("capture_bin_full")
    card_reader.customer.insert(TRACK2)
    await card_reader.device.accept_card()
    with pytest.raises(CardReaderFault) as info:
        await card_reader.device.capture()
    assert info.value.code == "bin_full"


async def test_second_card_waits_for_the_next_session(card_reader):
    card_reader.customer.insert(TRACK2)
    card_reader.customer.insert("4000009876543219=30121010000000000000")
    await card_reader.device.accept_card()
    assert (await card_reader.device.read_card()).pan == "4000001234567899"
    card_reader.customer.take_card()
    assert await card_reader.device.eject(2.0)
    await card_reader.device.accept_card()
    assert (await card_reader.device.read_card()).pan == "4000009876543219"


async def test_silent_device_times_out(card_reader):
    card_reader.customer.inject("silent")
    with pytest.raises(DeviceTimeout):
        await card_reader.device.accept_card()
