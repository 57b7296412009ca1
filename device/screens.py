"""The screen model: what the customer sees, independent of how a console renders it.

A ``Screen`` has an ``id`` that scripts and tests wait on, a title, body lines, soft-key labels
(``F1``..``F4`` left, ``F5``..``F8`` right) and an optional input field. A PIN input is only ever
a count of ``*``: the digits never reach the controller.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

__all__ = ["Screen", "money", "render_text", "wrap"]


def money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) // 100:,}.{abs(cents) % 100:02d}"


@dataclass(frozen=True)
class Screen:
    id: str
    title: str
    lines: tuple[str, ...] = ()
    soft_keys: dict[str, str] = field(default_factory=dict)
    input_label: str | None = None
    input_value: str = ""
    input_masked: bool = False

    @property
    def input_display(self) -> str:
        return "*" * len(self.input_value) if self.input_masked else self.input_value


def wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` characters, broken only between words (a word
    longer than the whole line, which no screen text has, is the one exception). An empty
    line stays an empty line: screens use them as spacing."""
    return textwrap.wrap(text, width, break_on_hyphens=False) or [""]


def render_text(screen: Screen, width: int = 44) -> str:
    """A plain-text rendering (boxed), used by the demo and text consoles. Every line of the
    screen is shown, wrapped at word boundaries to the display's width, never cut."""
    inner = width - 4
    out = [
        "+" + "-" * (width - 2) + "+",
        *(f"| {line.center(inner)} |" for line in wrap(screen.title, inner)),
        "|" + " " * (width - 2) + "|",
    ]
    for text in screen.lines:
        out.extend(f"| {line:<{inner}} |" for line in wrap(text, inner))
    if screen.input_label is not None:
        field_text = f"{screen.input_label} {screen.input_display}"
        out.extend(f"| {line:<{inner}} |" for line in wrap(field_text, inner))
    left = [screen.soft_keys.get(f"F{i}") for i in range(1, 5)]
    right = [screen.soft_keys.get(f"F{i}") for i in range(5, 9)]
    if any(left) or any(right):
        out.append("|" + " " * (width - 2) + "|")
        for i in range(4):
            lhs = f"<F{i + 1} {left[i]}" if left[i] else ""
            rhs = f"{right[i]} F{i + 5}>" if right[i] else ""
            if len(lhs) + len(rhs) < inner:  # both on one row, at least one space apart
                out.append(f"| {lhs}{rhs:>{inner - len(lhs)}} |")
            else:  # too long for one row: the left key, then the right key below it
                out.extend(f"| {line:<{inner}} |" for line in wrap(lhs, inner) if lhs)
                out.extend(f"| {line:>{inner}} |" for line in wrap(rhs, inner) if rhs)
    out.append("+" + "-" * (width - 2) + "+")
    return "\n".join(out)


# -- the screens of the customer flow ---------------------------------------------------


def out_of_service() -> Screen:
    return Screen(
        "out_of_service", "Out of service", ("Sorry, this ATM is temporarily", "out of service.")
    )


def welcome() -> Screen:
    return Screen("welcome", "Welcome", ("Please insert your card",))


def reading_card() -> Screen:
    return Screen("reading_card", "Please wait", ("Reading your card...",))


def enter_pin(digits: int, retry: bool = False) -> Screen:
    lines = ("Incorrect PIN.", "Please re-enter your PIN") if retry else ("Please enter your PIN",)
    return Screen(
        "pin_retry" if retry else "enter_pin",
        "PIN entry",
        (*lines, "Press ENTER when done, CANCEL to quit"),
        input_label="PIN:",
        input_value="*" * digits,
        input_masked=True,
    )


def main_menu(
    cash: bool = True, text: str = "", deposit: bool = False, check_deposit: bool = False
) -> Screen:
    keys = {"F1": "Withdrawal"} if cash else {}
    keys.update({"F2": "Balance", "F3": "Transfer", "F4": "PIN change"})
    if deposit:
        keys["F5"] = "Deposit cash"
    if check_deposit:
        keys["F6"] = "Deposit check"
    keys["F8"] = "Cancel"
    lines = tuple(t for t in (text, "" if cash else "Cash withdrawal unavailable") if t)
    return Screen("main_menu", "Select a transaction", lines, keys)


def select_account(title: str = "Select account") -> Screen:
    return Screen("select_account", title, soft_keys={"F1": "Checking", "F2": "Savings"})


def select_to_account() -> Screen:
    return Screen(
        "select_to_account", "Transfer to account", soft_keys={"F1": "Checking", "F2": "Savings"}
    )


def transfer_amount(typed: str, message: str = "") -> Screen:
    lines = tuple(t for t in (message, "Type the amount in dollars and press ENTER") if t)
    return Screen("transfer_amount", "Transfer", lines, input_label="Amount: $", input_value=typed)


def new_pin(digits: int, confirm: bool = False, text: str = "") -> Screen:
    prompt = "Enter the new PIN again" if confirm else "Enter your new PIN (4 to 6 digits)"
    return Screen(
        "confirm_pin" if confirm else "new_pin",
        "PIN change",
        tuple(t for t in (text, prompt, "Press ENTER when done, CANCEL to quit") if t),
        input_label="PIN:",
        input_value="*" * digits,
        input_masked=True,
    )


def done(text: str) -> Screen:
    return Screen("done", "Transaction complete", (text,))


def another_transaction(text: str = "") -> Screen:
    lines = tuple(t for t in (text, "Would you like another transaction?") if t)
    return Screen("another", "Another transaction?", lines, {"F4": "Yes", "F8": "No"})


def fault(reason: str) -> Screen:
    return Screen("fault", "Out of service", ("Sorry, this ATM is out of service.", f"({reason})"))


def supervisor(lines: tuple[str, ...] = (), title: str = "Supervisor") -> Screen:
    return Screen(
        "supervisor",
        title,
        lines,
        {
            "F1": "Replenish",
            "F2": "Print counters",
            "F3": "Reset counters",
            "F4": "Journal",
            "F5": "Balancing",
            "F6": "Suspect: not paid",
            "F7": "Suspect: paid",
            "F8": "Leave",
        },
    )


def select_amount(amounts: tuple[int, ...], typed: str, message: str = "") -> Screen:
    keys = {f"F{i + 1}": money(c) for i, c in enumerate(amounts)}
    lines: tuple[str, ...] = ("Choose an amount or type it and press ENTER",)
    if message:
        lines = (message, *lines)
    return Screen(
        "select_amount", "Withdrawal", lines, keys, input_label="Amount: $", input_value=typed
    )


def please_wait() -> Screen:
    return Screen("authorizing", "Please wait", ("Your transaction is being processed",))


def dispensing(cents: int) -> Screen:
    return Screen("dispensing", "Please wait", (f"Counting {money(cents)}",))


def take_cash(cents: int) -> Screen:
    return Screen("take_cash", "Take your cash", (f"Please take your cash: {money(cents)}",))


def show_balance(
    account: str, cents: int | None, statement: tuple[str, ...] = (), receipt: bool = True
) -> Screen:
    value = money(cents) if cents is not None else "unavailable"
    lines: tuple[str, ...] = (f"{account} available balance:", value)
    if statement:
        lines += ("Recent transactions:", *statement)
    if not receipt:
        lines += ("Receipts unavailable",)
    keys = {"F4": "Receipt", "F8": "Finish"} if receipt else {"F8": "Finish"}
    return Screen("balance", "Balance", lines, keys)


def more_time(seconds_left: int) -> Screen:
    """Asked before a customer timeout ends the session, with the seconds left."""
    unit = "second" if seconds_left == 1 else "seconds"
    return Screen(
        "more_time",
        "Do you need more time?",
        (f"Your session ends in {seconds_left} {unit}", "Press Yes to continue"),
        {"F4": "Yes", "F8": "No"},
    )


def message(text: str) -> Screen:
    return Screen("message", "Notice", (text,))


def take_card(text: str = "") -> Screen:
    lines = (text, "Please take your card") if text else ("Please take your card",)
    return Screen("take_card", "Take your card", lines)


def card_retained(text: str) -> Screen:
    return Screen(
        "card_retained",
        "Card retained",
        (text or "Your card has been retained", "Please contact your bank"),
    )


def thank_you() -> Screen:
    return Screen("thank_you", "Thank you", ("Thank you for banking with us",))


def insert_notes(notes: int, cents: int, text: str = "") -> Screen:
    counted = f"Counted: {notes} note(s), {money(cents)}" if notes else "No notes yet"
    hint = "ENTER when done, CANCEL returns them" if notes else "CANCEL to stop"
    lines = tuple(t for t in (text, "Insert your notes one at a time", counted, hint) if t)
    return Screen("insert_notes", "Cash deposit", lines)


def confirm_deposit(notes: dict[int, int], cents: int) -> Screen:
    lines = tuple(f"{count} x {money(value)}" for value, count in sorted(notes.items()))
    return Screen(
        "confirm_deposit",
        f"Deposit {money(cents)}?",
        (*lines, f"Total {money(cents)}"),
        {"F1": "Confirm", "F8": "Return notes"},
    )


def stacking(cents: int) -> Screen:
    return Screen("stacking", "Depositing", (f"Depositing {money(cents)}, please wait",))


def take_notes(text: str = "") -> Screen:
    lines = tuple(t for t in (text, "Please take your notes") if t)
    return Screen("take_notes", "Notes returned", lines)


def check_amount(typed: str, message: str = "") -> Screen:
    lines = tuple(t for t in (message, "Type the check amount in dollars and press ENTER") if t)
    return Screen(
        "check_amount", "Check deposit", lines, input_label="Amount: $", input_value=typed
    )


def check_number(typed: str) -> Screen:
    return Screen(
        "check_number",
        "Check deposit",
        ("Type the check number and press ENTER",),
        input_label="Check no: ",
        input_value=typed,
    )


def insert_envelope(cents: int) -> Screen:
    return Screen(
        "insert_envelope",
        "Check deposit",
        (f"Put your check for {money(cents)} in an envelope", "and insert it in the slot"),
    )
