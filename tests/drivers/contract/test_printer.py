"""ReceiptPrinter contract, run on the simulated backend and on the ESC/POS driver talking to
the printer simulator over a pseudo-terminal."""

import pytest

from drivers.errors import DeviceTimeout, PrinterFault
from drivers.interfaces import PaperState, PrinterStatus


async def test_status_and_print(printer):
    assert await printer.device.status() == PrinterStatus(PaperState.OK)
    await printer.device.print_receipt(["ATM SIMULATOR BANK", "AMOUNT  $100.00"])
    assert printer.customer.receipts == [["ATM SIMULATOR BANK", "AMOUNT  $100.00"]]


async def test_receipt_with_a_qr_code(printer):
    # Over the serial path the QR code travels as ESC/POS GS ( k: stored, then printed.
    lines = ["ATM SIMULATOR BANK", "STAN          000042"]
    await printer.device.print_receipt(lines, qr="ATM00001-000042-000000000042")
    assert printer.customer.receipts == [lines]
    assert printer.customer.qr_codes == ["ATM00001-000042-000000000042"]


async def test_paper_near_end_still_prints(printer):
    printer.customer.inject("paper_near_end")
    assert (await printer.device.status()).paper is PaperState.NEAR_END
    await printer.device.print_receipt(["x"])
    assert len(printer.customer.receipts) == 1


async def test_paper_out(printer):
    printer.customer.inject("paper_out")
    status = await printer.device.status()
    assert status.paper is PaperState.OUT and not status.can_print
    with pytest.raises(PrinterFault):
        await printer.device.print_receipt(["x"])
    assert printer.customer.receipts == []


async def test_cover_open(printer):
    printer.customer.inject("cover_open")
    assert (await printer.device.status()).cover_open
    with pytest.raises(PrinterFault):
        await printer.device.print_receipt(["x"])


async def test_silent_device_times_out(printer):
    printer.customer.inject("silent")
    with pytest.raises(DeviceTimeout):
        await printer.device.status()
