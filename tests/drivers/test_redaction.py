"""No track data reaches a log line from the serial drivers: a card reader's read reply that
arrives after its command timed out (a stale reply, holding the whole track) is logged by
kind only, and every log record passes through redaction (protocol.masking)."""

import logging

import pytest

from drivers.codecs import sankyo
from drivers.codecs.sankyo import SankyoCommand
from drivers.errors import DeviceTimeout
from tests.drivers.conftest import TRACK2, make_rig

PAN = TRACK2.split("=")[0]


async def test_a_stale_card_reader_reply_is_logged_without_the_track(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    rig = await make_rig("card-reader", "serial")
    try:
        rig.customer.insert(TRACK2)
        await rig.device.accept_card()
        # The reader answers a track read that the driver no longer waits for (as after a
        # timeout): the reply is not the awaited one, so it is a stale reply.
        with pytest.raises(DeviceTimeout):
            await rig.device.link.exchange(
                SankyoCommand(sankyo.READ_TRACK, b"2").encode(),
                reply_timeout=0.4,
                is_reply=lambda frame: False,
                resend_on_timeout=False,
            )
        assert (await rig.device.read_card()).track2 == TRACK2  # the reader is usable again
    finally:
        await rig.device.close()
        assert rig.port is not None
        rig.port.close()
    stale = [r.getMessage() for r in caplog.records if "stale reply" in r.getMessage()]
    assert stale, [r.getMessage() for r in caplog.records]
    for record in caplog.records:
        text = caplog.handler.format(record)
        assert PAN not in text and TRACK2[17:] not in text, text
