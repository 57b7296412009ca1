"""The money invariants, checked after every scenario by themselves (DESIGN section 7).

Each check returns problems that carry the numbers that disagree:

1. ``ledger``: the host's ``check_ledger`` is clean (entries sum to zero overall and per
   posting, every balance equals the sum of its entries, reversals point at one original).
2. ``account``: for each account, opening - approved debits + reversals + credits = closing,
   from the postings made during the scenario.
3. ``approvals``: what the ATM journal says customers were charged (approvals minus the
   reversals it asked for) equals what the host charged them at that terminal, and the
   terminal's cash account moved by the value of the notes that customers took (or that
   still lie in the exit tray, a suspect dispense).
4. ``cash``: notes that left the cassettes = notes taken + in the reject bin (retracted and
   rejected) + still in the tray.
5. ``reversals``: every money-moving 0200 the host approved is either completed or reversed
   exactly once, and reversed by the amount the ATM said it did not pay out; the
   store-and-forward queue is empty.
6. ``counters``: the journal's dispense records and the dispenser counters agree, and the
   counters' remaining notes equal what is physically in the cassettes.
7. ``secrets``: no PAN, track 2, PIN or key in any log line, journal line or receipt.
8. ``deposits``: what the ATM journal says it credited (deposit approvals minus the
   reversals it asked for) equals what the host credited at that terminal; the notes the
   bill acceptor kept (in its stacker, or jammed in its transport) equal the deposits
   stacked (``DEPOSIT_STACKED``) plus the suspects (``DEPOSIT_SUSPECT``) plus the notes
   that jammed at the entrance before they were counted (``NOTE_JAM``); and the notes
   stacked equal the cash deposits the host still credits.
9. ``holds``: the host's ``check_holds`` is clean (holds belong to deposits, never exceed
   them, a reversed deposit holds nothing); each deposit of the scenario holds what the
   hold policy says, and a reversed one holds nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from device.cash import CassetteCounters
from device.journal import JournalRecord
from device.recovery import parse_notes
from host.bank.holds import DEPOSIT_KINDS, HoldPolicy, check_holds, hold_schedule
from host.bank.ledger import check_ledger
from host.bank.models import Account, Entry, Hold, LinkRequest, Posting, Terminal

__all__ = ["Evidence", "HostSnapshot", "check_invariants", "snapshot_host"]

MONEY_MOVING = {"01", "40"}  # processing code's first two digits: withdrawal, transfer
DEPOSITS = {"21", "24"}  # cash deposit, check deposit
CHARGING_KINDS = {"withdrawal", "transfer"}


@dataclass(frozen=True)
class HostSnapshot:
    balances: dict[str, int]  # ledger balances
    last_posting: int
    last_request: int
    held: dict[str, int] = field(default_factory=dict)  # cents on hold, accounts with holds

    def available(self, number: str) -> int:
        return self.balances.get(number, 0) - self.held.get(number, 0)


def snapshot_host(host: Any) -> HostSnapshot:
    with host.sessions() as session:
        balances = {a.number: a.balance_cents for a in session.scalars(select(Account)).all()}
        last_posting = session.scalar(select(func.coalesce(func.max(Posting.id), 0))) or 0
        last_request = session.scalar(select(func.coalesce(func.max(LinkRequest.id), 0))) or 0
        held = {
            str(number): int(cents)
            for number, cents in session.execute(
                select(Account.number, func.sum(Hold.amount_cents))
                .join(Hold, Hold.account_id == Account.id)
                .where(Hold.status == "held")
                .group_by(Account.number)
            ).all()
        }
    return HostSnapshot(balances, int(last_posting), int(last_request), held)


@dataclass
class Evidence:
    """What one ATM and its devices say after the scenario."""

    terminal_id: str
    journal: list[str]
    loaded: dict[int, tuple[int, int]]  # cassette -> (denomination, notes ever loaded)
    remaining: dict[int, int]  # notes physically in each cassette now
    taken: dict[int, int]  # notes customers took, per cassette
    in_tray: dict[int, int]  # notes still in the exit tray
    rejected: dict[int, int]  # notes in the reject bin (retracted and rejected)
    retracted: int  # notes pulled back from the tray
    counters: dict[int, CassetteCounters]
    pending_reversals: int
    texts: dict[str, list[str]] = field(default_factory=dict)
    secrets: list[tuple[str, str]] = field(default_factory=list)
    # False when a fault makes the dispenser misreport its counts (cassette_empty on a
    # dispenser that reports counts, as the LCDM does): the counters follow the report, so
    # they are not compared with the notes physically in the cassettes.
    counts_reported: bool = True
    # The bill acceptor: notes (cents -> count) in its stacker and jammed in its transport
    # now, and the notes that jammed at the entrance before being counted.
    stacker: dict[int, int] = field(default_factory=dict)
    jammed: list[int] = field(default_factory=list)
    jammed_at_entry: list[int] = field(default_factory=list)

    def records(self) -> list[JournalRecord]:
        out = []
        for raw in self.journal:
            parts = raw.split(" | ")
            if len(parts) < 3:
                continue
            record = JournalRecord(time=parts[0], terminal=parts[1], event=parts[2])
            for part in parts[3:]:
                key, _, value = part.partition("=")
                record[key] = value
            out.append(record)
        return out

    def value(self, notes: dict[int, int]) -> int:
        return sum(self.loaded[i][0] * n for i, n in notes.items() if i in self.loaded)


def check_invariants(
    before: HostSnapshot,
    after: HostSnapshot,
    atms: Sequence[Evidence],
    host: Any,
    policy: HoldPolicy | None = None,
) -> list[str]:
    problems: list[str] = []
    with host.sessions() as session:
        for problem in check_ledger(session):
            problems.append(f"invariant ledger: {problem.what}: {problem.detail}")
        for problem in check_holds(session):
            problems.append(f"invariant holds: {problem.what}: {problem.detail}")
        problems += _holds(session, before, policy or HoldPolicy())
        problems += _accounts(session, before, after)
        for atm in atms:
            problems += _approvals(session, before, after, atm)
            problems += _reversals(session, before, atm)
            problems += _deposits(session, before, atm)
    for atm in atms:
        problems += _cash(atm)
        problems += _counters(atm)
        problems += _secrets(atm)
    return problems


def _accounts(session: Any, before: HostSnapshot, after: HostSnapshot) -> list[str]:
    rows = session.execute(
        select(Account.number, Posting.kind, Entry.amount_cents)
        .join(Entry, Entry.account_id == Account.id)
        .join(Posting, Posting.id == Entry.posting_id)
        .where(Posting.id > before.last_posting)
    ).all()
    moves: dict[str, dict[str, int]] = {}
    for number, kind, amount in rows:
        part = moves.setdefault(number, {"debits": 0, "reversals": 0, "credits": 0})
        if kind == "reversal" or kind.endswith("-reversal"):
            part["reversals"] += amount
        elif amount < 0:
            part["debits"] -= amount
        else:
            part["credits"] += amount
    problems = []
    for number in sorted(set(after.balances) | set(moves)):
        opening = before.balances.get(number, 0)
        closing = after.balances.get(number, 0)
        m = moves.get(number, {"debits": 0, "reversals": 0, "credits": 0})
        expected = opening - m["debits"] + m["reversals"] + m["credits"]
        if expected != closing:
            problems.append(
                f"invariant account {number}: opening {opening} - approved debits "
                f"{m['debits']} + reversals {m['reversals']} + credits {m['credits']} = "
                f"{expected}, but the closing balance is {closing}"
            )
    return problems


def _requests(session: Any, before: HostSnapshot, terminal_id: str) -> list[Any]:
    return list(
        session.execute(
            select(LinkRequest)
            .where(LinkRequest.id > before.last_request, LinkRequest.terminal_id == terminal_id)
            .order_by(LinkRequest.id)
        ).scalars()
    )


def _approvals(session: Any, before: HostSnapshot, after: HostSnapshot, atm: Evidence) -> list[str]:
    """The ATM's story (approved minus what it asked to reverse) against the host's (posted
    minus reversed) for this terminal, and the host's cash account against the notes."""
    problems = []
    records = atm.records()
    sent = {r["stan"]: r for r in records if r["event"] == "TXN_REQUEST"}
    asked_back = {
        r.get("stan", ""): int(r.get("amount", "0") or 0) - int(r.get("dispensed", "0") or 0)
        for r in records
        if r["event"] == "REVERSAL_QUEUED"
    }
    journal_net = 0
    for record in records:
        if record["event"] == "TXN_RESPONSE" and record.get("code") == "00":
            request = sent.get(record.get("stan", ""))
            if request and request.get("proc", "")[:2] in MONEY_MOVING:
                amount = int(request.get("amount", "0") or 0)
                journal_net += amount - asked_back.get(record.get("stan", ""), 0)
    host_net = 0
    for kind, amount in session.execute(
        select(Posting.kind, Entry.amount_cents)
        .join(Posting, Posting.id == Entry.posting_id)
        .where(Posting.id > before.last_posting, Posting.terminal_id == atm.terminal_id)
    ).all():
        if kind in CHARGING_KINDS and amount < 0:
            host_net -= int(amount)  # the debit leg: what the customer was charged
        elif _reverses_a_charge(kind) and amount > 0:
            host_net -= int(amount)  # what a reversal gave back
    if journal_net != host_net:
        problems.append(
            f"invariant approvals {atm.terminal_id}: the ATM journal shows customers charged "
            f"{journal_net} cents net (approved minus reversals asked), the host charged "
            f"{host_net} cents net"
        )
    terminal = session.scalar(select(Terminal).where(Terminal.terminal_id == atm.terminal_id))
    if terminal is not None:
        number = session.scalar(
            select(Account.number).where(Account.id == terminal.cash_account_id)
        )
        moved = after.balances.get(number, 0) - before.balances.get(number, 0)
        paid = atm.value(atm.taken) + atm.value(atm.in_tray)
        deposited = _host_deposits(session, before, atm.terminal_id)
        deposits = sum(deposited.values())
        if moved != paid - deposits:
            problems.append(
                f"invariant approvals {atm.terminal_id}: the host's cash account {number} "
                f"moved {moved} cents, notes taken {atm.value(atm.taken)} + left in the tray "
                f"{atm.value(atm.in_tray)}"
                + (f" - deposits credited {deposits}" if deposits else "")
                + f" = {paid - deposits} cents"
            )
    return problems


def _reverses_a_charge(kind: str) -> bool:
    return kind == "reversal" or kind in {f"{k}-reversal" for k in CHARGING_KINDS}


def _host_deposits(session: Any, before: HostSnapshot, terminal_id: str) -> dict[str, int]:
    """Deposit kind (deposit, check-deposit) -> cents the host still credits for deposits
    made at ``terminal_id`` during the scenario (credits less their reversals)."""
    net = dict.fromkeys(DEPOSIT_KINDS, 0)
    for kind, amount in session.execute(
        select(Posting.kind, Entry.amount_cents)
        .join(Posting, Posting.id == Entry.posting_id)
        .join(Account, Account.id == Entry.account_id)
        .where(
            Posting.id > before.last_posting,
            Posting.terminal_id == terminal_id,
            Account.kind.in_(("checking", "savings")),
        )
    ).all():
        base = kind.removesuffix("-reversal")
        if base in net:
            net[base] += int(amount)  # the customer's leg: + credit, - its reversal
    return net


def _deposits(session: Any, before: HostSnapshot, atm: Evidence) -> list[str]:
    problems = []
    records = atm.records()
    proc = {
        r.get("stan", ""): r.get("proc", "")[:2] for r in records if r["event"] == "TXN_REQUEST"
    }
    amounts = {
        r.get("stan", ""): int(r.get("amount", "0") or 0)
        for r in records
        if r["event"] == "TXN_REQUEST"
    }
    asked_back = {
        r.get("stan", ""): int(r.get("amount", "0") or 0)
        for r in records
        if r["event"] == "REVERSAL_QUEUED"
    }
    journal_net = 0
    for record in records:
        stan = record.get("stan", "")
        if (
            record["event"] == "TXN_RESPONSE"
            and record.get("code") == "00"
            and proc.get(stan) in DEPOSITS
        ):
            journal_net += amounts.get(stan, 0) - asked_back.get(stan, 0)
    host = _host_deposits(session, before, atm.terminal_id)
    if journal_net != sum(host.values()):
        problems.append(
            f"invariant deposits {atm.terminal_id}: the ATM journal shows deposits credited "
            f"{journal_net} cents net (approved minus reversals asked), the host credited "
            f"{sum(host.values())} cents net (cash {host['deposit']}, checks "
            f"{host['check-deposit']})"
        )
    stacked = sum(
        int(r.get("amount", "0") or 0) for r in records if r["event"] == "DEPOSIT_STACKED"
    )
    suspects = sum(
        int(r.get("amount", "0") or 0) for r in records if r["event"] == "DEPOSIT_SUSPECT"
    )
    at_entry = sum(atm.jammed_at_entry)
    kept = sum(c * n for c, n in atm.stacker.items()) + sum(atm.jammed)
    if kept != stacked + suspects + at_entry:
        problems.append(
            f"invariant deposits {atm.terminal_id}: the bill acceptor holds {kept} cents "
            f"(stacker {sum(c * n for c, n in atm.stacker.items())} + jammed "
            f"{sum(atm.jammed)}), but deposits stacked {stacked} + suspects {suspects} + "
            f"jammed before counting {at_entry} = {stacked + suspects + at_entry}"
        )
    if stacked != host["deposit"]:
        problems.append(
            f"invariant deposits {atm.terminal_id}: the journal shows {stacked} cents of "
            f"notes stacked, the host credits {host['deposit']} cents of cash deposits"
        )
    return problems


def _total(records: list[JournalRecord], event: str) -> int:
    return sum(int(r.get("amount", "0") or 0) for r in records if r["event"] == event)


def _holds(session: Any, before: HostSnapshot, policy: HoldPolicy) -> list[str]:
    """Each deposit posted during the scenario holds what the policy says (a reversed one
    holds nothing)."""
    problems = []
    deposits = session.execute(
        select(Posting.id, Posting.kind, Posting.created_at, func.sum(Entry.amount_cents))
        .join(Entry, Entry.posting_id == Posting.id)
        .join(Account, Account.id == Entry.account_id)
        .where(
            Posting.id > before.last_posting,
            Posting.kind.in_(tuple(DEPOSIT_KINDS)),
            Account.kind.in_(("checking", "savings")),
        )
        .group_by(Posting.id, Posting.kind, Posting.created_at)
    ).all()
    for posting_id, kind, created_at, credited in deposits:
        reversed_ = session.scalar(
            select(func.count(Posting.id)).where(Posting.reverses_id == posting_id)
        )
        held = session.scalar(
            select(func.coalesce(func.sum(Hold.amount_cents), 0)).where(
                Hold.posting_id == posting_id, Hold.status == "held"
            )
        )
        if reversed_:
            expected = 0
        else:
            expected = sum(
                cents
                for cents, _ in hold_schedule(
                    DEPOSIT_KINDS[kind], int(credited), created_at, policy
                )
            )
        if int(held or 0) != expected:
            problems.append(
                f"invariant holds: {kind} posting {posting_id} of {credited} cents"
                f"{' (reversed)' if reversed_ else ''} holds {held} cents, the hold policy "
                f"says {expected}"
            )
    return problems


def _reversals(session: Any, before: HostSnapshot, atm: Evidence) -> list[str]:
    problems = []
    if atm.pending_reversals:
        problems.append(
            f"invariant reversals {atm.terminal_id}: {atm.pending_reversals} reversal(s) still "
            "in the store-and-forward queue after the host came back"
        )
    records = atm.records()
    queued: dict[str, list[JournalRecord]] = {}
    for record in records:
        if record["event"] == "REVERSAL_QUEUED":
            queued.setdefault(record.get("stan", ""), []).append(record)
    for stan, entries in queued.items():
        if len(entries) > 1:
            problems.append(
                f"invariant reversals {atm.terminal_id}: STAN {stan} was queued for reversal "
                f"{len(entries)} times"
            )
    for request in _requests(session, before, atm.terminal_id):
        if request.processing_code[:2] not in MONEY_MOVING or request.posting_id is None:
            continue
        reversals = session.execute(
            select(Posting.id, func.sum(Entry.amount_cents))
            .join(Entry, Entry.posting_id == Posting.id)
            .where(Posting.reverses_id == request.posting_id, Entry.amount_cents > 0)
            .group_by(Posting.id)
        ).all()
        # The reversal gives the customer back what was not paid out.
        given_back = sum(int(amount) for _, amount in reversals)
        entries = queued.get(request.stan, [])
        if len(reversals) > 1:
            problems.append(
                f"invariant reversals {atm.terminal_id}: STAN {request.stan} reversed "
                f"{len(reversals)} times on the host"
            )
        if entries:
            entry = entries[0]
            amount = int(entry.get("amount", "0") or 0)
            dispensed = int(entry.get("dispensed", "0") or 0)
            if given_back != amount - dispensed:
                problems.append(
                    f"invariant reversals {atm.terminal_id}: STAN {request.stan} approved "
                    f"{request.amount_cents} cents, the ATM paid out {dispensed} and asked to "
                    f"reverse {amount - dispensed}, the host gave back {given_back}"
                )
        elif given_back:
            problems.append(
                f"invariant reversals {atm.terminal_id}: STAN {request.stan} was reversed on "
                f"the host ({given_back} cents) but the ATM never asked for it"
            )
        elif not _completed(records, request.stan, request.processing_code[:2]):
            problems.append(
                f"invariant reversals {atm.terminal_id}: STAN {request.stan} "
                f"({request.amount_cents} cents) was approved but neither completed nor reversed"
            )
    return problems


def _completed(records: list[JournalRecord], stan: str, kind: str) -> bool:
    if kind == "40":
        return any(
            r["event"] == "TXN_RESPONSE" and r.get("stan") == stan and r.get("code") == "00"
            for r in records
        )
    return any(
        r["event"] in {"CASH_TAKEN", "DISPENSE_SUSPECT"} and r.get("stan") == stan for r in records
    )


def _cash(atm: Evidence) -> list[str]:
    left = sum(atm.loaded[i][1] - atm.remaining.get(i, 0) for i in atm.loaded)
    taken = sum(atm.taken.values())
    tray = sum(atm.in_tray.values())
    # The reject bin holds the retracted notes and the rejected ones; a dispenser that
    # reports no bin still counts what it retracted.
    binned = max(sum(atm.rejected.values()), atm.retracted)
    if left != taken + binned + tray:
        return [
            f"invariant cash {atm.terminal_id}: {left} note(s) left the cassettes, but taken "
            f"{taken} + in the reject bin (retracted {atm.retracted} and rejected) {binned} + "
            f"in the tray {tray} = {taken + binned + tray}"
        ]
    return []


def _counters(atm: Evidence) -> list[str]:
    problems = []
    records = atm.records()
    start = 0
    for index, record in enumerate(records):
        if record["event"] in {"REPLENISH", "COUNTERS_RESET"}:
            start = index + 1
    presented: dict[int, int] = {}
    rejected: dict[int, int] = {}
    resulted = set()
    for record in records[start:]:
        if record["event"] in {"DISPENSE_RESULT", "DISPENSE_FAULT"}:
            resulted.add(record.get("stan", ""))
            for i, n in parse_notes(record.get("notes", "")).items():
                presented[i] = presented.get(i, 0) + n
            for i, n in parse_notes(record.get("rejected", "")).items():
                rejected[i] = rejected.get(i, 0) + n
        elif (
            record["event"] == "CASH_RETRACTED"
            and record.get("recovered") == "yes"
            and record.get("stan", "") not in resulted
        ):
            # The ATM died after the notes were presented but before it journaled the
            # result: recovery found them in the exit tray and journaled what it moved.
            for i, n in parse_notes(record.get("moved", "")).items():
                presented[i] = presented.get(i, 0) + n
    for index, counters in sorted(atm.counters.items()):
        counted = counters.dispensed + counters.retracted
        if counted != presented.get(index, 0):
            problems.append(
                f"invariant counters {atm.terminal_id} cassette {index}: the journal shows "
                f"{presented.get(index, 0)} note(s) presented, the counters dispensed "
                f"{counters.dispensed} + retracted {counters.retracted} = {counted}"
            )
        if counters.rejected != rejected.get(index, 0):
            problems.append(
                f"invariant counters {atm.terminal_id} cassette {index}: the journal shows "
                f"{rejected.get(index, 0)} note(s) rejected, the counters {counters.rejected}"
            )
        physical = atm.remaining.get(index)
        if physical is not None and atm.counts_reported and physical != counters.remaining:
            problems.append(
                f"invariant counters {atm.terminal_id} cassette {index}: the counters say "
                f"{counters.remaining} note(s) remain, the cassette holds {physical}"
            )
    return problems


def _secrets(atm: Evidence) -> list[str]:
    problems = []
    for where, lines in atm.texts.items():
        for number, line in enumerate(lines, 1):
            for what, secret in atm.secrets:
                if secret and secret.lower() in line.lower():
                    problems.append(
                        f"invariant secrets: {what} in clear in {where} line {number}: "
                        f"{_masked(line, secret)}"
                    )
            if _PIN_FIELD.search(line):
                problems.append(f"invariant secrets: a PIN value in {where} line {number}")
    return problems


_PIN_FIELD = re.compile(r"\b(?:pin|pin_block|new_pin)\s*[=:]\s*[0-9A-Fa-f]{4,}\b")


def _masked(line: str, secret: str) -> str:
    index = line.lower().find(secret.lower())
    return (line[:index] + "*" * len(secret) + line[index + len(secret) :])[:160]
