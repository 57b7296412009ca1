"""The state diagram in ``docs/state-diagram.md``, generated from ``device.states`` (the
transitions, timeouts and supervisor keys) and ``device.activities`` (which module does what).

Uses the ``transitions`` diagrams extension with its mermaid engine (no graphviz needed).
``python -m device.diagram`` rewrites the file; a test fails when the file is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from transitions.extensions import GraphMachine

from device.activities import ACTIVITIES
from device.states import SUPERVISOR_KEYS, TIMEOUTS, TRANSITIONS, State

__all__ = ["DOC_PATH", "mermaid", "render_document"]

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "state-diagram.md"


class _Model:
    """A bare model: the diagram needs the machine's table, not the controller."""


def mermaid() -> str:
    model = _Model()
    GraphMachine(
        model=model,
        states=State,
        transitions=TRANSITIONS,
        initial=State.out_of_service,
        auto_transitions=False,
        graph_engine="mermaid",
        show_conditions=True,
        title="ATM controller",
    )
    text: str = model.get_graph().draw(None)  # type: ignore[attr-defined]
    # Keep states and transitions; drop the styling (current-state highlight) and the
    # front matter, which mermaid wants as ``title:``.
    lines = [
        line.rstrip()
        for line in text.splitlines()
        if line.strip() and not line.strip().startswith(("classDef", "Class", "---", "ATM "))
    ]
    return "---\ntitle: ATM controller\n---\n" + "\n".join(lines) + "\n"


# What each supervisor key does, for people (the key -> trigger -> state part is the table).
_SUPERVISOR_JOBS = {
    "replenish": "replenish: what the dispenser reports now becomes the loaded count (journal "
    "`REPLENISH`)",
    "print_counters": "print the counters per cassette: loaded, dispensed, rejected, retracted",
    "reset_counters": "reset the counters: remaining notes become the loaded count "
    "(`COUNTERS_RESET`)",
    "show_journal": "show the latest journal lines",
    "balance": "balancing report (shown, printed, journaled as `BALANCING`): loaded - dispensed "
    "- rejected - retracted = remaining, against the dispenser's count; then one `SUSPECT` line "
    "per withdrawal whose dispense outcome is unknown, and the total to settle",
    "settle_not_dispensed": "settle every open suspect as *not dispensed* (the cassettes hold "
    "every note): each is reversed in full (4017, `REVERSAL_QUEUED`) and journaled "
    "`SUSPECT_SETTLED outcome=not_dispensed`",
    "settle_dispensed": "settle every open suspect as *dispensed* (notes are missing): the "
    "counters book its notes as dispensed, `SUSPECT_SETTLED outcome=dispensed`; the customer "
    "stays debited; a dispenser that keeps its counts itself (LCDM-2000) lowers them by the same "
    "notes",
    "accept_damaged_line": "accept the damaged journal or store-and-forward line the fault names "
    "(kept in its file, skipped from now on) and run restart recovery again; see below",
    "supervisor_left": "leave (also after `DeviceConfig.supervisor_timeout`); clears a "
    "dispenser or card-jam fault and signs on again (not while a damaged line is unaccepted)",
}


def render_document() -> str:
    timeouts = "\n".join(
        f"| `{state.value}` | `DeviceConfig.{name}` | `{what.value}` |"
        for state, (name, what) in TIMEOUTS.items()
    )
    activities = "\n".join(
        f"| `{state.value}` | `{fn.__module__}.{fn.__name__}` |" for state, fn in ACTIVITIES.items()
    )
    keys = "\n".join(
        f"| {key} | `{trigger}` | `{dest.value}` | {_SUPERVISOR_JOBS[trigger]} |"
        for key, (trigger, dest) in SUPERVISOR_KEYS.items()
    )
    return f"""# ATM controller state diagram

Generated from `device/states.py` by `python -m device.diagram` (the `transitions` diagrams
extension, mermaid engine). Do not edit by hand: `tests/device/test_diagram.py` fails when this
file no longer matches the table.

Every state that waits for a person has a timeout; what happens when it runs out:

| state | timeout | trigger posted |
|---|---|---|
{timeouts}

When a customer state's `key_timeout` runs out, the machine first goes to `more_time`: "Do you
need more time?" with a countdown of `DeviceConfig.more_time_seconds` (30 by default, by the
controller's clock; 0 turns the warning off). Yes (F4 or ENTER) posts `resume_<state>` back to
the state the customer was in, which starts again; No (F8 or CANCEL) and the end of the
countdown return the card (journal: `MORE_TIME_ASKED`, `MORE_TIME_GIVEN`, `TIMEOUT`).

`fault` is reachable from every state (an activity that fails, a card jam); only the
supervisor (`AtmController.enter_supervisor()`) leaves it, through `out_of_service` and a new
sign-on.

```mermaid
{mermaid()}```

## Supervisor mode

A console's supervisor switch calls `AtmController.enter_supervisor()`; it is honoured when the
ATM is `idle`, `out_of_service` or in `fault` (never during a customer session). In `supervisor`
the operator uses the keypad (`device.states.SUPERVISOR_KEYS`): each key is a trigger into a
`supervisor_*` state that does one job and returns with `supervisor_done`; other keys are
ignored.

| key | trigger | state | action |
|---|---|---|---|
{keys}

## Where things go

`device/` is split by what a thing is, so each feature has one room:

- a state or a transition: `device/states.py` (`State`, `TRANSITIONS`; how long it waits for
  a person in `TIMEOUTS`);
- what a state does: a function `async def <state>(atm)` in `device/activities/<family>.py`
  and one line in `ACTIVITIES` (`device/activities/__init__.py`);
- a screen the customer sees: the screen in `device/screens.py`, the activity that shows it
  and reads the keys in `device/activities/customer.py`;
- a transaction type (a deposit): its request in `device/activities/authorization.py`, its
  cash handling (escrow, stack, return) in a new `device/activities/deposit.py`, its fields
  in `device/session.py`;
- a supervisor function: a key in `SUPERVISOR_KEYS` and a `supervisor_*` state in
  `device/states.py`, its activity in `device/activities/operator.py`;
- machinery every activity shares (journal, counters, reversing the session, timeouts): the
  model, `AtmController` in `device/controller.py`.

Then run `python -m device.diagram` to regenerate this page. Which module runs each state:

| state | activity |
|---|---|
{activities}

## Electronic journal and restart recovery

`state_dir/journal-<terminal>.log`, one fsync'd line per event:
`time | terminal | EVENT | key=value | ... | crc=XXXXXXXX`; PANs masked, never a PIN block, key
or track data. The last field is the CRC-32 of the rest of the line (`device.journal`).
A withdrawal writes `TXN_REQUEST` (with DE 3, 4, 7, 11, 42, 49 and the MTI, so a reversal can be
rebuilt without the PAN), `TXN_RESPONSE`, `DISPENSE_START` (notes asked for and the cassette
counts before the command), then `DISPENSE_RESULT` or `DISPENSE_FAULT`, then `CASH_TAKEN`, or
`RETRACT_INTENDED` (with the dispenser's own retract count) before the retract command and
`CASH_RETRACTED` (the notes per cassette, `moved=`) after it, and `REVERSAL_QUEUED` whenever a
reversal goes to `HostLink.queue_reversal`.

Damaged files. A line whose checksum fails or that is not UTF-8 is never read as data:

- a torn tail (the last line without its newline, or failing its check: the process died while
  writing it) is absent, and is cut off (kept in `<file>.torn`) before the next line is
  appended; the store-and-forward file does the same with a torn last JSON line;
- any other damaged line of the journal or the store-and-forward file stops the ATM in `fault`
  with one log line naming the file and line (`journal ... line 7 is damaged (checksum
  mismatch)`) and the screen `(journal line 7 damaged)`. In supervisor mode the screen names
  the line; ENTER accepts it (`JOURNAL_DAMAGE_ACCEPTED` / a `skip` line in the
  store-and-forward file, naming the line and a CRC of its bytes): from then on that exact line
  is skipped, it stays in the file for the auditors, and recovery runs again. After a damaged
  store-and-forward line every reversal the journal records is queued again
  (`REVERSAL_REQUEUED`; the host acknowledges a repeat of what it already reversed and changes
  nothing). F8 leaves only once the damage is accepted; until then the ATM stays in `fault`.

On start (`device.restart`, then `device.recovery`), in this order, each step idempotent so a
crash during recovery spoils nothing:

1. **Counters.** The journal is the record of truth. Every counters booking carries a key
   (`<stan>:dispensed`, `:rejected`, `:retracted`) saved with the counts in one atomic write;
   the bookings the journal records for the interrupted withdrawal are replayed, and a key
   already booked is skipped. Killed between the counters save and the journal line, or the
   other way round: the notes are counted once.
2. **A card left inside** (the reader still holds the crashed session's card):
   `DeviceConfig.card_left_at_restart` = `retain` (default: captured, `CARD_LEFT_INSIDE`,
   `CARD_CAPTURED`; its owner has gone and nobody else may take it) or `eject` (offered at the
   gate for `card_take_timeout`, captured if not taken). A new PIN session never starts on it.
3. **Notes in the exit tray** (`CashDispenser.notes_in_tray`) are never left for the next
   customer: `RETRACT_INTENDED`, the retract command, then `CASH_RETRACTED recovered=yes` for
   the withdrawal they belong to (booked from dispensed to retracted, reversed 4018), or
   `TRAY_PURGED` when the journal explains none. The same check runs before every dispense.
   Notes that an unanswered dispense counted out are found from the cassette counts where those
   are physical.
4. **A retract journaled as intended but not confirmed**, tray empty: the dispenser's own retract
   count against the one journaled before the command decides: it counted the notes, so they
   were retracted (`CASH_RETRACTED recovered=yes`, reversed 4018); it did not, so the customer
   took them (`CASH_TAKEN recovered=yes`). A dispenser that keeps no retract count makes it a
   suspect.
5. **Reversals and suspects** from the journal alone: an approved withdrawal whose cash did not
   (all) leave gets a reversal (partial, 4004, when the cassette counts show that notes were
   counted out; 4017 when none; 4018 when retracted; 4021 when stopped before the answer),
   journaled with `recovered=yes`, so a second restart queues nothing. A dispense interrupted
   on a dispenser whose counts are not physical (LCDM-2000: the driver lowers its counts only
   when a reply arrives, `counts_physical` is False) is a suspect, never a reversal: the customer
   may hold the notes. Notes presented but of unknown fate with an empty tray are counted as
   taken (`RECOVERY_NO_REVERSAL`).

6. **Deposits.** The policy: the customer never loses a note they inserted, and the bank never
   credits a note it does not hold; the notes follow the host's answer as the journal records
   it. The host posts a deposit when it approves the 0200, so there is no separate completion
   message: completing a deposit means stacking its notes and sending no reversal.
   - A cash deposit whose approval is journaled (`TXN_RESPONSE` 00) but whose notes are not
     journaled stacked: the notes are the bank's. What is still in escrow is stacked and the
     deposit completed (`DEPOSIT_STACKED recovered=yes`); notes no longer in escrow were
     stacked before the crash (stacking is the only step after an approval). If stacking fails
     now, as in a live stacking failure: `DEPOSIT_STACK_FAULT`, a full reversal (4007), the
     escrow returned and the notes the acceptor kept journaled `DEPOSIT_SUSPECT`.
   - Any other deposit (notes inserted but not confirmed, counted but never sent, declined, no
     answer journaled): the notes in escrow are returned to the entrance (`NOTES_RETURNED
     recovered=yes`), as an ID003 validator itself returns a note it holds at power-up. A
     request whose answer is not journaled (the host may have approved it) is reversed in full
     (4021) by step 5, so no credit stays. If the notes are not taken at once, deposits stay
     off (`NOTES_NOT_TAKEN`, `deposit_fault`) until the operator has looked: whoever comes next
     may not be their owner.
   - An envelope taken into the depository (`ENVELOPE_TAKEN`) whose request was never sent or
     never answered lies in the bin without a credit (a sent one is reversed, 4021):
     `ENVELOPE_UNCREDITED recovered=yes` tells the operator to process that check by hand.

Reversals the host link queues by itself (a 0200 without a valid answer in time, 4021; an
approval that arrives after its timeout, 4006) reach the journal too: `HostLink` calls the
controller's `on_reversal_queued` the moment the advice is persisted, which writes the same
`REVERSAL_QUEUED` line with `by=link` (before `TXN_NO_RESPONSE`); recovery never queues a second
reversal for such a request.

### Which requests are reversed

One policy, `device.reversal_policy`, used by the live link (`HostLink`) and by restart recovery
alike:

- 0200 withdrawal (DE 3 `01`): answer unknown (timeout, broken link, or the controller died
  before journaling it): full reversal, 4021, by the link or by recovery. Approved: reversed by
  what the dispenser did (4017 nothing left, 4004 partial, 4018 retracted).
- 0200 transfer (DE 3 `40`): answer unknown: full reversal, 4021, by the link or by recovery,
  exactly as a withdrawal. Approved: complete, never reversed.
- 0200 PIN change (`70`) and 0100 balance inquiry (`30`): never reversed (nothing moved).

An approval that arrives after the terminal gave up on a withdrawal or transfer is reversed by
the link (4006). The host reverses a transfer in full (`transfer-reversal`), giving the day's
transfer limit back.

## A dispense whose outcome is unknown

When the dispenser stops answering during `dispensing` (`DeviceTimeout`, a garbled reply, a lost
port: anything but a `DispenserFault`, which says what left), the controller, in this order:

1. journals `DISPENSE_UNKNOWN` (STAN, amount, notes asked for, the error) before anything else,
   and stops cash service (`cash_fault`, until the supervisor leaves);
2. asks the dispenser for its status and what it counted out (`CashDispenser.counted_out()`);
3. if the notes counted out are known, goes on as if the dispense had answered: all of them,
   `DISPENSE_RESULT established=yes` and `presenting_cash`; some, `DISPENSE_FAULT
   established=yes`, `presenting_cash` and a partial reversal (4004) once taken; none, a full
   reversal (4017);
4. if not (the dispenser stays silent, or cannot count, like the LCDM-2000), it does **not**
   reverse: the customer may hold the cash. It journals `DISPENSE_SUSPECT`, shows that the cash
   could not be confirmed, prints a receipt marked `DISPENSE NOT CONFIRMED - UNDER REVIEW`
   (trigger `dispense_unknown` to `printing`) and returns the card, or retains it
   (`CARD_NOT_RETURNED`, `capturing_card`) when the reader fails.

The supervisor's balancing report lists every open suspect (`SUSPECT STAN 000002 $100.00 notes
1:2`, and `SUSPECT $100.00 TO SETTLE (1)` on its result line); after counting the cassettes the
operator settles them with F6 (not dispensed: reversed) or F7 (dispensed: booked in the
counters), once each. Restart recovery never reverses a suspect; a controller killed between
`DISPENSE_UNKNOWN` and its decision journals `DISPENSE_SUSPECT recovered=yes` on restart.
A failing status command before the dispense command (`DISPENSE_NOT_STARTED`) is certain: no
note left, full reversal (4017).
"""


def main() -> int:
    DOC_PATH.write_text(render_document())
    print(f"wrote {DOC_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
