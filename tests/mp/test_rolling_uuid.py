# Rolling Device UUID: derivation, period sources, freezing while a link is open, and unlinkability.
from mpunit import h, raises

from mesh import rolling_uuid as ru

SECRET = h("000102030405060708090a0b0c0d0e0f")


def _bits(b):
    return sum(bin(x).count("1") for x in b)


def test_derive_is_a_v4_uuid_and_deterministic():
    u = ru.derive(SECRET, 7)
    assert len(u) == 16 and u == ru.derive(SECRET, 7)
    assert u[6] >> 4 == 4 and u[8] >> 6 == 2
    assert u != ru.derive(SECRET, 8)
    assert ru.derive(SECRET + b"x", 7) != u  # a different secret, a different UUID


def test_derive_rejects_bad_input():
    raises(ValueError, ru.derive, SECRET[:15], 0)
    raises(ValueError, ru.derive, SECRET, -1)
    raises(ValueError, ru.derive, SECRET, 1 << 32)
    assert len(ru.derive(SECRET, (1 << 32) - 1)) == 16


def test_rtc_period_boundaries():
    p = ru.DEFAULT_PERIOD_S
    assert ru.period_from_rtc(1_780_000_000 - 1_780_000_000 % p) == 1_780_000_000 // p
    t0 = 989_000 * p
    assert ru.period_from_rtc(t0 - 1) == 988_999
    assert ru.period_from_rtc(t0) == 989_000
    assert ru.period_from_rtc(t0 + p - 1) == 989_000
    assert ru.period_from_rtc(600, 300) == 2


def test_counter_bumps_at_boot_and_every_period():
    c = ru.PeriodCounter(0, boot_ms=5_000)  # factory-fresh: nothing stored yet
    assert c.period(5_000) == 1
    assert c.period(5_000 + 1_800_000 - 1) == 1
    assert c.period(5_000 + 1_800_000) == 2
    assert c.period(5_000 + 3 * 1_800_000) == 4
    # reboot: the firmware stored 4; the next boot starts at 5 even after a few seconds of uptime
    c2 = ru.PeriodCounter(4, boot_ms=0)
    assert c2.period(10) == 5
    # reboots every few minutes still move the UUID on
    seen = set()
    stored = 0
    for _boot in range(5):
        c = ru.PeriodCounter(stored, boot_ms=0)
        stored = c.period(120_000)
        seen.add(ru.derive(SECRET, stored))
    assert len(seen) == 5
    raises(ValueError, ru.PeriodCounter, -1, 0)


def test_frozen_while_link_open():
    r = ru.RollingUuid(SECRET, 10)
    first = r.uuid
    assert r.update(11) is True and r.uuid == ru.derive(SECRET, 11)
    r.freeze()
    assert r.update(12) is False and r.update(13) is False
    assert r.uuid == ru.derive(SECRET, 11) and r.period == 11
    assert r.unfreeze() is True
    assert r.period == 13 and r.uuid == ru.derive(SECRET, 13)
    # frozen, and the period came back to where it was: nothing to do at unfreeze
    r.freeze()
    r.update(14)
    r.update(13)
    assert r.unfreeze() is False and r.period == 13
    assert r.update(13) is False
    assert first != r.uuid


def test_repr_hides_secret():
    r = ru.RollingUuid(SECRET, 3)
    s = repr(r)
    assert "0001020304" not in s and "RollingUuid" in s and "period=3" in s
    for v in (SECRET, bytes(SECRET)):
        assert repr(v)[2:12] not in s


def test_consecutive_uuids_share_no_more_bits_than_chance():
    # 122 bits are free (6 are the fixed version/variant bits). Consecutive UUIDs of one lock should agree on
    # about half of them: the mean over 200 pairs has a standard deviation of ~0.4 bit.
    total = 0
    n = 0
    per_bit = [0] * 128
    for lock in range(20):
        secret = bytes([lock]) * 16
        prev = ru.derive(secret, 1000)
        for p in range(1001, 1011):
            u = ru.derive(secret, p)
            same = bytes(~(a ^ b) & 0xFF for a, b in zip(prev, u))
            total += _bits(same) - 6  # minus the six fixed bits that always agree
            for i in range(128):
                if same[i >> 3] >> (7 - (i & 7)) & 1:
                    per_bit[i] += 1
            n += 1
            prev = u
    mean = total / n
    assert 58 < mean < 64, mean
    fixed = (48, 49, 50, 51, 64, 65)  # version nibble and variant bits
    for i in range(128):
        if i not in fixed:
            assert 60 < per_bit[i] < 140, (i, per_bit[i])  # 200 pairs, p = 1/2: 100 +- 40 is > 5 sigma
