"""ESC/POS receipt printer codec: commands out, real-time status bytes in (host side), and an
incremental command parser (printer side, used by the simulator).

The driver sends ``ESC @`` initialise; text + ``LF``; ``ESC d n`` feed n lines; ``GS V 0``/
``GS V 1`` full / partial cut; ``DLE EOT n`` real-time status, answered with one byte whose fixed
bits are 0x12 (bits 1 and 4 set, bits 0 and 7 clear). The printer-side parser knows the whole
common command set (styles, code pages, barcodes, 2-D codes, bit, raster and graphics images).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CUT_FULL",
    "CUT_PARTIAL",
    "INIT",
    "LINE_DOTS",
    "Barcode",
    "Cut",
    "EscPosParser",
    "Feed",
    "FeedDots",
    "Image",
    "Init",
    "LineFeed",
    "PrinterEvent",
    "QrCode",
    "Setting",
    "StatusByte",
    "StatusRequest",
    "Text",
    "Unknown",
    "encode_line",
    "feed",
    "qr_code",
    "status_request",
]

ESC, GS, DLE, EOT, LF, CR = 0x1B, 0x1D, 0x10, 0x04, 0x0A, 0x0D
LINE_DOTS = 30  # paper fed by a text line at the default spacing (ESC 2): 1/6 inch at 180 dpi
INIT = bytes([ESC, 0x40])
CUT_FULL = bytes([GS, 0x56, 0x00])
CUT_PARTIAL = bytes([GS, 0x56, 0x01])

PRINTER, OFFLINE_CAUSE, ERROR_CAUSE, ROLL_PAPER = 1, 2, 3, 4
FIXED_MASK, FIXED_BITS = 0x93, 0x12

# DLE EOT 1 (printer status)
OFFLINE = 0x08
# DLE EOT 2 (offline cause)
COVER_OPEN, FEED_BUTTON, PAPER_OUT_STOP, ERROR = 0x04, 0x08, 0x20, 0x40
# DLE EOT 3 (error cause)
AUTOCUTTER_ERROR, UNRECOVERABLE, AUTO_RECOVERABLE = 0x08, 0x20, 0x40
# DLE EOT 4 (roll paper sensor)
NEAR_END, PAPER_OUT = 0x0C, 0x60


def status_request(n: int) -> bytes:
    """``status_request(4)`` -> ``10 04 04``."""
    if n not in (PRINTER, OFFLINE_CAUSE, ERROR_CAUSE, ROLL_PAPER):
        raise ValueError(f"DLE EOT n takes n in 1..4, got {n}")
    return bytes([DLE, EOT, n])


def feed(lines: int) -> bytes:
    if not 0 <= lines <= 255:
        raise ValueError("feed 0..255 lines")
    return bytes([ESC, 0x64, lines])


def encode_line(text: str) -> bytes:
    """Printable text (code page 437, unknown characters as ``?``) plus LF. Control
    characters are dropped so a receipt line can never smuggle a command."""
    clean = "".join(ch for ch in text if ch >= " " and ch != "\x7f")
    return clean.encode("cp437", errors="replace") + bytes([LF])


def qr_code(data: bytes, module_size: int = 4, error_correction: str = "M") -> bytes:
    """A QR code (model 2) through ``GS ( k``: module size (function 167), error correction
    (169), store the data (180) and print it (181), as Epson's manual gives them; the printer
    draws the symbol itself."""
    levels = {level: n for n, level in _QR_EC.items()}
    if error_correction not in levels:
        raise ValueError(f"QR error correction is L, M, Q or H, got {error_correction!r}")
    if not 1 <= module_size <= 16:
        raise ValueError(f"QR module size is 1..16 dots, got {module_size}")
    if not 0 < len(data) <= _QR_BYTES[error_correction][-1]:
        raise ValueError(f"QR data is 1..{_QR_BYTES[error_correction][-1]} bytes")

    def function(cn_fn_params: bytes) -> bytes:
        return bytes([GS, 0x28, 0x6B]) + len(cn_fn_params).to_bytes(2, "little") + cn_fn_params

    return b"".join(
        (
            function(bytes([0x31, 0x41, 0x32, 0x00])),  # 165: model 2
            function(bytes([0x31, 0x43, module_size])),
            function(bytes([0x31, 0x45, levels[error_correction]])),
            function(bytes([0x31, 0x50, 0x30]) + data),
            function(bytes([0x31, 0x51, 0x30])),
        )
    )


@dataclass(frozen=True)
class StatusByte:
    """One real-time status reply, checked against its fixed bits."""

    request: int
    value: int

    def __post_init__(self) -> None:
        if self.value & FIXED_MASK != FIXED_BITS:
            raise ValueError(
                f"status byte {self.value:02X} lacks the fixed bits 0x12 (not an ESC/POS printer?)"
            )

    @property
    def near_end(self) -> bool:
        return self.request == ROLL_PAPER and bool(self.value & NEAR_END)

    @property
    def paper_out(self) -> bool:
        if self.request == ROLL_PAPER:
            return bool(self.value & PAPER_OUT)
        return self.request == OFFLINE_CAUSE and bool(self.value & PAPER_OUT_STOP)

    @property
    def cover_open(self) -> bool:
        return self.request == OFFLINE_CAUSE and bool(self.value & COVER_OPEN)

    @property
    def offline(self) -> bool:
        return self.request == PRINTER and bool(self.value & OFFLINE)


# -- printer side -------------------------------------------------------------------------
#
# The parser knows the length of every command of the common ESC/POS set (Epson's TM series
# and the clones that follow it), so a command it does not render is skipped whole: its
# parameters and data never print as text. Lengths come in four shapes: fixed, terminated by
# NUL, counted by parameter bytes (``pL pH`` and friends), or computed from dimensions (bit and
# raster images). See docs/devices.md for the command table.


@dataclass(frozen=True)
class Init:
    pass


@dataclass(frozen=True)
class Text:
    data: bytes


@dataclass(frozen=True)
class LineFeed:
    pass


@dataclass(frozen=True)
class Feed:
    """``ESC d n``: print and feed ``lines`` lines."""

    lines: int


@dataclass(frozen=True)
class FeedDots:
    """``ESC J n``: print and feed ``dots`` dots (motion units)."""

    dots: int


@dataclass(frozen=True)
class Cut:
    partial: bool


@dataclass(frozen=True)
class StatusRequest:
    n: int


@dataclass(frozen=True)
class Setting:
    """A mode or layout command the printer applies but that prints nothing by itself
    (character size, emphasis, justification, code page, line spacing, barcode height...).
    ``command`` is its name in the ESC/POS manuals' style (``"ESC !"``); ``params`` the bytes
    after the command bytes."""

    command: str
    params: bytes


@dataclass(frozen=True)
class Barcode:
    """``GS k``: a 1-D barcode. ``symbology`` is the ESC/POS code (``m``), ``data`` its
    content as sent; ``height`` the dots it takes (``GS h``)."""

    symbology: str
    data: bytes
    height: int


@dataclass(frozen=True)
class QrCode:
    """``GS ( k`` function 181 (print the stored QR symbol): the data stored with function
    180, the module size (``GS ( k`` 167) and the error correction level (169)."""

    data: bytes
    module_size: int
    error_correction: str

    @property
    def height(self) -> int:
        """Dots the symbol takes: modules of the smallest version that holds the data in
        byte mode, plus a quiet zone of 4 modules on each side."""
        return (qr_modules(len(self.data), self.error_correction) + 8) * self.module_size


@dataclass(frozen=True)
class Image:
    """A bit image (``ESC *``), raster image (``GS v 0``) or graphics print (``GS ( L``):
    the printer renders it; we keep its size."""

    command: str
    width: int
    height: int


@dataclass(frozen=True)
class Unknown:
    data: bytes


PrinterEvent = (
    Init
    | Text
    | LineFeed
    | Feed
    | FeedDots
    | Cut
    | StatusRequest
    | Setting
    | Barcode
    | QrCode
    | Image
    | Unknown
)

NUL, HT, FF, CAN, FS = 0x00, 0x09, 0x0C, 0x18, 0x1C

# ESC x: total length of commands of fixed length, command bytes included.
_ESC_FIXED: dict[int, int] = {
    0x0C: 2,  # ESC FF   print data in page mode
    0x20: 3,  # ESC SP n right-side character spacing
    0x21: 3,  # ESC ! n  print mode (font, emphasis, double height/width, underline)
    0x24: 4,  # ESC $ nL nH absolute print position
    0x25: 3,  # ESC % n  user-defined character set on/off
    0x2D: 3,  # ESC - n  underline
    0x32: 2,  # ESC 2    default line spacing
    0x33: 3,  # ESC 3 n  line spacing
    0x3C: 2,  # ESC <    return home
    0x3D: 3,  # ESC = n  select peripheral device
    0x3F: 3,  # ESC ? n  cancel user-defined character
    0x40: 2,  # ESC @    initialise
    0x45: 3,  # ESC E n  emphasis
    0x47: 3,  # ESC G n  double strike
    0x4A: 3,  # ESC J n  print and feed n dots
    0x4B: 3,  # ESC K n  print and reverse feed n dots
    0x4C: 2,  # ESC L    page mode
    0x4D: 3,  # ESC M n  character font
    0x52: 3,  # ESC R n  international character set
    0x53: 2,  # ESC S    standard mode
    0x54: 3,  # ESC T n  print direction in page mode
    0x55: 3,  # ESC U n  unidirectional printing
    0x56: 3,  # ESC V n  90 degree rotation
    0x57: 10,  # ESC W xL xH yL yH dxL dxH dyL dyH  print area in page mode
    0x5C: 4,  # ESC \ nL nH relative print position
    0x61: 3,  # ESC a n  justification
    0x63: 4,  # ESC c 3 n / ESC c 4 n / ESC c 5 n  paper sensors, panel buttons
    0x64: 3,  # ESC d n  print and feed n lines
    0x65: 3,  # ESC e n  print and reverse feed n lines
    0x69: 2,  # ESC i    partial cut (legacy)
    0x6D: 2,  # ESC m    partial cut (legacy)
    0x70: 5,  # ESC p m t1 t2  cash drawer pulse
    0x72: 3,  # ESC r n  print colour
    0x74: 3,  # ESC t n  character code table
    0x75: 3,  # ESC u n  transmit peripheral status (legacy)
    0x76: 2,  # ESC v    transmit paper sensor status (legacy)
    0x7B: 3,  # ESC { n  upside-down printing
}

# GS x: fixed lengths.
_GS_FIXED: dict[int, int] = {
    0x21: 3,  # GS ! n   character size
    0x24: 4,  # GS $ nL nH absolute vertical position in page mode
    0x2F: 3,  # GS / m   print downloaded bit image
    0x3A: 2,  # GS :     start/end macro definition
    0x42: 3,  # GS B n   white/black reverse
    0x45: 3,  # GS E n   print head control
    0x48: 3,  # GS H n   HRI character position
    0x49: 3,  # GS I n   transmit printer ID
    0x4C: 4,  # GS L nL nH left margin
    0x50: 4,  # GS P x y motion units
    0x54: 3,  # GS T n   beginning of line
    0x57: 4,  # GS W nL nH print area width
    0x5C: 4,  # GS \ nL nH relative vertical position in page mode
    0x5E: 5,  # GS ^ r t m execute macro
    0x61: 3,  # GS a n   automatic status back
    0x62: 3,  # GS b n   smoothing
    0x63: 2,  # GS c     print counter
    0x66: 3,  # GS f n   HRI font
    0x67: 6,  # GS g 0 m nL nH / GS g 2 m nL nH  maintenance counters
    0x68: 3,  # GS h n   barcode height
    0x72: 3,  # GS r n   transmit status
    0x77: 3,  # GS w n   barcode module width
    0x7A: 5,  # GS z 0 t1 t2 online recovery wait
}

# FS x (Kanji and NV images): fixed lengths.
_FS_FIXED: dict[int, int] = {
    0x21: 3,  # FS ! n   Kanji print mode
    0x26: 2,  # FS &     Kanji mode on
    0x2D: 3,  # FS - n   Kanji underline
    0x2E: 2,  # FS .     Kanji mode off
    0x43: 3,  # FS C n   Kanji code system
    0x53: 4,  # FS S n1 n2 Kanji spacing
    0x57: 3,  # FS W n   Kanji quadruple size
    0x70: 4,  # FS p n m print NV bit image
}

_NEED_MORE = -1

BARCODE_SYMBOLOGIES = {
    0: "UPC-A", 1: "UPC-E", 2: "EAN13", 3: "EAN8", 4: "CODE39", 5: "ITF", 6: "CODABAR",
    65: "UPC-A", 66: "UPC-E", 67: "EAN13", 68: "EAN8", 69: "CODE39", 70: "ITF",
    71: "CODABAR", 72: "CODE93", 73: "CODE128", 74: "GS1-128", 75: "GS1 DataBar Omni",
    76: "GS1 DataBar Truncated", 77: "GS1 DataBar Limited", 78: "GS1 DataBar Expanded",
    79: "CODE128 auto",
}  # fmt: skip

# Byte-mode capacity of QR versions 1-40 (ISO/IEC 18004 table 7), per error correction level.
_QR_BYTES = {
    "L": (17, 32, 53, 78, 106, 134, 154, 192, 230, 271, 321, 367, 425, 458, 520, 586, 644, 718,
          792, 858, 929, 1003, 1091, 1171, 1273, 1367, 1465, 1528, 1628, 1732, 1840, 1952, 2068,
          2188, 2303, 2431, 2563, 2699, 2809, 2953),
    "M": (14, 26, 42, 62, 84, 106, 122, 152, 180, 213, 251, 287, 331, 362, 412, 450, 504, 560,
          624, 666, 711, 779, 857, 911, 997, 1059, 1125, 1190, 1264, 1370, 1452, 1538, 1628, 1722,
          1809, 1911, 1989, 2099, 2213, 2331),
    "Q": (11, 20, 32, 46, 60, 74, 86, 108, 130, 151, 177, 203, 241, 258, 292, 322, 364, 394, 442,
          482, 509, 565, 611, 661, 715, 751, 805, 868, 908, 982, 1030, 1112, 1168, 1228, 1283,
          1351, 1423, 1499, 1579, 1663),
    "H": (7, 14, 24, 34, 44, 58, 64, 84, 98, 119, 137, 155, 177, 194, 220, 250, 280, 310, 338,
          382, 403, 439, 461, 511, 535, 593, 625, 658, 698, 742, 790, 842, 898, 958, 983, 1051,
          1093, 1139, 1219, 1273),
}  # fmt: skip
_QR_EC = {48: "L", 49: "M", 50: "Q", 51: "H"}


def qr_modules(data_bytes: int, error_correction: str = "L") -> int:
    """Modules per side of the smallest QR version holding ``data_bytes`` in byte mode."""
    for version, capacity in enumerate(_QR_BYTES[error_correction], start=1):
        if data_bytes <= capacity:
            return 17 + 4 * version
    return 17 + 4 * 40


def _u16(buf: bytearray, at: int) -> int:
    return buf[at] | buf[at + 1] << 8


def _command_length(buf: bytearray) -> int:
    """Length of the command at the start of ``buf`` (which starts with ESC, GS, FS or DLE),
    ``_NEED_MORE`` if more bytes are needed to know or to hold it, 0 if the command is not
    known (only its command bytes can be dropped)."""
    if len(buf) < 2:
        return _NEED_MORE
    first, cmd = buf[0], buf[1]
    length = 0
    if first == DLE:
        if cmd in (EOT, 0x05):  # DLE EOT n, DLE ENQ n
            length = 3
        elif cmd == 0x14:  # DLE DC4 fn a b
            length = 5
        else:
            return 0
    elif first == ESC:
        if cmd in _ESC_FIXED:
            length = _ESC_FIXED[cmd]
        elif cmd == 0x2A:  # ESC * m nL nH d1..dk
            if len(buf) < 5:
                return _NEED_MORE
            columns = _u16(buf, 3)
            length = 5 + columns * (3 if buf[2] in (32, 33) else 1)
        elif cmd == 0x44:  # ESC D n1..nk NUL  horizontal tab positions
            end = buf.find(NUL, 2)
            return _NEED_MORE if end < 0 else end + 1
        elif cmd == 0x26:  # ESC & y c1 c2 [x d1..d(y*x)]...  user-defined characters
            return _user_chars_length(buf)
        elif cmd == 0x28:  # ESC ( fn pL pH ...
            if len(buf) < 5:
                return _NEED_MORE
            length = 5 + _u16(buf, 3)
        else:
            return 0
    elif first == GS:
        if cmd in _GS_FIXED:
            length = _GS_FIXED[cmd]
        elif cmd == 0x56:  # GS V m [n]
            if len(buf) < 3:
                return _NEED_MORE
            length = 4 if buf[2] in (65, 66, 97, 98, 103, 104) else 3
        elif cmd == 0x28:  # GS ( fn pL pH ...
            if len(buf) < 5:
                return _NEED_MORE
            length = 5 + _u16(buf, 3)
        elif cmd == 0x38:  # GS 8 L p1 p2 p3 p4 ...  (large graphics data)
            if len(buf) < 7:
                return _NEED_MORE
            length = 7 + int.from_bytes(buf[3:7], "little")
        elif cmd == 0x2A:  # GS * x y d1..d(x*y*8)  downloaded bit image
            if len(buf) < 4:
                return _NEED_MORE
            length = 4 + buf[2] * buf[3] * 8
        elif cmd == 0x76:  # GS v 0 m xL xH yL yH d1..dk  raster image
            if len(buf) < 8:
                return _NEED_MORE
            length = 8 + _u16(buf, 4) * _u16(buf, 6)
        elif cmd == 0x6B:  # GS k m ...  barcode
            if len(buf) < 3:
                return _NEED_MORE
            if buf[2] <= 6:  # function A: data up to NUL
                end = buf.find(NUL, 3)
                return _NEED_MORE if end < 0 else end + 1
            if len(buf) < 4:
                return _NEED_MORE
            length = 4 + buf[3]  # function B: n then n bytes
        else:
            return 0
    elif first == FS:
        if cmd in _FS_FIXED:
            length = _FS_FIXED[cmd]
        elif cmd == 0x28:  # FS ( fn pL pH ...
            if len(buf) < 5:
                return _NEED_MORE
            length = 5 + _u16(buf, 3)
        else:
            return 0
    return length if len(buf) >= length else _NEED_MORE


def _user_chars_length(buf: bytearray) -> int:
    if len(buf) < 5:
        return _NEED_MORE
    y, c1, c2 = buf[2], buf[3], buf[4]
    at = 5
    for _ in range(max(0, c2 - c1 + 1)):
        if len(buf) <= at:
            return _NEED_MORE
        at += 1 + y * buf[at]
    return at if len(buf) >= at else _NEED_MORE


_PREFIX_NAMES = {ESC: "ESC", GS: "GS", FS: "FS", DLE: "DLE"}


def _name(command: bytes) -> str:
    second = command[1]
    shown = chr(second) if 0x21 <= second <= 0x7E else f"0x{second:02X}"
    name = f"{_PREFIX_NAMES[command[0]]} {shown}"
    if second == 0x28 and len(command) > 2:  # ESC ( A, GS ( k ...
        name += f" {chr(command[2])}"
    return name


class EscPosParser:
    """Incremental parser of the printer's input: text, line feeds and every command of the
    common ESC/POS set, skipped or decoded by its length. A command byte sequence the parser
    does not know becomes ``Unknown`` (its two command bytes; real printers ignore it too)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._barcode_height = 162  # GS h default
        self._qr_data = b""
        self._qr_module = 3
        self._qr_ec = "L"

    def feed(self, data: bytes) -> list[PrinterEvent]:
        self._buf += data
        out: list[PrinterEvent] = []
        buf = self._buf
        while buf:
            first = buf[0]
            if first in _PREFIX_NAMES:
                length = _command_length(buf)
                if length == _NEED_MORE:
                    break
                if length == 0:
                    size = 1 if first == DLE else 2
                    out.append(Unknown(bytes(buf[:size])))
                    del buf[:size]
                    continue
                command = bytes(buf[:length])
                del buf[:length]
                event = self._decode(command)
                if event is not None:
                    out.append(event)
            elif first == LF:
                out.append(LineFeed())
                del buf[:1]
            elif first in (CR, NUL, HT, CAN):
                del buf[:1]
            elif first == FF:
                out.append(LineFeed())
                del buf[:1]
            elif first >= 0x20:
                end = 1
                while end < len(buf) and buf[end] >= 0x20:
                    end += 1
                out.append(Text(bytes(buf[:end])))
                del buf[:end]
            else:
                out.append(Unknown(bytes(buf[:1])))
                del buf[:1]
        return out

    def _decode(self, command: bytes) -> PrinterEvent | None:
        first, cmd = command[0], command[1]
        if first == DLE:
            if cmd == EOT and 1 <= command[2] <= 4:
                return StatusRequest(command[2])
            return Setting(_name(command), command[2:])
        if first == ESC:
            if cmd == 0x40:
                return Init()
            if cmd == 0x64:
                return Feed(command[2])
            if cmd == 0x4A:
                return FeedDots(command[2])
            if cmd in (0x69, 0x6D):
                return Cut(partial=True)
            if cmd == 0x2A:
                columns = _u16(bytearray(command), 3)
                return Image("ESC *", columns, 24 if command[2] in (32, 33) else 8)
            return Setting(_name(command), command[2:])
        if first == GS:
            if cmd == 0x56:
                return Cut(partial=command[2] in (1, 49, 66, 98, 104))
            if cmd == 0x68:
                self._barcode_height = command[2]
            if cmd == 0x6B:
                return self._barcode(command)
            if cmd == 0x76:
                return Image("GS v 0", _u16(bytearray(command), 4) * 8, _u16(bytearray(command), 6))
            if cmd == 0x28 and command[2] == 0x6B:
                return self._two_d(command)
            if (cmd == 0x28 and command[2] == 0x4C) or cmd == 0x38:
                return self._graphics(command)
        return Setting(_name(command), command[2:])

    def _barcode(self, command: bytes) -> Barcode:
        m = command[2]
        data = command[3:-1] if m <= 6 else command[4:]
        symbology = BARCODE_SYMBOLOGIES.get(m, f"m={m}")
        return Barcode(symbology, data, self._barcode_height)

    def _two_d(self, command: bytes) -> PrinterEvent:
        """``GS ( k pL pH cn fn ...``: only the QR code (cn 49) prints; the store, size and
        error correction functions set what the print function (fn 81) prints."""
        cn, fn, body = command[5], command[6], command[7:]
        if cn == 0x31:
            if fn == 0x43 and body:  # 167: module size
                self._qr_module = body[0]
            elif fn == 0x45 and body:  # 169: error correction level
                self._qr_ec = _QR_EC.get(body[0], "L")
            elif fn == 0x50:  # 180: store data (m = 48, then the data)
                self._qr_data = body[1:]
            elif fn == 0x51:  # 181: print the stored symbol
                return QrCode(self._qr_data, self._qr_module, self._qr_ec)
        return Setting(_name(command), command[3:])

    def _graphics(self, command: bytes) -> PrinterEvent:
        """``GS ( L`` / ``GS 8 L``: function 112 stores a raster graphic (a, bx, by, c, xL xH
        yL yH), function 50 prints it. We report the stored graphic's size at store time."""
        header = 7 if command[1] == 0x38 else 5
        body = command[header:]
        if len(body) >= 10 and body[1] == 112:  # m fn a bx by c xL xH yL yH
            width = body[6] | body[7] << 8
            height = body[8] | body[9] << 8
            return Image(_name(command), width, height)
        return Setting(_name(command), command[3:])
