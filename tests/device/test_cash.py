import pytest

from device.cash import mix_notes
from device.errors import CashError
from drivers.interfaces import CassetteState, CassetteStatus

TWENTY = CassetteStatus(0, 2000, 500, CassetteState.OK)
FIFTY = CassetteStatus(1, 5000, 200, CassetteState.OK)


@pytest.mark.parametrize(
    ("amount", "mix"),
    [(2000, {0: 1}), (6000, {0: 3}), (10000, {1: 2}), (9000, {0: 2, 1: 1}), (20000, {1: 4})],
)
def test_fewest_notes(amount, mix):
    assert mix_notes(amount, [TWENTY, FIFTY]) == mix


def test_unmakeable_amounts():
    with pytest.raises(CashError):
        mix_notes(3000, [TWENTY, FIFTY])
    with pytest.raises(CashError):
        mix_notes(0, [TWENTY, FIFTY])


def test_empty_cassette_is_skipped():
    empty_fifty = CassetteStatus(1, 5000, 0, CassetteState.EMPTY)
    assert mix_notes(10000, [TWENTY, empty_fifty]) == {0: 5}
