"""The receipt's QR code drawn for a view: as SVG (the web panel) or as block characters (the
console). The printer draws the symbol itself from the text it was sent (``GS ( k``); a view
draws the same text again with reportlab's QR encoder (``reportlab.graphics.barcode``,
already the statements' dependency), so what a person scans on the screen reads back the
transaction reference the receipt carries.
"""

from __future__ import annotations

from reportlab.graphics.barcode import qrencoder

__all__ = ["QUIET_ZONE", "qr_blocks", "qr_matrix", "qr_svg"]

QUIET_ZONE = 4  # modules of white around the symbol, as ISO/IEC 18004 asks
MAX_BYTES = 1000  # far more than a reference; version 40 holds 2331 bytes at level M

_LEVELS = {
    "L": qrencoder.QRErrorCorrectLevel.L,
    "M": qrencoder.QRErrorCorrectLevel.M,
    "Q": qrencoder.QRErrorCorrectLevel.Q,
    "H": qrencoder.QRErrorCorrectLevel.H,
}


def qr_matrix(text: str, error_correction: str = "M") -> list[list[bool]]:
    """The symbol's modules, row by row (True: dark), without the quiet zone; the smallest
    version that holds ``text`` (reportlab picks numeric, alphanumeric or byte segments).
    ``ValueError`` for text too long."""
    if not text:
        raise ValueError("a QR code needs some text")
    if len(text.encode("utf-8")) > MAX_BYTES:
        raise ValueError(f"text too long for a QR code ({len(text)} characters)")
    code = qrencoder.QRCode(None, _LEVELS[error_correction])
    code.addData(text)
    code.make()
    size = code.getModuleCount()
    return [[bool(code.isDark(row, col)) for col in range(size)] for row in range(size)]


def qr_svg(text: str, module: int = 4) -> str:
    """An SVG of the symbol with its quiet zone, ``module`` pixels per module; one path of
    unit squares, crisp at any zoom."""
    matrix = qr_matrix(text)
    side = len(matrix) + 2 * QUIET_ZONE
    squares = "".join(
        f"M{col + QUIET_ZONE} {row + QUIET_ZONE}h1v1h-1z"
        for row, cells in enumerate(matrix)
        for col, dark in enumerate(cells)
        if dark
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {side} {side}" '
        f'width="{side * module}" height="{side * module}" shape-rendering="crispEdges" '
        f'role="img" aria-label="QR code of the transaction reference">'
        f'<rect width="{side}" height="{side}" fill="#fff"/>'
        f'<path d="{squares}" fill="#000"/></svg>'
    )


def qr_blocks(text: str) -> list[str]:
    """The symbol in block characters, two module rows per text line (upper and lower half
    blocks), dark modules drawn dark: meant for dark text on a light background, with the
    quiet zone as spaces."""
    matrix = qr_matrix(text)
    side = len(matrix)
    blank = [False] * side
    padded = [blank] * QUIET_ZONE + matrix + [blank] * QUIET_ZONE
    if len(padded) % 2:
        padded.append(blank)
    glyphs = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}
    margin = " " * QUIET_ZONE
    return [
        margin
        + "".join(glyphs[(top, bottom)] for top, bottom in zip(upper, lower, strict=True))
        + margin
        for upper, lower in zip(padded[::2], padded[1::2], strict=True)
    ]
