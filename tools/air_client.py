"""CPython asyncio client for the virtual air (tools/air.py; protocol in docs/air.md).

    radio = await air_client.join("127.0.0.1:7000", addr="c0ffee000001", name="provisioner")
    await radio.scan(interval_ms=30, window_ms=30)            # continuous; adverts queue up in radio.adverts
    adv = await radio.next_advert(lambda a: a.data[1:2] == b"\\x2b", timeout=5)
    await radio.advertise(20, b"...", adv_type=air_client.ADV_NONCONN_IND)
    conn = await radio.connect(adv.addr)                       # Connection
    mtu = await conn.exchange_mtu(69)
    services = await conn.discover()                           # what the peripheral registered
    await conn.write(handle, b"...")                           # write without response
    handle, data = await conn.notification(timeout=5)
    await conn.disconnect()
    await radio.press(lock_addr, pin=0, hold_ms=100)           # a button on a simulated lock
    radio.pins                                                 # asyncio.Queue of PinChange, after watch_pins()

A radio is one address on the air; a test may join several. Errors from the hub raise AirError.
"""

import asyncio
import itertools
import json
import sys
from collections import namedtuple

ADV_IND, ADV_DIRECT_IND, ADV_SCAN_IND, ADV_NONCONN_IND, SCAN_RSP = 0, 1, 2, 3, 4

Advert = namedtuple("Advert", "addr addr_type adv_type rssi data ch t")  # addr: bytes6 (MSB first)
PinChange = namedtuple("PinChange", "addr pin value t")


class AirError(Exception):
    """The hub refused a request (the reason is its message)."""


class Disconnected(Exception):
    """The GATT connection ended (reason: the HCI code the hub reported)."""


def hub_address(text):
    host, _, port = str(text).rpartition(":")
    return host or "127.0.0.1", int(port)


class Connection:
    def __init__(self, radio, handle, addr, role):
        self.radio, self.handle, self.addr, self.role = radio, handle, addr, role
        self.mtu = 23
        self.notifications = asyncio.Queue()  # (value_handle, bytes)
        self.writes = asyncio.Queue()  # (value_handle, bytes): writes to us, if we are the peripheral
        self.closed = asyncio.get_running_loop().create_future()  # result: HCI reason

    @property
    def is_connected(self):
        return not self.closed.done()

    async def exchange_mtu(self, mtu=247, timeout=5):
        reply = await self.radio.request({"op": "mtu", "conn": self.handle, "mtu": mtu}, timeout)
        self.mtu = reply["mtu"]
        return self.mtu

    async def discover(self, timeout=5):
        reply = await self.radio.request({"op": "discover", "conn": self.handle}, timeout)
        return reply["services"]

    async def write(self, value_handle, data):
        """ATT Write Command (without response); at most mtu - 3 bytes."""
        if len(data) > self.mtu - 3:
            raise ValueError("write of %d bytes exceeds ATT_MTU - 3" % len(data))
        self._check()
        await self.radio.send({"op": "write", "conn": self.handle, "handle": value_handle, "data": bytes(data).hex()})

    async def notify(self, value_handle, data):
        self._check()
        await self.radio.send({"op": "notify", "conn": self.handle, "handle": value_handle, "data": bytes(data).hex()})

    async def notification(self, timeout=None):
        return await self._take(self.notifications, timeout)

    async def written(self, timeout=None):
        return await self._take(self.writes, timeout)

    async def _take(self, queue, timeout):
        if queue.empty() and self.closed.done():
            raise Disconnected(self.closed.result())
        getter = asyncio.ensure_future(queue.get())
        try:
            done, _ = await asyncio.wait({getter, self.closed}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not getter.done():  # also when our caller is cancelled: a stray getter would eat the next item
                getter.cancel()
        if getter in done:
            return getter.result()
        if self.closed.done():
            raise Disconnected(self.closed.result())
        raise asyncio.TimeoutError()

    async def disconnect(self, timeout=5):
        if self.closed.done():
            return self.closed.result()
        await self.radio.send({"op": "disconnect", "conn": self.handle})
        return await asyncio.wait_for(asyncio.shield(self.closed), timeout)

    def _check(self):
        if self.closed.done():
            raise Disconnected(self.closed.result())


class Radio:
    def __init__(self, reader, writer):
        self._reader, self._writer = reader, writer
        self._ids = itertools.count(1)
        self._waiting = {}  # request id -> future
        self._bursts = {}  # request id -> future: the adv_done of a counted burst
        self.addr = None  # bytes6
        self.addr_type = 0
        self.adverts = asyncio.Queue()  # Advert, while scanning
        self.pins = asyncio.Queue()  # PinChange, after watch_pins()
        self.pin_inputs = asyncio.Queue()  # PinChange(addr=self.addr, ...): someone drove one of our input pins
        self.conns = {}  # handle -> Connection
        self.incoming = asyncio.Queue()  # Connection: centrals that connected to us (peripheral role)
        self.scan_done = asyncio.Event()
        self.errors = []  # unsolicited hub errors (reason strings)
        self._task = None

    # -- plumbing -------------------------------------------------------------------------------------------
    async def send(self, msg):
        self._writer.write((json.dumps(msg, separators=(",", ":")) + "\n").encode())
        await self._writer.drain()

    async def request(self, msg, timeout=5):
        """Send msg with a fresh id; return the hub's reply carrying that id (AirError if it is an error)."""
        rid = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        try:
            await self.send(dict(msg, id=rid))
            reply = await asyncio.wait_for(fut, timeout)
        finally:
            self._waiting.pop(rid, None)
        if reply["op"] == "error":
            raise AirError(reply.get("reason", "error"))
        return reply

    async def _read(self):
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                self._dispatch(json.loads(line))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            for c in list(self.conns.values()):
                if not c.closed.done():
                    c.closed.set_result(0x08)
            for f in self._waiting.values():
                if not f.done():
                    f.set_exception(ConnectionError("the air closed"))

    def _dispatch(self, m):
        op = m.get("op")
        rid = m.get("id")
        if op == "rx":
            self.adverts.put_nowait(Advert(bytes.fromhex(m["addr"]), m["addr_type"], m["adv_type"], m["rssi"],
                                           bytes.fromhex(m["data"]), m["ch"], m["t"]))
            return
        if op == "connected":
            c = Connection(self, m["conn"], bytes.fromhex(m["addr"]), m["role"])
            self.conns[c.handle] = c
            if m["role"] == "peripheral":
                self.incoming.put_nowait(c)
            m = dict(m, connection=c)
        elif op == "notify" and m["conn"] in self.conns:
            self.conns[m["conn"]].notifications.put_nowait((m["handle"], bytes.fromhex(m["data"])))
        elif op == "write" and m["conn"] in self.conns:
            self.conns[m["conn"]].writes.put_nowait((m["handle"], bytes.fromhex(m["data"])))
        elif op == "mtu" and m["conn"] in self.conns:
            self.conns[m["conn"]].mtu = m["mtu"]
        elif op == "disconnected":
            c = self.conns.pop(m["conn"], None)
            if c is not None and not c.closed.done():
                c.closed.set_result(m.get("reason", 0))
        elif op == "pin":
            self.pins.put_nowait(PinChange(bytes.fromhex(m["addr"]), m["pin"], m["value"], m["t"]))
        elif op == "pin_in":
            self.pin_inputs.put_nowait(PinChange(self.addr, m["pin"], m["value"], None))
        elif op == "scan_done":
            self.scan_done.set()
        elif op == "adv_done":
            fut = self._bursts.get(rid)
            if fut is not None and not fut.done():
                fut.set_result(m)
            return
        elif op == "error" and rid is None:
            self.errors.append(m.get("reason"))
        fut = self._waiting.get(rid) if rid is not None else None
        if fut is not None and not fut.done():
            fut.set_result(m)

    # -- advertising and scanning ---------------------------------------------------------------------------
    async def advertise(self, interval_ms, data, resp=b"", adv_type=ADV_IND):
        await self.request({"op": "adv", "interval_us": int(interval_ms * 1000), "data": bytes(data).hex(),
                            "resp": bytes(resp).hex(), "adv_type": adv_type})

    async def burst(self, interval_ms, data, count, adv_type=ADV_NONCONN_IND, timeout=None):
        """Send `count` advertising events, then stop; returns how many went out (fewer if replaced/stopped)."""
        rid = next(self._ids)
        loop = asyncio.get_running_loop()
        done, ok = loop.create_future(), loop.create_future()
        self._bursts[rid], self._waiting[rid] = done, ok
        try:
            await self.send({"op": "adv", "interval_us": int(interval_ms * 1000), "data": bytes(data).hex(),
                             "adv_type": adv_type, "count": count, "id": rid})
            reply = await asyncio.wait_for(ok, 5)
            if reply["op"] == "error":
                raise AirError(reply.get("reason", "error"))
            if timeout is None:
                timeout = 5 + count * (interval_ms + 10) / 1000
            return (await asyncio.wait_for(done, timeout))["sent"]
        finally:
            self._waiting.pop(rid, None)
            self._bursts.pop(rid, None)

    async def stop_advertising(self):
        await self.request({"op": "adv", "interval_us": None})

    async def scan(self, duration_ms=0, interval_ms=30, window_ms=30, active=False):
        """Scan (0 = until stopped). Results queue in self.adverts."""
        self.scan_done.clear()
        await self.request({"op": "scan", "duration_ms": duration_ms, "interval_us": int(interval_ms * 1000),
                            "window_us": int(window_ms * 1000), "active": active})

    async def stop_scan(self):
        await self.request({"op": "scan", "duration_ms": None})

    def drop_adverts(self):
        """Forget adverts received so far (e.g. before waiting for a change)."""
        while not self.adverts.empty():
            self.adverts.get_nowait()

    async def next_advert(self, match=None, timeout=None):
        """The next received advert for which match(advert) is true (others are dropped)."""

        async def wait():
            while True:
                a = await self.adverts.get()
                if match is None or match(a):
                    return a

        return await asyncio.wait_for(wait(), timeout)

    # -- connections ----------------------------------------------------------------------------------------
    async def connect(self, addr, timeout_ms=2000, interval_ms=None):
        """Connect as central at the target's next connectable advertising event; AirError on timeout."""
        msg = {"op": "connect", "addr": _hex(addr), "timeout_ms": timeout_ms}
        if interval_ms is not None:
            msg["interval_ms"] = interval_ms
        reply = await self.request(msg, timeout_ms / 1000 + 5)
        if reply["op"] != "connected":
            raise AirError("connection to %s failed" % _hex(addr))
        return reply["connection"]

    async def set_mtu(self, mtu):
        """This radio's preferred ATT_MTU, used when the peer starts an MTU exchange (default 256)."""
        await self.request({"op": "config", "mtu": mtu})

    # -- pins, air settings, stats --------------------------------------------------------------------------
    async def set_pin(self, addr, pin, value):
        await self.request({"op": "set_pin", "addr": _hex(addr), "pin": pin, "value": value})

    async def press(self, addr, pin, hold_ms=100, active_low=True):
        """Press and release a button wired to `pin` on radio `addr` (pulled up, closes to ground)."""
        await self.set_pin(addr, pin, 0 if active_low else 1)
        await asyncio.sleep(hold_ms / 1000)
        await self.set_pin(addr, pin, 1 if active_low else 0)

    async def report_pin(self, pin, value):
        """Acting as a device: one of our output pins changed (watchers see it)."""
        await self.send({"op": "pin", "pin": pin, "value": value})

    async def publish_gatt(self, services):
        """Acting as a peripheral: the GATT database centrals get from discover() (format: docs/air.md)."""
        await self.request({"op": "gatt_db", "services": services})

    async def watch_pins(self, on=True):
        await self.request({"op": "watch", "on": on})

    async def set_air(self, **settings):
        """loss=0..1, conn_interval_ms=..."""
        await self.request(dict(settings, op="set_air"))

    async def stats(self):
        return await self.request({"op": "stats"})

    async def radios(self):
        return (await self.request({"op": "radios"}))["radios"]

    async def close(self):
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except ConnectionError:
            pass
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


def _hex(addr):
    return addr.hex() if isinstance(addr, (bytes, bytearray)) else str(addr).replace(":", "").lower()


async def join(hub, addr=None, name="", addr_type=0):
    """Join the air at hub ("HOST:PORT") as one radio; addr (bytes6 or hex) or None for a random static one."""
    reader, writer = await asyncio.open_connection(*hub_address(hub), limit=1 << 20)
    radio = Radio(reader, writer)
    radio._task = asyncio.ensure_future(radio._read())
    hello = {"op": "hello", "name": name, "addr_type": addr_type}
    if addr is not None:
        hello["addr"] = _hex(addr)
    try:
        reply = await radio.request(hello)
    except BaseException:
        await radio.close()
        raise
    radio.addr, radio.addr_type = bytes.fromhex(reply["addr"]), reply["addr_type"]
    return radio


if __name__ == "__main__":  # a tiny sniffer: python tools/air_client.py HOST:PORT

    async def _sniff(hub):
        r = await join(hub, name="sniffer")
        await r.scan()
        while True:
            a = await r.adverts.get()
            print("%s type=%d rssi=%d ch=%d %s" % (a.addr.hex(), a.adv_type, a.rssi, a.ch, a.data.hex()))

    asyncio.run(_sniff(sys.argv[1]))
