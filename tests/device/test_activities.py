"""The state -> activity table is complete, and the table's triggers never shadow the
controller's own attributes (transitions would silently skip binding such a trigger)."""

from device.activities import ACTIVITIES
from device.controller import AtmController
from device.states import SUPERVISOR_ACTIONS, SUPERVISOR_KEYS, TRANSITIONS, State


def test_every_state_has_one_activity_in_device_activities():
    assert set(ACTIVITIES) == set(State)
    for state, activity in ACTIVITIES.items():
        assert activity.__module__.startswith("device.activities."), state
        assert activity.__name__ == state.value, f"{state} runs {activity.__name__}"


def test_no_trigger_shadows_a_controller_attribute():
    triggers = {t["trigger"] for t in TRANSITIONS}
    assert triggers.isdisjoint(vars(AtmController)), triggers & set(vars(AtmController))


def test_every_supervisor_key_leads_somewhere_and_every_job_returns():
    for trigger, dest in SUPERVISOR_KEYS.values():
        assert {"trigger": trigger, "source": State.supervisor, "dest": dest} in TRANSITIONS
    back = [t for t in TRANSITIONS if t["trigger"] == "supervisor_done"]
    assert back == [
        {"trigger": "supervisor_done", "source": SUPERVISOR_ACTIONS, "dest": State.supervisor}
    ]
