"""Virtual air benchmark (issue 8), run by `make bench`.

1. Load: N simulated radios as `micropython` processes using the host stand-ins, each advertising 29 bytes every
   100 ms (ADV_IND) and scanning continuously (30/30 ms), waking a task per scan result through a ThreadSafeFlag
   as firmware does. Reported: CPU share of the hub and of each radio process (from /proc), adverts delivered
   per second, and the share of packets destroyed by collisions (the model's, not a bug).
2. GATT round trip: a CPython central (tools/air_client.py) writes 20 bytes to a MicroPython peripheral
   (tests/mp/air_peripheral.py) that echoes them by notification; median and p95 over 50 round trips for two
   connection intervals (each hop waits for the link's next connection event).

Usage: python tools/bench_air.py [--quick]   (--quick: smoke test; 5 radios for 1 s, 2 round trips, 30 ms only)
"""

import asyncio
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import air  # noqa: E402
import air_client  # noqa: E402

MICROPYTHON = str(pathlib.Path(sys.executable).with_name("micropython"))
LOCK = """
import asyncio, bluetooth
ble = bluetooth.BLE(); ble.active(True)
flag = asyncio.ThreadSafeFlag()
def irq(ev, data):
    if ev == 5:
        flag.set()
ble.irq(irq)
ble.gap_advertise(100000, bytes(29))
ble.gap_scan(0, 30000, 30000)
async def main():
    while True:
        await flag.wait()
asyncio.run(main())
"""


def _env(hub, addr):
    return dict(os.environ, AIR=hub, AIR_ADDR=addr, MICROPYPATH="tools/host:lib:.frozen")


def _cpu_s(pid):
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _stats(hub):
    r = await air_client.join(hub, name="bench")
    st = await r.stats()
    await r.close()
    return st


def load(n, seconds):
    hub = subprocess.Popen([sys.executable, "tools/air.py", "--seed", "1"], cwd=ROOT, stdout=subprocess.PIPE,
                           text=True)
    addr = hub.stdout.readline().split()[-1]
    locks = [subprocess.Popen([MICROPYTHON, "-c", LOCK], cwd=ROOT, env=_env(addr, "c0ffee%06x" % i))
             for i in range(n)]
    try:
        time.sleep(1.0)
        s0 = asyncio.run(_stats(addr))
        h0, l0 = _cpu_s(hub.pid), [_cpu_s(p.pid) for p in locks]
        time.sleep(seconds)
        h1, l1 = _cpu_s(hub.pid), [_cpu_s(p.pid) for p in locks]
        s1 = asyncio.run(_stats(addr))
    finally:
        for p in locks:
            p.kill()
            p.wait()
        hub.kill()
        hub.wait()
    per_lock = [(b - a) / seconds * 100 for a, b in zip(l0, l1)]
    packets = s1["packets"] - s0["packets"]
    collided = (s1["collided"] - s0["collided"]) / packets * 100 if packets else 0.0
    delivered = (s1["delivered"] - s0["delivered"]) / seconds
    print("| %d | %.1f | %.1f | %.1f | %.0f | %.1f |" % (n, (h1 - h0) / seconds * 100, statistics.mean(per_lock),
                                                       max(per_lock), delivered, collided))


async def _rtt(conn_interval_ms, rounds=50):
    hub = air.Hub(seed=2, conn_interval_ms=conn_interval_ms)
    host, port = await hub.start()
    lock = await asyncio.create_subprocess_exec(MICROPYTHON, "tests/mp/air_peripheral.py", cwd=ROOT,
                                                env=_env("%s:%d" % (host, port), "c0ffee000101"),
                                                stdout=subprocess.DEVNULL)
    central = await air_client.join("%s:%d" % (host, port), name="central")
    try:
        await central.scan()
        adv = await central.next_advert(lambda a: a.addr.hex() == "c0ffee000101", timeout=10)
        conn = await central.connect(adv.addr)
        services = await conn.discover()
        chars = {c["uuid"]: c["handle"] for s in services for c in s["characteristics"]}
        times = []
        for i in range(rounds):
            t0 = time.perf_counter()
            await conn.write(chars["2adb"], bytes([i]) * 20)
            await conn.notification(timeout=5)
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        print("| %.1f | %.1f | %.1f |" % (conn_interval_ms, statistics.median(times),
                                          times[int(len(times) * 0.95) - 1]))
    finally:
        lock.kill()
        await lock.wait()
        await central.close()
        hub.close()


def main(argv):
    quick = "--quick" in argv
    print("Load: each radio advertises every 100 ms and scans continuously (CPU in % of one core)\n")
    print("| radios | hub CPU % | radio CPU % (mean) | radio CPU % (max) | adverts delivered/s | collided % |")
    print("|---|---|---|---|---|---|")
    for n in (5,) if quick else (5, 20):
        load(n, 1 if quick else 5)
    print("\nGATT round trip (write 20 B -> echo notification), ms\n")
    print("| connection interval ms | median | p95 |")
    print("|---|---|---|")
    for ci in (30.0,) if quick else (7.5, 30.0):
        asyncio.run(_rtt(ci, 2 if quick else 50))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
