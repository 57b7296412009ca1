"""The annotated hex dumps of ``docs/protocol.md``, generated from fixed keys and values.

``python -m tests.protocol.doc_examples`` prints the markdown; ``test_protocol_doc.py`` checks
that the document carries exactly this text, so the examples cannot drift from the code.
"""

from __future__ import annotations

import iso8583

from protocol.framing import encode_frame
from protocol.mac import encode_signed, uses_signon_key
from protocol.messages import Message
from protocol.pinblock import encrypt_format0
from protocol.security import KeyBlock, KeyScheme, WorkingKeys, signon_mac_key
from protocol.spec import SPEC

TMK = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
TPK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
TAK = bytes.fromhex("F1E2D3C4B5A69788796A5B4C3D2E1F00")
KEYS = WorkingKeys(KeyScheme.TDES, TPK, TAK)
PAN = "4000001234567899"
TRACK = PAN + "=30121010000000000000"

HEADER = {
    "7": "1128120000",
    "12": "120000",
    "13": "1128",
    "41": "ATM00001",
    "42": "ATMSIM000000001",
}


def examples() -> list[tuple[str, Message]]:
    pin_block = encrypt_format0("1234", PAN, TPK).hex().upper()
    sign_on = {"t": "0800", **HEADER, "11": "000001", "70": "001", "48": "T"}
    sign_on_resp = {
        "t": "0810",
        "7": "1128120000",
        "11": "000001",
        "39": "00",
        "41": "ATM00001",
        "42": "ATMSIM000000001",
        "48": KeyBlock.build(KEYS, TMK).encode(),
        "70": "001",
    }
    echo = {"t": "0800", **HEADER, "7": "1128120500", "11": "000002", "70": "301"}
    echo_resp = {
        "t": "0810",
        "7": "1128120500",
        "11": "000002",
        "39": "00",
        "41": "ATM00001",
        "42": "ATMSIM000000001",
        "70": "301",
    }
    inquiry = {
        "t": "0100",
        **HEADER,
        "7": "1128120100",
        "11": "000003",
        "2": PAN,
        "3": "302000",
        "4": "000000000000",
        "35": TRACK,
        "49": "840",
        "52": pin_block,
    }
    inquiry_resp = {
        "t": "0110",
        "2": PAN,
        "3": "302000",
        "4": "000000000000",
        "7": "1128120100",
        "11": "000003",
        "37": "633240012345",
        "38": "381924",
        "39": "00",
        "41": "ATM00001",
        "42": "ATMSIM000000001",
        "49": "840",
        "54": "2001840C0000005250002002840C000000525000",
    }
    withdrawal = {
        "t": "0200",
        **HEADER,
        "7": "1128120200",
        "11": "000004",
        "2": PAN,
        "3": "012000",
        "4": "000000010000",
        "35": TRACK,
        "49": "840",
        "52": pin_block,
    }
    withdrawal_resp = {
        "t": "0210",
        "2": PAN,
        "3": "012000",
        "4": "000000010000",
        "7": "1128120200",
        "11": "000004",
        "37": "633240067890",
        "38": "552301",
        "39": "00",
        "41": "ATM00001",
        "42": "ATMSIM000000001",
        "49": "840",
        "54": "2001840C0000005150002002840C000000515000",
    }
    advice = {
        "t": "0420",
        "3": "012000",
        "4": "000000010000",
        "7": "1128120300",
        "11": "000004",
        "41": "ATM00001",
        "42": "ATMSIM000000001",
        "49": "840",
        "60": "4004",
        "90": "0200" + "000004" + "1128120200" + "0" * 22,
        "95": "000000004000000000004000C00000000C00000000",
    }
    repeat = {**advice, "t": "0421"}
    advice_resp = {k: v for k, v in advice.items() if k != "60"} | {"t": "0430", "39": "00"}
    stop = {
        "t": "0800",
        "7": "1128120600",
        "11": "000017",
        "41": "ATM00001",
        "48": "89",
        "70": "901",
    }
    stop_resp = {"t": "0810", "7": "1128120600", "11": "000017", "39": "00", "41": "ATM00001"}
    stop_resp["70"] = "901"
    return [
        ("0800 sign-on (MAC under the sign-on key)", sign_on),
        ("0810 sign-on response with the key block (MAC under the sign-on key)", sign_on_resp),
        ("0800 echo test", echo),
        ("0810 echo response", echo_resp),
        ("0100 balance inquiry, checking", inquiry),
        ("0110 balance inquiry response", inquiry_resp),
        ("0200 withdrawal of $100.00 from checking", withdrawal),
        ("0210 withdrawal approved", withdrawal_resp),
        ("0420 partial reversal: $40.00 of $100.00 dispensed", advice),
        ("0421 the same advice, repeated", repeat),
        ("0430 reversal acknowledged", advice_resp),
        ("0800 host to terminal: out of service (89), MAC under the TAK", stop),
        ("0810 terminal to host: out of service acknowledged", stop_resp),
    ]


def frame(message: Message) -> bytes:
    key = signon_mac_key(KeyScheme.TDES, TMK) if uses_signon_key(message) else TAK
    return encode_frame(encode_signed(message, KeyScheme.TDES, key))


def _hexdump(data: bytes) -> list[str]:
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset : offset + 16]
        hexes = " ".join(f"{b:02X}" for b in chunk)
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{offset:04X}  {hexes:<47}  {text}")
    return lines


def render() -> str:
    out: list[str] = []
    for title, message in examples():
        data = frame(message)
        _, encoded = iso8583.decode(bytearray(data[2:]), SPEC)
        out.append(f"#### {title}\n")
        out.append("```")
        out += _hexdump(data)
        out.append("```\n")
        out.append("| element | length prefix | value |")
        out.append("|---|---|---|")
        out.append(f"| frame length | | `{data[:2].hex().upper()}` = {len(data) - 2} bytes |")
        for field, parts in encoded.items():
            name = "MTI" if field == "t" else "bitmap" if field in "p1" else f"DE {field}"
            if field == "1":
                name = "secondary bitmap"
            prefix = parts["len"].decode() if parts["len"] else ""
            value = parts["data"].decode()
            if field == "2" or field == "35":
                note = " (PAN: masked in logs, never in journals)"
            elif field in ("64", "128"):
                note = " (MAC)"
            else:
                note = ""
            out.append(f"| {name} | {prefix} | `{value}`{note} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(render())
