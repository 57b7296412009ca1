"""A ZT588-style encrypting PIN pad. It holds the terminal master key and the PIN working key,
collects PIN digits itself, reports each as ``*``, and hands out only the encrypted PIN block
(``protocol.pinblock``). Keys pressed while the keypad is closed wait in the pad's buffer.
Speaks ``drivers.codecs.zt588``.

The master key has a type (``scheme``), as in a real EPP: a TDES master key unwraps working
keys with TDES-ECB (KCV: TDES of zeros) and the pad makes format 0 blocks; an AES master key
unwraps with AES key wrap (RFC 3394, KCV: AES-CMAC of zeros) and the pad makes format 4 blocks.
A PIN entry asking for the other format is refused (``E5``)."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque

from drivers.codecs import zt588
from drivers.codecs.events import ACK, NAK, BadFrame, Nak
from drivers.codecs.zt588 import PadFrame, PadReply, Zt588Decoder
from drivers.interfaces import DIGIT_KEYS, FUNCTION_KEYS
from protocol.errors import KeyMaterialError, PinBlockError
from protocol.pinblock import decrypt_format4, encrypt_format0, encrypt_format4
from protocol.security import KeyScheme, unwrap_working_key
from simulators.base import Simulator

__all__ = ["PinPadSimulator"]

log = logging.getLogger(__name__)

# Why a working key did not load (protocol.security.unwrap_working_key), as the pad answers.
_LOAD_ERRORS = {"key_length": "E7", "kcv": "E3", "unwrap": "E8"}

KNOWN_KEYS = DIGIT_KEYS | FUNCTION_KEYS | {"ENTER", "CANCEL", "CLEAR"}


class PinPadSimulator(Simulator):
    NAME = "PIN pad"
    FAULTS = frozenset({"key_timeout"})

    def __init__(self, master_key: bytes, scheme: KeyScheme = KeyScheme.TDES) -> None:
        super().__init__()
        self._master_key = master_key
        self.scheme = KeyScheme(scheme)
        # No working PIN key until one is loaded (command 3): PIN entry (6) and compare (8)
        # answer E2 (key not found) until then.
        self._pin_key: bytes | None = None
        self._keys: deque[str] = deque()
        self.mode = "off"  # off | one (next key in clear) | pin
        self._digits = ""
        self._pin_ready = False
        self._min = 4
        self._max = 6
        self._pan = ""  # format 0: the 12 digits of the PAN field; format 4: the whole PAN
        self._timeout = 30.0
        self._timer: asyncio.TimerHandle | None = None
        self.echo = ""  # what the pad's own display shows: "*" per digit, never a digit
        self._decoder = Zt588Decoder(keys=False)

    # -- customer side ------------------------------------------------------------------
    def press(self, *keys: str) -> None:
        for key in keys:
            if key not in KNOWN_KEYS:
                raise ValueError(f"no key {key!r} on the PIN pad")
            self._keys.append(key)
        self._pump()

    def type_digits(self, digits: str) -> None:
        self.press(*digits)

    def _pump(self) -> None:
        while self._keys and self.mode != "off":
            key = self._keys.popleft()
            if self.mode == "one":
                self.mode = "off"
                self.send_control(bytes([zt588.KEY_CODES[key]]))
            else:
                self._pin_key_pressed(key)

    def _pin_key_pressed(self, key: str) -> None:
        self._restart_timer()
        if key in DIGIT_KEYS:
            if len(self._digits) < self._max:
                self._digits += key
                self.echo = "*" * len(self._digits)
                self.send_control(bytes([zt588.PIN_DIGIT]))
        elif key == "CLEAR":
            self._digits, self.echo = "", ""
            self.send_control(bytes([zt588.KEY_CODES["CLEAR"]]))
        elif key == "ENTER" and len(self._digits) >= self._min:
            self._end_entry()
            self._pin_ready = True
            self.send_control(bytes([zt588.KEY_CODES["ENTER"]]))
        elif key == "CANCEL":
            self._end_entry()
            self._digits = ""
            self.send_control(bytes([zt588.KEY_CODES["CANCEL"]]))

    def _end_entry(self) -> None:
        self.mode = "off"
        self.echo = ""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _restart_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self._timeout, self._timed_out)

    def _timed_out(self) -> None:
        self._timer = None
        if self.mode != "off":
            self._end_entry()
            self._digits = ""
            self.send_control(bytes([zt588.ENTRY_TIMEOUT]))

    # -- wire side ----------------------------------------------------------------------
    def on_bytes(self, data: bytes) -> None:
        for event in self._decoder.feed(data):
            if isinstance(event, Nak):
                self.resend_last()
            elif isinstance(event, BadFrame):
                self.send_control(bytes([NAK]))
            elif isinstance(event, PadFrame):
                if self.should_nak():
                    self.send_control(bytes([NAK]))
                    continue
                self.frames_in += 1
                self.send_control(bytes([ACK]))
                command = chr(event.text[0])
                reply = self._handle(command, event.text[1:].decode("ascii", errors="replace"))
                self.send_frame(reply.encode())
                self._after(command)

    def _handle(self, command: str, data: str) -> PadReply:
        if command == "0":
            return PadReply("0", "00", b"ZT588-SIM")
        if command == "5" and data in ("0", "1"):
            self._end_entry()
            self._digits = ""
            self._pin_ready = False
            if data == "1":
                self.mode = "one"
            return PadReply("5", "00")
        if command == "3":
            return PadReply("3", self._load_key(data))
        if command == "6":
            return PadReply("6", self._start_pin(data))
        if command == "8":
            return self._compare(data)
        if command == "7":
            if not self._pin_ready:
                return PadReply("7", "E4")
            if self._pin_key is None:
                return PadReply("7", "E2")
            if self.scheme is KeyScheme.AES:
                fmt, block = "4", encrypt_format4(self._digits, self._pan, self._pin_key)
            else:
                pan = "0" + self._pan + "0"  # format 0 uses only these 12 digits
                fmt, block = "0", encrypt_format0(self._digits, pan, self._pin_key)
            self._digits, self._pin_ready = "", False
            return PadReply("7", "00", fmt.encode() + block.hex().upper().encode())
        return PadReply(command, "E0")

    def _after(self, command: str) -> None:
        """Key traffic starts only after the reply to the command that allowed it."""
        if command in ("5", "6") and self.mode != "off":
            if "key_timeout" in self.faults:
                self._end_entry()
                self.send_control(bytes([zt588.ENTRY_TIMEOUT]))
                return
            if self.mode == "pin":
                self._restart_timer()
            self._pump()

    def _load_key(self, data: str) -> str:
        slot, under, rest = data[:2], data[2:4], data[4:]
        if slot != zt588.TPK_SLOT or under != zt588.TMK_SLOT:
            return "E2"
        key_hex, kcv = rest[:-6], rest[-6:]
        try:
            encrypted = bytes.fromhex(key_hex)
        except ValueError:
            return "E0"
        try:
            self._pin_key = unwrap_working_key(self.scheme, self._master_key, encrypted, kcv)
        except KeyMaterialError as exc:
            return _LOAD_ERRORS.get(exc.reason, "E8")
        return "00"

    def _compare(self, data: str) -> PadReply:
        """``8`` pan-length(2) pan block-hex(32) block-hex(32): do two format 4 blocks under
        the PIN key hold the same PIN? Answered ``1``/``0``; the PINs stay in the pad."""
        if len(data) < 2 or not data[:2].isdigit():
            return PadReply("8", "E0")
        n = int(data[:2])
        pan, blocks = data[2 : 2 + n], data[2 + n :]
        if not 12 <= n <= 19 or not pan.isdigit() or len(blocks) != 64:
            return PadReply("8", "E0")
        if self.scheme is not KeyScheme.AES:
            return PadReply("8", "E5")
        if self._pin_key is None:
            return PadReply("8", "E2")
        try:
            a = decrypt_format4(bytes.fromhex(blocks[:32]), pan, self._pin_key)
            b = decrypt_format4(bytes.fromhex(blocks[32:]), pan, self._pin_key)
        except (ValueError, PinBlockError):
            return PadReply("8", "E5")
        return PadReply("8", "00", b"1" if secrets.compare_digest(a, b) else b"0")

    def _start_pin(self, data: str) -> str:
        pan = data[10:]
        fits = len(pan) == 12 if data[2:3] == "0" else 12 <= len(pan) <= 19
        if not fits or not data[3:].isdigit():
            return "E0"
        slot, fmt = data[:2], data[2]
        if slot != zt588.TPK_SLOT:
            return "E2"
        if fmt != str(self.scheme.pin_format):
            return "E5"
        if self._pin_key is None:  # no working key loaded yet
            return "E2"
        self._min, self._max = int(data[3:5]), int(data[5:7])
        self._timeout = float(int(data[7:10]))
        self._pan = pan
        try:
            if self.scheme is KeyScheme.AES:
                encrypt_format4("0000", self._pan, self._pin_key)
            else:
                encrypt_format0("0000", "0" + self._pan + "0", self._pin_key)
        except PinBlockError:
            return "E2"
        self._digits, self._pin_ready, self.echo = "", False, ""
        self.mode = "pin"
        return "00"
