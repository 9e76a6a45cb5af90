"""tools/uuid_resolver.py: beacons from rolling-UUID locks back to lock ids, across period boundaries and reboots.
The lock side is lib/mesh (rolling_uuid, beacon); its derivation is checked inside MicroPython against the tool's
independent stdlib-hmac one."""

import hashlib
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "lib"))

import uuid_resolver as ur  # noqa: E402
from mesh import beacon  # noqa: E402
from mesh.rolling_uuid import PeriodCounter, RollingUuid, period_from_rtc  # noqa: E402

P = 1800
NOW = 1_780_000_000 // P * P + 900  # mid-period


def secret(i):
    return hashlib.sha256(b"lock%d" % i).digest()[:16 + i % 17]  # 16..32-byte secrets


def table(n):
    return {"L%03d" % i: secret(i) for i in range(n)}


def lock_beacon(s, period, uri=None):
    return beacon.unprovisioned_beacon(RollingUuid(s, period).uuid, 0xA040, uri)


def test_tool_and_lock_derive_the_same_uuid(mpy):
    for i, p in ((0, 0), (1, 1), (2, 988_888), (3, 0xFFFFFFFF)):
        assert mpy.call("mesh.rolling_uuid.derive", secret(i), p) == ur.uuid_for(secret(i), p)


def test_rtc_mode_window_is_plus_minus_two_periods():
    r = ur.Resolver(table(20), ahead=4)
    s = secret(7)
    for lock_clock_off in range(-2 * P, 2 * P + 1, 300):  # the lock's clock disagrees with ours by up to 60 min
        b = lock_beacon(s, period_from_rtc(NOW - 900 + lock_clock_off))
        assert r.resolve(b, NOW - 900) == ("L007", period_from_rtc(NOW - 900 + lock_clock_off))
    assert r.resolve(lock_beacon(s, NOW // P + 3), NOW) is None
    assert r.resolve(lock_beacon(s, NOW // P - 3), NOW) is None


def test_rtc_mode_across_a_period_boundary():
    r = ur.Resolver(table(5), ahead=4)
    boundary = (NOW // P + 1) * P
    old = lock_beacon(secret(3), period_from_rtc(boundary - 1))
    new = lock_beacon(secret(3), period_from_rtc(boundary))
    for us in (boundary - 60, boundary, boundary + 60):  # our clock on either side of the boundary
        assert r.resolve(old, us) == ("L003", boundary // P - 1)
        assert r.resolve(new, us) == ("L003", boundary // P)


def test_counter_mode_across_reboots_and_uptime():
    r = ur.Resolver(table(10), ahead=96)
    s = secret(4)
    stored = 0  # factory-fresh: nothing in NVS
    heard = []
    # five boots: minutes, hours, a day of uptime; the lock persists every period change
    for uptime_ms in (120_000, 3 * 3_600_000, 60_000, 24 * 3_600_000, 30_000):
        c = PeriodCounter(stored, boot_ms=0)
        for t in range(0, uptime_ms, 600_000):
            p = c.period(t)
            hit = r.resolve(lock_beacon(s, p), NOW)
            assert hit == ("L004", p), (stored, t, p, hit)
            heard.append(p)
        stored = c.period(uptime_ms - 1)
    assert heard == sorted(heard) and heard[0] == 1 and heard[-1] > 48
    assert r.last["L004"] == heard[-1]
    # a lock unseen for longer than `ahead` periods is out of the window until searched with a larger one
    far = r.last["L004"] + 97 + 1
    assert r.resolve(lock_beacon(s, far), NOW) is None
    assert ur.Resolver(table(10), ahead=200, last=dict(r.last)).resolve(lock_beacon(s, far)) == ("L004", far)


def test_wrong_secret_never_resolves():
    r = ur.Resolver(table(50), ahead=20)
    strangers = [hashlib.sha256(b"stranger%d" % i).digest()[:16] for i in range(10)]
    flipped = bytes([secret(9)[0] ^ 1]) + secret(9)[1:]  # one bit away from a real lock's secret
    for s in strangers + [flipped]:
        for p in list(range(0, 25)) + list(range(NOW // P - 3, NOW // P + 4)):
            assert r.resolve(lock_beacon(s, p), NOW) is None


def test_thousand_locks_each_resolves_to_itself():
    t = table(1000)
    r = ur.Resolver(t, ahead=3)
    for i in range(0, 1000, 7):
        lock = "L%03d" % i
        assert r.resolve(lock_beacon(t[lock], NOW // P + (i % 5) - 2), NOW) == (lock, NOW // P + (i % 5) - 2)
        assert r.resolve(ur.uuid_for(t[lock], 2), NOW)[0] == lock


def test_accepts_beacon_gatt_adv_or_uuid_and_rejects_garbage():
    t = table(3)
    r = ur.Resolver(t, ahead=3)
    u = ur.uuid_for(t["L001"], 1)
    assert r.resolve(u) == ("L001", 1)
    assert r.resolve(beacon.pb_gatt_adv(u, 0)) == ("L001", 1)
    assert r.resolve(lock_beacon(t["L001"], 1, uri="https://hotel.example/lock")) == ("L001", 1)
    for bad in (b"", b"\x01\x02", u[:15], lock_beacon(t["L001"], 1)[:-1], b"\x02\x01\x06"):
        with pytest.raises(ValueError):
            r.resolve(bad)
    with pytest.raises(ValueError):
        ur.Resolver({"x": b"short"})
    with pytest.raises(ValueError):
        ur.Resolver(t, before=1)


def test_cli(tmp_path, capsys):
    t = table(3)
    f = tmp_path / "t.csv"
    f.write_text("# lock,secret,last\n" + "".join("%s,%s,%d\n" % (k, v.hex(), 5) for k, v in t.items()))
    hit = lock_beacon(t["L002"], 7).hex()
    miss = lock_beacon(secret(99), 7).hex()
    assert ur.main(["--secrets", str(f), "--now", str(NOW), hit]) == 0
    assert ur.main(["--secrets", str(f), "--now", str(NOW), miss, "zz"]) == 1
    out = capsys.readouterr().out
    assert "lock L002, period 7" in out and "unknown" in out
