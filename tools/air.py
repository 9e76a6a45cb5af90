"""Virtual air: a hub that simulated radios join over loopback TCP (protocol: docs/air.md).

It carries legacy advertising (three channels, airtime, advDelay, scan windows, random loss, collisions) and
GATT connections (connect, ATT MTU exchange, write without response, notifications, disconnect) between a
central and a peripheral, and routes GPIO (button presses in, LED/buzzer changes out) so tests can drive locks.

Model (the same as tools/density.py, so figures agree):
* An advertising event goes out every interval + advDelay (uniform 0-10 ms, Core Vol 6 Part B §4.4.2.2.1):
  one packet on each of channels 37, 38, 39, PITCH_US apart, each AIR_US = 376 us on air.
* Two packets overlapping in time on one channel are both lost (no capture effect); each surviving packet is
  then lost for each receiver independently with probability `loss`.
* A scanner listens on one channel per scan interval (37, 38, 39 in turn) for `window` of every `interval`, and
  receives a packet that lies wholly inside a window on the packet's channel, unless it was transmitting itself.
* A connection is made at the target's next connectable advertising event that the central hears. GATT traffic
  is not lost (the link layer retransmits); it is delivered at the link's next connection event.

Usage: python tools/air.py [--listen 127.0.0.1:0] [--loss 0.0] [--seed N] [--conn-interval-ms 30] [--verbose]
Prints "air: listening on HOST:PORT" (flushed) once it accepts radios. Loopback only.
"""

import argparse
import asyncio
import heapq
import json
import os
import random
import sys
import time

AIR_US = 376  # one legacy advertising PDU with 31 bytes of AD at 1 Mbit/s (Core Vol 6 Part B §2.1)
PITCH_US = 500  # start-to-start spacing of the packets of one advertising event on 37, 38, 39
ADV_DELAY_MAX_US = 10_000  # advDelay 0-10 ms (Core Vol 6 Part B §4.4.2.2.1)
ADV_INTERVAL_MIN_US = 20_000  # legacy advertising interval floor (Core Vol 6 Part B §4.4.2.2.1)
ADV_DATA_MAX = 31  # legacy AdvData / ScanRspData (Core Vol 6 Part B §2.3.1)
ADV_CHANNELS = (37, 38, 39)
ADV_IND, ADV_DIRECT_IND, ADV_SCAN_IND, ADV_NONCONN_IND, SCAN_RSP = 0, 1, 2, 3, 4
ATT_MTU_MIN = 23  # Core Vol 3 Part F §3.2.8
ATT_MTU_MAX = 517
PERIPHERAL_MTU_DEFAULT = 256  # ESP-IDF NimBLE CONFIG_BT_NIMBLE_ATT_PREFERRED_MTU
CONNECT_TIMEOUT_MS = 2000  # MicroPython gap_connect's scan_duration_ms default
CONN_INTERVAL_MS = 30.0
BATCH_US = 5_000  # the hub wakes at most every 5 ms and handles everything due at once
SEND_BUFFER_LIMIT = 4 << 20  # a radio that stops reading is dropped rather than buffered forever
# HCI disconnect reasons (Core Vol 1 Part F): what each side is told.
REASON_SUPERVISION_TIMEOUT = 0x08
REASON_REMOTE_USER = 0x13
REASON_LOCAL_HOST = 0x16
REASON_CONNECT_FAILED = 0x3E


def parse_addr(text):
    text = str(text).replace(":", "").lower()
    raw = bytes.fromhex(text)
    if len(raw) != 6:
        raise ValueError("address must be 6 bytes")
    return raw.hex()


class Radio:
    """One joined client: an address, what it is doing on air, its connections and its pins."""

    def __init__(self, hub, writer, addr, addr_type, name):
        self.hub, self.writer = hub, writer
        self.addr, self.addr_type, self.name = addr, addr_type, name  # its identity: pins, listings, rejoins
        self.air, self.air_type = addr, addr_type  # the address it advertises and connects with (op "addr")
        self.out = []
        self.adv = None  # dict(interval_us, data, resp, adv_type, gen)
        self.adv_gen = 0
        self.scan = None  # dict(start, interval, window, end, active)
        self.tx = []  # starts of our own recent packets (half duplex)
        self.conns = {}  # conn handle -> Link
        self.mtu = PERIPHERAL_MTU_DEFAULT
        self.gatt = []  # the GATT database the radio published
        self.watch = False
        self.connecting = None  # dict(target, deadline, id, interval_ms)
        self.rssi = -45 - int(addr[-2:], 16) % 30

    def send(self, msg):
        self.out.append((json.dumps(msg, separators=(",", ":")) + "\n").encode())
        self.hub.dirty.add(self)

    def free_handle(self):
        h = 0
        while h in self.conns:
            h += 1
        return h


class Link:
    def __init__(self, central, peripheral, interval_us, now):
        self.central, self.peripheral = central, peripheral
        self.c_handle, self.p_handle = central.free_handle(), peripheral.free_handle()
        central.conns[self.c_handle] = self
        peripheral.conns[self.p_handle] = self
        self.interval_us, self.anchor = interval_us, now
        self.mtu = ATT_MTU_MIN
        self.open = True

    def handle_of(self, radio):
        return self.c_handle if radio is self.central else self.p_handle

    def peer(self, radio):
        return self.peripheral if radio is self.central else self.central

    def next_event(self, now):
        if self.interval_us <= 0:
            return now
        n = -(-(now - self.anchor) // self.interval_us)
        return self.anchor + n * self.interval_us


class Hub:
    def __init__(self, loss=0.0, seed=None, conn_interval_ms=CONN_INTERVAL_MS, clock=None, log=None):
        """clock: None for real time, or a function returning microseconds; then nothing is scheduled and the
        caller runs tick() whenever `wake` (the next due time, or None) has come (simulated-time tests)."""
        self._clock = clock
        self.wake = None
        self.log = log  # None, or a function taking one line: joins, leaves, connections (--verbose)
        self.loss = float(loss)
        self.rand = random.Random(seed)
        self.conn_interval_us = int(conn_interval_ms * 1000)
        self.radios = {}  # addr -> Radio
        self.dirty = set()
        self.events = []  # heap (t_us, seq, radio, gen): advertising events to run
        self.packets = []  # packets on air not yet delivered: [start, ch, radio, data, adv_type, collided, resp]
        self.gatt_queue = []  # heap (due_us, seq, radio, msg)
        self.seq = 0
        self.stats = {"adv_events": 0, "packets": 0, "collided": 0, "delivered": 0, "lost": 0, "gatt": 0}
        self.t0 = time.monotonic()
        self.server = None
        self._timer = None
        self._timer_at = None
        self._last_tick = 0

    def _note(self, fmt, *args):
        if self.log is not None:
            self.log("air %8.3f s: %s" % (self.now() / 1e6, fmt % args))

    # -- clock and scheduling -------------------------------------------------------------------------------
    def now(self):
        if self._clock is not None:
            return self._clock()
        return int((time.monotonic() - self.t0) * 1_000_000)

    def _wake_at(self, t_us):
        t_us = max(t_us, self._last_tick + BATCH_US)
        if self._clock is not None:
            self.wake = t_us if self.wake is None else min(self.wake, t_us)
            return
        if self._timer_at is not None and self._timer_at <= t_us:
            return
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer_at = t_us
        self._timer = loop.call_at(loop.time() + (t_us - self.now()) / 1e6, self.tick)

    def _next_wake(self):
        cands = []
        if self.events:
            cands.append(self.events[0][0])
        if self.packets:
            cands.append(min(p[0] for p in self.packets) + AIR_US)
        if self.gatt_queue:
            cands.append(self.gatt_queue[0][0])
        for r in self.radios.values():
            if r.scan and r.scan["end"] is not None:
                cands.append(r.scan["end"])
            if r.connecting:
                cands.append(r.connecting["deadline"])
        if cands:
            self._wake_at(min(cands))

    def tick(self):
        self._timer = self._timer_at = self.wake = None
        now = self._last_tick = self.now()
        self._run_adv_events(now)
        self._deliver_packets(now)
        while self.gatt_queue and self.gatt_queue[0][0] <= now:
            _, _, radio, msg = heapq.heappop(self.gatt_queue)
            if radio.addr in self.radios:
                radio.send(msg)
        for r in list(self.radios.values()):
            if r.scan and r.scan["end"] is not None and r.scan["end"] <= now:
                r.send({"op": "scan_done", "id": r.scan["id"]})
                r.scan = None
            if r.connecting and r.connecting["deadline"] <= now:
                c, r.connecting = r.connecting, None
                r.send({"op": "connect_failed", "addr": c["target"], "id": c["id"]})
        self.flush()
        self._next_wake()

    def flush(self):
        for r in self.dirty:
            if r.out and not r.writer.is_closing():
                r.writer.write(b"".join(r.out))
                if r.writer.transport.get_write_buffer_size() > SEND_BUFFER_LIMIT:
                    r.writer.close()
            r.out.clear()
        self.dirty.clear()

    # -- advertising ----------------------------------------------------------------------------------------
    def _run_adv_events(self, now):
        while self.events and self.events[0][0] <= now:
            t, _, radio, gen = heapq.heappop(self.events)
            adv = radio.adv
            if adv is None or adv["gen"] != gen or radio.addr not in self.radios:
                continue
            self.stats["adv_events"] += 1
            for i, ch in enumerate(ADV_CHANNELS):
                start = t + i * PITCH_US
                self.packets.append([start, ch, radio, adv["data"], adv["adv_type"], False, adv["resp"]])
                radio.tx.append(start)
            self.stats["packets"] += 3
            adv["sent"] += 1
            if adv["adv_type"] == ADV_IND and self._try_connect(radio, t):
                continue  # advertising stops when a central connects
            if adv["count"] is not None and adv["sent"] >= adv["count"]:
                self._end_adv(radio)
                continue
            self._schedule_adv(radio, t + adv["interval_us"] + self.rand.randint(0, ADV_DELAY_MAX_US))

    def _end_adv(self, radio):
        """Stop the radio's advertising; a counted burst reports how many events it sent."""
        adv, radio.adv = radio.adv, None
        radio.adv_gen += 1
        if adv is not None and adv["count"] is not None:
            radio.send({"op": "adv_done", "sent": adv["sent"], "id": adv["id"]})

    def _schedule_adv(self, radio, t):
        self.seq += 1
        heapq.heappush(self.events, (t, self.seq, radio, radio.adv["gen"]))

    def _deliver_packets(self, now):
        if not self.packets:
            return
        self.packets.sort(key=lambda p: p[0])
        pk = self.packets
        for i, p in enumerate(pk):  # mark collisions: same channel, overlapping airtime
            j = i + 1
            while j < len(pk) and pk[j][0] < p[0] + AIR_US:
                if pk[j][1] == p[1] and pk[j][2] is not p[2]:
                    p[5] = pk[j][5] = True
                j += 1
        keep = []
        scanners = [r for r in self.radios.values() if r.scan]
        for p in pk:
            if p[0] + AIR_US > now:
                keep.append(p)
                continue
            if p[5]:
                self.stats["collided"] += 1
                continue
            line = None
            for r in scanners:
                if r is p[2] or not self._hears(r, p[0], p[1]):
                    continue
                if self.rand.random() < self.loss:
                    self.stats["lost"] += 1
                    continue
                if line is None:
                    line = self._rx_line(p[2], p[4], p[3], p[1], p[0])
                r.out.append(line)
                self.dirty.add(r)
                self.stats["delivered"] += 1
                if r.scan["active"] and p[4] in (ADV_IND, ADV_SCAN_IND) and self.rand.random() >= self.loss:
                    r.out.append(self._rx_line(p[2], SCAN_RSP, p[6], p[1], p[0] + AIR_US + 150))
        self.packets = keep
        horizon = now - 50_000
        for r in self.radios.values():
            if r.tx and r.tx[0] < horizon:
                r.tx = [t for t in r.tx if t >= horizon]

    def _hears(self, r, start, ch):
        s = r.scan
        if start < s["start"] or (s["end"] is not None and start + AIR_US > s["end"]):
            return False
        k, off = divmod(start - s["start"], s["interval"])
        if ADV_CHANNELS[k % 3] != ch:
            return False
        if s["window"] < s["interval"] and off + AIR_US > s["window"]:
            return False
        for t in r.tx:  # half duplex: deaf while sending on any channel
            if t < start + AIR_US and start < t + AIR_US:
                return False
        return True

    def _rx_line(self, sender, adv_type, data, ch, t):
        rssi = sender.rssi - self.rand.randint(0, 4)
        msg = {"op": "rx", "addr": sender.air, "addr_type": sender.air_type, "adv_type": adv_type,
               "rssi": rssi, "data": data.hex(), "ch": ch, "t": t // 1000}
        return (json.dumps(msg, separators=(",", ":")) + "\n").encode()

    # -- connections ----------------------------------------------------------------------------------------
    def _try_connect(self, target, t):
        for c in self.radios.values():
            if c.connecting and c.connecting["target"] == target.air and c is not target:
                if self.rand.random() < self.loss:
                    return False  # CONNECT_IND or the advertisement lost: try at the next event
                req, c.connecting = c.connecting, None
                adv_id = target.adv["id"]
                self._end_adv(target)
                link = Link(c, target, int(req["interval_ms"] * 1000), t + 1250)
                c.send({"op": "connected", "conn": link.c_handle, "addr": target.air,
                        "addr_type": target.air_type, "role": "central", "id": req["id"]})
                target.send({"op": "connected", "conn": link.p_handle, "addr": c.air, "addr_type": c.air_type,
                             "role": "peripheral", "adv_id": adv_id})
                self.stats["connections"] = self.stats.get("connections", 0) + 1
                self._note("%s connected to %s (conn %d/%d)", c.addr, target.addr, link.c_handle, link.p_handle)
                return True
        return False

    def _gatt_send(self, link, to, msg, now):
        self.seq += 1
        self.stats["gatt"] += 1
        heapq.heappush(self.gatt_queue, (link.next_event(now), self.seq, to, msg))

    def _drop_link(self, link, initiator, now):
        if not link.open:
            return
        link.open = False
        for side in (link.central, link.peripheral):
            side.conns.pop(link.handle_of(side), None)
        self._note("%s - %s disconnected by %s", link.central.addr, link.peripheral.addr,
                   initiator.addr if initiator else "supervision timeout")
        if initiator is None:  # a radio vanished: supervision timeout on the survivor
            for side in (link.central, link.peripheral):
                if side.addr in self.radios:
                    side.send({"op": "disconnected", "conn": link.handle_of(side), "addr": link.peer(side).air,
                               "addr_type": link.peer(side).air_type, "reason": REASON_SUPERVISION_TIMEOUT})
            return
        peer = link.peer(initiator)
        initiator.send({"op": "disconnected", "conn": link.handle_of(initiator), "addr": peer.air,
                        "addr_type": peer.air_type, "reason": REASON_LOCAL_HOST})
        self._gatt_send(link, peer, {"op": "disconnected", "conn": link.handle_of(peer), "addr": initiator.air,
                                     "addr_type": initiator.air_type, "reason": REASON_REMOTE_USER}, now)

    # -- requests -------------------------------------------------------------------------------------------
    def handle(self, r, msg):
        op = msg.get("op")
        fn = getattr(self, "_op_" + str(op), None)
        if fn is None:
            raise ValueError("unknown op %r" % (op,))
        fn(r, msg, self.now())

    def submit(self, r, msg):
        """Handle one request from radio r (ValueError/KeyError/TypeError if refused), then send and reschedule."""
        try:
            self.handle(r, msg)
        finally:
            self.flush()
            self._next_wake()

    def _op_adv(self, r, msg, now):
        interval = msg.get("interval_us")
        if interval is None:
            self._end_adv(r)
            return self._ok(r, msg)
        data = bytes.fromhex(msg.get("data", ""))
        resp = bytes.fromhex(msg.get("resp", ""))
        adv_type = int(msg.get("adv_type", ADV_IND))
        count = msg.get("count")
        if len(data) > ADV_DATA_MAX or len(resp) > ADV_DATA_MAX:
            raise ValueError("advertising data longer than 31 bytes")
        if int(interval) < ADV_INTERVAL_MIN_US:
            raise ValueError("advertising interval below 20 ms")
        if adv_type not in (ADV_IND, ADV_SCAN_IND, ADV_NONCONN_IND):
            raise ValueError("adv_type must be 0, 2 or 3")
        if count is not None and int(count) < 1:
            raise ValueError("count must be >= 1")
        self._end_adv(r)
        r.adv = {"interval_us": int(interval), "data": data, "resp": resp, "adv_type": adv_type, "gen": r.adv_gen,
                 "count": None if count is None else int(count), "sent": 0, "id": msg.get("id")}
        self._schedule_adv(r, now)
        self._ok(r, msg)

    def _op_scan(self, r, msg, now):
        duration = msg.get("duration_ms")
        if duration is None:
            if r.scan is not None:
                r.send({"op": "scan_done", "id": r.scan["id"]})
                r.scan = None
            return self._ok(r, msg)
        interval = max(2500, int(msg.get("interval_us", 1_280_000)))
        window = min(interval, max(2500, int(msg.get("window_us", 11_250))))
        end = now + int(duration) * 1000 if int(duration) > 0 else None
        r.scan = {"start": now, "interval": interval, "window": window, "end": end, "active": bool(msg.get("active")),
                  "id": msg.get("id")}
        self._ok(r, msg)

    def _op_connect(self, r, msg, now):
        if r.connecting:
            raise ValueError("a connection attempt is already running")
        target = parse_addr(msg["addr"])
        timeout = int(msg.get("timeout_ms", CONNECT_TIMEOUT_MS))
        interval = float(msg.get("interval_ms", self.conn_interval_us / 1000))
        r.connecting = {"target": target, "deadline": now + timeout * 1000, "id": msg.get("id"),
                        "interval_ms": interval}

    def _op_connect_cancel(self, r, msg, now):
        if r.connecting:
            c, r.connecting = r.connecting, None
            r.send({"op": "connect_failed", "addr": c["target"], "id": c["id"]})
        self._ok(r, msg)

    def _link(self, r, msg):
        link = r.conns.get(msg.get("conn"))
        if link is None or not link.open:
            raise ValueError("not connected")
        return link

    def _op_mtu(self, r, msg, now):
        link = self._link(r, msg)
        peer = link.peer(r)
        want = max(ATT_MTU_MIN, min(ATT_MTU_MAX, int(msg["mtu"])))
        link.mtu = max(ATT_MTU_MIN, min(want, peer.mtu))
        r.send({"op": "mtu", "conn": link.handle_of(r), "mtu": link.mtu, "id": msg.get("id")})
        self._gatt_send(link, peer, {"op": "mtu", "conn": link.handle_of(peer), "mtu": link.mtu}, now)

    def _op_config(self, r, msg, now):
        if "mtu" in msg:
            r.mtu = max(ATT_MTU_MIN, min(ATT_MTU_MAX, int(msg["mtu"])))
        self._ok(r, msg)

    def _op_addr(self, r, msg, now):
        # A new own address on air (BLE.config(addr_mode=...)): as HCI LE Set Random Address, refused while
        # advertising, scanning or connecting (Core Vol 4 Part E §7.8.4); connections keep theirs.
        if r.adv is not None or r.scan is not None or r.connecting:
            raise ValueError("address change while advertising, scanning or connecting")
        addr, addr_type = parse_addr(msg["addr"]), int(msg.get("addr_type", 1))
        if addr_type not in (0, 1):
            raise ValueError("addr_type must be 0 or 1")
        if addr != r.air:
            self._note("%s now on air as %s", r.addr, addr)
        r.air, r.air_type = addr, addr_type
        self._ok(r, msg)

    def _op_write(self, r, msg, now):
        link = self._link(r, msg)
        data = bytes.fromhex(msg.get("data", ""))
        if len(data) > link.mtu - 3:
            raise ValueError("write of %d bytes exceeds ATT_MTU - 3 = %d" % (len(data), link.mtu - 3))
        peer = link.peer(r)
        self._gatt_send(link, peer, {"op": "write", "conn": link.handle_of(peer), "handle": int(msg["handle"]),
                                     "data": data.hex()}, now)

    def _op_notify(self, r, msg, now):
        link = self._link(r, msg)
        data = bytes.fromhex(msg.get("data", ""))[: link.mtu - 3]  # ATT_HANDLE_VALUE_NTF carries MTU - 3 bytes
        peer = link.peer(r)
        self._gatt_send(link, peer, {"op": "notify", "conn": link.handle_of(peer), "handle": int(msg["handle"]),
                                     "data": data.hex()}, now)

    def _op_disconnect(self, r, msg, now):
        self._drop_link(self._link(r, msg), r, now)

    def _op_gatt_db(self, r, msg, now):
        r.gatt = list(msg.get("services", []))
        self._ok(r, msg)

    def _op_discover(self, r, msg, now):
        link = self._link(r, msg)
        r.send({"op": "services", "conn": msg["conn"], "services": link.peer(r).gatt, "id": msg.get("id")})

    def _op_pin(self, r, msg, now):  # a radio's output pin changed: tell the watchers
        note = {"op": "pin", "addr": r.addr, "pin": msg["pin"], "value": msg["value"], "t": now // 1000}
        for w in self.radios.values():
            if w.watch:
                w.send(note)

    def _op_set_pin(self, r, msg, now):  # drive another radio's input pin (a button)
        target = self.radios.get(parse_addr(msg["addr"]))
        if target is None:
            raise ValueError("no radio %s" % msg["addr"])
        target.send({"op": "pin_in", "pin": msg["pin"], "value": msg["value"]})
        self._ok(r, msg)

    def _op_watch(self, r, msg, now):
        r.watch = bool(msg.get("on", True))
        self._ok(r, msg)

    def _op_set_air(self, r, msg, now):
        if "loss" in msg:
            loss = float(msg["loss"])
            if not 0.0 <= loss <= 1.0:
                raise ValueError("loss must be within 0..1")
            self.loss = loss
        if "conn_interval_ms" in msg:
            self.conn_interval_us = int(float(msg["conn_interval_ms"]) * 1000)
        self._ok(r, msg)

    def _op_stats(self, r, msg, now):
        r.send(dict(self.stats, op="stats", radios=sorted(self.radios), t=now // 1000, id=msg.get("id")))

    def _op_radios(self, r, msg, now):
        rs = [{"addr": x.addr, "name": x.name, "air": x.air} for x in self.radios.values()]
        r.send({"op": "radios", "radios": rs, "id": msg.get("id")})

    def _op_off(self, r, msg, now):  # the radio was switched off: stop everything, drop links
        self._end_adv(r)
        r.scan, r.connecting, r.gatt = None, None, []
        r.air, r.air_type = r.addr, r.addr_type  # switched on again, NimBLE starts from its identity address
        for link in list(r.conns.values()):
            self._drop_link(link, r, now)
        self._ok(r, msg)

    def _ok(self, r, msg):
        if msg.get("id") is not None:
            r.send({"op": "ok", "id": msg["id"]})

    # -- joining and leaving --------------------------------------------------------------------------------
    def join(self, msg, writer):
        if msg.get("addr"):
            addr = parse_addr(msg["addr"])
            addr_type = int(msg.get("addr_type", 0))
        else:  # a random static address (Core Vol 6 Part B §1.3.2.1): two top bits set
            while True:
                raw = bytearray(self.rand.getrandbits(8) for _ in range(6))
                raw[0] |= 0xC0
                addr = raw.hex()
                if addr not in self.radios:
                    break
            addr_type = 1
        old = self.radios.get(addr)
        if old is not None:  # the same device again: a rebooted lock whose old socket is not yet seen closed
            self._note("%s rejoined: the previous radio with this address is dropped", addr)
            old.send({"op": "error", "reason": "replaced: a new radio joined with address %s" % addr})
            self.flush()
            self._leave(old)
            old.writer.close()
        r = Radio(self, writer, addr, addr_type, str(msg.get("name", "")))
        self.radios[addr] = r
        self._note("%s joined (%s)", addr, r.name)
        r.send({"op": "welcome", "addr": addr, "addr_type": addr_type, "t": self.now() // 1000, "id": msg.get("id")})
        return r

    def _leave(self, r):
        if self.radios.get(r.addr) is r:
            del self.radios[r.addr]
            self._note("%s left", r.addr)
        r.adv = r.scan = r.connecting = None
        for link in list(r.conns.values()):
            self._drop_link(link, None, self.now())

    async def _serve(self, reader, writer):
        radio = None
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                msg = None
                try:
                    msg = json.loads(line)
                    if not isinstance(msg, dict):
                        raise ValueError("a message is a JSON object")
                    if radio is None:
                        if msg.get("op") != "hello":
                            raise ValueError("say hello first")
                        radio = self.join(msg, writer)
                    else:
                        self.handle(radio, msg)
                except (ValueError, KeyError, TypeError) as e:
                    err = {"op": "error", "reason": str(e)}
                    if isinstance(msg, dict):
                        err["req"], err["id"] = msg.get("op"), msg.get("id")
                    if radio is None:
                        writer.write((json.dumps(err) + "\n").encode())
                    else:
                        radio.send(err)
                self.flush()
                self._next_wake()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            if radio is not None:
                self._leave(radio)
                self.flush()
                self._next_wake()
            writer.close()

    async def start(self, host="127.0.0.1", port=0):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the air listens on loopback only")
        self.server = await asyncio.start_server(self._serve, host, port, limit=1 << 20)
        return self.server.sockets[0].getsockname()[:2]

    def close(self):
        if self._timer is not None:
            self._timer.cancel()
        if self.server is not None:
            self.server.close()
        for r in list(self.radios.values()):
            r.writer.close()


async def _main(args):
    host, _, port = args.listen.rpartition(":")
    log = (lambda line: print(line, file=sys.stderr, flush=True)) if args.verbose else None
    hub = Hub(loss=args.loss, seed=args.seed, conn_interval_ms=args.conn_interval_ms, log=log)
    host, port = await hub.start(host or "127.0.0.1", int(port or 0))
    print("air: listening on %s:%d" % (host, port), flush=True)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write("%s:%d\n" % (host, port))
        os.replace(args.port_file + ".tmp", args.port_file)
    try:
        await asyncio.Event().wait()
    finally:
        hub.close()


def main(argv=None):
    p = argparse.ArgumentParser(description="virtual air hub (docs/air.md)")
    p.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT on loopback (port 0: any free port)")
    p.add_argument("--loss", type=float, default=0.0, help="per-packet, per-receiver loss probability")
    p.add_argument("--seed", type=int, default=None, help="seed the hub's randomness (advDelay, loss)")
    p.add_argument("--conn-interval-ms", type=float, default=CONN_INTERVAL_MS, help="GATT connection interval")
    p.add_argument("--port-file", help="also write HOST:PORT to this file once listening")
    p.add_argument("--verbose", action="store_true", help="log joins, leaves and connections to stderr")
    args = p.parse_args(argv)
    try:
        asyncio.run(_main(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
