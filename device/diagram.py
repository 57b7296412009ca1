"""The state diagram in ``docs/state-diagram.md``, generated from ``device.states``.

Uses the ``transitions`` diagrams extension with its mermaid engine (no graphviz needed).
``python -m device.diagram`` rewrites the file; a test fails when the file is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from transitions.extensions import GraphMachine

from device.states import TIMEOUTS, TRANSITIONS, State

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


def render_document() -> str:
    timeouts = "\n".join(
        f"| `{state.value}` | `DeviceConfig.{name}` | `{what.value}` |"
        for state, (name, what) in TIMEOUTS.items()
    )
    return f"""# ATM controller state diagram

Generated from `device/states.py` by `python -m device.diagram` (the `transitions` diagrams
extension, mermaid engine). Do not edit by hand: `tests/device/test_diagram.py` fails when this
file no longer matches the table.

Every state that waits for a person has a timeout; what happens when it runs out:

| state | timeout | trigger posted |
|---|---|---|
{timeouts}

`fault` is reachable from every state (an activity that fails, a card jam); only the
supervisor (`AtmController.enter_supervisor()`) leaves it, through `out_of_service` and a new
sign-on.

```mermaid
{mermaid()}```

## Supervisor mode

A console's supervisor switch calls `AtmController.enter_supervisor()`; it is honoured when the
ATM is `idle`, `out_of_service` or in `fault` (never during a customer session). The operator
then uses the keypad:

| key | action |
|---|---|
| F1 | replenish: what the dispenser reports now becomes the loaded count (journal `REPLENISH`) |
| F2 | print the counters per cassette: loaded, dispensed, rejected, retracted |
| F3 | reset the counters: remaining notes become the loaded count (`COUNTERS_RESET`) |
| F4 | show the latest journal lines |
| F5 | balancing report (shown, printed, journaled as `BALANCING`): loaded - dispensed - \
rejected - retracted = remaining, against the dispenser's count |
| F8 | leave (also after `DeviceConfig.supervisor_timeout`); clears a dispenser or card-jam \
fault and signs on again |

## Electronic journal and restart recovery

`state_dir/journal-<terminal>.log`, one fsync'd line per event:
`time | terminal | EVENT | key=value | ...`; PANs masked, never a PIN block, key or track data.
A withdrawal writes `TXN_REQUEST` (with DE 3, 4, 7, 11, 42, 49 and the MTI, so a reversal can be
rebuilt without the PAN), `TXN_RESPONSE`, `DISPENSE_START` (notes asked for and the cassette
counts before the command), then `DISPENSE_RESULT` or `DISPENSE_FAULT`, `CASH_TAKEN` or
`CASH_RETRACTED`, and `REVERSAL_QUEUED` whenever a reversal goes to `HostLink.queue_reversal`.
On start the controller replays the journal (`device.recovery`): an approved withdrawal whose cash
did not (all) leave gets a reversal (partial, 4004, when the cassette counts show that notes were
counted out; 4017 when none; 4018 when retracted), journaled with `recovered=yes`, so a second
restart queues nothing. Notes presented but of unknown fate are counted as taken
(`RECOVERY_NO_REVERSAL`) for the operator's balancing.
"""


def main() -> int:
    DOC_PATH.write_text(render_document())
    print(f"wrote {DOC_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
