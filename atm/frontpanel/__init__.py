"""The front panel of one ATM, independent of any UI: ``FrontPanel`` (the model a console or a
web page renders), the devices' customer sides, and the ``Bench`` that sets up host, link
relay, devices and controller for it."""

from atm.frontpanel.bench import Bench, BenchError, BenchOptions
from atm.frontpanel.model import (
    KEYS,
    SEEDED_CARDS,
    SUPERVISOR_KEYS,
    Change,
    FrontPanel,
    LinkEntry,
    PanelError,
)

__all__ = [
    "KEYS",
    "SEEDED_CARDS",
    "SUPERVISOR_KEYS",
    "Bench",
    "BenchError",
    "BenchOptions",
    "Change",
    "FrontPanel",
    "LinkEntry",
    "PanelError",
]
