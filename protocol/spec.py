"""Our ISO 8583 message spec, built on pyiso8583's ``default_ascii``.

Every field is ASCII. Binary values (PIN block, MAC) travel as upper-case hex text, so a frame is
printable and easy to read in a capture. Changes from ``default_ascii``:

* 52 PIN block: LLVAR hex, 16 characters (TDES, ISO 9564 format 0) or 32 (AES, format 4).
* 48 additional data (private): LLLVAR, used for key exchange and private data.
* 54 additional amounts: LLLVAR up to 120 (six 20-character balance entries).
* 62 mini-statement (private): LLLVAR up to 200, five 40-character entries
  (date YYYYMMDD, sign C/D, 12-digit amount in cents, 19-character description).
* 102/103 account identification 1/2: LLVAR up to 28 (from and to account numbers).
* 60 (``default_ascii``: LLLVAR): reversal reason code in 0420/0421.
* 64/128 MAC (``default_ascii``): 16 hex characters; DE 128 when a secondary bitmap is present.

``docs/protocol.md`` lists every element we use with its meaning.
"""

from __future__ import annotations

import copy
from typing import Any

import iso8583.specs

__all__ = ["SPEC"]


def _build() -> dict[str, dict[str, Any]]:
    spec: dict[str, dict[str, Any]] = copy.deepcopy(iso8583.specs.default_ascii)
    spec["48"] = {
        "data_enc": "ascii",
        "len_enc": "ascii",
        "len_type": 3,
        "max_len": 999,
        "desc": "Additional Data - Private",
    }
    spec["52"] = {
        "data_enc": "ascii",
        "len_enc": "ascii",
        "len_type": 2,
        "max_len": 32,
        "desc": "PIN Block (hex)",
    }
    spec["54"] = {
        "data_enc": "ascii",
        "len_enc": "ascii",
        "len_type": 3,
        "max_len": 120,
        "desc": "Additional Amounts",
    }
    spec["62"] = {
        "data_enc": "ascii",
        "len_enc": "ascii",
        "len_type": 3,
        "max_len": 200,
        "desc": "Mini-statement (private)",
    }
    for field, desc in (("102", "Account Identification 1"), ("103", "Account Identification 2")):
        spec[field] = {
            "data_enc": "ascii",
            "len_enc": "ascii",
            "len_type": 2,
            "max_len": 28,
            "desc": desc,
        }
    return spec


SPEC: dict[str, dict[str, Any]] = _build()
