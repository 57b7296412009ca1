"""Read scenario files: YAML (PyYAML) checked against ``scenario.schema.json`` (jsonschema),
then against what this build offers (screens, cards, device faults). Every error names the
file, the line and what is wrong."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from atm.scenario.errors import ScenarioFileError
from atm.scenario.format import (
    TRACKS,
    AccountSpec,
    CardSpec,
    CassetteSpec,
    Expect,
    FaultSpec,
    Scenario,
    Setup,
    Step,
)

__all__ = [
    "SCREEN_IDS",
    "builtin_dir",
    "builtin_scenarios",
    "device_faults",
    "load_file",
    "load_paths",
    "load_text",
    "schema",
]

# Every screen id the controller shows (``device/screens.py``): a step waiting for another
# one would wait forever, so the loader refuses it.
SCREEN_IDS = frozenset(
    {
        "out_of_service",
        "welcome",
        "reading_card",
        "enter_pin",
        "pin_retry",
        "main_menu",
        "select_account",
        "select_to_account",
        "transfer_amount",
        "new_pin",
        "confirm_pin",
        "done",
        "another",
        "fault",
        "supervisor",
        "select_amount",
        "authorizing",
        "dispensing",
        "take_cash",
        "balance",
        "message",
        "take_card",
        "card_retained",
        "thank_you",
        "more_time",
        "insert_notes",
        "confirm_deposit",
        "stacking",
        "take_notes",
        "check_amount",
        "check_number",
        "insert_envelope",
    }
)

Path_ = tuple[str | int, ...]


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file (shipped in this package)."""
    text = resources.files("atm.scenario").joinpath("scenario.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def builtin_dir() -> Path:
    """The scenarios shipped with the package (the demo scripts)."""
    return Path(str(resources.files("atm.scenario").joinpath("builtin")))


def builtin_scenarios() -> dict[str, Scenario]:
    found = load_paths([builtin_dir()])
    return {scenario.name: scenario for scenario in found}


def device_faults(devices: str) -> dict[str, frozenset[str]]:
    """Fault names each device offers on a device set (``sim`` backends or ``serial``
    simulators, whose byte-level faults come on top)."""
    if devices == "serial":
        from simulators.bill_acceptor import BillAcceptorSimulator
        from simulators.card_reader import CardReaderSimulator
        from simulators.dispenser import DispenserSimulator
        from simulators.pin_pad import PinPadSimulator
        from simulators.printer import PrinterSimulator

        return {
            "reader": CardReaderSimulator.FAULTS | CardReaderSimulator.WIRE_FAULTS,
            "pinpad": PinPadSimulator.FAULTS | PinPadSimulator.WIRE_FAULTS,
            "dispenser": DispenserSimulator.FAULTS | DispenserSimulator.WIRE_FAULTS,
            "printer": PrinterSimulator.FAULTS | PrinterSimulator.WIRE_FAULTS,
            "acceptor": BillAcceptorSimulator.FAULTS | BillAcceptorSimulator.WIRE_FAULTS,
            # The envelope depository is simulated in-process only (no serial protocol).
            "depository": frozenset(),
        }
    from drivers.simulated import (
        SimulatedBillAcceptor,
        SimulatedCardReader,
        SimulatedDepository,
        SimulatedDispenser,
        SimulatedPinPad,
        SimulatedPrinter,
    )

    return {
        "reader": SimulatedCardReader.FAULTS,
        "pinpad": SimulatedPinPad.FAULTS,
        "dispenser": SimulatedDispenser.FAULTS,
        "printer": SimulatedPrinter.FAULTS,
        "acceptor": SimulatedBillAcceptor.FAULTS,
        "depository": SimulatedDepository.FAULTS,
    }


def load_paths(paths: Iterable[Path]) -> list[Scenario]:
    """Every scenario in ``paths`` (files, or directories searched for ``*.yaml``/``*.yml``),
    sorted by file name within a directory. Names must be unique."""
    found: list[Scenario] = []
    seen: dict[str, Path] = {}
    for path in paths:
        for file in _files(path):
            scenario = load_file(file)
            if scenario.name in seen:
                raise ScenarioFileError(
                    file, 1, f"scenario name {scenario.name!r} also used by {seen[scenario.name]}"
                )
            seen[scenario.name] = file
            found.append(scenario)
    return found


def _files(path: Path) -> Iterator[Path]:
    if path.is_dir():
        files = sorted([*path.rglob("*.yaml"), *path.rglob("*.yml")])
        if not files:
            raise ScenarioFileError(path, None, "no scenario files (*.yaml) in this directory")
        yield from files
    elif path.is_file():
        yield path
    else:
        raise ScenarioFileError(path, None, "no such file or directory")


def load_file(path: Path) -> Scenario:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioFileError(path, None, f"cannot read: {exc}") from exc
    return load_text(text, path)


def load_text(text: str, path: Path) -> Scenario:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ScenarioFileError(path, line, f"not valid YAML: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise ScenarioFileError(path, None, f"not valid YAML: {exc}") from exc
    lines: dict[Path_, int] = {}
    keys: dict[Path_, int] = {}
    if node is not None:
        _map_lines(node, (), lines, keys)
    where = _Where(path, lines, keys)
    if not isinstance(data, dict):
        raise ScenarioFileError(path, 1, "a scenario is a mapping (name:, steps:, ...)")
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: where.line(tuple(e.absolute_path)))
    if errors:
        raise where.schema_error(errors[0])
    return _build(data, where)


def _map_lines(node: yaml.Node, at: Path_, lines: dict[Path_, int], keys: dict[Path_, int]) -> None:
    lines[at] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            keys[(*at, key)] = key_node.start_mark.line + 1
            _map_lines(value_node, (*at, key), lines, keys)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _map_lines(item, (*at, index), lines, keys)


class _Where:
    def __init__(self, path: Path, lines: dict[Path_, int], keys: dict[Path_, int]) -> None:
        self.path, self.lines, self.keys = path, lines, keys

    def line(self, at: Path_) -> int:
        while at not in self.lines and at:
            at = at[:-1]
        return self.lines.get(at, 1)

    def key_line(self, at: Path_) -> int:
        return self.keys.get(at) or self.line(at)

    def error(self, at: Path_, problem: str) -> ScenarioFileError:
        return ScenarioFileError(self.path, self.line(at), f"{_dotted(at)}: {problem}")

    def schema_error(self, error: jsonschema.ValidationError) -> ScenarioFileError:
        at: Path_ = tuple(error.absolute_path)
        instance = error.instance
        if error.validator == "additionalProperties" and isinstance(instance, Mapping):
            allowed = set(error.schema.get("properties", {}))
            extra = sorted(str(k) for k in instance if k not in allowed)
            if extra and allowed:
                key = (*at, extra[0])
                return ScenarioFileError(
                    self.path,
                    self.key_line(key),
                    f"{_dotted(key)}: unknown key {extra[0]!r}; allowed here: "
                    f"{', '.join(sorted(allowed))}",
                )
        if error.validator == "required" and isinstance(instance, Mapping):
            return ScenarioFileError(self.path, self.line(at), f"{_dotted(at)}: {error.message}")
        if error.validator == "oneOf" and error.context:
            # Report the alternative that got furthest, not "is not valid under any".
            best = max(error.context, key=lambda e: len(e.absolute_path))
            if len(best.absolute_path) > len(at):
                return self.schema_error(best)
        message = error.message
        if error.validator == "enum":
            message = f"{instance!r} is not one of {', '.join(map(str, error.validator_value))}"
        elif error.validator == "type":
            message = f"{instance!r} is not of type {error.validator_value}"
        return ScenarioFileError(self.path, self.line(at), f"{_dotted(at)}: {message}")


def _dotted(at: Path_) -> str:
    out = ""
    for part in at:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top)"


def _fault(raw: Mapping[str, Any]) -> FaultSpec:
    return FaultSpec(str(raw["device"]), str(raw["fault"]), raw.get("arg"))


WORLD_KEYS = ("fault", "clear", "host", "link", "operator", "pause")


def _check_atm_process(
    data: dict[str, Any], steps: list[Step], setup: Setup, where: _Where
) -> None:
    """``atm: kill`` then ``atm: restart``, once each; the killed ATM is its own process, so
    until the restart only the customer acts on it (no device faults, link, host, operator)."""
    kills = [i for i, s in enumerate(steps) if s.atm == "kill"]
    restarts = [i for i, s in enumerate(steps) if s.atm == "restart"]
    if not kills and not restarts:
        return
    if len(kills) != 1 or len(restarts) != 1 or restarts[0] < kills[0]:
        index = (restarts or kills)[-1]
        raise where.error(
            ("steps", index, "atm"),
            "a scenario has one 'atm: kill' and, after it, one 'atm: restart'",
        )
    if data.get("faults"):
        raise where.error(
            ("faults",), "not with 'atm: kill' (inject faults in steps after the restart)"
        )
    if setup.devices != "sim" or setup.host_down_at_start:
        raise where.error(("setup",), "'atm: kill' needs devices: sim and the host up at the start")
    for index, raw in enumerate(data["steps"][: restarts[0] + 1]):
        world = [key for key in WORLD_KEYS if key in raw]
        if world:
            raise where.error(
                ("steps", index, world[0]),
                "until 'atm: restart' only the customer acts (the ATM is its own process)",
            )
    if steps[restarts[0]].screen != "welcome":
        raise where.error(
            ("steps", restarts[0], "screen"),
            "the 'atm: restart' step waits for 'welcome' (recovery done, the ATM in service)",
        )
    extra = sorted(set(data["steps"][restarts[0]]) - {"screen", "atm", "says"})
    if extra:
        raise where.error(
            ("steps", restarts[0], extra[0]), "the 'atm: restart' step has only screen and says"
        )


def _build(data: dict[str, Any], where: _Where) -> Scenario:
    raw_setup = data.get("setup") or {}
    terminal = raw_setup.get("terminal") or {}
    host = dict(raw_setup.get("host") or {})
    down_at_start = bool(host.pop("down_at_start", False))
    cards = []
    for i, raw in enumerate(raw_setup.get("cards") or []):
        if raw["name"] in TRACKS:
            raise where.error(("setup", "cards", i, "name"), f"{raw['name']!r} is a seeded card")
        cards.append(
            CardSpec(
                name=raw["name"],
                pan=raw["pan"],
                pin=raw["pin"],
                accounts=tuple(
                    AccountSpec(a["number"], a["type"], a.get("balance")) for a in raw["accounts"]
                ),
                expiry=raw.get("expiry", "3012"),
                status=raw.get("status", "active"),
                customer=raw.get("customer", ""),
            )
        )
    setup = Setup(
        terminal_id=terminal.get("id", "ATM00001"),
        key_scheme=terminal.get("key_scheme", "T"),
        devices=raw_setup.get("devices", "sim"),
        device=dict(raw_setup.get("device") or {}),
        host=host,
        host_down_at_start=down_at_start,
        cassettes=tuple(
            CassetteSpec(c["denomination"], c["count"]) for c in raw_setup.get("cassettes") or []
        ),
        balances=dict(raw_setup.get("balances") or {}),
        cards=tuple(cards),
    )
    if host:
        # The host's own validation (the ranges ``atm host`` accepts from the environment);
        # imported here so that ``atm device`` (which reads built-in scenarios) needs no host.
        from host.config import HostConfig
        from host.errors import ConfigError

        try:
            HostConfig.from_env({name.upper(): str(value) for name, value in host.items()})
        except ConfigError as exc:
            raise where.error(("setup", "host"), "; ".join(exc.problems)) from exc
    tracks = {**TRACKS, **{card.name: card.track2 for card in setup.cards}}
    offered = device_faults(setup.devices)

    def check_fault(at: Path_, fault: FaultSpec) -> FaultSpec:
        if fault.fault not in offered[fault.device]:
            raise where.error(
                (*at, "fault"),
                f"the {fault.device} ({setup.devices} devices) has no fault {fault.fault!r}; "
                f"it offers: {', '.join(sorted(offered[fault.device]))}",
            )
        return fault

    faults = tuple(
        check_fault(("faults", i), _fault(raw)) for i, raw in enumerate(data.get("faults") or [])
    )
    steps = []
    for i, raw in enumerate(data["steps"]):
        at: Path_ = ("steps", i)
        if raw["screen"] not in SCREEN_IDS:
            raise where.error(
                (*at, "screen"),
                f"no screen {raw['screen']!r}; screens: {', '.join(sorted(SCREEN_IDS))}",
            )
        insert = raw.get("insert")
        track, insert_name = None, ""
        if isinstance(insert, str):
            if insert not in tracks:
                raise where.error(
                    (*at, "insert"),
                    f"no card named {insert!r}; cards: {', '.join(sorted(tracks))}",
                )
            track, insert_name = tracks[insert], insert
        elif isinstance(insert, dict):
            track = str(insert["track2"])
        if "then" in raw and "type" not in raw:
            raise where.error((*at, "then"), "'then' goes with 'type'")
        if "link_delay" in raw and raw.get("link") != "slow":
            raise where.error((*at, "link_delay"), "'link_delay' goes with 'link: slow'")
        if ("at" in raw or "nth" in raw) and raw.get("atm") != "kill":
            key = "at" if "at" in raw else "nth"
            raise where.error((*at, key), f"'{key}' goes with 'atm: kill'")
        if raw.get("atm") == "kill" and "at" not in raw:
            raise where.error((*at, "atm"), "'atm: kill' needs 'at' (a journal event or counters)")
        press = raw.get("press", ())
        steps.append(
            Step(
                screen=raw["screen"],
                line=where.line(at),
                says=raw.get("says", ""),
                fault=check_fault((*at, "fault"), _fault(raw["fault"])) if "fault" in raw else None,
                clear=_fault(raw["clear"]) if "clear" in raw else None,
                host=raw.get("host"),
                link=raw.get("link"),
                link_delay=float(raw.get("link_delay", 0.5)),
                operator=raw.get("operator"),
                insert=track,
                insert_name=insert_name,
                type=raw.get("type"),
                then=raw.get("then", "ENTER"),
                notes=tuple(raw.get("notes") or ()),
                envelope=bool(raw.get("envelope", False)),
                press=(press,) if isinstance(press, str) else tuple(press),
                take=raw.get("take"),
                wait=bool(raw.get("wait", False)),
                pause=float(raw.get("pause", 0.0)),
                atm=raw.get("atm"),
                kill_at=str(raw.get("at", "")),
                kill_nth=int(raw.get("nth", 1)),
            )
        )
    _check_atm_process(data, steps, setup, where)
    raw_expect = data.get("expect") or {}
    codes = raw_expect.get("response_codes")
    expect = Expect(
        balance_changes=dict(raw_expect.get("balance_changes") or {}),
        journal=tuple(raw_expect.get("journal") or ()),
        no_journal=tuple(raw_expect.get("no_journal") or ()),
        screens=tuple(raw_expect.get("screens") or ()),
        response_codes=None if codes is None else tuple(codes),
        taken_cents=raw_expect.get("taken_cents"),
        retracted_notes=raw_expect.get("retracted_notes"),
        cards_retained=raw_expect.get("cards_retained", 0),
        receipts=raw_expect.get("receipts"),
        receipt_lines=tuple(raw_expect.get("receipt_lines") or ()),
        available_changes=dict(raw_expect.get("available_changes") or {}),
        held_cents=dict(raw_expect.get("held_cents") or {}),
        stacked_cents=raw_expect.get("stacked_cents"),
        returned_cents=raw_expect.get("returned_cents"),
    )
    return Scenario(
        name=data["name"],
        description=data.get("description", ""),
        path=where.path,
        setup=setup,
        faults=faults,
        steps=tuple(steps),
        expect=expect,
        tags=tuple(data.get("tags") or ()),
    )
