"""python-escpos 3.1, a client library nobody on the project wrote, drives the printer
simulator over a real pseudo-terminal and over TCP: text, styles, cut, barcode, QR code (native
and as an image), raster image, the status queries, and each injected fault read back through
``is_online()`` and ``paper_status()``.

python-escpos is synchronous (pyserial, sockets), so its calls run in a worker thread while the
simulator serves on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from escpos.printer import Network, Serial
from PIL import Image as PILImage

from drivers.codecs.escpos import Barcode, Image, QrCode
from simulators.ports import PtyPort, TcpPort
from simulators.printer import LINE_DOTS, PrinterSimulator


@pytest.fixture(params=["pty", "tcp"])
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[tuple[PrinterSimulator, Any]]:
    sim = PrinterSimulator()
    if request.param == "pty":
        port = PtyPort(sim)
        path = await port.start()
        client: Any = Serial(devfile=path, baudrate=19200, timeout=0.5, dsrdtr=False)
    else:
        tcp = TcpPort(sim)
        number = await tcp.start()
        client = Network("127.0.0.1", port=number, timeout=5)
    await asyncio.to_thread(client.open)
    try:
        yield sim, client
    finally:
        await asyncio.to_thread(client.close)
        if request.param == "pty":
            port.close()
        else:
            await tcp.close()


async def run(call: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(call)


async def test_text_styles_and_cut(rig):
    sim, p = rig

    def job() -> None:
        p.hw("INIT")
        p.set(align="center", bold=True, double_height=True, double_width=True)
        p.textln("ATM SIMULATOR BANK")
        p.set(normal_textsize=True, bold=False, align="left", underline=1, font="b")
        p.textln("AMOUNT  $100.00")
        p.cut()

    await run(job)
    assert await run(p.is_online)  # a status round trip: every byte before it was parsed
    assert sim.receipts == [["ATM SIMULATOR BANK", "AMOUNT  $100.00"]]
    # double height takes 48 dots; 6 lines fed before the cut; the second line 30.
    assert sim.paper_dots == 3000 * LINE_DOTS - 48 - 30 - 6 * LINE_DOTS


async def test_barcode_qr_and_image_are_items_not_text(rig):
    sim, p = rig
    picture = PILImage.new("1", (64, 20), color=1)

    def job() -> None:
        p.hw("INIT")
        p.textln("REF 000123")
        p.barcode("4006381333931", "EAN13", height=80, width=2, pos="BELOW", function_type="A")
        p.qr("https://atm.test/r/000123", native=True, size=4)
        p.qr("https://atm.test/r/000124", native=False, size=3)
        p.image(picture, impl="bitImageRaster")
        p.image(picture, impl="graphics")
        p.image(picture, impl="bitImageColumn")
        p.textln("THANK YOU")
        p.cut()

    await run(job)
    assert await run(p.is_online)
    (lines,) = sim.receipts
    # no command parameter printed as text (the library feeds blank lines around images)
    assert [line for line in lines if line] == ["REF 000123", "THANK YOU"], lines
    (items,) = sim.receipt_items
    assert items[0] == "REF 000123" and items[-1] == "THANK YOU"
    kinds = [type(item).__name__ for item in items[1:-1]]
    assert kinds[:2] == ["Barcode", "QrCode"]
    barcode, qr = items[1], items[2]
    assert isinstance(barcode, Barcode) and barcode.symbology == "EAN13"
    assert barcode.data.startswith(b"400638133393")
    assert isinstance(qr, QrCode) and qr.data == b"https://atm.test/r/000123"
    # the QR code rendered by the library as an image, then the three image commands
    images = [item for item in items if isinstance(item, Image)]
    assert {image.command for image in images} >= {"GS v 0", "GS ( L", "ESC *"}
    assert all(image.width >= 64 for image in images if image.command != "ESC *")


@pytest.mark.parametrize(
    ("fault", "online", "paper"),
    [
        (None, True, 2),
        ("paper_near_end", True, 1),
        ("paper_out", False, 0),
        ("cover_open", False, 2),
    ],
)
async def test_status_queries_and_faults(rig, fault, online, paper):
    sim, p = rig
    if fault:
        sim.inject(fault)
    assert await run(p.is_online) is online
    assert await run(p.paper_status) == paper


async def test_nothing_prints_while_the_paper_is_out(rig):
    sim, p = rig
    sim.inject("paper_out")

    def job() -> None:
        p.textln("LOST LINE")
        p.qr("https://atm.test/lost", native=True)
        p.cut()

    await run(job)
    assert await run(p.paper_status) == 0
    assert sim.receipts == [] and sim.lines_lost == 1 and sim.items_lost == 1
