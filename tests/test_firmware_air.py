"""firmware/main.py as real `micropython` processes on the virtual air (tools/air.py), started by tools/sim_lock.py
with factory images from tools/factory.py, provisioned by the host provisioner's CLI (tools/provision.py):
one lock over PB-ADV (static OOB), one over PB-GATT with Output OOB blinks read from its LED pin. Then a
provisioned lock restarted comes up provisioned and silent, and `node.reset()` typed on its console brings it
back to beaconing.
"""

import asyncio
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import air_client  # noqa: E402

PY = sys.executable
LOCKS = "lock_id,uuid_secret,static_oob,room,floor,output_size,output_actions\n" \
        "101,random,random,101,1,,\n" \
        "102,random,,102,1,1,1\n"
ADDR = {"101": "c0ffee000101", "102": "c0ffee000102"}
ENV = dict(os.environ, HOSTPROV_PASSPHRASE="test-passphrase")


def _run(*args, timeout=60):
    p = subprocess.run([PY, *args], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


class Lock:
    def __init__(self, tmp, hub, lock):
        self.tmp, self.hub, self.lock = tmp, hub, lock
        self.log = tmp / f"{lock}.log"
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [PY, "tools/sim_lock.py", "--air", self.hub, "--addr", ADDR[self.lock], "--name", "lock-" + self.lock,
             "--nvs", str(self.tmp / f"{self.lock}.nvs.json"), "--factory", str(self.tmp / f"{self.lock}.bin"),
             "--log", str(self.log)], cwd=ROOT, stdin=subprocess.PIPE)

    def type(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)

    def wait_log(self, text, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log.exists() and text in self.log.read_text():
                return
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not in the log of lock {self.lock}:\n{self.log.read_text()}")


def _heard(hub, addr, seconds, enough=None):
    """Advertising packets from `addr` heard in `seconds` (or until `enough(packets)`): [(adv_type, data)]."""

    async def go():
        radio = await air_client.join(hub, name="test-sniffer")
        await radio.scan(0, interval_ms=30, window_ms=30)
        got = []
        end = asyncio.get_running_loop().time() + seconds
        try:
            while True:
                left = end - asyncio.get_running_loop().time()
                if left <= 0:
                    return got
                try:
                    a = await asyncio.wait_for(radio.adverts.get(), left)
                except asyncio.TimeoutError:
                    return got
                if a.addr.hex() == addr:
                    got.append((a.adv_type, a.data))
                    if enough is not None and enough(got):
                        return got
        finally:
            await radio.close()

    return asyncio.run(go())


def test_locks_provisioned_over_the_air_restart_provisioned_and_reset(tmp_path):
    hub_proc = subprocess.Popen([PY, "tools/air.py", "--listen", "127.0.0.1:0", "--seed", "3"], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)
    locks = []
    try:
        hub = hub_proc.stdout.readline().split()[-1]
        (tmp_path / "locks.csv").write_text(LOCKS)
        _run("tools/factory.py", str(tmp_path / "locks.csv"), "--out", str(tmp_path),
             "--completed", str(tmp_path / "locks-full.csv"))
        _run("tools/provision.py", "init", "--db", str(tmp_path / "hotel.db"), "--hotel")
        locks = [Lock(tmp_path, hub, x) for x in ("101", "102")]
        for lk in locks:
            lk.start()
        for lk in locks:
            lk.wait_log("unprovisioned, UUID")
        beacons = _heard(hub, ADDR["101"], 12, lambda got: len({t for t, d in got}) == 2)
        assert any(t == air_client.ADV_NONCONN_IND and d[1] == 0x2B for t, d in beacons)  # beacon (sim: patched)
        assert any(t == air_client.ADV_IND and d[5:7] == b"\x27\x18" for t, d in beacons)  # PB-GATT advert
        out = _run("tools/provision.py", "provision", "--db", str(tmp_path / "hotel.db"), "--air", hub,
                   "--locks", str(tmp_path / "locks-full.csv"), "--bearer", "adv", "--gatt-locks", "102",
                   "--console", str(tmp_path), timeout=90)
        rows = {line.split()[0]: line for line in out.splitlines() if line[:3] in ("101", "102")}
        assert "PB-ADV" in rows["101"] and "static" in rows["101"] and "ok 0x" in rows["101"], out
        assert "PB-GATT" in rows["102"] and "output/blink" in rows["102"] and "ok 0x" in rows["102"], out
        for lk in locks:
            lk.wait_log("node: provisioned: address")
        # restart lock 101: it loads its keys and stays off the air
        a = locks[0]
        a.stop()
        a.log.write_text("")
        a.start()
        a.wait_log("node: provisioned: address")
        assert _heard(hub, ADDR["101"], 2.5) == []
        # node reset from the console: keys erased, beaconing again
        a.type("node.reset()")
        a.wait_log("keystore: all keys erased")
        assert any(d[1] == 0x2B for t, d in _heard(hub, ADDR["101"], 12, lambda got: got[-1][1][1] == 0x2B))
        text = a.log.read_text() + locks[1].log.read_text()
        assert "Traceback" not in text and "Unhandled exception" not in text
    finally:
        for lk in locks:
            lk.stop()
        hub_proc.terminate()
        hub_proc.wait(5)
