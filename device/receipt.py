"""Receipt layout: masked PAN, terminal, date/time, STAN, transaction, amount, balance, response;
and the transaction reference that the receipt's QR code carries."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from device.screens import money
from protocol.masking import mask_pan

__all__ = ["ReceiptData", "layout_receipt", "receipt_reference"]

WIDTH = 32


@dataclass(frozen=True)
class ReceiptData:
    terminal_id: str
    moment: dt.datetime
    pan: str
    stan: str
    transaction: str
    response_text: str
    amount_cents: int | None = None
    balance_cents: int | None = None
    account: str = ""
    rrn: str = ""
    auth_code: str = ""
    note: str = ""
    to_account: str = ""
    statement: tuple[str, ...] = ()


def receipt_reference(data: ReceiptData) -> str:
    """The transaction reference printed as the receipt's QR code: terminal, STAN and the
    host's RRN (``ATM00001-000004-000000000004``), the three facts a bank needs to find the
    transaction; without an RRN (no answer from the host), terminal and STAN. Each part is on
    the receipt in text too. Empty when there is no transaction to refer to."""
    if not data.stan:
        return ""
    parts = [data.terminal_id, data.stan, *([data.rrn] if data.rrn else [])]
    return "-".join(parts)


def _pair(left: str, right: str) -> str:
    return f"{left}{right:>{WIDTH - len(left)}}"


def layout_receipt(data: ReceiptData, bank_name: str = "ATM SIMULATOR BANK") -> list[str]:
    lines = [
        bank_name.center(WIDTH),
        "-" * WIDTH,
        _pair("DATE", data.moment.strftime("%Y-%m-%d")),
        _pair("TIME", data.moment.strftime("%H:%M:%S")),
        _pair("TERMINAL", data.terminal_id),
        _pair("STAN", data.stan),
        _pair("CARD", mask_pan(data.pan)),
    ]
    if data.rrn:
        lines.append(_pair("RRN", data.rrn))
    if data.auth_code:
        lines.append(_pair("AUTH CODE", data.auth_code))
    lines += ["-" * WIDTH, data.transaction.upper()]
    if data.account:
        lines.append(_pair("FROM" if data.to_account else "ACCOUNT", data.account))
    if data.to_account:
        lines.append(_pair("TO", data.to_account))
    if data.amount_cents is not None:
        lines.append(_pair("AMOUNT", money(data.amount_cents)))
    if data.balance_cents is not None:
        lines.append(_pair("BALANCE", money(data.balance_cents)))
    lines.append(_pair("RESULT", data.response_text.upper()))
    if data.note:
        lines.append(data.note)
    if data.statement:
        lines += ["-" * WIDTH, "RECENT TRANSACTIONS", *data.statement]
    lines += ["-" * WIDTH, "THANK YOU".center(WIDTH)]
    return lines
