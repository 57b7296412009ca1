"""The demo scripts, as data: one per transaction and one per fault the ATM handles.

A script names the card-holder's (and operator's) steps, each "when this screen shows, do this",
the faults injected before it starts, the device timeouts it shortens, and the outcome it
expects: balance changes per account, journal events, the value of the notes the customer took,
cards retained and receipts printed. ``atm.demo`` runs them against a real host over TCP.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from atm.devices import CardSlot, CashSlot, Faultable, Keypad, NoteSlot

__all__ = ["SCRIPTS", "TRACKS", "Customer", "DemoScript", "Step"]

TRACKS = {
    "alice": "4000001234567899=30121010000000000000",
    "bob": "4000009876543219=30121010000000000000",
    "charlie": "4000005555555557=30121010000000000000",
    "expired": "4000001111222238=24011010000000000000",
    "stolen": "4000009999999991=30121010000000000000",
}

ALICE_CHECKING = "1000-0001-0001"
ALICE_SAVINGS = "1000-0001-0002"
BOB_CHECKING = "1000-0002-0001"
CHARLIE_CHECKING = "1000-0003-0001"

# Timeouts short enough for a demo, long enough for a loaded CI machine.
SHORT = 0.3


class _NoWorld:
    """What a customer sees when the runner gave it no world to act on (``atm device``)."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"this customer cannot {name} here")


@dataclass
class Customer:
    """The person at the ATM (and, for some scripts, the operator and the world around it),
    acting on the simulated devices' customer side."""

    card_reader: CardSlot
    pin_pad: Keypad
    dispenser: CashSlot
    printer: Faultable | None = None
    # The bill acceptor's note slot (deposits), where the ATM has one.
    notes: NoteSlot | None = None
    # The envelope depository's slot (check deposits), where the ATM has one.
    depository: Any = None
    # The runner's hooks: host down/up, hold/release host responses, supervisor switch.
    world: Any = field(default_factory=_NoWorld)

    def insert(self, who: str) -> None:
        self.card_reader.insert(TRACKS[who])

    def keys(self, *keys: str) -> None:
        self.pin_pad.press(*keys)

    def type(self, digits: str, then: str = "ENTER") -> None:
        self.pin_pad.type_digits(digits)
        self.pin_pad.press(then)

    def take_cash(self) -> None:
        self.dispenser.take_cash()

    def insert_notes(self, *cents: int) -> None:
        """Push notes into the bill acceptor, one after another."""
        assert self.notes is not None, "this ATM has no bill acceptor"
        for value in cents:
            self.notes.insert_note(value)

    def insert_envelope(self) -> None:
        assert self.depository is not None, "this ATM has no envelope depository"
        self.depository.insert_envelope()

    def take_notes(self) -> list[int]:
        """Take the notes the bill acceptor gave back."""
        assert self.notes is not None, "this ATM has no bill acceptor"
        return self.notes.take_returned()

    def take_card(self) -> None:
        self.card_reader.take_card()

    def nothing(self) -> None:
        """Walks away (the ATM's timeout acts next)."""


Action = Callable[[Customer], Coroutine[Any, Any, None] | None]


@dataclass(frozen=True)
class Step:
    screen: str
    action: Action
    says: str


@dataclass(frozen=True)
class DemoScript:
    name: str
    description: str
    steps: tuple[Step, ...]
    account: str
    expected_change_cents: int
    # More accounts whose balance change is checked (transfers).
    other_changes: tuple[tuple[str, int], ...] = ()
    # (device, fault) injected into the simulated devices before the start:
    # device is one of reader, pinpad, dispenser, printer.
    faults: tuple[tuple[str, str], ...] = ()
    # DeviceConfig overrides (short timeouts for the timeout scenarios).
    device_config: tuple[tuple[str, Any], ...] = ()
    host_down_at_start: bool = False
    # Put a relay between ATM and host that the script can tell to lose messages.
    via_relay: bool = False
    # Journal events that must appear (substrings of journal lines).
    journal: tuple[str, ...] = ()
    taken_cents: int | None = None  # value of the notes the customer took
    cards_retained: int = 0
    receipts: int | None = None  # receipts printed for the customer (None: not checked)

    @property
    def changes(self) -> dict[str, int]:
        return {self.account: self.expected_change_cents, **dict(self.other_changes)}


def _s(screen: str, action: Action, says: str) -> Step:
    return Step(screen, action, says)


def _card(who: str) -> Step:
    return _s("welcome", lambda c: c.insert(who), f"inserts {who.capitalize()}'s card")


def _pin(pin: str, screen: str = "enter_pin") -> Step:
    return _s(screen, lambda c: c.type(pin), f"types PIN {'*' * len(pin)} and ENTER")


def _key(screen: str, key: str, what: str) -> Step:
    return _s(screen, lambda c: c.keys(key), f"presses {key} {what}")


TAKE_CASH = _s("take_cash", lambda c: c.take_cash(), "takes the cash")
TAKE_CARD = _s("take_card", lambda c: c.take_card(), "takes the card")
NO_MORE = _key("another", "F8", "No (no other transaction)")


def _world(
    method: str, says: str, screen: str, then: Callable[[Customer], None] | None = None
) -> Step:
    async def act(c: Customer) -> None:
        await getattr(c.world, method)()
        if then is not None:
            then(c)

    return Step(screen, act, says)


def _notes(*cents: int) -> Step:
    """Inserts the notes and presses ENTER (the ATM counts what is on its way first)."""

    def act(c: Customer) -> None:
        c.insert_notes(*cents)
        c.keys("ENTER")

    dollars = " + ".join(f"${n // 100}" for n in cents)
    return _s("insert_notes", act, f"inserts notes {dollars} and presses ENTER")


def _note_then_jam(c: Customer) -> None:
    c.insert_notes(2000)
    assert c.notes is not None
    c.notes.inject("jam")


def _take_notes(c: Customer) -> None:
    c.take_notes()


TAKE_NOTES = _s("take_notes", _take_notes, "takes the notes back")


def _withdraw(
    who: str, pin: str, amount_key: str, what: str, account_key: str = "F1"
) -> tuple[Step, ...]:
    return (
        _card(who),
        _pin(pin),
        _key("main_menu", "F1", "Withdrawal"),
        _key("select_account", account_key, "Checking" if account_key == "F1" else "Savings"),
        _key("select_amount", amount_key, what),
    )


_SCRIPT_LIST = (
    # -- transactions ------------------------------------------------------------------------
    DemoScript(
        "withdraw-alice",
        "Alice withdraws $100.00 from checking and takes cash, receipt and card",
        (
            _s("welcome", lambda c: c.insert("alice"), "inserts Alice's card"),
            _s("enter_pin", lambda c: c.type("1234"), "types her PIN and ENTER"),
            _s("main_menu", lambda c: c.keys("F1"), "presses F1 Withdrawal"),
            _s("select_account", lambda c: c.keys("F1"), "presses F1 Checking"),
            _s("select_amount", lambda c: c.keys("F4"), "presses F4 $100.00"),
            _s("take_cash", lambda c: c.take_cash(), "takes the cash"),
            _s("take_card", lambda c: c.take_card(), "takes the card"),
        ),
        account=ALICE_CHECKING,
        expected_change_cents=-10_000,
        journal=("DISPENSE_START", "CASH_TAKEN", "CARD_RETURNED"),
        taken_cents=10_000,
        receipts=1,
    ),
    DemoScript(
        "withdraw-aes",
        "An AES terminal (ATM00003, key scheme A: AES keys, PIN block format 4): Alice "
        "withdraws $100.00",
        (*_withdraw("alice", "1234", "F4", "$100.00"), TAKE_CASH, TAKE_CARD),
        account=ALICE_CHECKING,
        expected_change_cents=-10_000,
        device_config=(("terminal_id", "ATM00003"), ("key_scheme", "A")),
        journal=("PIN_ENTERED | format=4", "DISPENSE_START", "CASH_TAKEN", "CARD_RETURNED"),
        taken_cents=10_000,
        receipts=1,
    ),
    DemoScript(
        "wrong-pin",
        "Alice types a wrong PIN for a balance inquiry, sees the wrong-PIN screen, cancels",
        (
            _s("welcome", lambda c: c.insert("alice"), "inserts Alice's card"),
            _s("enter_pin", lambda c: c.type("9999"), "types a wrong PIN and ENTER"),
            _s("main_menu", lambda c: c.keys("F2"), "presses F2 Balance"),
            _s("select_account", lambda c: c.keys("F1"), "presses F1 Checking"),
            _s("pin_retry", lambda c: c.keys("CANCEL"), "presses CANCEL"),
            _s("take_card", lambda c: c.take_card(), "takes the card"),
        ),
        account=ALICE_CHECKING,
        expected_change_cents=0,
        journal=("code=55", "CANCELLED", "CARD_RETURNED"),
        receipts=0,
    ),
    DemoScript(
        "balance-bob",
        "Bob checks his checking balance and asks for a receipt",
        (
            _card("bob"),
            _pin("5678"),
            _key("main_menu", "F2", "Balance"),
            _key("select_account", "F1", "Checking"),
            _key("balance", "F4", "Receipt"),
            NO_MORE,
            TAKE_CARD,
        ),
        account=BOB_CHECKING,
        expected_change_cents=0,
        journal=("TXN_RESPONSE", "RECEIPT_PRINTED"),
        receipts=1,
    ),
    DemoScript(
        "withdraw-any-amount",
        "Bob types $90 (not a fast-cash amount); the ATM pays 1 x $50 + 2 x $20",
        (
            _card("bob"),
            _pin("5678"),
            _key("main_menu", "F1", "Withdrawal"),
            _key("select_account", "F1", "Checking"),
            _s("select_amount", lambda c: c.type("90"), "types 90 and ENTER"),
            TAKE_CASH,
            TAKE_CARD,
        ),
        account=BOB_CHECKING,
        expected_change_cents=-9_000,
        journal=("notes=0:2,1:1",),
        taken_cents=9_000,
        receipts=1,
    ),
    DemoScript(
        "withdraw-savings",
        "Alice takes $40 fast cash from her savings account",
        (*_withdraw("alice", "1234", "F2", "$40.00", account_key="F2"), TAKE_CASH, TAKE_CARD),
        account=ALICE_SAVINGS,
        expected_change_cents=-4_000,
        other_changes=((ALICE_CHECKING, 0),),
        journal=("proc=011000",),
        taken_cents=4_000,
    ),
    DemoScript(
        "unmakeable-amount",
        "Alice asks for $30, which $20 and $50 notes cannot make: refused before the host; "
        "she takes $20",
        (
            _card("alice"),
            _pin("1234"),
            _key("main_menu", "F1", "Withdrawal"),
            _key("select_account", "F1", "Checking"),
            _s("select_amount", lambda c: c.type("30"), "types 30 and ENTER"),
            _key("select_amount", "F1", "$20.00"),
            TAKE_CASH,
            TAKE_CARD,
        ),
        account=ALICE_CHECKING,
        expected_change_cents=-2_000,
        journal=("AMOUNT_REFUSED | amount=3000",),
        taken_cents=2_000,
    ),
    DemoScript(
        "another-transaction",
        "Alice checks her balance (no receipt), chooses another transaction and withdraws $60",
        (
            _card("alice"),
            _pin("1234"),
            _key("main_menu", "F2", "Balance"),
            _key("select_account", "F1", "Checking"),
            _key("balance", "F8", "Finish"),
            _key("another", "F4", "Yes"),
            _key("main_menu", "F1", "Withdrawal"),
            _key("select_account", "F1", "Checking"),
            _key("select_amount", "F3", "$60.00"),
            TAKE_CASH,
            TAKE_CARD,
        ),
        account=ALICE_CHECKING,
        expected_change_cents=-6_000,
        taken_cents=6_000,
        receipts=1,
    ),
    DemoScript(
        "cancel",
        "Alice cancels at the amount screen; her card comes back and nothing moves",
        (
            *_withdraw("alice", "1234", "CANCEL", "Cancel"),
            TAKE_CARD,
        ),
        account=ALICE_CHECKING,
        expected_change_cents=0,
        journal=("CANCELLED | state=amount_entry", "CARD_RETURNED"),
        taken_cents=0,
        receipts=0,
    ),
    DemoScript(
        "transfer-alice",
        "Alice moves $250.00 from checking to savings",
        (
            _card("alice"),
            _pin("1234"),
            _key("main_menu", "F3", "Transfer"),
            _key("select_account", "F1", "from Checking"),
            _key("select_to_account", "F2", "to Savings"),
            _s("transfer_amount", lambda c: c.type("250"), "types 250 and ENTER"),
            NO_MORE,
            TAKE_CARD,
        ),
        account=ALICE_CHECKING,
        expected_change_cents=-25_000,
        other_changes=((ALICE_SAVINGS, 25_000),),
        journal=("proc=402010", "code=00"),
        receipts=1,
    ),
    DemoScript(
        "pin-change-charlie",
        "Charlie changes his PIN from 9012 to 4826 (typed twice), then checks his balance "
        "with the new PIN",
        (
            _card("charlie"),
            _pin("9012"),
            _key("main_menu", "F4", "PIN change"),
            _pin("4826", "new_pin"),
            _pin("4826", "confirm_pin"),
            _key("another", "F4", "Yes"),
            _key("main_menu", "F2", "Balance"),
            _key("select_account", "F1", "Checking"),
            _key("balance", "F8", "Finish"),
            NO_MORE,
            TAKE_CARD,
            _card("charlie"),
            _pin("4826"),
            _key("main_menu", "F2", "Balance"),
            _key("select_account", "F1", "Checking"),
            _key("balance", "F8", "Finish"),
            NO_MORE,
            TAKE_CARD,
        ),
        account=CHARLIE_CHECKING,
        expected_change_cents=0,
        journal=("proc=700000", "NEW_PIN_ENTERED"),
    ),
    DemoScript(
        "balance-statement",
        "Alice withdraws $20, then a balance inquiry shows it in her mini-statement",
        (
            *_withdraw("alice", "1234", "F1", "$20.00"),
            TAKE_CASH,
            TAKE_CARD,
            _card("alice"),
            _pin("1234"),
            _key("main_menu", "F2", "Balance"),
            _key("select_account", "F1", "Checking"),
            _key("balance", "F4", "Receipt"),
            NO_MORE,
            TAKE_CARD,
        ),
        account=ALICE_CHECKING,
        expected_change_cents=-2_000,
        journal=("STATEMENT_SHOWN", "RECEIPT_PRINTED"),
        receipts=2,
    ),
    DemoScript(
        "insufficient-funds",
        "Charlie (checking $0.00) asks for $20: declined (51), he chooses not to continue",
        (*_withdraw("charlie", "9012", "F1", "$20.00"), NO_MORE, TAKE_CARD),
        account=CHARLIE_CHECKING,
        expected_change_cents=0,
        journal=("code=51",),
        taken_cents=0,
        receipts=1,
    ),
    DemoScript(
        "daily-limit",
        "Alice types $600, over the host's $500 daily limit: declined (61); she takes $200",
        (
            _card("alice"),
            _pin("1234"),
            _key("main_menu", "F1", "Withdrawal"),
            _key("select_account", "F1", "Checking"),
            _s("select_amount", lambda c: c.type("600"), "types 600 and ENTER"),
            _key("another", "F4", "Yes"),
            _key("main_menu", "F1", "Withdrawal"),
            _key("select_account", "F1", "Checking"),
            _key("select_amount", "F5", "$200.00"),
            TAKE_CASH,
            TAKE_CARD,
        ),
        account=ALICE_CHECKING,
        expected_change_cents=-20_000,
        journal=("code=61",),
        taken_cents=20_000,
        receipts=2,
    ),
    # -- faults ------------------------------------------------------------------------------
    DemoScript(
        "dispenser-jam",
        "The dispenser jams before any note leaves: Alice's $100 is reversed in full",
        (*_withdraw("alice", "1234", "F4", "$100.00"), TAKE_CARD),
        account=ALICE_CHECKING,
        expected_change_cents=0,
        faults=(("dispenser", "jam"),),
        journal=(
            "DISPENSE_FAULT",
            "REVERSAL_QUEUED | stan=000002 | amount=10000 | dispensed=0 | reason=4017",
        ),
        taken_cents=0,
        receipts=1,
    ),
    DemoScript(
        "partial-dispense",
        "The dispenser jams after one of two $50 notes: Alice takes $50, $50 is reversed",
        (*_withdraw("alice", "1234", "F4", "$100.00"), TAKE_CASH, TAKE_CARD),
        account=ALICE_CHECKING,
        expected_change_cents=-5_000,
        faults=(("dispenser", "partial"),),
        journal=(
            "DISPENSE_FAULT",
            "REVERSAL_QUEUED | stan=000002 | amount=10000 | dispensed=5000 | reason=4004",
        ),
        taken_cents=5_000,
    ),
    DemoScript(
        "cassette-empty",
        "Every cassette reports empty: withdrawal is not offered; Alice checks her balance",
        (
            _card("alice"),
            _pin("1234"),
            _key("main_menu", "F2", "Balance"),
            _key("select_account", "F1", "Checking"),
            _key("balance", "F8", "Finish"),
            NO_MORE,
            TAKE_CARD,
        ),
        account=ALICE_CHECKING,
        expected_change_cents=0,
        faults=(("dispenser", "cassette_empty"),),
        journal=("CASSETTE_LEVEL | cassette=0 | level=empty",),
        taken_cents=0,
    ),
    DemoScript(
        "dispense-timeout",
        "The dispenser stops answering mid-dispense, then reports the notes it counted out: "
        "the $100 is treated as dispensed and Alice takes it (simulated devices only)",
        (*_withdraw("alice", "1234", "F4", "$100.00"), TAKE_CASH, TAKE_CARD),
        account=ALICE_CHECKING,
        expected_change_cents=-10_000,
        faults=(("dispenser", "hang"),),
        journal=(
            "DISPENSE_UNKNOWN | stan=000002 | amount=10000",
            "DISPENSE_RESULT | stan=000002 | dispensed=10000 | notes=1:2 | rejected=- | "
            "established=yes",
            "CASH_TAKEN",
        ),
        taken_cents=10_000,
    ),
    DemoScript(
        "dispense-unknown",
        "The dispenser dies mid-dispense and cannot say what left: no blind reversal; the "
        "card comes back, the withdrawal is suspect; the operator repairs the dispenser, "
        "balancing shows the suspect $100, he counts the cassettes, settles it as paid and "
        "reloads",
        (
            *_withdraw("alice", "1234", "F4", "$100.00"),
            TAKE_CARD,
            _world(
                "repair_dispenser",
                "operator repairs the dispenser and turns the supervisor switch",
                "welcome",
            ),
            _key("supervisor", "F5", "Balancing (shows the suspect)"),
            _key("supervisor", "F7", "Suspect: paid (two $50 notes are missing)"),
            _world(
                "replenish", "operator counts and reloads the cassettes, presses F1", "supervisor"
            ),
            _key("supervisor", "F5", "Balancing"),
            _key("supervisor", "F8", "Leave"),
        ),
        account=ALICE_CHECKING,
        expected_change_cents=-10_000,
        faults=(("dispenser", "lost"),),
        journal=(
            "DISPENSE_UNKNOWN | stan=000002 | amount=10000",
            "DISPENSE_SUSPECT | stan=000002 | amount=10000 | notes=1:2",
            "CARD_RETURNED",
            "SUSPECT $100.00 TO SETTLE (1)",
            "SUSPECT_SETTLED | stan=000002 | amount=10000 | outcome=dispensed",
            "BALANCING | result=BALANCED",
        ),
    ),
    DemoScript(
        "cash-not-taken",
        "Alice leaves the $100 in the slot: it is retracted and the withdrawal reversed",
        (
            *_withdraw("alice", "1234", "F4", "$100.00"),
            _s("take_cash", lambda c: c.nothing(), "walks away"),
            TAKE_CARD,
        ),
        account=ALICE_CHECKING,
        expected_change_cents=0,
        device_config=(("cash_take_timeout", SHORT),),
        journal=(
            "CASH_RETRACTED",
            "REVERSAL_QUEUED | stan=000002 | amount=10000 | dispensed=0 | reason=4018",
        ),
        taken_cents=0,
    ),
    DemoScript(
        "card-not-taken",
        "Alice takes $20 but leaves her card: the ATM captures it",
        (
            *_withdraw("alice", "1234", "F1", "$20.00"),
            TAKE_CASH,
            _s("take_card", lambda c: c.nothing(), "walks away without the card"),
        ),
        account=ALICE_CHECKING,
        expected_change_cents=-2_000,
        device_config=(("card_take_timeout", SHORT),),
        journal=("CARD_NOT_TAKEN", "CARD_CAPTURED"),
        taken_cents=2_000,
        cards_retained=1,
    ),
    DemoScript(
        "card-jam",
        "Alice's card jams in the reader: the ATM goes out of service until the supervisor "
        "clears it",
        (
            _card("alice"),
            _world(
                "free_card",
                "operator frees the card, clears the jam, turns the supervisor switch",
                "fault",
            ),
            _key("supervisor", "F8", "Leave"),
        ),
        account=ALICE_CHECKING,
        expected_change_cents=0,
        faults=(("reader", "card_jam"),),
        journal=("CARD_JAM", "SUPERVISOR_ENTER", "SUPERVISOR_EXIT"),
        taken_cents=0,
    ),
    DemoScript(
        "unreadable-card",
        "Alice's card cannot be read: it is returned with a message",
        (_card("alice"), TAKE_CARD),
        account=ALICE_CHECKING,
        expected_change_cents=0,
        faults=(("reader", "unreadable"),),
        journal=("CARD_UNREADABLE", "CARD_RETURNED"),
        receipts=0,
    ),
    DemoScript(
        "printer-out-of-paper",
        "The printer is out of paper: no receipt is offered, Alice's withdrawal goes ahead",
        (
            _card("alice"),
            _pin("1234"),
            _key("main_menu", "F2", "Balance"),
            _key("select_account", "F1", "Checking"),
            _key("balance", "F8", "Finish (no receipt offered)"),
            _key("another", "F4", "Yes"),
            _key("main_menu", "F1", "Withdrawal"),
            _key("select_account", "F1", "Checking"),
            _key("select_amount", "F1", "$20.00"),
            TAKE_CASH,
            TAKE_CARD,
        ),
        account=ALICE_CHECKING,
        expected_change_cents=-2_000,
        faults=(("printer", "paper_out"),),
        journal=("RECEIPT_SKIPPED",),
        taken_cents=2_000,
        receipts=0,
    ),
    DemoScript(
        "pinpad-timeout",
        "Alice inserts her card and types nothing: asked whether she needs more time, she "
        "does not answer either; the session ends, the card comes back",
        (_card("alice"), _s("enter_pin", lambda c: c.nothing(), "types nothing"), TAKE_CARD),
        account=ALICE_CHECKING,
        expected_change_cents=0,
        device_config=(("key_timeout", SHORT), ("more_time_seconds", SHORT)),
        journal=(
            "TIMEOUT | state=pin_entry",
            "MORE_TIME_ASKED | state=pin_entry",
            "TIMEOUT | state=more_time",
            "CARD_RETURNED",
        ),
        receipts=0,
    ),
    DemoScript(
        "deposit-cash",
        "Alice deposits $300 in notes: $200 is available at once, $100 is on hold",
        (
            _card("alice"),
            _pin("1234"),
            _key("main_menu", "F5", "Deposit cash"),
            _key("select_account", "F1", "Checking"),
            _notes(10000, 10000, 5000, 5000),
            _key("confirm_deposit", "F1", "Confirm $300.00"),
            TAKE_CARD,
        ),
        account=ALICE_CHECKING,
        expected_change_cents=30_000,
        journal=(
            "DEPOSIT_COUNTED | amount=30000 | notes=5000x2,10000x2",
            "DEPOSIT_STACKED | stan=",
            "CARD_RETURNED",
        ),
        receipts=1,
    ),
    DemoScript(
        "deposit-check",
        "Alice deposits a $500 check in an envelope: none of it is available today",
        (
            _card("alice"),
            _pin("1234"),
            _key("main_menu", "F6", "Deposit check"),
            _key("select_account", "F1", "Checking"),
            _s("check_amount", lambda c: c.type("500"), "types 500 and ENTER"),
            _s("check_number", lambda c: c.type("1042"), "types check number 1042 and ENTER"),
            _s("insert_envelope", lambda c: c.insert_envelope(), "inserts the envelope"),
            TAKE_CARD,
        ),
        account=ALICE_CHECKING,
        expected_change_cents=50_000,
        journal=("ENVELOPE_TAKEN | amount=50000 | check=1042", "TXN_RESPONSE", "CARD_RETURNED"),
        receipts=1,
    ),
    DemoScript(
        "deposit-check-no-envelope",
        "Alice keys a $500 check but no envelope reaches the depository: nothing is deposited",
        (
            _card("alice"),
            _pin("1234"),
            _key("main_menu", "F6", "Deposit check"),
            _key("select_account", "F1", "Checking"),
            _s("check_amount", lambda c: c.type("500"), "types 500 and ENTER"),
            _s("check_number", lambda c: c.type("1042"), "types check number 1042 and ENTER"),
            _s("insert_envelope", lambda c: c.insert_envelope(), "inserts the envelope"),
            TAKE_CARD,
        ),
        account=ALICE_CHECKING,
        expected_change_cents=0,
        faults=(("depository", "no_envelope"),),
        journal=("NO_ENVELOPE | amount=50000",),
    ),
    DemoScript(
        "deposit-jam",
        "A note jams while Alice inserts it: the notes already counted come back, nothing moves",
        (
            _card("alice"),
            _pin("1234"),
            _key("main_menu", "F5", "Deposit cash"),
            _key("select_account", "F1", "Checking"),
            _s("insert_notes", _note_then_jam, "inserts a $20 note (the acceptor then jams)"),
            _s("insert_notes", lambda c: c.insert_notes(5000), "inserts a $50 note, which jams"),
            TAKE_NOTES,
            NO_MORE,
            TAKE_CARD,
        ),
        account=ALICE_CHECKING,
        expected_change_cents=0,
        journal=("NOTE_JAM | held=2000x1", "NOTES_RETURNED", "NOTES_TAKEN"),
    ),
    DemoScript(
        "deposit-timeout",
        "The host stops answering while Alice's $300 is in escrow: the notes come back, "
        "no money moves",
        (
            _card("alice"),
            _pin("1234"),
            _key("main_menu", "F5", "Deposit cash"),
            _key("select_account", "F1", "Checking"),
            _notes(10000, 10000, 10000),
            _world(
                "hold_host",
                "(the host link starts losing messages); presses F1 Confirm $300.00",
                "confirm_deposit",
                then=lambda c: c.keys("F1"),
            ),
            TAKE_NOTES,
            _world(
                "release_host",
                "(the host link recovers); takes the card",
                "take_card",
                then=lambda c: c.take_card(),
            ),
        ),
        account=ALICE_CHECKING,
        expected_change_cents=0,
        device_config=(("response_timeout", SHORT),),
        via_relay=True,
        journal=("DEPOSIT_COUNTED", "TXN_NO_RESPONSE", "NOTES_RETURNED", "NOTES_TAKEN"),
    ),
    DemoScript(
        "host-timeout",
        "The host stops answering during Alice's withdrawal: no cash, card returned",
        (
            _card("alice"),
            _pin("1234"),
            _key("main_menu", "F1", "Withdrawal"),
            _key("select_account", "F1", "Checking"),
            _world(
                "hold_host",
                "(the host link starts losing messages); presses F1 $20.00",
                "select_amount",
                then=lambda c: c.keys("F1"),
            ),
            _world(
                "release_host",
                "(the host link recovers); takes the card",
                "take_card",
                then=lambda c: c.take_card(),
            ),
        ),
        account=ALICE_CHECKING,
        expected_change_cents=0,
        device_config=(("response_timeout", SHORT),),
        via_relay=True,
        journal=(
            "REVERSAL_QUEUED | stan=000002 | amount=2000 | dispensed=0 | reason=4021 | by=link",
            "TXN_NO_RESPONSE",
        ),
        taken_cents=0,
    ),
    DemoScript(
        "host-down",
        "The host goes down while the ATM is idle: out of service, back by itself when the "
        "host returns; then Alice withdraws $20",
        (
            _world("host_down", "(the host goes down)", "welcome"),
            _world("host_up", "(the host comes back)", "out_of_service"),
            *_withdraw("alice", "1234", "F1", "$20.00"),
            TAKE_CASH,
            TAKE_CARD,
        ),
        account=ALICE_CHECKING,
        expected_change_cents=-2_000,
        device_config=(("idle_echo_interval", SHORT), ("reconnect_delay", 0.1)),
        journal=("LINK_DOWN", "SIGNED_ON"),
        taken_cents=2_000,
    ),
    DemoScript(
        "host-down-at-start",
        "The ATM starts while the host is down: out of service until the host is there",
        (
            _world("host_up", "(the host starts)", "out_of_service"),
            *_withdraw("alice", "1234", "F1", "$20.00"),
            TAKE_CASH,
            TAKE_CARD,
        ),
        account=ALICE_CHECKING,
        expected_change_cents=-2_000,
        device_config=(("reconnect_delay", 0.1),),
        host_down_at_start=True,
        journal=("SIGNED_ON",),
        taken_cents=2_000,
    ),
    DemoScript(
        "wrong-pin-3",
        "Bob types a wrong PIN three times: the host locks the card (75), the ATM returns it",
        (
            _card("bob"),
            _pin("1111"),
            _key("main_menu", "F2", "Balance"),
            _key("select_account", "F1", "Checking"),
            _pin("2222", "pin_retry"),
            _pin("3333", "pin_retry"),
            TAKE_CARD,
        ),
        account=BOB_CHECKING,
        expected_change_cents=0,
        journal=("code=55", "code=75", "CARD_RETURNED"),
        cards_retained=0,
    ),
    DemoScript(
        "expired-card",
        "An expired card: the host declines it (54) and the ATM returns it",
        (
            _card("expired"),
            _pin("9012"),
            _key("main_menu", "F2", "Balance"),
            _key("select_account", "F1", "Checking"),
            TAKE_CARD,
        ),
        account=CHARLIE_CHECKING,
        expected_change_cents=0,
        journal=("code=54", "CARD_RETURNED"),
    ),
    DemoScript(
        "stolen-card",
        "A card reported stolen: the host answers 43 and the ATM keeps the card",
        (
            _card("stolen"),
            _pin("9012"),
            _key("main_menu", "F1", "Withdrawal"),
            _key("select_account", "F1", "Checking"),
            _key("select_amount", "F1", "$20.00"),
        ),
        account=CHARLIE_CHECKING,
        expected_change_cents=0,
        journal=("code=43", "CARD_CAPTURED"),
        taken_cents=0,
        cards_retained=1,
    ),
    DemoScript(
        "supervisor",
        "After Alice's $100 withdrawal the operator prints the counters and the balancing "
        "report, then replenishes",
        (
            *_withdraw("alice", "1234", "F4", "$100.00"),
            TAKE_CASH,
            TAKE_CARD,
            _world("supervisor", "operator turns the supervisor switch", "welcome"),
            _key("supervisor", "F2", "Print counters"),
            _key("supervisor", "F5", "Balancing"),
            _world("replenish", "operator loads the cassettes full and presses F1", "supervisor"),
            _key("supervisor", "F4", "Journal"),
            _key("supervisor", "F8", "Leave"),
        ),
        account=ALICE_CHECKING,
        expected_change_cents=-10_000,
        journal=("REPORT_PRINTED | report=COUNTERS", "BALANCING | result=BALANCED", "REPLENISH"),
        taken_cents=10_000,
    ),
)

SCRIPTS: dict[str, DemoScript] = {s.name: s for s in _SCRIPT_LIST}
