"""The link codec benchmark runs (``--short``) and prints every variant's rate and ratio; its
ratio is the median of the rounds' ratios, so one disturbed round does not move it."""

from types import ModuleType

import pytest

from protocol import libcrypto
from tests.bench.scripts import HANG_GUARD_SECONDS, load_script, run_script


def _bench_module() -> ModuleType:
    return load_script("bench_link_codec")


@pytest.mark.timeout(HANG_GUARD_SECONDS)
def test_short_run_prints_rates_and_ratios():
    result = run_script("bench_link_codec", "--short")
    lines = result.stdout.splitlines()
    assert "interleaved rounds" in lines[0]
    assert any(line.startswith("bare pyiso8583") and "msg/s" in line for line in lines)
    for scheme in ("T", "A"):
        assert any(line.startswith(f"ours, scheme {scheme}") and "ratio" in line for line in lines)
        assert any(line.strip().startswith(f"one MAC alone, scheme {scheme}") for line in lines)
        assert any(line.startswith(f"ceiling, scheme {scheme}: ") for line in lines)
    assert any(line.strip().startswith("its TDES work alone, scheme T") for line in lines)
    # The engine the retail MAC ran on is named; its single-DES work is timed where it is there.
    single_des = any(line.strip().startswith("its single-DES work alone") for line in lines)
    if libcrypto.load() is not None:
        assert "retail MAC on single DES from libcrypto.so.3 (OpenSSL 3." in lines[0]
        assert single_des
    else:
        assert "retail MAC on TDES under K1K1K1 from cryptography" in lines[0]
        assert not single_des


def test_the_ratio_is_the_median_of_the_rounds_ratios():
    bench = _bench_module()
    ours = bench.variant_name(bench.KeyScheme.TDES)
    # Round 2 was disturbed (the bare variant ran slow): the median ignores it.
    figures = bench.CodecFigures({bench.BARE: [1.0, 5.0, 1.0], ours: [2.0, 2.0, 2.0]}, iterations=1)
    assert figures.rounds == 3
    assert figures.ratio(ours) == 0.5
    assert figures.seconds(bench.BARE) == 1.0


def test_the_ceiling_leaves_only_the_two_macs_on_top_of_bare():
    bench = _bench_module()
    mac = bench.mac_name(bench.KeyScheme.TDES)
    # bare 100 us, one MAC 12.5 us: at best 100 / (100 + 2 x 12.5) = 0.8 (round 2 disturbed).
    figures = bench.CodecFigures(
        {bench.BARE: [100.0, 900.0, 100.0], mac: [12.5, 1.0, 12.5]}, iterations=1
    )
    assert figures.ceiling(bench.KeyScheme.TDES) == 0.8
