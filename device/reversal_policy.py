"""The one reversal policy for requests that move money, shared by the live link
(``device.hostlink``) and restart recovery (``device.recovery``); docs/state-diagram.md,
"Which requests are reversed".

A 0200 moves money when its processing code (DE 3) is a withdrawal (01), a transfer (40) or a
deposit (21 cash, 24 check: the notes or envelope of one that got no answer are given back or
left uncredited, so its credit must go too).
Such a request is reversed in full when the terminal cannot know the host's answer:

* no valid answer in time, or the connection broke after it was sent (reason 4021), by the
  link at once, or by recovery when the controller died before the answer was journaled;
* an approval that arrived after the terminal gave up (4006), by the link.

An approved withdrawal is then reversed according to what the dispenser did (4017, 4004, 4018:
``device.recovery``); an approved transfer is complete once approved and is never reversed.
Balance inquiries (30) and PIN changes (70) move no money and are never reversed.
"""

from __future__ import annotations

from protocol.messages import TransactionType

__all__ = ["MOVES_MONEY", "moves_money", "reversed_when_unanswered"]

MOVES_MONEY = frozenset(
    {
        TransactionType.WITHDRAWAL.value,
        TransactionType.TRANSFER.value,
        TransactionType.DEPOSIT.value,
        TransactionType.CHECK_DEPOSIT.value,
    }
)


def moves_money(processing_code: str) -> bool:
    """Does a request with this DE 3 move money on the host?"""
    return processing_code[:2] in MOVES_MONEY


def reversed_when_unanswered(mti: str, processing_code: str) -> bool:
    """Must a request be reversed when its answer is unknown (timeout, broken link, crash)?"""
    return mti == "0200" and moves_money(processing_code)
