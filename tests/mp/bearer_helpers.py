# Helpers for the bearer tests (tests/mp/test_pb_adv.py, test_pb_gatt.py) and the fuzz drivers that
# tests/test_bearer_fuzz.py runs inside MicroPython through the `mpy` fixture.
from mesh import log
from mesh.pb_adv import PbAdv
from mesh.pb_gatt import PbGatt
from mpunit import h
from prov_helpers import MemStore  # the key store contract in RAM (test_link and hostprov_helpers import it here)

UUID = h("70cf7c9732a345b691494810d2e9cbf4")
LINK = h("23af5850")


def exchange():
    """§8.7 as a list of (who, name, frame): who is "prov" or "dev", frames in on-air order."""
    out, who, name, inside = [], None, None, False
    with open("tests/vectors/provisioning.txt") as f:
        for line in f:
            if line.startswith("## "):
                inside = "8.7  PB-ADV" in line
                continue
            line = line.split("#", 1)[0]
            if not inside or "=" not in line:
                continue
            key, val = line.split("=", 1)
            if "(" in key:
                name = key.split("(")[0].strip()
                who = "prov" if "(prov" in key else "dev"
            if key.strip() == "DeviceUUID":
                continue
            out.append((who, name, h(val.strip())))
    return out


def gatt_segments():
    """§8.8: the four ATT values of the provisioner's Public Key at ATT_MTU 23."""
    vals = []
    with open("tests/vectors/provisioning.txt") as f:
        for line in f:
            if line.startswith("Seg") and "ATT value" in line:
                vals.append(h(line.split("=", 1)[1].split("#")[0].strip()))
    return vals


def _quiet(line):
    pass


def _check_event(ev, counts):
    # The only outcomes a bearer may produce: ("open",), ("pdu", 1..65 octets), ("close", int).
    counts[ev[0]] += 1
    assert isinstance(ev, tuple), ev
    if ev[0] == "open":
        assert len(ev) == 1
    elif ev[0] == "pdu":
        assert len(ev) == 2 and isinstance(ev[1], bytes) and 0 < len(ev[1]) <= 65, ev
    else:
        assert ev[0] == "close" and len(ev) == 2 and isinstance(ev[1], int) and 0 <= ev[1] <= 0x1FF, ev


def fuzz_adv(frames, uuid=None, step_ms=7):
    """Feed PB-ADV PDUs (with polls and device sends in between); return counts of outcomes.
    Any exception escapes to the caller (the test fails on it)."""
    log.sink = _quiet  # under the RPC server stdout carries the replies
    a = PbAdv(uuid or UUID, rand=lambda n: bytes(n))
    now, counts, is_open = 0, {"open": 0, "pdu": 0, "close": 0, "frames": 0}, False
    for i, f in enumerate(frames):
        now += step_ms
        evs = a.receive(now, f) + a.poll(now)
        for ev in evs:
            _check_event(ev, counts)
            if ev[0] == "open":
                assert not is_open
                is_open = True
            elif ev[0] == "close":
                assert is_open
                is_open = False
            else:
                assert is_open and 0 < len(ev[1]) <= 65
                a.send(now, b"\x01" + ev[1][:40])  # answer, so transactions of ours are in flight
        if i % 50 == 49:
            now += 31000  # let retransmission and the 30 s timeout run
            for ev in a.poll(now):
                _check_event(ev, counts)
                is_open = False
        for pdu, urgent in a.take_frames():
            assert isinstance(pdu, bytes) and 6 <= len(pdu) <= 29 and urgent in (True, False)
            assert not urgent or len(pdu) == 6 and pdu[5] in (0x01, 0x07)  # only acks jump the queue
            counts["frames"] += 1
        assert is_open == (a.state == 1)
    return counts


def fuzz_gatt(values, mtu=23, step_ms=7):
    """Feed Data In writes to a PbGatt (reconnecting after each close); return counts of outcomes."""
    log.sink = _quiet
    g = PbGatt(mtu)
    now, counts = 0, {"open": 0, "pdu": 0, "close": 0, "notify": 0}
    for ev in g.connected(now):
        _check_event(ev, counts)
    for v in values:
        now += step_ms
        evs = g.receive(now, v) + g.poll(now)
        for ev in evs:
            _check_event(ev, counts)
            if ev[0] == "pdu":
                assert len(ev[1]) <= 65
                for n in g.send(now, b"\x01" + ev[1]):
                    assert 2 <= len(n) <= mtu - 3
                    counts["notify"] += 1
            elif ev[0] == "close":
                assert g.disconnected(now) == []
                for e2 in g.connected(now):
                    _check_event(e2, counts)
    now += 21000
    for ev in g.poll(now):
        _check_event(ev, counts)
    return counts


# ---- a device held across RPC calls, for the interop test against tools/hostprov (tests/test_bearer_fuzz.py) ----
_dev = {}


def dev_new(mtu=23):
    """A fresh unprovisioned device (random key pair, os.urandom) behind both bearers."""
    from mesh import prov_pdu
    from mesh.link import Link
    from mesh.provisionee import Provisionee

    log.sink = _quiet
    store = MemStore()
    link = Link(Provisionee({"algorithms": prov_pdu.ALGS_CMAC}, store), PbAdv(UUID), PbGatt(mtu))
    _dev.update(link=link, store=store)
    return _dev_run(0)


def _dev_run(now):
    link = _dev["link"]
    link.poll(now)
    while link.deadline() == 0:  # key generation / ECDH slices
        link.poll(now)
    return [link.take_adv_frames(), [v for c, v in link.take_notifications()], link.take_disconnects(),
            link.deadline()]


def dev_adv(now, frame):
    _dev["link"].adv_receive(now, frame)
    return _dev_run(now)


def dev_gatt(now, what, value=None):
    link = _dev["link"]
    if what == "connect":
        link.gatt_connected(now, 1)
    elif what == "mtu":
        link.gatt_mtu(1, value)
    elif what == "write":
        link.gatt_write(now, 1, value)
    else:
        link.gatt_disconnected(now, 1)
    return _dev_run(now)


def dev_poll(now):
    return _dev_run(now)


def dev_record():
    return _dev["store"].record
