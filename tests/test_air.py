"""The virtual air (tools/air.py) and the host stand-ins (tools/host/bluetooth.py, machine.py).

* Simulated time: the hub driven by a fake clock (no sockets, no sleeping) for the radio model: delivery to
  scanners only, advertising event timing, channels and scan windows, collisions, loss, half duplex, GATT.
* Real processes: a CPython central (tools/air_client.py) against a MicroPython peripheral using the stand-ins
  (tests/mp/air_peripheral.py) over a hub on loopback, and a button/LED through machine.Pin.
"""

import asyncio
import json
import os
import subprocess
import sys
import types

import pytest

from mpy import MICROPYTHON, ROOT

sys.path.insert(0, str(ROOT / "tools"))
import air  # noqa: E402
import air_client  # noqa: E402

ADV_DATA = bytes.fromhex("02010603032718")


class FakeWriter:
    def __init__(self):
        self.msgs = []
        self.transport = types.SimpleNamespace(get_write_buffer_size=lambda: 0)

    def write(self, data):
        self.msgs += [json.loads(line) for line in data.decode().splitlines()]

    def is_closing(self):
        return False

    def close(self):
        pass


class Sim:
    """The hub on a fake microsecond clock; run(ms) advances it, ticking whenever the hub asked to wake."""

    def __init__(self, **kw):
        self.t = 0
        self.hub = air.Hub(clock=lambda: self.t, **kw)

    def radio(self, addr, **kw):
        w = FakeWriter()
        r = self.hub.join(dict({"op": "hello", "addr": addr}, **kw), w)
        self.hub.flush()
        r.w = w
        return r

    def do(self, radio, **msg):
        self.hub.submit(radio, msg)

    def run(self, ms):
        end = self.t + int(ms * 1000)
        while self.hub.wake is not None and self.hub.wake <= end:
            self.t = max(self.t, self.hub.wake)
            self.hub.tick()
        self.t = end

    @staticmethod
    def got(radio, op):
        return [m for m in radio.w.msgs if m["op"] == op]

    def scan(self, radio, interval_ms=30, window_ms=30, duration_ms=0):
        self.do(radio, op="scan", duration_ms=duration_ms, interval_us=interval_ms * 1000,
                window_us=window_ms * 1000)

    def adv(self, radio, interval_ms, data=ADV_DATA, adv_type=0):
        self.do(radio, op="adv", interval_us=interval_ms * 1000, data=data.hex(), adv_type=adv_type)


# -- the radio model, in simulated time ------------------------------------------------------------------------
def test_adverts_reach_scanning_radios_only():
    sim = Sim(seed=1)
    a, b, c = sim.radio("c0ffee000001"), sim.radio("c0ffee000002"), sim.radio("c0ffee000003")
    sim.scan(b)
    sim.scan(a)
    sim.adv(a, 100)
    sim.run(1000)
    rx = sim.got(b, "rx")
    assert 7 <= len(rx) <= 12  # ~1000 / (100 + 5) events, one packet heard per event
    assert {(m["addr"], m["adv_type"], m["data"], m["addr_type"]) for m in rx} == {
        ("c0ffee000001", 0, ADV_DATA.hex(), 0)}
    assert sim.got(c, "rx") == [] and sim.got(a, "rx") == []  # not scanning; never hears itself


def test_event_spacing_is_interval_plus_adv_delay():
    sim = Sim(seed=2)
    a, b = sim.radio("c0ffee000001"), sim.radio("c0ffee000002")
    sim.scan(b)
    sim.adv(a, 20)
    sim.run(3000)
    events = sim.hub.stats["adv_events"]
    assert 3000 / 30 <= events <= 3000 / 20 + 1
    assert sim.hub.stats["packets"] == 3 * events
    times = sorted({m["t"] for m in sim.got(b, "rx")})
    gaps = [y - x for x, y in zip(times, times[1:]) if y - x > 2]  # > 2 ms: a different event
    # One event apart: interval + advDelay. Rarely two: the scanner hopped 39 -> 37 in mid-event.
    near = [g for g in gaps if 19 <= g <= 31]
    assert len(near) >= 0.9 * len(gaps) and all(19 <= g <= 62 for g in gaps), gaps
    assert max(near) - min(near) >= 5  # advDelay really varies (0..10 ms)


def test_scanner_hops_channels_per_scan_interval():
    sim = Sim(seed=3)
    a, b = sim.radio("c0ffee000001"), sim.radio("c0ffee000002")
    sim.scan(b, interval_ms=30, window_ms=30)
    sim.adv(a, 20)
    sim.run(2000)
    rx = sim.got(b, "rx")
    assert {m["ch"] for m in rx} == {37, 38, 39}
    for m in rx:
        k, off = divmod(m["t"], 30)
        if 1 <= off <= 28:  # away from the hop (t is whole milliseconds)
            assert m["ch"] == 37 + k % 3, m


def test_scan_window_duty_cycle():
    sim = Sim(seed=4)
    a, b = sim.radio("c0ffee000001"), sim.radio("c0ffee000002")
    sim.scan(b, interval_ms=100, window_ms=10)
    sim.adv(a, 20)
    sim.run(10_000)
    heard = len(sim.got(b, "rx")) / sim.hub.stats["adv_events"]
    assert 0.05 <= heard <= 0.15, heard  # ~ (10 ms - airtime) / 100 ms: one channel at a time


def test_scan_duration_and_stop_end_with_scan_done():
    sim = Sim()
    b = sim.radio("c0ffee000002")
    sim.do(b, op="scan", duration_ms=100, interval_us=30000, window_us=30000, id=5)
    sim.run(99)
    assert sim.got(b, "scan_done") == []
    sim.run(10)
    assert [m["id"] for m in sim.got(b, "scan_done")] == [5]
    sim.scan(b)
    sim.do(b, op="scan", duration_ms=None)
    assert len(sim.got(b, "scan_done")) == 2


def test_overlapping_packets_on_a_channel_collide():
    sim = Sim(seed=5)
    s = sim.radio("c0ffee0000ff")
    sim.scan(s)
    a, b = sim.radio("c0ffee000001"), sim.radio("c0ffee000002")
    sim.adv(a, 1000, b"\x02\x01\x06")
    sim.t = 300  # 300 us later: overlaps A's 376 us packet on every channel
    sim.adv(b, 1000, b"\x02\x01\x04")
    sim.run(20)
    assert sim.hub.stats["collided"] == 6 and sim.got(s, "rx") == []
    c, d = sim.radio("c0ffee000003"), sim.radio("c0ffee000004")
    sim.adv(c, 1000, b"\x02\x01\x06")
    sim.t += 1000  # 1 ms later: no overlap on any channel
    sim.adv(d, 1000, b"\x02\x01\x04")
    sim.run(20)
    assert sim.hub.stats["collided"] == 6
    assert sorted(m["addr"] for m in sim.got(s, "rx")) == ["c0ffee000003", "c0ffee000004"]


def test_loss_rate_is_per_packet_and_receiver():
    sim = Sim(loss=0.25, seed=6)
    a = sim.radio("c0ffee000001")
    for i in range(20):
        sim.scan(sim.radio("c0ffee0001%02x" % i))
    sim.adv(a, 20)
    sim.run(10_000)
    st = sim.hub.stats
    assert st["lost"] + st["delivered"] > 5000
    assert 0.22 <= st["lost"] / (st["lost"] + st["delivered"]) <= 0.28
    sim.do(a, op="set_air", loss=0.0)
    lost = st["lost"]
    sim.run(1000)
    assert st["lost"] == lost


def test_a_radio_cannot_hear_while_it_transmits():
    sim = Sim(seed=7)
    s, r, a = sim.radio("c0ffee0000ff"), sim.radio("c0ffee0000fe"), sim.radio("c0ffee000001")
    sim.scan(s)
    sim.scan(r)
    sim.adv(s, 1000, b"\x02\x01\x06")  # S sends at 0 (37), 500 (38), 1000 (39) us
    sim.t = 700
    sim.adv(a, 1000, b"\x02\x01\x04")  # A's ch 37 packet at 700 us overlaps S's ch 39 packet in time only
    sim.run(20)
    assert sim.hub.stats["collided"] == 0
    assert [m["addr"] for m in sim.got(r, "rx")].count("c0ffee000001") == 1
    assert [m["addr"] for m in sim.got(s, "rx")].count("c0ffee000001") == 0


def test_refused_requests_change_nothing():
    sim = Sim()
    a = sim.radio("c0ffee000001")
    for bad in ({"data": "00" * 32}, {"resp": "00" * 32}, {"interval_us": 19999}, {"adv_type": 1}):
        with pytest.raises(ValueError):
            sim.do(a, **dict({"op": "adv", "interval_us": 100000, "data": "", "adv_type": 0}, **bad))
    assert a.adv is None
    with pytest.raises(ValueError):
        sim.do(a, op="set_air", loss=1.5)
    with pytest.raises(ValueError):
        sim.do(a, op="write", conn=0, handle=1, data="00")  # not connected


def connected_pair(sim, mtu_pref=None):
    c, p = sim.radio("c0ffee0000c0"), sim.radio("c0ffee000001")
    if mtu_pref:
        sim.do(p, op="config", mtu=mtu_pref)
    sim.adv(p, 50)
    sim.do(c, op="connect", addr=p.addr, timeout_ms=1000, interval_ms=30, id=9)
    sim.run(100)
    return c, p


def test_connect_stops_advertising_and_carries_gatt():
    sim = Sim(seed=8)
    c, p = connected_pair(sim, mtu_pref=69)
    (cc,) = sim.got(c, "connected")
    (pc,) = sim.got(p, "connected")
    assert (cc["role"], cc["addr"], cc["id"], pc["role"], pc["addr"]) == (
        "central", p.addr, 9, "peripheral", c.addr)
    events = sim.hub.stats["adv_events"]
    sim.run(500)
    assert p.adv is None and sim.hub.stats["adv_events"] == events
    ch, ph = cc["conn"], pc["conn"]
    with pytest.raises(ValueError):  # ATT_MTU is 23 until exchanged
        sim.do(c, op="write", conn=ch, handle=12, data="00" * 21)
    sim.do(c, op="mtu", conn=ch, mtu=100, id=3)
    assert sim.got(c, "mtu")[-1]["mtu"] == 69
    sim.do(c, op="write", conn=ch, handle=12, data="ab" * 66)
    sim.run(1)
    assert sim.got(p, "write") == []  # waits for the next connection event (30 ms grid)
    sim.run(30)
    assert [(m["conn"], m["handle"], m["data"]) for m in sim.got(p, "write")] == [(ph, 12, "ab" * 66)]
    assert sim.got(p, "mtu")[-1]["mtu"] == 69
    sim.do(p, op="notify", conn=ph, handle=14, data="cd" * 100)
    sim.run(31)
    assert sim.got(c, "notify")[-1]["data"] == "cd" * 66  # cut to ATT_MTU - 3
    sim.do(p, op="disconnect", conn=ph)
    sim.run(31)
    assert sim.got(p, "disconnected")[-1]["reason"] == 0x16
    assert sim.got(c, "disconnected")[-1]["reason"] == 0x13
    assert c.conns == {} and p.conns == {}


def test_connect_needs_a_connectable_advertiser():
    sim = Sim(seed=9)
    c, p, q = sim.radio("c0ffee0000c0"), sim.radio("c0ffee000001"), sim.radio("c0ffee000002")
    sim.adv(p, 50, adv_type=2)  # ADV_SCAN_IND: scannable, not connectable
    sim.do(c, op="connect", addr=p.addr, timeout_ms=300, id=1)
    sim.run(400)
    assert [m["id"] for m in sim.got(c, "connect_failed")] == [1] and sim.got(p, "connected") == []
    sim.adv(q, 50)
    sim.do(c, op="connect", addr=q.addr, timeout_ms=300, id=2)
    sim.hub._leave(q)  # the target goes away before its next event
    sim.run(400)
    assert [m["id"] for m in sim.got(c, "connect_failed")] == [1, 2]


def test_a_vanished_peer_is_a_supervision_timeout():
    log = []
    sim = Sim(seed=10, log=log.append)
    c, p = connected_pair(sim)
    sim.hub._leave(c)
    sim.hub.flush()
    assert sim.got(p, "disconnected")[-1]["reason"] == 0x08 and p.conns == {}
    assert [line.split(": ", 1)[1] for line in log] == [
        "c0ffee0000c0 joined ()", "c0ffee000001 joined ()", "c0ffee0000c0 connected to c0ffee000001 (conn 0/0)",
        "c0ffee0000c0 left", "c0ffee0000c0 - c0ffee000001 disconnected by supervision timeout"]


def test_counted_burst_stops_by_itself_and_reports():
    sim = Sim(seed=13)
    a, s = sim.radio("c0ffee000001"), sim.radio("c0ffee000002")
    sim.scan(s)
    sim.do(a, op="adv", interval_us=20000, data="020104", adv_type=3, count=3, id=4)
    sim.run(500)
    assert sim.hub.stats["adv_events"] == 3 and a.adv is None
    assert [(m["sent"], m["id"]) for m in sim.got(a, "adv_done")] == [(3, 4)]
    assert 1 <= len({m["t"] // 15 for m in sim.got(s, "rx")}) <= 3
    sim.do(a, op="adv", interval_us=100000, data="020104", adv_type=3, count=5, id=5)
    sim.run(150)
    sim.do(a, op="adv", interval_us=None)  # stopped after 2 of 5
    assert [(m["sent"], m["id"]) for m in sim.got(a, "adv_done")] == [(3, 4), (2, 5)]
    with pytest.raises(ValueError):
        sim.do(a, op="adv", interval_us=20000, data="", count=0)


def test_a_radio_joining_with_a_used_address_replaces_the_old_one():
    sim = Sim(seed=15)
    c, p = connected_pair(sim)
    again = sim.radio("c0:ff:ee:00:00:01")  # the lock rebooted; its old socket is not closed yet
    assert sim.hub.radios["c0ffee000001"] is again
    assert sim.got(p, "error")[-1]["reason"].startswith("replaced")
    assert sim.got(c, "disconnected")[-1]["reason"] == 0x08 and c.conns == {}
    assert [m["op"] for m in again.w.msgs] == ["welcome"]


def test_a_radio_changes_its_address_on_air_but_keeps_its_identity():
    sim = Sim(seed=16)
    lock, s, c = sim.radio("c0ffee000001"), sim.radio("c0ffee000002"), sim.radio("c0ffee0000c0")
    sim.scan(s)
    sim.adv(lock, 50)
    with pytest.raises(ValueError):  # as HCI LE Set Random Address: not while advertising, scanning, connecting
        sim.do(lock, op="addr", addr="3a1122334455", addr_type=1)
    for bad in (s, c):
        with pytest.raises(ValueError):
            sim.do(bad, op="addr", addr="3a1122334455", addr_type=1)
        if bad is s:
            sim.do(c, op="connect", addr="3a1122334455", timeout_ms=300, id=1)
    sim.run(120)
    sim.do(lock, op="adv", interval_us=None)
    sim.do(lock, op="addr", addr="3a:11:22:33:44:55", addr_type=1)
    sim.adv(lock, 50)
    sim.run(200)
    heard = [(m["addr"], m["addr_type"]) for m in sim.got(s, "rx")]
    assert heard[0] == ("c0ffee000001", 0) and heard[-1] == ("3a1122334455", 1)
    assert set(heard) == {("c0ffee000001", 0), ("3a1122334455", 1)}
    (cc,) = sim.got(c, "connected")  # the central that asked for the new address got it
    assert (cc["addr"], cc["addr_type"], cc["id"]) == ("3a1122334455", 1, 1)
    assert sim.got(lock, "connected")[-1]["addr"] == "c0ffee0000c0"
    assert sim.hub.radios["c0ffee000001"] is lock  # pins and listings keep the identity address
    sim.do(lock, op="off")
    assert (lock.air, lock.air_type) == ("c0ffee000001", 0)  # switched on again: the identity address


def test_pins_are_routed_between_radios():
    sim = Sim()
    lock, tester = sim.radio("c0ffee000001"), sim.radio("c0ffee000002")
    sim.do(tester, op="watch", on=True)
    sim.do(lock, op="pin", pin=2, value=1)
    assert [(m["addr"], m["pin"], m["value"]) for m in sim.got(tester, "pin")] == [("c0ffee000001", 2, 1)]
    sim.do(tester, op="set_pin", addr=lock.addr, pin=0, value=0)
    assert [(m["pin"], m["value"]) for m in sim.got(lock, "pin_in")] == [(0, 0)]
    with pytest.raises(ValueError):
        sim.do(tester, op="set_pin", addr="c0ffee0000aa", pin=0, value=0)


# -- real processes over loopback -------------------------------------------------------------------------------
def mp_env(hub, addr, **extra):
    env = dict(os.environ, AIR="%s:%d" % hub, AIR_ADDR=addr, MICROPYPATH="tools/host:lib:.frozen")
    env.update(extra)
    return env


class Lock:
    """A micropython process whose stdout lines are read as they come."""

    def __init__(self, proc):
        self.proc, self.lines = proc, []

    @classmethod
    async def start(cls, hub, addr, *args, **env):
        proc = await asyncio.create_subprocess_exec(MICROPYTHON, *args, cwd=ROOT, env=mp_env(hub, addr, **env),
                                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        return cls(proc)

    async def line(self, prefix, timeout=5):
        async def read():
            while True:
                raw = await self.proc.stdout.readline()
                if not raw:
                    raise AssertionError("lock exited; output:\n" + "\n".join(self.lines))
                text = raw.decode().rstrip()
                self.lines.append(text)
                if text.startswith(prefix):
                    return text

        return await asyncio.wait_for(read(), timeout)

    async def stop(self):
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()


def scene(body, seed, lock_addr, lock_args, lock_env=None, radio_kw=None, **hub_kw):
    """Run `await body(hub, hub_addr, lock, radio)`: a hub, one micropython lock, one air_client radio."""

    async def main():
        hub = air.Hub(seed=seed, **hub_kw)
        addr = await hub.start()
        lock = await Lock.start(addr, lock_addr, *lock_args, **(lock_env or {}))
        radio = await air_client.join("%s:%d" % addr, **(radio_kw or {}))
        try:
            await body(hub, addr, lock, radio)
        finally:
            await lock.stop()
            await radio.close()
            hub.close()

    asyncio.run(main())


def by_uuid(services, uuid):
    for s in services:
        for c in s["characteristics"]:
            if c["uuid"] == uuid:
                return c["handle"]
    raise KeyError(uuid)


def test_gatt_between_cpython_central_and_micropython_peripheral():
    async def body(hub, addr, lock, central):
        for name in ("inactive", "adv_32_bytes", "adv_interval_19ms", "register_while_advertising",
                     "nrpa_while_advertising", "register_while_scanning", "nrpa_while_scanning"):
            assert await lock.line("ok ") == "ok " + name
        addrs = [(int(w[0]), bytes.fromhex(w[2:])) for w in (await lock.line("addresses")).split()[1:]]
        (t1, n1), (t2, n2), (t3, s3), last = addrs  # config(addr_mode=3, 3, 1, 0) -> config("mac")
        assert t1 == t2 == t3 == 1 and n1 != n2 and n1[0] >> 6 == n2[0] >> 6 == 0 and s3[0] >> 6 == 3  # NRPA, static
        assert last == (0, bytes.fromhex("c0ffee000101"))  # the public address again
        assert hub.radios["c0ffee000101"].air == "c0ffee000101"
        assert await lock.line("ok ") == "ok notify_not_connected"
        din, big, dout, ctl = map(int, (await lock.line("handles")).split()[1:])
        await central.scan()
        adv = await central.next_advert(lambda a: a.addr.hex() == "c0ffee000101", timeout=5)
        assert (adv.adv_type, adv.data) == (air_client.ADV_IND, ADV_DATA)
        conn = await central.connect(adv.addr)
        assert await lock.line("event connect") == "event connect %d c0ffee0000c0" % conn.handle
        assert await lock.line("ok ") == "ok register_while_connected"
        assert hub.radios["c0ffee000101"].adv is None  # advertising stopped on connect
        services = await conn.discover()
        assert [by_uuid(services, u) for u in ("2adb", "6e400002-b5a3-f393-e0a9-e50e24dcca9e", "2adc", "2aff")] \
            == [din, big, dout, ctl]
        await conn.write(din, b"0123456789abcdefghij")  # 20 bytes: all ATT_MTU 23 allows
        assert await conn.notification(timeout=5) == (dout, b"0123456789abcdefghij")
        with pytest.raises(ValueError):
            await conn.write(din, bytes(21))
        assert await conn.exchange_mtu(100) == 69  # the peripheral set config(mtu=69)
        assert await lock.line("event mtu") == "event mtu %d 69" % conn.handle
        payload = bytes(range(40))
        await conn.write(din, payload)
        assert await conn.notification(timeout=5) == (dout, payload[:20])  # 20-byte default buffer
        await conn.write(big, payload)
        assert await conn.notification(timeout=5) == (dout, payload)  # gatts_set_buffer(100)
        await conn.write(ctl, b"notify 100")
        assert await conn.notification(timeout=5) == (dout, bytes(range(66)))  # cut to MTU - 3
        cccd = [c["cccd"] for s in services for c in s["characteristics"] if c["handle"] == dout][0]
        await conn.write(cccd, b"\x01\x00")  # subscribe: gatts_write(..., send_update=True) now notifies
        await conn.write(ctl, b"update 5")
        assert await conn.notification(timeout=5) == (dout, bytes(range(5)))
        await conn.write(cccd, b"\x00\x00")
        await conn.write(ctl, b"update 6")
        await conn.write(ctl, b"notify 3")
        assert await conn.notification(timeout=5) == (dout, bytes(range(3)))  # no update while unsubscribed
        await central.set_mtu(50)
        await conn.write(ctl, b"exchange")  # peripheral-initiated exchange: min(69, 50)
        assert await lock.line("event mtu") == "event mtu %d 50" % conn.handle
        await conn.write(ctl, b"notify 100")
        assert await conn.notification(timeout=5) == (dout, bytes(range(47)))
        assert conn.mtu == 50
        await central.advertise(20, b"\x02\x01\x04\x03\xff\x01\x02", adv_type=air_client.ADV_NONCONN_IND)
        await conn.write(ctl, b"scan 300")
        assert await lock.line("event scan ") == "event scan c0ffee0000c0 3 02010403ff0102"
        await lock.line("event scan_done")
        await central.stop_advertising()
        central.drop_adverts()
        await conn.write(ctl, b"disconnect")
        assert await lock.line("disconnect ->") == "disconnect -> True False"
        assert await asyncio.wait_for(conn.closed, 5) == 0x13
        assert await lock.line("event disconnect") == "event disconnect %d c0ffee0000c0" % conn.handle
        adv = await central.next_advert(lambda a: a.addr.hex() == "c0ffee000101", timeout=5)
        assert adv.adv_type == air_client.ADV_SCAN_IND  # connectable=False on stock MicroPython
        with pytest.raises(air_client.AirError):
            await central.connect(adv.addr, timeout_ms=200)

    scene(body, 11, "c0ffee000101", ["tests/mp/air_peripheral.py"], conn_interval_ms=7.5,
          radio_kw={"addr": "c0ffee0000c0", "name": "central"})


def test_patched_build_sends_adv_nonconn_ind_and_buttons_reach_the_lock():
    script = (
        "import asyncio, bluetooth, machine\n"
        "b = bluetooth.BLE(); b.active(True)\n"
        "asyncio.new_event_loop()  # drops the stand-in's reader task: its next call must start another\n"
        "b.gap_advertise(20000, b'\\x02\\x01\\x04', connectable=False)\n"
        "led = machine.Pin(2, machine.Pin.OUT, value=0)\n"
        "flag = asyncio.ThreadSafeFlag()\n"
        "btn = machine.Pin(0, machine.Pin.IN, machine.Pin.PULL_UP)\n"
        "btn.irq(lambda p: flag.set(), machine.Pin.IRQ_FALLING | machine.Pin.IRQ_RISING)\n"
        "print('ready', btn.value())\n"
        "async def main():\n"
        "    await flag.wait()\n"
        "    print('pressed', btn.value())\n"
        "    await flag.wait()\n"
        "    print('released', btn.value())\n"
        "    for v in (1, 0, 1, 0):\n"
        "        led.value(v)\n"
        "asyncio.run(main())\n"
    )

    async def body(hub, addr, lock, tester):
        assert await lock.line("ready") == "ready 1"  # pulled up until pressed
        await tester.scan()
        adv = await tester.next_advert(lambda a: a.addr.hex() == "c0ffee000102", timeout=5)
        assert adv.adv_type == air_client.ADV_NONCONN_IND
        await tester.watch_pins()
        other = await air_client.join("%s:%d" % addr, name="cpython-device")
        await tester.press(other.addr, 7, hold_ms=0)  # a CPython radio acting as a device gets pin_in
        assert [(await asyncio.wait_for(other.pin_inputs.get(), 5))[1:3] for _ in range(2)] == [(7, 0), (7, 1)]
        await other.report_pin(9, 1)
        assert (await asyncio.wait_for(tester.pins.get(), 5))[:3] == (other.addr, 9, 1)
        await other.close()
        await tester.press("c0ffee000102", 0, hold_ms=50)
        assert await lock.line("pressed") == "pressed 0"
        assert await lock.line("released") == "released 1"
        blinks = [await asyncio.wait_for(tester.pins.get(), 5) for _ in range(4)]
        assert [(p.addr.hex(), p.pin, p.value) for p in blinks] == [("c0ffee000102", 2, v) for v in (1, 0, 1, 0)]
        assert await asyncio.wait_for(lock.proc.wait(), 5) == 0

    scene(body, 12, "c0ffee000102", ["-c", script], lock_env={"AIR_NONCONN_IND": "1"}, radio_kw={"name": "tester"})


def test_a_plain_json_lines_client_can_join_advertise_and_scan():
    """docs/air.md is the contract: two raw sockets speaking JSON lines, no air_client."""

    async def main():
        hub = air.Hub(seed=14)
        host, port = await hub.start()
        try:
            (r1, w1), (r2, w2) = [await asyncio.open_connection(host, port) for _ in range(2)]

            async def say(w, **msg):
                w.write((json.dumps(msg) + "\n").encode())
                await w.drain()

            async def hear(r, op):
                while True:
                    m = json.loads(await asyncio.wait_for(r.readline(), 5))
                    if m["op"] == op:
                        return m

            await say(w1, op="hello", addr="C0:FF:EE:00:00:07")
            assert (await hear(r1, "welcome"))["addr"] == "c0ffee000007"
            await say(w2, op="hello")
            assert (await hear(r2, "welcome"))["addr_type"] == 1  # random static, chosen by the hub
            await say(w2, op="scan", duration_ms=0, interval_us=30000, window_us=30000)
            await say(w1, op="adv", interval_us=20000, data="0201041aff", adv_type=3, id="a")
            assert (await hear(r1, "ok"))["id"] == "a"
            m = await hear(r2, "rx")
            assert (m["addr"], m["adv_type"], m["data"], m["ch"] in (37, 38, 39)) == (
                "c0ffee000007", 3, "0201041aff", True)
            await say(w1, op="adv", interval_us=1000, data="", id="b")
            assert (await hear(r1, "error"))["id"] == "b"
            for junk in (b"not json\n", b"[1, 2]\n", b'{"op": "write", "conn": "x"}\n', b'{"op": "nope"}\n',
                         b'{"op": "adv", "interval_us": 20000, "data": "zz"}\n', b'{"op": "mtu"}\n'):
                w1.write(junk)
                assert "reason" in await hear(r1, "error")
            await say(w1, op="stats", id="c")  # still served
            assert (await hear(r1, "stats"))["id"] == "c"
            for w in (w1, w2):
                w.close()
        finally:
            hub.close()

    asyncio.run(main())


def test_hub_command_line_prints_its_address():
    proc = subprocess.Popen([sys.executable, "tools/air.py", "--seed", "1"], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith("air: listening on 127.0.0.1:")

        async def ping():
            r = await air_client.join(first.split()[-1])
            s = await air_client.join(first.split()[-1])
            await s.scan()
            sent = await r.burst(20, b"\x02\x01\x04", 4)
            st = await r.stats()
            await r.close()
            await s.close()
            return sent, st

        sent, st = asyncio.run(ping())
        assert sent == 4 and st["adv_events"] == 4 and 1 <= st["delivered"] <= 8 and len(st["radios"]) == 2
    finally:
        proc.terminate()
        proc.wait()
