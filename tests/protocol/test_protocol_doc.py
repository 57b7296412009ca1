"""docs/protocol.md carries exactly the generated examples, and each one decodes and verifies
with the keys the document gives."""

import re
from pathlib import Path

from protocol.mac import uses_signon_key, verify_signed
from protocol.messages import decode
from protocol.security import KeyScheme, signon_mac_key
from tests.protocol.doc_examples import TAK, TMK, render

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def test_examples_in_the_document_are_current():
    text = DOC.read_text()
    begin, end = "<!-- examples:begin -->\n", "<!-- examples:end -->"
    current = text[text.index(begin) + len(begin) : text.index(end)]
    assert current == render() + "\n", "regenerate with python -m tests.protocol.doc_examples"


def test_every_dump_decodes_and_its_mac_verifies():
    text = DOC.read_text()
    dumps = re.findall(r"```\n((?:[0-9A-F]{4}  .*\n)+)```", text)
    assert len(dumps) == 13
    for dump in dumps:
        data = bytes.fromhex("".join(line[6:53] for line in dump.splitlines()))
        assert int.from_bytes(data[:2], "big") == len(data) - 2
        message = decode(data[2:])
        key = signon_mac_key(KeyScheme.TDES, TMK) if uses_signon_key(message) else TAK
        verify_signed(data[2:], message, KeyScheme.TDES, key)


def test_every_mti_and_response_code_is_documented():
    text = DOC.read_text()
    for mti in ("0100", "0110", "0200", "0210", "0420", "0421", "0430", "0800", "0810"):
        assert f"| {mti} |" in text
    from protocol.response_codes import ResponseCode

    for code in ResponseCode:
        assert f"| {code.value} |" in text
