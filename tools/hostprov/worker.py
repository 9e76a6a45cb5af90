"""The provisioner on the virtual air: scanning and resolving the locks, one attempt over PB-ADV or PB-GATT per
radio, and what an installer does at the lock (read its Output OOB, give it Input OOB). cli.py runs these.

Air protocol and client: docs/air.md (tools/air_client.py); the lock's side: docs/firmware.md.
"""

import asyncio
import csv
import pathlib
import re
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import air_client  # noqa: E402

from . import protocol as proto, session  # noqa: E402


AD_PB_ADV, AD_MESH_BEACON, AD_SERVICE_DATA16 = 0x29, 0x2B, 0x16
MESH_PROV_SERVICE = 0x1827
DATA_IN, DATA_OUT = "2adb", "2adc"
FRAME_HOLD_S = 0.06  # each PB-ADV PDU stays on air ~60 ms: 2-3 advertising events at 20 ms + advDelay
ADV_INTERVAL_MS = 20
GATT_MTU = 517  # ask for the largest; the lock's preference decides (NimBLE: 256)
ATTEMPT_TIMEOUT_S = 40  # an attempt the tool runs alone (it reads the lock's output and presses its button)
OPERATOR_S = proto.USER_TIMEOUT_MS / 1000  # more when a person types the Input OOB value: §5.4.4's 120 s for users
REBOOT_GRACE_S = 1.5  # an Unprovisioned beacon this long after our link opened: the lock lost the link
LINK_OPEN_MS = 10_000  # give up a Link Open sooner than §5.3.2's 60 s: the lock may have a new UUID by now
PIN_GROUP_GAP_S = 1.0  # an Output OOB blink/beep group ends after 1 s without a pulse
PRESS_HOLD_S, PRESS_GAP_S = 0.1, 0.2
CONSOLE_OOB = re.compile(r"OOB output (number|string): (\S+)")
METHODS = {proto.AUTH_NO_OOB: "none", proto.AUTH_STATIC: "static", proto.AUTH_OUTPUT: "output",
           proto.AUTH_INPUT: "input"}
OUTPUT_NAMES = {0: "blink", 1: "beep", 2: "vibrate", 3: "numeric", 4: "alnum"}
INPUT_NAMES = {0: "push", 1: "twist", 2: "numeric", 3: "alnum"}


# --- lock table and adverts ----------------------------------------------------------------------------------
def load_locks(path):
    """lock_id -> {"secret", "uuid", "static_oob", "oob_public", "room", "floor"} (absent: None)."""
    locks = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            lock = (row.get("lock_id") or "").strip()
            if not lock or lock.startswith("#"):
                continue

            def hexcell(name, row=row):
                v = (row.get(name) or "").strip()
                return bytes.fromhex(v) if v else None

            def intcell(name, row=row):
                v = (row.get(name) or "").strip()
                return int(v, 0) if v else None

            locks[lock] = {"secret": hexcell("uuid_secret"), "uuid": hexcell("uuid"),
                           "static_oob": hexcell("static_oob"), "oob_public": hexcell("oob_public"),
                           "room": intcell("room"), "floor": intcell("floor")}
    return locks


def ad_structures(data):
    i = 0
    while i < len(data) and data[i]:
        n = data[i]
        if i + 1 + n > len(data):
            return
        yield data[i + 1], bytes(data[i + 2:i + 1 + n])
        i += 1 + n


def classify(data):
    """("adv", uuid) for an Unprovisioned Device beacon, ("gatt", uuid) for Mesh Provisioning Service data,
    ("pb", pdu) for a PB-ADV PDU, or None (§3.10.2, §7.1.2.2.1, §5.2.1)."""
    for typ, body in ad_structures(data):
        if typ == AD_PB_ADV and len(body) >= 6:
            return ("pb", body)
        if typ == AD_MESH_BEACON and len(body) in (19, 23) and body[0] == 0x00:
            return ("adv", body[1:17])
        if typ == AD_SERVICE_DATA16 and len(body) == 20 and int.from_bytes(body[:2], "little") == MESH_PROV_SERVICE:
            return ("gatt", body[2:18])
    return None


class Seen:
    """Which lock each heard UUID belongs to, with the radio address and bearers it offered, and when."""

    def __init__(self, locks, resolver):
        self.locks, self.resolver = locks, resolver
        self.fixed = {v["uuid"]: k for k, v in locks.items() if v["uuid"]}
        self.by_lock = {}  # lock -> {"uuid", "addr", "adv": t, "gatt": t}
        self.changed = asyncio.Event()
        self._cache = {}

    def heard(self, kind, uuid, addr):
        lock = self.fixed.get(uuid)
        if lock is None:
            if uuid not in self._cache:
                hit = self.resolver.resolve(uuid, int(time.time())) if self.resolver else None
                self._cache[uuid] = hit[0] if hit else None
            lock = self._cache[uuid]
        if lock is None:
            return
        e = self.by_lock.setdefault(lock, {"uuid": uuid, "addr": addr, "adv": 0.0, "gatt": 0.0})
        if e["uuid"] != uuid or e["addr"] != addr:
            e.update(uuid=uuid, addr=addr, adv=0.0, gatt=0.0)  # a new period or a reboot: a new UUID
        e[kind] = time.monotonic()
        self.changed.set()


# --- what a person would do at the lock: read its OOB output, give it input -----------------------------------
class AirOob:
    """Output OOB read from the lock's pins through the air (blink: LED, beep: buzzer, vibrate: motor) or, for
    numbers and strings, from its console log; Input OOB pushes/twists given by pressing its button."""

    def __init__(self, radio, pins, console=None):
        self.radio, self.pins, self.console = radio, pins, console
        self.changes = []  # PinChange, as they come

    async def collect(self):
        while True:
            self.changes.append(await self.radio.pins.get())

    def mark(self, lock):
        """Where the lock's outputs stand now (call at the start of an attempt): only what follows counts."""
        path = pathlib.Path(self.console or ".") / f"{lock}.log"
        return len(self.changes), path.stat().st_size if self.console and path.exists() else 0

    async def read_output(self, lock, addr, action, mark):
        """The value lock `addr` shows for Output OOB `action`, from what it showed after `mark`."""
        if action in (proto.OUTPUT_NUMERIC, proto.OUTPUT_ALPHANUMERIC):
            return await self._read_console(lock, action == proto.OUTPUT_NUMERIC, mark[1])
        pin = self.pins[OUTPUT_NAMES[action]]
        while True:
            pulses = [c for c in self.changes[mark[0]:] if c.addr == addr and c.pin == pin and c.value]
            gaps = [b.t - a.t for a, b in zip(pulses, pulses[1:])]
            group = 1 + next((i for i, g in enumerate(gaps) if g > PIN_GROUP_GAP_S * 1000), len(gaps))
            if pulses and (group <= len(gaps) or await self._quiet(addr, pin)):
                return group
            await asyncio.sleep(0.1)

    async def _quiet(self, addr, pin):
        n = len(self.changes)
        await asyncio.sleep(PIN_GROUP_GAP_S)
        return not any(c.addr == addr and c.pin == pin for c in self.changes[n:])

    async def _read_console(self, lock, numeric, start):
        """The firmware prints `OOB output number: 123456` / `OOB output string: AB12` (docs/firmware.md)."""
        if self.console is None:
            return None
        path = pathlib.Path(self.console) / f"{lock}.log"
        while True:
            await asyncio.sleep(0.1)
            if not path.exists():
                continue
            with open(path, "rb") as f:
                f.seek(start)
                for m in CONSOLE_OOB.finditer(f.read().decode(errors="replace")):
                    if numeric and m[1] == "number" and m[2].isdigit():
                        return int(m[2])
                    if not numeric and m[1] == "string" and m[2].isalnum():
                        return m[2]

    async def give_input(self, addr, action, value):
        if action not in (proto.INPUT_PUSH, proto.INPUT_TWIST):
            print(f"enter {value} on lock {addr.hex()} now", file=sys.stderr)
            return
        await asyncio.sleep(0.3)  # let the Start reach the lock first
        for _ in range(int(value)):
            await self.radio.press(addr, self.pins["button"], hold_ms=PRESS_HOLD_S * 1000)
            await asyncio.sleep(PRESS_GAP_S)


# --- one radio provisioning one lock at a time ----------------------------------------------------------------
def method_name(start):
    """'static/HMAC', 'output/blink/CMAC', ... for a Start (algorithm, public key, method, action, size)."""
    if not start:
        return "-"
    alg, key, method, action, _ = start
    name = METHODS[method] + {proto.AUTH_OUTPUT: "/" + OUTPUT_NAMES.get(action, "?"),
                              proto.AUTH_INPUT: "/" + INPUT_NAMES.get(action, "?")}.get(method, "")
    return name + ("/HMAC" if alg == proto.ALG_HMAC else "/CMAC") + ("/OOB-key" if key else "")


def _choose(args, lock_row):
    def choose(caps):
        start = proto.choose_start(dict(caps, algorithms=caps["algorithms"] & {"auto": 3, "cmac": 1, "hmac": 2}[
            args.algorithm]), lock_row["static_oob"], lock_row["oob_public"])
        if args.oob == "auto" or METHODS[start[2]] == args.oob:
            return start
        alg, key = start[:2]
        if args.oob == "none":
            return alg, key, proto.AUTH_NO_OOB, 0, 0
        if args.oob == "static":
            return alg, key, proto.AUTH_STATIC, 0, 0
        kind = args.oob
        actions, size = caps[f"{kind}_actions"], caps[f"{kind}_size"]
        for action in range(5):
            if actions >> action & 1:
                return alg, key, proto.AUTH_OUTPUT if kind == "output" else proto.AUTH_INPUT, action, size
        return start  # the lock cannot do it: the strongest it can
    return choose


class Worker:
    def __init__(self, radio, ctx):
        self.radio, self.ctx = radio, ctx
        self.frames = asyncio.Queue()  # PB-ADV PDUs heard
        self.oob = AirOob(radio, ctx.pins, ctx.args.console)

    async def pump(self):
        while True:
            a = await self.radio.adverts.get()
            kind = classify(a.data)
            if kind is None:
                continue
            if kind[0] == "pb":
                self.frames.put_nowait(kind[1])
            else:
                self.ctx.seen.heard(kind[0], kind[1], a.addr)

    async def provision(self, lock):
        """Attempts until one succeeds or the retries are used up. -> result dict."""
        ctx, t0 = self.ctx, time.monotonic()
        since = 0.0  # the first attempt takes any sighting; a retry waits for one heard after the failure
        row = ctx.locks[lock]
        res = {"lock": lock, "room": row["room"], "bearer": "-", "method": "-", "outcome": "failed", "attempts": 0}
        for n in range(1 + ctx.args.retries):
            res["attempts"] = n + 1
            seen = await ctx.wait_seen(lock, after=since)
            if seen is None:
                res["outcome"] = "not found"
                break
            began = time.monotonic()
            try:
                async with asyncio.timeout(ATTEMPT_TIMEOUT_S) as cap:
                    outcome, reason = await self._attempt(lock, row, seen, res, cap)
            except TimeoutError:
                outcome, reason = "failed", f"unfinished after {time.monotonic() - began:.0f} s"
            except (air_client.AirError, air_client.Disconnected, OSError) as e:
                outcome, reason = "failed", type(e).__name__ + (f": {e}" if str(e) else "")
            finally:
                ctx.release(lock)
            res["outcome"], res["reason"] = outcome, reason
            if outcome == "complete":
                break
            since = began  # it does not beacon during a link: anything heard since is fresh (a rebooted lock: new UUID)
        res["time"] = time.monotonic() - t0
        return res

    def _bearer(self, lock, seen):
        want = "gatt" if lock in self.ctx.gatt_locks else self.ctx.args.bearer
        if want == "auto":  # PB-ADV when the lock beacons, else PB-GATT (a phone's only bearer)
            return "adv" if seen["adv"] else "gatt"
        return want

    async def _attempt(self, lock, row, seen, res, cap):
        ctx = self.ctx
        net = ctx.network
        bearer = self._bearer(lock, seen)
        hotel = None
        if net["mh_key"] and row["room"] is not None and row["floor"] is not None:
            hotel = proto.hotel_keys(net["mh_key"], row["floor"], row["room"])
        need = []
        inputs = []  # Input OOB tasks (button presses) of this attempt only: a retry must not inherit them
        mark = self.oob.mark(lock)
        uuid, addr, opened = seen["uuid"], seen["addr"], None  # (`seen` is live: it follows the lock's beacons)

        def display(action, value):  # Input OOB: we push/twist the lock's control, or a person types the value
            action = action.bit_length() - 1
            if action not in (proto.INPUT_PUSH, proto.INPUT_TWIST):
                cap.reschedule(cap.when() + OPERATOR_S)
            inputs.append(asyncio.ensure_future(self.oob.give_input(addr, action, value)))

        prov = proto.Provisioner(net["net_key"], net["net_key_index"], net["iv_index"], 0, flags=net["flags"],
                                 choose=_choose(ctx.args, row), static_oob=row["static_oob"],
                                 device_public_key=row["oob_public"], hotel=hotel,
                                 on_request=lambda action, size: need.append(action), on_display=display)
        attempt = session.Attempt(bearer, uuid, prov, allocate=lambda n: ctx.reserve(lock, n),
                                  establish_ms=LINK_OPEN_MS)
        res["bearer"] = "PB-ADV" if bearer == "adv" else "PB-GATT"
        reading = None  # the task reading the Output OOB value, once it is needed
        if bearer == "adv":
            await self._drain_frames()
            step = self._adv_step
        else:
            step = await self._gatt_open(addr, attempt)
        attempt.start(ctx.now())
        try:
            while attempt.outcome is None:
                if bearer == "adv" and prov.state != "idle":
                    # A lock does not beacon while a link is open (§3.10.2 scheduler rule): a beacon now, or a new
                    # UUID, means it rebooted or dropped the link. Fail fast instead of retransmitting for 30 s.
                    opened = opened or time.monotonic()
                    if seen["uuid"] != uuid or seen["adv"] > opened + REBOOT_GRACE_S:
                        return "failed", "the lock beacons again (rebooted?)"
                if need and reading is None and prov.state == "auth":
                    action = need.pop().bit_length() - 1
                    reading = asyncio.ensure_future(self.oob.read_output(lock, addr, action, mark))
                if reading is not None and reading.done():
                    value = reading.result()
                    if value is None:
                        return "failed", "cannot read the lock's Output OOB value"
                    attempt.oob_value(ctx.now(), value)
                    reading = asyncio.get_running_loop().create_future()  # read once: never done again
                await step(attempt, reading)
            await step(attempt, None, final=True)
        finally:
            res["method"] = method_name(prov.start_params)
            if reading is not None:
                reading.cancel()
            for t in inputs:  # presses still going after a failed attempt would corrupt the retry's count
                t.cancel()
            if bearer == "gatt":
                await self._gatt_close()
        if attempt.outcome == "complete":
            r = prov.result
            ctx.db.add_node(lock, uuid=uuid, address=r["address"], elements=r["elements"],
                            dev_key=r["dev_key"], room=row["room"], floor=row["floor"], hotel_keys=hotel,
                            bearer=res["bearer"], method=res["method"],
                            secure=prov.start_params[2] != proto.AUTH_NO_OOB or bool(prov.start_params[1]))
            res["address"] = r["address"]
        return attempt.outcome, attempt.reason

    def _timeout(self, attempt, reading):
        """Seconds to wait for the lock: until the attempt's next deadline, in short steps while an Output OOB
        value is being read (so it is used as soon as it is known)."""
        dl = attempt.deadline()
        t = 1.0 if dl is None else max(0.0, (dl - self.ctx.now()) / 1000)
        return min(t, 0.05) if reading is not None else t

    async def _drain_frames(self):
        while not self.frames.empty():
            self.frames.get_nowait()

    async def _adv_step(self, attempt, reading, final=False):
        out = attempt.take_output()
        for pdu in out:  # one advertising set: the PDUs go on air one after the other
            await self.radio.advertise(ADV_INTERVAL_MS, bytes([len(pdu) + 1, AD_PB_ADV]) + pdu,
                                       adv_type=air_client.ADV_NONCONN_IND)
            await asyncio.sleep(FRAME_HOLD_S)
        if out:
            await self.radio.stop_advertising()
        if final:
            return
        got = False
        while not self.frames.empty():
            attempt.receive(self.ctx.now(), self.frames.get_nowait())
            got = True
        if not got and not out:
            try:
                pdu = await asyncio.wait_for(self.frames.get(), self._timeout(attempt, reading))
                attempt.receive(self.ctx.now(), pdu)
            except asyncio.TimeoutError:
                pass
        attempt.poll(self.ctx.now())

    async def _gatt_open(self, addr, attempt):
        conn = self.conn = await self.radio.connect(addr, timeout_ms=3000)
        attempt.set_mtu(await conn.exchange_mtu(GATT_MTU))
        chars = {c["uuid"].lower(): c for s in await conn.discover() if s["uuid"].lower() == "1827"
                 for c in s["characteristics"]}
        if DATA_IN not in chars or DATA_OUT not in chars:
            raise air_client.AirError("no Mesh Provisioning Service on the lock")
        din, dout = chars[DATA_IN]["handle"], chars[DATA_OUT]
        if dout.get("cccd"):
            await conn.write(dout["cccd"], b"\x01\x00")  # subscribe to Data Out notifications

        async def step(attempt, reading, final=False):
            for v in attempt.take_output():
                await conn.write(din, v)
            if final:
                return
            try:  # (cancelling notification() would leave its queue getter behind to eat the next one)
                handle, value = await conn.notification(timeout=self._timeout(attempt, reading))
                if handle == dout["handle"]:
                    attempt.receive(self.ctx.now(), value)
            except asyncio.TimeoutError:
                pass
            attempt.poll(self.ctx.now())

        return step

    async def _gatt_close(self):
        try:
            await self.conn.disconnect()
        except (air_client.AirError, ConnectionError, asyncio.TimeoutError):
            pass


