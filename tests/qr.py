"""Reading a QR code back as a phone would, with a real decoder (zxing-cpp): from a picture
(a browser screenshot) or from the console's block characters drawn as a picture."""

from __future__ import annotations

import io
from collections.abc import Sequence

import zxingcpp
from PIL import Image

PIXELS = 6  # per module when a block drawing is turned into a picture

_TOP = {" ": False, "▀": True, "▄": False, "█": True}
_BOTTOM = {" ": False, "▀": False, "▄": True, "█": True}


def read_png(png: bytes) -> list[str]:
    """The texts of the QR codes in a PNG picture."""
    image = Image.open(io.BytesIO(png)).convert("L")
    return [result.text for result in zxingcpp.read_barcodes(image)]


def read_blocks(lines: Sequence[str]) -> list[str]:
    """The texts of the QR codes in lines of half-block characters (two module rows a
    line, dark glyphs dark), as the console draws the receipt's QR code."""
    width = max(len(line) for line in lines)
    rows: list[list[bool]] = []
    for line in lines:
        line = line.ljust(width)
        rows.append([_TOP[ch] for ch in line])
        rows.append([_BOTTOM[ch] for ch in line])
    image = Image.new("L", (width * PIXELS, len(rows) * PIXELS), 255)
    for y, row in enumerate(rows):
        for x, dark in enumerate(row):
            if dark:
                image.paste(0, (x * PIXELS, y * PIXELS, (x + 1) * PIXELS, (y + 1) * PIXELS))
    return [result.text for result in zxingcpp.read_barcodes(image)]
