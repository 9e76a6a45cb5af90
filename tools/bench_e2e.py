"""End-to-end benchmark (issue 8): real `micropython firmware/main.py` locks on the virtual air, provisioned by
the host provisioner (tools/hostprov), on this machine.

1. Provisioning time over the air, per bearer, at 0 % and 10 % loss: one lock per bearer, static OOB (HMAC),
   hotel keys, one attempt at a time (provisioner in this process, two radios, --parallel 1). Measured from the
   attempt's start (PB-ADV: the first Link Open goes on air; PB-GATT: the connection request) until the
   provisioner holds Provisioning Complete and has closed the link (Link Close / disconnect). The lock's key pair
   is made while it beacons (firmware behaviour), so the only P-256 work inside is the two ECDHs.
   "including ECDH" is that wall time; "excluding ECDH" subtracts the ECDH cost measured in the same run: the
   lock's cooperative ECDH (mesh.p256 on the unix port, slices iterated) plus the provisioner's (cryptography).
   Between rounds each lock is reset from its console (node.reset()) and provisioned again (--again).
2. The firmware's heap on the unix port, from lib/, firmware/ and the host stand-ins precompiled by mpy-cross
   (bytecode in the heap, as with .mpy files on a board's filesystem): gc.mem_alloc() after gc.collect() typed
   on the console when beaconing and when provisioned; the stand-ins' own share; and the smallest -X heapsize
   with which a lock boots and beacons, and with which it is provisioned (PB-ADV and PB-GATT), by bisection.

Usage: python tools/bench_e2e.py [--quick] [rounds]     (default 5 rounds per bearer and loss)
--quick: smoke test; one PB-ADV lock, one round at 0 % loss, and for the heap the probes and one trial each at
the bisection's upper bound instead of the bisection.
"""

import asyncio
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from demo import PY, Corridor, precompile  # noqa: E402
from hostprov import cli, protocol  # noqa: E402

import air_client  # noqa: E402

MICROPYTHON = str(pathlib.Path(sys.executable).with_name("micropython"))
QUICK = "--quick" in sys.argv
_ARGS = [a for a in sys.argv[1:] if a != "--quick"]
ROUNDS = int(_ARGS[0]) if _ARGS else 1 if QUICK else 5
HEAP_STEP = 2048  # bisection resolution, bytes
TRIAL_S = 30  # one heap trial: boot + provisioning, at most
BOOT_OK_S = 3  # a lock alive and beaconing this long after boot counts as booted
LOCKS = {"PB-ADV": "501"} if QUICK else {"PB-ADV": "501", "PB-GATT": "502"}
LOSSES = (0.0,) if QUICK else (0.0, 0.1)
HEAP_PROBE = "import gc; gc.collect(); print('heap-probe', gc.mem_alloc(), gc.mem_free())"


# --- 1. provisioning time -----------------------------------------------------------------------------------
def timed_attempts():
    """Wrap hostprov's attempt to record (lock, bearer, seconds, outcome) of every attempt."""
    got = []
    attempt = cli.Worker._attempt

    async def timed(self, lock, row, seen, res, *more):
        t = time.perf_counter()
        outcome = "error"
        try:
            outcome, reason = await attempt(self, lock, row, seen, res, *more)
            return outcome, reason
        finally:
            got.append((lock, res["bearer"], time.perf_counter() - t, outcome))

    cli.Worker._attempt = timed
    return got


def provision_rounds(c, loss, rounds, got):
    async def set_loss():
        r = await air_client.join(c.air, name="bench")
        await r.set_air(loss=loss)
        await r.close()

    asyncio.run(set_loss())
    first = len(got)
    for n in range(rounds):
        if got:  # provisioned by an earlier round: reset from the console first
            for lock in c.locks.values():
                since = lock.mark()
                lock.type("node.reset()")
                lock.wait_log("keystore: all keys erased", since=since)
            time.sleep(1.0)  # the fresh key pair is made while beaconing, as after any reset
        argv = ["provision", "--db", str(c.db), "--air", c.air, "--locks", str(c.table), "--bearer", "adv",
                "--parallel", "1", "--again"]
        if "PB-GATT" in LOCKS:
            argv += ["--gatt-locks", LOCKS["PB-GATT"]]
        os.environ["HOSTPROV_PASSPHRASE"] = c.env["HOSTPROV_PASSPHRASE"]
        with open(os.devnull, "w") as null:
            out, err, sys.stdout, sys.stderr = sys.stdout, sys.stderr, null, null  # its table and progress bar
            try:
                rc = cli.main(argv)
            finally:
                sys.stdout, sys.stderr = out, err
        if rc != 0:
            raise SystemExit("provisioning failed in round %d at loss %.2f" % (n, loss))
    return got[first:]


def ecdh_costs(runs=15):
    """(lock's cooperative ECDH on micropython, provisioner's ECDH on cryptography), median seconds."""
    script = r"""
import sys, time
sys.path.insert(0, "lib")
from mesh import p256
priv, _ = p256.p256_keypair()
_, peer = p256.p256_keypair()
ts = []
for _ in range(%d):
    t = time.ticks_us()
    for _ in p256.p256_ecdh_steps(priv, peer):
        pass
    ts.append(time.ticks_diff(time.ticks_us(), t))
ts.sort()
print(ts[len(ts) // 2])
""" % runs
    p = subprocess.run([MICROPYTHON, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    lock = int(p.stdout.split()[-1]) / 1e6
    from cryptography.hazmat.primitives.asymmetric import ec

    a, b = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    peer = protocol.public_key_bytes(b)
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        protocol.ecdh(a, peer)
        ts.append(time.perf_counter() - t)
    return lock, statistics.median(ts)


# --- 2. heap ------------------------------------------------------------------------------------------------
def probe(lock):
    """gc.mem_alloc() after gc.collect(), typed on the lock's console -> bytes."""
    since = lock.mark()
    lock.type(HEAP_PROBE)
    line = next(x for x in lock.wait_log("heap-probe", since=since).splitlines() if x.startswith("heap-probe"))
    return int(line.split()[1])


def standins_share(mpy):
    """Heap the host stand-ins (bluetooth, esp32, machine, _airlink and what they import) hold once imported."""
    script = ("import gc, asyncio; gc.collect(); a = gc.mem_alloc(); import bluetooth, esp32, machine; "
              "gc.collect(); print(gc.mem_alloc() - a)")
    env = dict(os.environ, MICROPYPATH="%s/host:.frozen" % mpy)
    p = subprocess.run([MICROPYTHON, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return int(p.stdout.split()[-1])


def _dead(lock):
    text = lock.text()
    return not lock.running or "MemoryError" in text or "Traceback" in text


def trial(c, lock_id, heap, mpy, provision):
    """Does a lock with `heap` bytes boot and beacon (and, with provision=bearer, get provisioned)?"""
    lock = c.locks.get(lock_id)
    if lock is not None:
        lock.stop()
    for suffix in (".nvs.json", ".log"):
        (c.dir / (lock_id + suffix)).unlink(missing_ok=True)
    lock = c.add_lock(lock_id, heap=heap, mpy=mpy)
    try:
        lock.wait_log(", UUID ", timeout=10)
    except TimeoutError:
        return False
    if not provision:
        time.sleep(BOOT_OK_S)
        return not _dead(lock)
    argv = [PY, str(ROOT / "tools" / "provision.py"), "provision", "--db", str(c.db), "--air", c.air, "--locks",
            str(c.table), "--only", lock_id, "--again", "--bearer", "adv", "--retries", "0", "--discover-s", "5"]
    if provision == "PB-GATT":
        argv += ["--gatt-locks", lock_id]
    p = subprocess.Popen(argv, cwd=ROOT, env=c.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + TRIAL_S
        while p.poll() is None and time.monotonic() < deadline and not _dead(lock):
            time.sleep(0.1)
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
    return p.returncode == 0 and "node: provisioned" in lock.text() and not _dead(lock)


def min_heap(c, lock_id, mpy, provision, lo=16 * 1024, hi=1024 * 1024):
    if not trial(c, lock_id, hi, mpy, provision):
        raise SystemExit("the lock does not run even with %d bytes of heap" % hi)
    if QUICK:
        return hi
    while hi - lo > HEAP_STEP:
        mid = (lo + hi) // 2 // 64 * 64
        if trial(c, lock_id, mid, mpy, provision):
            hi = mid
        else:
            lo = mid
    return hi


# --- main ------------------------------------------------------------------------------------------------------
def main():
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench_e2e_"))
    got = timed_attempts()
    try:
        with Corridor(tmp / "time", seed=1) as c:
            c.start_air()
            c.write_table([dict(lock_id=i, uuid_secret="random", static_oob="random", room=i, floor="5")
                           for i in LOCKS.values()])
            c.init_db(hotel=True)
            for i in LOCKS.values():
                c.add_lock(i)
            c.wait_booted()
            time.sleep(1.0)
            times = {loss: provision_rounds(c, loss, ROUNDS, got) for loss in LOSSES}
            lock_ecdh, prov_ecdh = ecdh_costs(1 if QUICK else 15)
        mpy = tmp / "mpy"
        precompile(mpy)
        with Corridor(tmp / "heap", seed=2) as c:
            c.start_air()
            c.write_table([dict(lock_id=i, uuid_secret="random", static_oob="random", room=i, floor="5")
                           for i in ("503", "504", "505")])
            c.init_db(hotel=True)
            lock = c.add_lock("503", mpy=mpy)
            lock.wait_log(", UUID ")
            time.sleep(1.0)
            idle = probe(lock)
            c.provision("--only", "503", "--bearer", "adv")
            lock.wait_log("node: provisioned")
            provisioned = probe(lock)
            lock.stop()
            standins = standins_share(mpy)
            boot = min_heap(c, "504", mpy, None)
            peaks = {b: min_heap(c, "505", mpy, b) for b in ("PB-ADV", "PB-GATT")}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    ecdh = lock_ecdh + prov_ecdh
    print("end to end over the virtual air; %d rounds per row; load average %.1f on %d CPUs" % (
        ROUNDS, os.getloadavg()[0], os.cpu_count()))
    print("  ECDH cost subtracted for 'excluding': lock (micropython, cooperative) %.1f ms + provisioner "
          "(cryptography) %.2f ms" % (lock_ecdh * 1e3, prov_ecdh * 1e3))
    print("  %-16s %11s %11s %11s %11s %9s" % ("bearer, loss", "incl. p50", "incl. max", "excl. p50", "excl. max",
                                               "attempts"))
    for loss, rows in times.items():
        for bearer in LOCKS:
            ts = [t * 1e3 for _, b, t, o in rows if b == bearer and o == "complete"]
            n = sum(1 for _, b, _, _ in rows if b == bearer)
            med, e = statistics.median(ts), ecdh * 1e3
            print("  %-16s %8.0f ms %8.0f ms %8.0f ms %8.0f ms %6d/%d" % (
                "%s, %d %%" % (bearer, loss * 100), med, max(ts), med - e, max(ts) - e, len(ts), n))
    print("heap on the unix port (64-bit), lib/firmware/stand-ins precompiled; gc.mem_alloc() after gc.collect()")
    print("  %-58s %8d bytes" % ("beaconing (idle, unprovisioned), whole process", idle))
    print("  %-58s %8d bytes" % ("provisioned (idle), whole process", provisioned))
    print("  %-58s %8d bytes" % ("  of which the host stand-ins (bluetooth, esp32, machine)", standins))
    print("  %-58s %8d bytes" % ("  firmware + lib + asyncio, beaconing (whole - stand-ins)", idle - standins))
    print("  %-58s %8d bytes" % ("smallest -X heapsize: boots and beacons", boot))
    for b, peak in peaks.items():
        print("  %-58s %8d bytes (+%d over booting)" % ("smallest -X heapsize: provisioned over " + b, peak,
                                                       peak - boot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
