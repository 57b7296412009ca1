"""An independent ATM-link client, written only from docs/protocol.md.

It uses plain ``pyiso8583`` and ``cryptography`` and the standard library; it must not import
anything of ours (``test_link_independent_client.py`` checks that). Blocking sockets, on purpose
a different style from our asyncio client.
"""

from __future__ import annotations

import copy
import datetime
import os
import socket
from typing import Any

import iso8583
import iso8583.specs
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap

# -- section 2 and 4: the codec -----------------------------------------------------------
SPEC: dict[str, dict[str, Any]] = copy.deepcopy(iso8583.specs.default_ascii)


def _var(length_digits: int, max_len: int) -> dict[str, Any]:
    return {
        "data_enc": "ascii",
        "len_enc": "ascii",
        "len_type": length_digits,
        "max_len": max_len,
        "desc": "",
    }


SPEC["48"] = _var(3, 999)
SPEC["52"] = _var(2, 32)
SPEC["54"] = _var(3, 120)
SPEC["62"] = _var(3, 200)
SPEC["102"] = _var(2, 28)
SPEC["103"] = _var(2, 28)


# -- section 7: crypto --------------------------------------------------------------------
def _ecb(cipher: Any, data: bytes, decrypt: bool = False) -> bytes:
    c = Cipher(cipher, modes.ECB())
    ctx = c.decryptor() if decrypt else c.encryptor()
    return ctx.update(data) + ctx.finalize()


def des(key8: bytes, block: bytes, decrypt: bool = False) -> bytes:
    return _ecb(TripleDES(key8 * 3), block, decrypt)


def tdes(key16: bytes, data: bytes, decrypt: bool = False) -> bytes:
    return _ecb(TripleDES(key16 + key16[:8]), data, decrypt)


def aes(key: bytes, data: bytes, decrypt: bool = False) -> bytes:
    return _ecb(algorithms.AES(key), data, decrypt)


def retail_mac(key: bytes, data: bytes) -> bytes:
    """ISO 9797-1 algorithm 3, padding method 2 (section 7.3), written out block by block."""
    data = data + b"\x80"
    data += b"\x00" * (-len(data) % 8)
    k1, k2 = key[:8], key[8:]
    chain = bytes(8)
    for i in range(0, len(data), 8):
        block = bytes(a ^ b for a, b in zip(chain, data[i : i + 8], strict=True))
        chain = des(k1, block)
    return des(k1, des(k2, chain, decrypt=True))


def cmac8(key: bytes, data: bytes) -> bytes:
    c = cmac.CMAC(algorithms.AES(key))
    c.update(data)
    return c.finalize()[:8]


def mac(scheme: str, key: bytes, data: bytes) -> str:
    return (retail_mac(key, data) if scheme == "T" else cmac8(key, data)).hex().upper()


def kcv(scheme: str, key: bytes) -> str:
    if scheme == "T":
        return tdes(key, bytes(8))[:3].hex().upper()
    return cmac8(key, bytes(16))[:3].hex().upper()


def sign_on_key(scheme: str, tmk: bytes) -> bytes:
    constant = b"SIGNON-MAC-KEY-1"
    return tdes(tmk, constant) if scheme == "T" else aes(tmk, constant)


def pin_block(scheme: str, tpk: bytes, pin: str, pan: str) -> str:
    if scheme == "T":  # format 0
        pin_field = bytes.fromhex(("0" + format(len(pin), "X") + pin).ljust(16, "F"))
        pan_field = bytes.fromhex("0000" + pan[-13:-1])
        clear = bytes(a ^ b for a, b in zip(pin_field, pan_field, strict=True))
        return tdes(tpk, clear).hex().upper()
    pin_field = bytes.fromhex(("4" + format(len(pin), "X") + pin).ljust(16, "A")) + os.urandom(8)
    pan_field = bytes.fromhex((str(max(0, len(pan) - 12)) + pan.rjust(12, "0")).ljust(32, "0"))
    step = bytes(a ^ b for a, b in zip(aes(tpk, pin_field), pan_field, strict=True))
    return aes(tpk, step).hex().upper()


# -- sections 1, 7.3, 7.5: the client ------------------------------------------------------
class LinkRefused(Exception):
    pass


class Client:
    def __init__(self, port: int, terminal: str, scheme: str, tmk: bytes) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.terminal, self.scheme, self.tmk = terminal, scheme, tmk
        self.tpk = b""
        self.tak = b""
        self.stan = 0
        self.clock = datetime.datetime(2026, 11, 28, 9, 0, tzinfo=datetime.UTC)

    def close(self) -> None:
        self.sock.close()

    def header(self, mti: str) -> dict[str, str]:
        self.stan += 1
        self.clock += datetime.timedelta(seconds=1)
        return {
            "t": mti,
            "7": self.clock.strftime("%m%d%H%M%S"),
            "11": f"{self.stan:06d}",
            "41": self.terminal,
            "42": "INDEPENDENT0001",
        }

    def _key(self, message: dict[str, str]) -> bytes:
        signon = message["t"][:2] == "08" and message.get("70") in ("001", "161")
        return sign_on_key(self.scheme, self.tmk) if signon else self.tak

    def send(self, message: dict[str, str]) -> None:
        self.sock.sendall(self.frame(message))

    def frame(self, message: dict[str, str]) -> bytes:
        """Length prefix + message with its MAC (sections 1 and 7.3)."""
        fields = dict(message)
        big = any(k.isdigit() and 64 < int(k) < 128 for k in fields)
        fields["128" if big else "64"] = "0" * 16
        raw, _ = iso8583.encode(fields, SPEC)
        body = bytes(raw[:-16])
        payload = body + mac(self.scheme, self._key(message), body).encode()
        return len(payload).to_bytes(2, "big") + payload

    def _read_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise LinkRefused("host closed the connection")
            data += chunk
        return data

    def receive(self) -> dict[str, str]:
        length = int.from_bytes(self._read_exact(2), "big")
        payload = self._read_exact(length)
        message, _ = iso8583.decode(bytearray(payload), SPEC)
        field = "128" if "128" in message else "64"
        expected = mac(self.scheme, self._key(message), payload[:-16])
        if message.get(field) != expected or payload[-16:].decode() != expected:
            raise LinkRefused("response MAC does not verify")
        return message

    def request(self, message: dict[str, str]) -> dict[str, str]:
        self.send(message)
        while True:
            response = self.receive()
            if response.get("11") == message["11"] and response.get("41") == message["41"]:
                return response

    def sign_on(self) -> None:
        message = self.header("0800")
        message["70"] = "001"
        message["48"] = self.scheme
        response = self.request(message)
        if response["39"] != "00":
            raise LinkRefused(f"sign-on refused: {response['39']}")
        block = response["48"]
        assert block[0] == self.scheme and block[1] == ("0" if self.scheme == "T" else "4")
        n = 32 if self.scheme == "T" else 48
        parts = [
            block[2 : 2 + n],
            block[2 + n : 8 + n],
            block[8 + n : 8 + 2 * n],
            block[8 + 2 * n :],
        ]
        keys = []
        for encrypted, check in ((parts[0], parts[1]), (parts[2], parts[3])):
            data = bytes.fromhex(encrypted)
            key = (
                tdes(self.tmk, data, decrypt=True)
                if self.scheme == "T"
                else aes_key_unwrap(self.tmk, data)
            )
            if kcv(self.scheme, key) != check:
                raise LinkRefused("key check value mismatch")
            keys.append(key)
        self.tpk, self.tak = keys

    def card_fields(self, pan: str, track2: str, pin: str) -> dict[str, str]:
        return {
            "2": pan,
            "35": track2,
            "49": "840",
            "52": pin_block(self.scheme, self.tpk, pin, pan),
        }

    def available_balance(self, pan: str, track2: str, pin: str) -> int:
        message = self.header("0100")
        message.update(self.card_fields(pan, track2, pin))
        message.update({"3": "302000", "4": "0" * 12})
        response = self.request(message)
        assert response["39"] == "00", response["39"]
        de54 = response["54"]
        for i in range(0, len(de54), 20):
            entry = de54[i : i + 20]
            if entry[2:4] == "02":
                amount = int(entry[8:20])
                return amount if entry[7] == "C" else -amount
        raise AssertionError("no available balance in DE 54")

    def withdraw(self, pan: str, track2: str, pin: str, cents: int) -> dict[str, str]:
        message = self.header("0200")
        message.update(self.card_fields(pan, track2, pin))
        message.update({"3": "012000", "4": f"{cents:012d}"})
        return self.request(message)

    def reverse(self, original: dict[str, str], dispensed: int, reason: str) -> dict[str, str]:
        message = self.header("0420")
        message["11"] = original["11"]
        message.update({"3": original["3"], "4": original["4"], "49": "840", "60": reason})
        message["90"] = "0200" + original["11"] + original["7"] + "0" * 22
        if dispensed:
            message["95"] = f"{dispensed:012d}{dispensed:012d}C00000000C00000000"
        return self.request(message)

    def echo(self) -> str:
        message = self.header("0800")
        message["70"] = "301"
        return self.request(message)["39"]
