"""The host provisioner's command line (tools/hostprov/cli.py) over the virtual air (tools/air.py, in-process).

Until firmware/main.py runs as a lock, each lock here is a small radio client around the lock's own
provisioning stack (lib: PbAdv/PbGatt -> Link -> Provisionee, in MicroPython through the `mpy` fixture): it
beacons a rolling UUID, answers PB-ADV, serves the Mesh Provisioning Service, blinks its LED pin for blink
Output OOB and counts button presses for push Input OOB, as the firmware is specified to.
"""

import asyncio
import json
import pathlib
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import air  # noqa: E402
import air_client  # noqa: E402
import uuid_resolver  # noqa: E402
from hostprov import cli, worker  # noqa: E402
from hostprov import db as provdb  # noqa: E402

PASS = "test passphrase"
LED, BUTTON = 2, 0
UUID_SVC = "1827"


class FakeLock:
    """A lock on the air: the lib provisioning stack in MicroPython behind an air_client radio."""

    started = {}  # lock_id -> the FakeLock (for a test's operator at the lock)

    def __init__(self, mpy, lock_id, secret, config, gatt=False, addr=None, reboot_at=None):
        self.mpy, self.name, self.config, self.gatt = mpy, lock_id, config, gatt
        self.typed = None  # Input OOB digits an operator typed at the lock, entered by run()
        FakeLock.started[lock_id] = self
        self.secret, self.period = secret, int(time.time()) // uuid_resolver.PERIOD_S
        self.uuid = uuid_resolver.uuid_for(secret, self.period)
        self.reboot_at, self.heard = reboot_at, 0  # reboot when the reboot_at-th PB-ADV PDU arrives
        self.addr = addr
        self.presses = 0
        self.t0 = time.monotonic()
        self.tasks = []

    def now(self):
        return int((time.monotonic() - self.t0) * 1000)

    async def start(self, hub):
        self.mpy.call("hostprov_helpers.new", self.name, self.uuid, self.config)
        self.radio = await air_client.join(hub, addr=self.addr, name=self.name)
        orig = self.radio._dispatch

        def dispatch(m):  # air_client leaves pin_in to the locks' stand-in; count button presses here
            if m.get("op") == "pin_in" and m["pin"] == BUTTON and m["value"] == 0:
                self.presses += 1
                self.pressed_at = time.monotonic()
            orig(m)

        self.radio._dispatch = dispatch
        if self.gatt:
            await self.radio.request({"op": "gatt_db", "services": [{
                "uuid": UUID_SVC, "start": 10, "end": 15, "characteristics": [
                    {"uuid": "2adb", "handle": 12, "props": 4, "cccd": None, "descriptors": []},
                    {"uuid": "2adc", "handle": 14, "props": 16, "cccd": 15, "descriptors": []}]}]})
        await self.radio.scan(0, interval_ms=30, window_ms=30)
        self.tasks = [asyncio.ensure_future(self.run())]

    def _beacon(self):
        if self.gatt:  # Flags, 16-bit UUID list, Service Data (UUID, Device UUID, OOB info)
            return bytes.fromhex("0201060303271815162718") + self.uuid + b"\x00\x00", air_client.ADV_IND
        return bytes([20, 0x2B, 0x00]) + self.uuid + b"\x00\x00", air_client.ADV_NONCONN_IND

    async def _send_frames(self, frames):
        for f in frames:
            await self.radio.advertise(20, bytes([len(f) + 1, 0x29]) + f, adv_type=air_client.ADV_NONCONN_IND)
            await asyncio.sleep(0.06)
        await self.radio.stop_advertising()
        self.beaconing = False

    async def _show(self, shown, done):
        for value in shown[done:]:
            for _ in range(value):  # blink: one LED pulse per count
                await self.radio.send({"op": "pin", "pin": LED, "value": 1})
                await asyncio.sleep(0.1)
                await self.radio.send({"op": "pin", "pin": LED, "value": 0})
                await asyncio.sleep(0.1)

    async def run(self):
        shown, conn = 0, None
        out = {"frames": [], "notify": [], "shown": [], "asked": [], "deadline": None, "busy": False}
        self.beaconing = False
        while True:
            data, kind = self._beacon()
            if conn is None and not self.beaconing and not out["busy"]:  # no beacon while a link is open;
                await self.radio.advertise(100, data, adv_type=kind)  # (re)started only when it changes, so
                self.beaconing = True  # advDelay spreads the locks' events apart
            try:
                if conn is None and self.gatt and not self.radio.incoming.empty():
                    conn = self.radio.incoming.get_nowait()
                    out = self.mpy.call("hostprov_helpers.connect", self.name, self.now(), conn.mtu)
                if conn is not None:
                    try:
                        handle, value = await conn.written(timeout=0.05)
                        if handle != 12:  # the CCCD: NimBLE keeps subscriptions itself
                            continue
                        out = self.mpy.call("hostprov_helpers.write", self.name, self.now(), [value])
                    except asyncio.TimeoutError:
                        out = self.mpy.call("hostprov_helpers.poll", self.name, self.now())
                    except air_client.Disconnected:
                        conn, self.beaconing = None, False
                        continue
                    for v in out["notify"]:
                        await conn.notify(14, v)
                else:
                    try:
                        a = await self.radio.next_advert(lambda a: a.data[1:2] == b"\x29", timeout=0.05)
                        self.heard += 1
                        if self.heard == self.reboot_at:  # power cycle: RAM lost, the period counter moves on
                            self.period += 1
                            self.uuid = uuid_resolver.uuid_for(self.secret, self.period)
                            self.mpy.call("hostprov_helpers.new", self.name, self.uuid, self.config)
                            self.beaconing = False
                            continue
                        out = self.mpy.call("hostprov_helpers.adv", self.name, self.now(), [a.data[2:]])
                    except asyncio.TimeoutError:
                        out = self.mpy.call("hostprov_helpers.poll", self.name, self.now())
                    if out["frames"]:
                        await self._send_frames(out["frames"])
                if len(out["shown"]) > shown:
                    asyncio.ensure_future(self._show(out["shown"], shown))
                    shown = len(out["shown"])
                if out["asked"] and self.presses and time.monotonic() - self.pressed_at > 0.8:
                    self.mpy.call("hostprov_helpers.input_value", self.name, self.now(), self.presses)
                    self.presses = 0
                if out["asked"] and self.typed is not None:
                    self.mpy.call("hostprov_helpers.input_value", self.name, self.now(), self.typed)
                    self.typed = None
                if self.mpy.call("hostprov_helpers.record", self.name) is not None and conn is None:
                    await self.radio.stop_advertising()  # provisioned: quiet
                    return
            except air_client.AirError:
                await asyncio.sleep(0.05)

    async def stop(self):
        for t in self.tasks:
            t.cancel()
        await self.radio.close()
        self.mpy.call("hostprov_helpers.drop", self.name)


def _table(tmp_path, rows):
    path = tmp_path / "locks.csv"
    path.write_text("lock_id,uuid_secret,static_oob,room,floor\n" + "".join(
        f"{r[0]},{r[1].hex()},{r[2].hex() if r[2] else ''},{r[3]},{r[4]}\n" for r in rows))
    return str(path)


async def _provision(mpy, tmp_path, locks, extra=(), db_kw=None):
    hub = air.Hub(seed=3)
    host, port = await hub.start()
    addr = f"{host}:{port}"
    fakes = []
    try:
        for i, (lock_id, secret, _static, _room, _floor, config, gatt, *reboot) in enumerate(locks):
            f = FakeLock(mpy, lock_id, secret, config, gatt=gatt, addr=f"c0ffee0001{i:02x}",
                         reboot_at=reboot[0] if reboot else None)
            await f.start(addr)
            fakes.append(f)
        dbp = str(tmp_path / "hotel.db")
        provdb.ProvDB.create(dbp, PASS, kdf_n=2**10, **(db_kw or {})).close()
        csvp = _table(tmp_path, [x[:5] for x in locks])
        args = cli.build_parser().parse_args(["provision", "--db", dbp, "--air", addr, "--locks", csvp,
                                              "--discover-s", "5", "--cdb", str(tmp_path / "mesh.json"),
                                              *extra])
        with provdb.ProvDB.open(dbp, PASS) as d:
            code = await cli.run_provision(args, d)
            nodes = d.nodes()
        records = {f.name: mpy.call("hostprov_helpers.record", f.name) for f in fakes}
        return code, nodes, records, [f.uuid for f in fakes]
    finally:
        for f in fakes:
            await f.stop()
        hub.close()


def test_provisions_locks_over_both_bearers_with_blink_oob_and_hotel_keys(mpy, tmp_path, capsys):
    s1, s2, s3 = bytes([1]) * 16, bytes([2]) * 16, bytes([3]) * 16
    locks = [("101", s1, b"S" * 32, 101, 1, {"static_oob": b"S" * 32, "hotel": {"floor": 1, "room": 101}}, False),
             ("102", s2, None, 102, 1, {"output_size": 1, "output_actions": 0x01, "elements": 2,
                                        "hotel": {"floor": 1, "room": 102}}, True),
             ("103", s3, None, 103, 1, {"input_size": 1, "input_actions": 0x01,
                                        "hotel": {"floor": 1, "room": 103}}, False)]
    code, nodes, records, _ = asyncio.run(_provision(mpy, tmp_path, locks, db_kw={"mh_key": b"\xa1\xb2\xc3\xd4"}))
    out = capsys.readouterr().out
    assert code == 0, out
    by = {n["lock_id"]: n for n in nodes}
    for lock in ("101", "102", "103"):
        assert records[lock]["dev_key"] == by[lock]["dev_key"] and records[lock]["address"] == by[lock]["address"]
        assert records[lock]["hotel"]["mh_key"] == b"\xa1\xb2\xc3\xd4"
    assert sorted(n["address"] for n in nodes) in ([2, 3, 5], [2, 4, 5], [2, 3, 4])  # lock 102 takes two
    assert by["102"]["elements"] == 2 and by["102"]["bearer"] == "PB-GATT"
    assert by["101"]["method"].startswith("static/HMAC") and by["102"]["method"].startswith("output/blink")
    assert by["103"]["method"].startswith("input/push")
    assert "lock" in out and "PB-ADV" in out and "PB-GATT" in out and out.count("ok 0x") == 3
    exported = json.loads((tmp_path / "mesh.json").read_text())  # written by --cdb
    assert len(exported["nodes"]) == 4 and exported["netKeys"][0]["minSecurity"] == "secure"


def test_a_lock_rebooted_mid_provisioning_is_provisioned_on_a_retry(mpy, tmp_path, capsys):
    locks = [("104", bytes([4]) * 16, None, 104, 1, {}, False, 8)]  # reboots at the 8th PDU (its Public Key)
    code, nodes, records, uuids = asyncio.run(_provision(mpy, tmp_path, locks))
    out = capsys.readouterr().out
    assert code == 0 and "2 attempts" in out, out
    (node,) = nodes
    assert node["uuid"] == uuids[0]  # the UUID it beacons after the reboot, resolved to the same lock
    assert records["104"]["dev_key"] == node["dev_key"]


def test_an_operator_typing_input_oob_is_not_cut_short_by_the_attempt_cap(mpy, tmp_path, capsys, monkeypatch):
    # §5.4.4: with Input OOB the provisioning timer is 120 s 'to allow sufficient time for users to interact'; the
    # tool's own cap on an attempt (40 s, 2 s here) must not end it while a person types the digits at the lock
    monkeypatch.setattr(worker, "ATTEMPT_TIMEOUT_S", 2)

    async def operator(oob, addr, action, value):  # instead of printing `enter N on lock ...`
        assert action == 2  # Input Numeric
        await asyncio.sleep(2.5)  # prompted at Capabilities: types ~3 s into the attempt
        FakeLock.started["301"].typed = value

    monkeypatch.setattr(worker.AirOob, "give_input", operator)
    locks = [("301", bytes([7]) * 16, None, 301, 3, {"input_size": 2, "input_actions": 0x04}, False)]
    code, nodes, records, _ = asyncio.run(_provision(mpy, tmp_path, locks, extra=("--retries", "0")))
    out = capsys.readouterr().out
    assert code == 0, out
    (node,) = nodes
    assert node["method"].startswith("input/numeric") and records["301"]["dev_key"] == node["dev_key"]


def test_a_lock_that_never_answers_is_reported(mpy, tmp_path, capsys):
    locks = [("201", bytes([9]) * 16, None, 201, 2, {}, False)]

    async def go():  # the lock is in the table but not on the air
        hub = air.Hub(seed=1)
        host, port = await hub.start()
        try:
            dbp = str(tmp_path / "h.db")
            provdb.ProvDB.create(dbp, PASS, kdf_n=2**10).close()
            args = cli.build_parser().parse_args(["provision", "--db", dbp, "--air", f"{host}:{port}", "--locks",
                                                  _table(tmp_path, [x[:5] for x in locks]), "--discover-s", "0.5"])
            with provdb.ProvDB.open(dbp, PASS) as d:
                return await cli.run_provision(args, d)
        finally:
            hub.close()

    assert asyncio.run(go()) == 1
    out = capsys.readouterr().out
    assert "201" in out and "not found" in out


def test_table_and_progress_rendering():
    rows = [{"lock": "101", "room": 101, "bearer": "PB-ADV", "method": "static/HMAC", "time": 1.25,
             "outcome": "complete", "address": 2, "attempts": 1},
            {"lock": "102", "room": None, "bearer": "PB-GATT", "method": "-", "time": 40.0, "outcome": "failed",
             "reason": "link closed (reason 2)", "attempts": 3}]
    t = cli.table(rows).splitlines()
    assert t[0].split() == ["lock", "room", "bearer", "method", "time", "outcome"]
    assert "ok 0x0002" in t[2] and "1.2 s" in t[2]
    assert "failed (link closed (reason 2)), 3 attempts" in t[3]
    assert cli.progress(1, 4, 1, width=8) == "[##......] 1/4 done, 1 provisioned"


@pytest.mark.parametrize("data,expect", [
    ("1416" + "2718" + "00" * 16 + "0000", None),  # wrong length for service data
    ("15162718" + "11" * 16 + "2040", ("gatt", bytes([0x11]) * 16)),
    ("142b00" + "22" * 16 + "a040", ("adv", bytes([0x22]) * 16)),
    ("182b00" + "22" * 16 + "4020d36b25b8", ("adv", bytes([0x22]) * 16)),
    ("142b01" + "22" * 16 + "a040", None),  # a Secure Network beacon is not for us
    ("0729" + "23af58500007", ("pb", bytes.fromhex("23af58500007"))),
    ("ff29", None),
])
def test_adverts_are_classified(data, expect):
    assert worker.classify(bytes.fromhex(data)) == expect


def test_init_list_export_and_a_wrong_passphrase(tmp_path, monkeypatch, capsys):
    dbp, out = str(tmp_path / "cli.db"), str(tmp_path / "mesh.json")
    monkeypatch.setenv("HOSTPROV_PASSPHRASE", PASS)
    assert cli.main(["init", "--db", dbp, "--hotel", "--mesh-name", "Aurora", "--net-key", "00" * 16]) == 0
    with provdb.ProvDB.open(dbp, PASS) as d:
        assert d.network()["net_key"] == bytes(16) and len(d.network()["mh_key"]) == 4
        d.add_node("101", uuid=bytes(16), address=2, elements=1, dev_key=bytes(16), room=101, floor=1,
                   bearer="PB-ADV", method="none/CMAC")
    assert cli.main(["list", "--db", dbp]) == 0
    listing = capsys.readouterr().out
    assert "101" in listing and "0x0002" in listing and "00" * 16 not in listing
    assert cli.main(["export", "--db", dbp, "--out", out]) == 0
    assert json.loads(pathlib.Path(out).read_text())["meshName"] == "Aurora"
    monkeypatch.setenv("HOSTPROV_PASSPHRASE", "not it")
    assert cli.main(["list", "--db", dbp]) == 2
    assert "wrong passphrase" in capsys.readouterr().err


def test_numbers_and_strings_are_read_from_the_lock_console_after_the_mark(tmp_path):
    log = tmp_path / "301.log"
    log.write_text("OOB output number: 111111\n")  # an earlier attempt's value: before the mark
    oob = worker.AirOob(radio=None, pins={}, console=str(tmp_path))
    mark = oob.mark("301")
    with open(log, "a") as f:  # what the firmware prints at Start (its log line mentions OOB too)
        f.write("[I] prov: start: algorithm 1, OOB key 0, auth method 2\nOOB output number: 419782\n"
                "OOB output string: 7QX2\n")
    read = asyncio.run(oob.read_output("301", b"", 3, mark)), asyncio.run(oob.read_output("301", b"", 4, mark))
    assert read == (419782, "7QX2")
