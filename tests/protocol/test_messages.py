import pytest

from protocol.display import describe
from protocol.errors import MessageError
from protocol.messages import (
    AccountType,
    Balance,
    TransactionType,
    decode,
    encode,
    format_balances,
    format_processing_code,
    mti_class,
    parse_balances,
    response_mti,
)

WITHDRAWAL = {
    "t": "0200",
    "2": "4000001234567899",
    "3": "012000",
    "4": "000000010000",
    "7": "1128120000",
    "11": "000042",
    "41": "ATM00001",
    "52": "621F91F5470F2CFE",
}

# Golden bytes: MTI, primary bitmap in hex, then each field (LLVAR with 2-digit length).
GOLDEN = (
    b"0200"
    b"7220000000801000"
    b"164000001234567899"
    b"012000"
    b"000000010000"
    b"1128120000"
    b"000042"
    b"ATM00001"
    b"16621F91F5470F2CFE"
)


def test_encode_golden():
    assert encode(WITHDRAWAL) == GOLDEN


def test_decode_golden():
    assert decode(GOLDEN) == WITHDRAWAL


def test_encode_does_not_modify_input():
    message = dict(WITHDRAWAL)
    encode(message)
    assert message == WITHDRAWAL


@pytest.mark.parametrize(
    "data",
    [b"", b"02", b"0200", b"0200ZZZZ", GOLDEN[:-3], GOLDEN + b"extra", b"\xff\xfe" * 20],
)
def test_garbage_raises_message_error(data):
    with pytest.raises(MessageError):
        decode(data)


def test_mti_helpers():
    assert response_mti("0200") == "0210"
    assert response_mti("0421") == "0430"
    assert mti_class("0210") == "0200"
    assert mti_class("0421") == "0420"


def test_balances_round_trip():
    balances = [
        Balance(AccountType.CHECKING, "01", "840", 515_000),
        Balance(AccountType.CHECKING, "02", "840", -25),
    ]
    text = format_balances(balances)
    assert text == "2001840C0000005150002002840D000000000025"
    assert parse_balances(text) == balances
    with pytest.raises(MessageError):
        parse_balances("20018")


def test_processing_code():
    assert format_processing_code(TransactionType.BALANCE_INQUIRY, AccountType.SAVINGS) == "301000"


def test_describe_masks_pan_and_hides_pin_block():
    text = describe({**WITHDRAWAL, "35": "4000001234567899=30121010000000000000"})
    assert "4000001234567899" not in text
    assert "400000******7899" in text
    assert "621F91F5470F2CFE" not in text
    assert "3012" not in text
