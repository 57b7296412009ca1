"""Scenarios: ATM sessions with faults, described in YAML files, run against a real host over
TCP with simulated devices, and checked against the expectations and the money invariants.

``format`` (the data), ``loader`` (files, JSON Schema, errors with file and line), ``runner``
(one scenario end to end), ``invariants`` (ledger, cash, journal, secrets), ``suite`` (many
scenarios in parallel, table, JUnit XML) and ``fuzz`` (random sessions, shrinking).
"""

from atm.scenario.errors import ScenarioError, ScenarioFileError
from atm.scenario.format import Scenario
from atm.scenario.loader import builtin_scenarios, load_file, load_paths, load_text

__all__ = [
    "Scenario",
    "ScenarioError",
    "ScenarioFileError",
    "builtin_scenarios",
    "load_file",
    "load_paths",
    "load_text",
]
