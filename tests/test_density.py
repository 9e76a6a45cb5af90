"""tools/density.py: the collision/reception model, determinism, and the effects the defaults rest on, on
configurations small enough to run in about a second (the full table is `python tools/density.py --full`)."""

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import density  # noqa: E402


def test_reception_model():
    A, W = density.AIR_US, density.SCAN_WINDOW_US
    # window 0 listens on channel 0, window 1 on channel 1, window 3 on channel 0 again
    pk = [[(100, "a"), (100 + A, "b"), (3 * W + 5, "c")], [(W + 10, "d"), (50, "e")], [(W + 20, "f")]]
    got = sorted(density.received(pk))
    # a and b touch but do not overlap; d is on channel 1 during window 1; e is on channel 1 in window 0 (not
    # scanned); f is on channel 2 in window 1 (not scanned)
    assert got == [("a",), ("b",), ("c",), ("d",)]
    assert density.received([[(100, "a"), (100 + A - 1, "b")], [], []]) == []  # overlap: both lost
    assert density.received([[(W - A + 1, "x")], [], []]) == []  # straddles the channel switch
    assert density.received([[(W - A, "y")], [], []]) == [("y",)]


def test_deterministic_and_seeded():
    a = density.simulate(20, None, "together", 8_000, seed=3)
    assert a == density.simulate(20, None, "together", 8_000, seed=3)
    assert a != density.simulate(20, None, "together", 8_000, seed=4)


def test_one_lock_is_heard_at_once_and_almost_always():
    r = density.simulate(1, {"gatt": False}, "together", 20_000, seed=1)
    # only the packets straddling a scan-channel switch are lost (376 us of every 30 ms window)
    assert r["delivered"] > 0.97 and r["unheard"] == 0
    assert r["p50_ms"] <= 110  # the first window starts within one beacon interval of boot
    assert r["beacons"] == 2 * 10 or 18 <= r["beacons"] <= 22


def test_duty_cycle_sets_the_beacon_count():
    r = density.simulate(10, {"gatt": False}, "staggered", 60_000, seed=2)
    per_lock_per_s = r["beacons"] / 10 / ((60_000 + 60_000) / 1000)  # runs until 60 s after the last boot
    assert 0.6 < per_lock_per_s < 1.0  # 1 s of ~9.5 events in every 10 s, less the tail before boot


def test_more_locks_lose_more_and_jitter_beats_fixed_when_switched_on_together():
    few = density.simulate(5, {"gatt": False}, "together", 10_000, seed=1)
    many = density.simulate(60, {"gatt": False}, "together", 10_000, seed=1)
    assert many["delivered"] < few["delivered"]
    fixed = density.simulate(60, dict(density.FIXED, gatt=False), "together", 30_000, seed=1)
    jitter = density.simulate(60, {"gatt": False}, "together", 30_000, seed=1)
    assert jitter["delivered"] > fixed["delivered"] + 0.15
    # PB-GATT connectable advertising is interference for everybody's beacons
    gatt = density.simulate(60, {"gatt_fast_ms": 100, "gatt_slow_ms": 1000}, "together", 30_000, seed=1)
    assert gatt["delivered"] < jitter["delivered"] - 0.1


def test_markdown_table():
    rows = density.table(ns=(3,), scenarios=("staggered",), variants=density.VARIANTS[:1], horizon_ms=3_000)
    md = density.markdown(rows)
    assert md.count("\n") == 2 and "| defaults: jitter | staggered | 3 |" in md
