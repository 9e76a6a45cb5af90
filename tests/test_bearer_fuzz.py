"""Fuzz both bearer parsers inside MicroPython (the code that runs on the board).

hypothesis drives structured and random frames through tests/mp/bearer_helpers.py (fuzz_adv, fuzz_gatt) via
the `mpy` fixture, and a seeded corpus of ~40,000 mutated §8.7/§8.8 frames is replayed the same way. The
helpers assert that only the defined outcomes happen: ("open",), ("pdu", 1..65 octets), ("close", reason),
open/close alternating, PB-ADV frames of 6..29 octets, notifications within ATT_MTU - 3. Any exception
inside MicroPython comes back here and fails the test.
"""

import os
import pathlib
import random
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "mp"), str(ROOT / "lib")]
os.chdir(ROOT)  # the vectors are read relative to the repository root, as in MicroPython
import bearer_helpers as bh

EXCHANGE = [f for who, name, f in bh.exchange()]
PROV = [f for who, name, f in bh.exchange() if who == "prov"]
GATT = bh.gatt_segments()
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def adv_frame():
    link = st.sampled_from([bh.LINK, bh.LINK, b"\x11\x22\x33\x44"])
    tn = st.sampled_from([0, 1, 2, 3, 0x7F, 0x80, 0x81, 0xFF]) | st.integers(0, 255)
    gpc = st.integers(0, 255)
    body = st.binary(max_size=26)
    structured = st.builds(lambda lk, t, g, b: lk + bytes([t, g]) + b, link, tn, gpc, body)
    link_open = st.just(bh.LINK + b"\x00\x03" + bh.UUID)
    return st.one_of(st.binary(max_size=32), structured, link_open, st.sampled_from(EXCHANGE))


def gatt_value():
    hdr = st.integers(0, 255) | st.sampled_from([0x03, 0x43, 0x83, 0xC3])
    return st.one_of(st.binary(max_size=30), st.builds(lambda h, b: bytes([h]) + b, hdr, st.binary(max_size=24)),
                     st.sampled_from(GATT))


@SETTINGS
@given(st.lists(adv_frame(), max_size=60))
def test_pb_adv_hypothesis(mpy, frames):
    mpy.call("bearer_helpers.fuzz_adv", frames)


@SETTINGS
@given(st.lists(gatt_value(), max_size=40), st.sampled_from([23, 24, 30, 69, 185, 517]))
def test_pb_gatt_hypothesis(mpy, values, mtu):
    mpy.call("bearer_helpers.fuzz_gatt", values, mtu)


def _mutate(rng, f):
    f = bytearray(f)
    op = rng.randrange(7)
    if op == 0 and f:
        f[rng.randrange(len(f))] ^= 1 << rng.randrange(8)
    elif op == 1 and f:
        f[rng.randrange(len(f))] = rng.randrange(256)
    elif op == 2:
        del f[rng.randrange(len(f) + 1):]
    elif op == 3:
        f += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6)))
    elif op == 4 and len(f) > 5:
        f[5] = rng.randrange(256)  # Generic Provisioning Control octet
    elif op == 5 and len(f) > 4:
        f[4] = rng.choice([f[4] ^ 1, 0x7F, 0x80, rng.randrange(256)])  # transaction number
    else:
        f = bytearray(rng.randbytes(rng.randrange(33)))
    return bytes(f)


def _session(rng, frames, p_mutate):
    """One provisioning-like session: the frames in order, some dropped, repeated, swapped or mutated."""
    out = []
    for f in frames:
        r = rng.random()
        if r < 0.05:
            continue
        if r < 0.10 and out:
            out.insert(rng.randrange(len(out) + 1), f)
        out.append(_mutate(rng, f) if rng.random() < p_mutate else f)
        if rng.random() < 0.05:
            out.append(f)
    return out


def test_pb_adv_mutated_corpus(mpy):
    rng = random.Random(0x5EED)
    totals = {"open": 0, "pdu": 0, "close": 0, "frames": 0}
    n = 0
    for _ in range(40):
        frames = []
        while len(frames) < 1000:
            frames += _session(rng, EXCHANGE, p_mutate=rng.choice([0.02, 0.1, 0.3]))
        n += len(frames)
        for k, v in mpy.call("bearer_helpers.fuzz_adv", frames).items():
            totals[k] += v
    assert n >= 40000
    # the corpus reaches deep states: links open, whole PDUs are delivered, links fail and close
    assert totals["open"] > 100 and totals["pdu"] > 500 and totals["close"] > 100, totals


def test_pb_gatt_mutated_corpus(mpy):
    rng = random.Random(0x6A77)
    totals = {"open": 0, "pdu": 0, "close": 0, "notify": 0}
    for _ in range(20):
        values = []
        while len(values) < 1000:
            values += _session(rng, GATT + [b"\x03\x00", b"\x03\x02\x00\x00\x00\x00\x00"], rng.choice([0.05, 0.3]))
        for k, v in mpy.call("bearer_helpers.fuzz_gatt", values, rng.choice([23, 23, 30, 69, 185])).items():
            totals[k] += v
    assert totals["pdu"] > 500 and totals["close"] > 100 and totals["notify"] > 500, totals


# ---- interop over a lossy channel: the device in MicroPython, tools/hostprov as the provisioner ----
sys.path.insert(0, str(ROOT / "tools"))
from hostprov import pb_adv as host_adv  # noqa: E402
from hostprov import pb_gatt as host_gatt  # noqa: E402
from hostprov.protocol import Provisioner  # noqa: E402


def _provisioner(rng):
    return Provisioner(rng.randbytes(16), rng.randrange(0x1000), rng.randrange(1 << 32), rng.randrange(1, 0x7FFF))


def _check_provisioned(mpy, prov):
    assert prov.state == "complete", (prov.state, prov.error)
    rec = mpy.call("bearer_helpers.dev_record")
    for k in ("net_key", "net_key_index", "iv_index", "address", "dev_key"):
        assert rec[k] == prov.result[k], k


def _adv_session(mpy, seed, loss):
    rng = random.Random(seed)
    prov, host = _provisioner(rng), host_adv.Link(bh.UUID, rand=rng.randbytes)
    dev_frames, _, _, dev_deadline = mpy.call("bearer_helpers.dev_new")
    host.open(0)
    # air: (time, to_device, pdu). Each side has one advertiser: its PDUs go out in order, each twice,
    # >= 20 ms apart (plus the controller's 0-10 ms advDelay).
    air, now, closed, last, lost = [], 0, False, {True: 0, False: 0}, 0

    def put(to_dev, frames):
        for f in frames:
            for _ in range(2):
                last[to_dev] = max(now, last[to_dev] + 20) + rng.randrange(11)
                air.append((last[to_dev], to_dev, f))

    while now < 60_000 and not closed:
        put(True, host.take_frames())
        put(False, [f for f, _urgent in dev_frames])
        dev_frames = []
        times = [t for t in (dev_deadline, host.deadline()) if t is not None] + [t for t, _, _ in air]
        now = max(now, min(times)) if times else now + 100
        due = sorted(a for a in air if a[0] <= now)
        air = [a for a in air if a[0] > now]
        events = host.poll(now)
        for _t, to_dev, f in due:
            if rng.random() < loss:
                lost += 1
                continue
            if to_dev:
                out = mpy.call("bearer_helpers.dev_adv", now, f)
                dev_frames += out[0]
                dev_deadline = out[3]
            else:
                events += host.receive(now, f)
        out = mpy.call("bearer_helpers.dev_poll", now)
        dev_frames += out[0]
        dev_deadline = out[3]
        for ev in events:
            if ev[0] == "open":
                prov.start()
            elif ev[0] == "pdu":
                prov.receive(ev[1])
            else:
                closed = True
        for pdu in prov.take_outgoing():
            host.send(now, pdu)
        if prov.close_reason is not None and host.state == "open":
            host.close(now, prov.close_reason)
            closed = True
    _check_provisioned(mpy, prov)
    return now, lost


def test_pb_adv_interop_lossy(mpy):
    # 30 % of transmissions lost, every PDU sent twice: only retransmission, re-acks and reassembly get through.
    lost = 0
    for seed in range(8):
        lost += _adv_session(mpy, seed, 0.3)[1]
    assert lost > 100  # the channel really lost frames


def test_pb_gatt_interop(mpy):
    for seed, mtu in enumerate((23, 24, 40, 69, 185, 517)):
        rng = random.Random(seed)
        prov, cli = _provisioner(rng), host_gatt.Client(mtu)
        mpy.call("bearer_helpers.dev_new")
        mpy.call("bearer_helpers.dev_gatt", 0, "connect")
        mpy.call("bearer_helpers.dev_gatt", 0, "mtu", mtu)
        prov.start()
        now, writes = 0, []
        while prov.state not in ("complete", "failed") and now < 10_000:
            writes += [v for pdu in prov.take_outgoing() for v in cli.send(pdu)]
            now += 30
            notes = []
            for v in writes:
                assert len(v) <= mtu - 3
                _, n, drops, _ = mpy.call("bearer_helpers.dev_gatt", now, "write", v)
                assert drops == []
                notes += n
            writes = []
            for v in notes:
                assert len(v) <= mtu - 3
                for ev in cli.receive(now, v):
                    assert ev[0] == "pdu"
                    prov.receive(ev[1])
        _check_provisioned(mpy, prov)
        mpy.call("bearer_helpers.dev_gatt", now, "disconnect")
