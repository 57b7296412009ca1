"""The state diagram in docs/ is generated from the transitions table and must not go stale."""

from device.diagram import DOC_PATH, render_document
from device.states import TIMEOUTS, TRANSITIONS, WAITING_FOR_PERSON, State


def test_state_diagram_is_current():
    assert DOC_PATH.read_text() == render_document(), (
        "docs/state-diagram.md is stale: run `python -m device.diagram`"
    )


def test_every_state_appears_in_the_diagram():
    text = render_document()
    for state in State:
        assert f'state "{state.value}"' in text


def test_every_state_is_reachable_and_has_a_way_out():
    dests = {t["dest"] for t in TRANSITIONS}
    sources: set[State] = set()
    for t in TRANSITIONS:
        src = t["source"]
        if src == "*":
            continue
        sources.update(src if isinstance(src, list) else [src])
    for state in State:
        assert state in sources, f"{state} has no way out"
        if state is not State.out_of_service:
            assert state in dests, f"{state} cannot be reached"


def test_every_waiting_state_has_a_timeout_field():
    from device.config import DeviceConfig

    config = DeviceConfig()
    for state in WAITING_FOR_PERSON:
        name, _ = TIMEOUTS[state]
        assert getattr(config, name) > 0
