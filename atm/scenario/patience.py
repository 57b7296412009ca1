"""Timing in scenario runs: the ATM's timers decide a scenario's path only where the scenario
means them to.

A scenario (and a fuzz session) runs on real timers, and a timer races whoever should beat it:
the customer's "take the cash" step with ``cash_take_timeout``, the host's answer with
``response_timeout``. On a loaded machine the step or the answer can come late, and the
session takes another path than the file says. So the runner lends each timer the length
that keeps the scenario's meaning:

- a person's wait (``AtmController.patience``): when the customer will act on the screen
  shown (insert, type, press, take, operator), the ATM waits ``GENEROUS`` seconds (or the
  configured time, if longer), so the action always lands first; when the customer does
  nothing there (``wait: true``, or no step for that screen), the configured time, and the
  timeout happens as it would have, for nobody can beat it;
- the answer to a request (``HostLink.response_timeout``): ``GENEROUS`` seconds while the
  scenario loses no answer, the configured time while it may (relay faults that hold, drop
  or alter messages, a host that is down or a host process that is killed or crashes).

The decision is taken when the wait starts: the screen is published (and the customer's step
chosen) before the activity asks for its timeout; a request's timeout is asked for when it is
sent. The ATM process of ``atm: kill`` scenarios (``atm.scenario.atmproc``) does the same
with its script. Nothing here sleeps or reads a clock.
"""

from __future__ import annotations

from collections.abc import Callable

from atm.scenario.format import Step
from device.states import State
from protocol.messages import Message

__all__ = ["GENEROUS", "CustomerPatience", "acts", "answer_timeout"]

#: Seconds a timer gets when it must not decide the path: far beyond any stall of a loaded
#: machine, and beyond the runner's own 30 s default, so that a step that does not come (a
#: broken build) shows as "still waiting for", not as a timeout path.
GENEROUS = 60.0


def acts(step: Step | None) -> bool:
    """Does the customer (or operator) do something on this screen that ends the ATM's wait
    for a person?"""
    if step is None or step.wait:
        return False
    return bool(
        step.insert is not None
        or step.type is not None
        or step.press
        or step.take is not None
        or step.notes
        or step.envelope
        or step.operator is not None
    )


class CustomerPatience:
    """How long the ATM waits for the person in front of it, from what that person will do on
    the screen shown (``AtmController.patience``)."""

    def __init__(self, generous: float = GENEROUS) -> None:
        self.generous = generous
        self.acting = False

    def on_screen(self, step: Step | None) -> None:
        """A new screen is shown (not an echo of keys typed) and ``step`` is what the customer
        does on it (None: nothing)."""
        self.acting = acts(step)

    def __call__(self, _state: State, seconds: float) -> float:
        return max(seconds, self.generous) if self.acting else seconds


def answer_timeout(
    configured: float, at_risk: Callable[[Message], bool], request: Message
) -> float:
    """The response timeout of ``request``, sent now (``HostLink.response_timeout``, with the
    first two arguments bound): the configured one when the scenario may lose its answer
    (``at_risk``), else at least ``GENEROUS``."""
    return configured if at_risk(request) else max(configured, GENEROUS)
