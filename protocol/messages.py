"""Messages of our host link: encode and decode with our spec, plus typed field helpers.

A message is a ``dict[str, str]`` keyed by field number, with ``"t"`` holding the MTI, exactly as
pyiso8583 uses it. Helpers here build and read the fields whose formats are ours to fix:
amounts (DE 4), transmission time (DE 7), processing code (DE 3), balances (DE 54).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

import iso8583

from protocol.errors import LocalProtocolError, MessageError
from protocol.spec import SPEC

__all__ = [
    "AccountType",
    "Balance",
    "Message",
    "Mti",
    "NetworkCode",
    "TransactionType",
    "decode",
    "encode",
    "encode_owned",
    "format_amount",
    "format_balances",
    "format_processing_code",
    "format_transmission_time",
    "is_request",
    "mti_class",
    "parse_amount",
    "parse_balances",
    "parse_processing_code",
    "response_mti",
]

Message = dict[str, str]


class Mti(StrEnum):
    AUTHORIZATION_REQUEST = "0100"
    AUTHORIZATION_RESPONSE = "0110"
    FINANCIAL_REQUEST = "0200"
    FINANCIAL_RESPONSE = "0210"
    REVERSAL_ADVICE = "0420"
    REVERSAL_ADVICE_REPEAT = "0421"
    REVERSAL_ADVICE_RESPONSE = "0430"
    NETWORK_REQUEST = "0800"
    NETWORK_RESPONSE = "0810"


class NetworkCode(StrEnum):
    """DE 70 network management information codes."""

    SIGN_ON = "001"
    SIGN_OFF = "002"
    KEY_CHANGE = "161"
    ECHO = "301"
    # Host to terminal (private): stop serving; DE 48 carries the reason, 89 or 90.
    OUT_OF_SERVICE = "901"


class TransactionType(StrEnum):
    """Positions 1-2 of DE 3."""

    WITHDRAWAL = "01"
    DEPOSIT = "21"  # cash, counted by the bill acceptor
    CHECK_DEPOSIT = "24"  # checks in an envelope, amount keyed by the customer (our choice)
    BALANCE_INQUIRY = "30"
    TRANSFER = "40"
    PIN_CHANGE = "70"


class AccountType(StrEnum):
    """Positions 3-4 (from) and 5-6 (to) of DE 3."""

    DEFAULT = "00"
    SAVINGS = "10"
    CHECKING = "20"


def encode(message: Message) -> bytes:
    """Encode ``message`` (not modified) with our spec."""
    return bytes(encode_owned(dict(message)))


def encode_owned(fields: Message) -> bytearray:
    """Encode ``fields``, a dict the caller owns and gives up: pyiso8583 adds its bitmaps to
    it. Saves the copy ``encode`` makes, for callers that built the dict themselves."""
    try:
        data, _ = iso8583.encode(fields, SPEC)
    except iso8583.EncodeError as exc:
        raise LocalProtocolError(f"cannot encode {fields.get('t', '????')}: {exc}") from exc
    return data


def decode(data: bytes) -> Message:
    """Decode one message; any defect raises ``MessageError`` naming the field."""
    try:
        decoded, _ = iso8583.decode(data, SPEC)
    except iso8583.DecodeError as exc:
        mti = data[:4].decode("ascii", "replace") if len(data) >= 4 else None
        raise MessageError(f"undecodable message: {exc}", field=exc.field, mti=mti) from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise MessageError(f"undecodable message: {exc}") from exc
    mti = decoded.get("t", "")
    if len(mti) != 4 or not mti.isdigit():
        raise MessageError(f"bad MTI {mti!r}", field="t")
    decoded.pop("p", None)
    decoded.pop("1", None)
    return decoded  # pyiso8583 gives every field as str already


def is_request(mti: str) -> bool:
    """Requests and advices have an even third digit (0100, 0200, 0420, 0421, 0800)."""
    return len(mti) == 4 and mti[2] in "02468"


def response_mti(mti: str) -> str:
    """0200 -> 0210, 0421 -> 0430 (a repeat is answered like the original)."""
    if not is_request(mti):
        raise LocalProtocolError(f"{mti} is not a request MTI")
    return mti[:2] + str(int(mti[2]) + 1) + "0"


def mti_class(mti: str) -> str:
    """The request MTI a message belongs to, for matching: 0210 -> 0200, 0421 -> 0420."""
    third = int(mti[2])
    return mti[:2] + str(third - third % 2) + "0"


def format_amount(cents: int) -> str:
    if not 0 <= cents <= 999_999_999_999:
        raise LocalProtocolError(f"amount {cents} does not fit DE 4")
    return f"{cents:012d}"


def parse_amount(value: str, field: str = "4") -> int:
    if len(value) != 12 or not value.isdigit():
        raise MessageError(f"field {field} must be 12 digits, got {value!r}", field=field)
    return int(value)


def format_processing_code(
    txn: TransactionType,
    from_account: AccountType = AccountType.DEFAULT,
    to_account: AccountType = AccountType.DEFAULT,
) -> str:
    return f"{txn}{from_account}{to_account}"


def parse_processing_code(value: str) -> tuple[TransactionType, AccountType, AccountType]:
    try:
        return (
            TransactionType(value[0:2]),
            AccountType(value[2:4]),
            AccountType(value[4:6]),
        )
    except ValueError as exc:
        raise MessageError(f"unsupported processing code {value!r}", field="3") from exc


def format_transmission_time(moment: dt.datetime) -> str:
    """DE 7, MMDDhhmmss in UTC."""
    return moment.astimezone(dt.UTC).strftime("%m%d%H%M%S")


@dataclass(frozen=True)
class Balance:
    """One DE 54 entry: account type, amount type (01 ledger, 02 available), currency, cents."""

    account_type: AccountType
    amount_type: str
    currency: str
    cents: int

    def encode(self) -> str:
        sign = "C" if self.cents >= 0 else "D"
        return f"{self.account_type}{self.amount_type}{self.currency}{sign}{abs(self.cents):012d}"


def format_balances(balances: list[Balance]) -> str:
    return "".join(b.encode() for b in balances)


def parse_balances(value: str) -> list[Balance]:
    if len(value) % 20:
        raise MessageError(f"field 54 length {len(value)} is not a multiple of 20", field="54")
    out: list[Balance] = []
    for i in range(0, len(value), 20):
        chunk = value[i : i + 20]
        sign, digits = chunk[7], chunk[8:]
        if sign not in "CD" or not digits.isdigit():
            raise MessageError(f"bad balance entry {chunk!r}", field="54")
        try:
            account_type = AccountType(chunk[0:2])
        except ValueError as exc:
            raise MessageError(f"bad account type in {chunk!r}", field="54") from exc
        cents = int(digits) * (1 if sign == "C" else -1)
        out.append(Balance(account_type, chunk[2:4], chunk[4:7], cents))
    return out
