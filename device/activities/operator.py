"""Supervisor mode: the ``supervisor`` state reads the operator's keypad and posts the trigger
``device.states.SUPERVISOR_KEYS`` gives for the key; each ``supervisor_*`` state does that one
job (replenish, counters, journal, balancing, settling suspects) and returns with
``supervisor_done``. Also the reports behind them, which ``AtmController`` offers as its public
``counters_report``, ``balancing_report``, ``suspects`` and ``settle_suspects``.

A new operator function: a key and a state in ``device.states``, its activity here, a line in
``device.activities.ACTIVITIES``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from device import screens as S
from device.cash import cassette_level
from device.events import ReceiptPrinted
from device.recovery import Suspect, find_suspects, format_notes
from device.screens import money
from device.states import SUPERVISOR_ACTIONS, SUPERVISOR_KEYS, State
from drivers.errors import DeviceTimeout, DriverError
from protocol.response_codes import ReversalReason

if TYPE_CHECKING:
    from device.controller import AtmController

__all__ = [
    "balancing_report",
    "counters_report",
    "settle_suspects",
    "supervisor",
    "supervisor_accepting_damage",
    "supervisor_balancing",
    "supervisor_printing_counters",
    "supervisor_replenishing",
    "supervisor_resetting_counters",
    "supervisor_settling_dispensed",
    "supervisor_settling_not_dispensed",
    "supervisor_showing_journal",
    "suspects",
]

log = logging.getLogger(__name__)


# -- the keypad ---------------------------------------------------------------------------
async def supervisor(atm: AtmController) -> None:
    """Wait for an operator key; no key in time counts as F8 (leave)."""
    if atm.previous_state not in SUPERVISOR_ACTIONS:
        # Just switched in (not back from one of the supervisor's jobs).
        atm.journal.write("SUPERVISOR_ENTER")
        atm.show(S.supervisor(_damage_lines(atm) or await cash_summary(atm)))
    while True:
        try:
            key = await atm.devices.pin_pad.read_key(atm.person_timeout())
        except DeviceTimeout:
            key = "F8"
        if key in SUPERVISOR_KEYS:
            break
    trigger, dest = SUPERVISOR_KEYS[key]
    if dest is State.out_of_service:
        # Leaving clears a dispenser, bill acceptor, depository or card-jam fault;
        # out_of_service signs on again (or, while a damaged file is not accepted, goes
        # straight back to the fault state).
        atm.cash_fault = ""
        atm.deposit_fault = ""
        atm.depository_fault = ""
        if atm.damage is None:
            atm.fault_reason = ""
        atm.journal.write("SUPERVISOR_EXIT")
    atm.post(trigger)


# -- one job per key ----------------------------------------------------------------------
async def supervisor_replenishing(atm: AtmController) -> None:
    """F1: what the dispenser reports now becomes the loaded count (a driver that keeps the
    counts itself, like the LCDM's, starts again from the configured load)."""
    await atm.devices.dispenser.replenish()
    status = await atm.cassettes()
    atm.counters.replenish(status)
    atm.cash_fault = ""
    atm.journal.write("REPLENISH", counts=format_notes({c.index: c.count for c in status}))
    atm.show(S.supervisor(("Cassettes replenished", *await cash_summary(atm))))
    atm.post("supervisor_done")


async def supervisor_printing_counters(atm: AtmController) -> None:
    """F2: print the counters per cassette."""
    lines = await counters_report(atm)
    await print_report(atm, "COUNTERS", lines)
    atm.show(S.supervisor(("Counters printed", *lines)))
    atm.post("supervisor_done")


async def supervisor_resetting_counters(atm: AtmController) -> None:
    """F3: remaining notes become the loaded count."""
    atm.counters.reset()
    atm.journal.write("COUNTERS_RESET")
    atm.show(S.supervisor(("Counters reset", *await cash_summary(atm))))
    atm.post("supervisor_done")


async def supervisor_showing_journal(atm: AtmController) -> None:
    """F4: the latest journal lines."""
    tail = atm.journal.path.read_text().splitlines()[-8:]
    view = tuple(_short(line) for line in tail)
    atm.show(S.supervisor(view, "Journal (latest)"))
    atm.post("supervisor_done")


async def supervisor_balancing(atm: AtmController) -> None:
    """F5: the balancing report, shown, printed and journaled."""
    lines = await balancing_report(atm)
    await print_report(atm, "BALANCING", lines)
    atm.journal.write("BALANCING", result=lines[-1])
    atm.show(S.supervisor(tuple(lines), "Balancing"))
    atm.post("supervisor_done")


async def supervisor_settling_not_dispensed(atm: AtmController) -> None:
    """F6: every open suspect settled as not dispensed (reversed)."""
    _show_settled(atm, await settle_suspects(atm, dispensed=False))


async def supervisor_settling_dispensed(atm: AtmController) -> None:
    """F7: every open suspect settled as dispensed (booked in the counters)."""
    _show_settled(atm, await settle_suspects(atm, dispensed=True))


async def supervisor_accepting_damage(atm: AtmController) -> None:
    """ENTER: the damaged line the fault names is accepted (skipped from now on, kept in its
    file) and restart recovery runs again; a further damaged line is named in turn."""
    told = atm.accept_damage()
    await atm.recover_or_fault()
    atm.show(S.supervisor((told, *_damage_lines(atm))))
    atm.post("supervisor_done")


def _damage_lines(atm: AtmController) -> tuple[str, ...]:
    if atm.damage is None:
        return ()
    return (atm.fault_reason, atm.damage.why[:40], "ENTER accepts it (kept in the file)")


def _show_settled(atm: AtmController, lines: list[str]) -> None:
    atm.show(S.supervisor(tuple(lines) or ("No suspect transaction",)))
    atm.post("supervisor_done")


# -- reports --------------------------------------------------------------------------------
async def cash_summary(atm: AtmController) -> tuple[str, ...]:
    status = await atm.cassettes()
    return tuple(
        f"Cassette {c.index} {money(c.denomination_cents)} x {c.count} "
        f"{cassette_level(c, atm.config.near_empty_notes, atm.config.empty_notes)}"
        for c in status
    )


async def counters_report(atm: AtmController) -> list[str]:
    """Per cassette: loaded, dispensed, rejected, retracted (the supervisor's F2)."""
    lines = []
    for i, c in sorted(atm.counters.cassettes.items()):
        lines.append(
            f"C{i} {money(c.denomination_cents)} L{c.loaded} D{c.dispensed} "
            f"RJ{c.rejected} RT{c.retracted}"
        )
    total = sum(c.denomination_cents * c.dispensed for c in atm.counters.cassettes.values())
    lines.append(f"DISPENSED TOTAL {money(total)}")
    return lines


def suspects(atm: AtmController) -> list[Suspect]:
    """Withdrawals whose dispense outcome is unknown and not yet settled (journal)."""
    return find_suspects(atm.journal_records())


async def balancing_report(atm: AtmController) -> list[str]:
    """loaded - dispensed - rejected - retracted = remaining, against the dispenser; then
    every suspect withdrawal (dispense outcome unknown) the operator must settle."""
    rows = atm.counters.balancing(await atm.devices.dispenser.status())
    lines = []
    for row in rows:
        c = row.counters
        lines.append(
            f"C{row.index} {c.loaded}-{c.dispensed}-{c.rejected}-{c.retracted}"
            f"={c.remaining} count {row.reported}"
        )
    open_suspects = suspects(atm)
    for suspect in open_suspects:
        lines.append(
            f"SUSPECT STAN {suspect.stan} {money(suspect.amount_cents)} "
            f"notes {format_notes(suspect.notes)}"
        )
    totals = deposit_totals(atm)
    if any(totals.values()):
        lines.append(
            f"DEPOSITS {totals['count']} CREDITED {money(totals['credited'])} "
            f"CHECKS {money(totals['checks'])} SUSPECT {money(totals['suspect'])}"
        )
        lines.append(f"STACKER SHOULD HOLD {money(totals['credited'] + totals['suspect'])}")
        if totals["uncredited"]:
            lines.append(f"ENVELOPES NOT CREDITED {money(totals['uncredited'])}")
    off = [row for row in rows if row.difference]
    result = (
        "BALANCED"
        if not off
        else "DIFFERENCE " + ", ".join(f"C{r.index} {r.difference:+d}" for r in off)
    )
    if open_suspects:
        total = sum(x.amount_cents for x in open_suspects)
        result += f"; SUSPECT {money(total)} TO SETTLE ({len(open_suspects)})"
    lines.append(result)
    return lines


def deposit_totals(atm: AtmController) -> dict[str, int]:
    """From the journal: cash deposits stacked (count, cents), check envelopes taken and
    credited, notes the acceptor kept without a credit (suspect), and envelopes restart
    recovery found in the bin without a credit (uncredited). DESIGN invariant 7:
    the notes in the stacker are worth ``credited + suspect``."""
    totals = {"count": 0, "credited": 0, "checks": 0, "suspect": 0, "uncredited": 0}
    approved_checks: set[str] = set()
    envelopes: dict[str, int] = {}
    last_stan = ""
    for record in atm.journal_records():
        event = record["event"]
        if event == "DEPOSIT_STACKED":
            totals["count"] += 1
            totals["credited"] += int(record.get("amount", "0"))
        elif event == "DEPOSIT_SUSPECT":
            totals["suspect"] += int(record.get("amount", "0"))
        elif event == "ENVELOPE_UNCREDITED":
            totals["uncredited"] += int(record.get("amount", "0"))
        elif event == "ENVELOPE_TAKEN":
            envelopes["pending"] = int(record.get("amount", "0"))
        elif event == "TXN_REQUEST" and "pending" in envelopes:
            last_stan = record.get("stan", "")
            envelopes[last_stan] = envelopes.pop("pending")
        elif event == "TXN_RESPONSE" and record.get("code") == "00":
            if record.get("stan", "") in envelopes:
                approved_checks.add(record["stan"])
    totals["checks"] = sum(envelopes[stan] for stan in approved_checks)
    return totals


async def settle_suspects(atm: AtmController, *, dispensed: bool) -> list[str]:
    """The operator's decision on every open suspect, after counting the cassettes: F6
    "not dispensed" (the notes are all there: the withdrawal is reversed, 4017) or F7
    "dispensed" (notes are missing: the counters book them as dispensed). Each suspect is
    settled once (``SUSPECT_SETTLED``); settling again finds nothing.

    "Dispensed" on a dispenser whose counts are not physical (LCDM-2000: its driver keeps the
    counts and never heard the notes leave) lowers the driver's counts by the same notes, so
    that balancing agrees with the cassettes; journaled first, so a crash in between shows
    as a difference at balancing rather than notes counted out twice."""
    lines = []
    dispenser = atm.devices.dispenser
    for suspect in suspects(atm):
        if dispensed:
            atm.counters.add("dispensed", suspect.notes, key=f"{suspect.stan}:dispensed")
            atm.journal.write(
                "SUSPECT_SETTLED",
                stan=suspect.stan,
                amount=suspect.amount_cents,
                outcome="dispensed",
                notes=format_notes(suspect.notes),
            )
            if not dispenser.counts_physical:
                try:
                    now = {c.index: c.count for c in await dispenser.status()}
                    await dispenser.replenish(
                        {i: max(0, n - suspect.notes.get(i, 0)) for i, n in now.items()}
                    )
                except DriverError as exc:
                    log.warning("dispenser counts not lowered after settling: %s", exc)
            lines.append(f"STAN {suspect.stan} settled as dispensed")
            continue
        queued = atm.link.queue_reversal(dict(suspect.original), 0, ReversalReason.NO_CASH)
        if queued:
            atm.journal.write(
                "REVERSAL_QUEUED",
                stan=suspect.stan,
                amount=suspect.amount_cents,
                dispensed=0,
                reason=ReversalReason.NO_CASH,
                why="suspect settled by the operator: not dispensed",
            )
        atm.journal.write(
            "SUSPECT_SETTLED",
            stan=suspect.stan,
            amount=suspect.amount_cents,
            outcome="not_dispensed",
            reversal=ReversalReason.NO_CASH if queued else "already queued",
        )
        lines.append(f"STAN {suspect.stan} settled: reversed")
    return lines


async def print_report(atm: AtmController, title: str, lines: list[str]) -> None:
    if not (await atm.devices.printer.status()).can_print:
        atm.journal.write("REPORT_NOT_PRINTED", report=title, reason="printer unavailable")
        return
    text = [title, atm.now().strftime("%Y-%m-%d %H:%M:%S"), atm.config.terminal_id]
    try:
        await atm.devices.printer.print_receipt([*text, *lines])
    except DriverError as exc:
        atm.journal.write("REPORT_NOT_PRINTED", report=title, reason=str(exc))
        return
    atm.events.publish(ReceiptPrinted(tuple([*text, *lines])))
    atm.journal.write("REPORT_PRINTED", report=title)


def _short(line: str) -> str:
    """A journal line for a 40-column screen: time of day, event and first fields."""
    parts = line.split(" | ")
    if len(parts) < 3:
        return line
    return " ".join([parts[0][11:19], parts[2], *parts[3:]])
