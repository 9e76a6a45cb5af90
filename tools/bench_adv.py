"""Advertising benchmark (issue 3), run by `make bench`:

1. Airtime/energy report: one unprovisioned lock, idle (no provisioner), one simulated hour per configuration of
   lib/mesh/adv.py; advertising events per hour by kind, radio-on fraction and the radio's share of the battery.
   Beacon events are checked against the closed form (windows per hour x events per window): the ratio column.
2. Scheduler cost: microseconds per poll() driving that hour, MicroPython unix port vs CPython, same code.
3. Rolling-UUID resolver: building the windows and looking a beacon up, 1,000 locks (tools/uuid_resolver.py).
4. Density study table (tools/density.py --full), the source of the defaults (docs/advertising.md).

Energy assumptions (stated, not measured): on-air time of a legacy advertising PDU = 8 us per octet of
preamble 1 + access address 4 + header 2 + AdvA 6 + AdvData + CRC 3 at 1 Mbit/s; each packet costs RAMP_US of
radio start-up/turn-around on top; a connectable event listens RX_LISTEN_US after each packet (T_IFS 150 us + an
access-address match window); currents from the ESP32 datasheet's RF power-consumption table: TX at 0 dBm 130 mA,
RX 100 mA. The CPU (awake while MicroPython runs) is not counted: this is the radio's share only.

Usage: python tools/bench_adv.py [--quick]   (--quick: smoke test; one simulated minute of polls, 10 locks in the
resolver, the density study's smallest configuration)
"""

import pathlib
import random
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lib"), str(ROOT / "tools")]

import density  # noqa: E402
import uuid_resolver  # noqa: E402
from mesh import adv  # noqa: E402

RAMP_US = 140
RX_LISTEN_US = 200
TX_MA = 130
RX_MA = 100
HOUR_MS = 3_600_000

CONFIGS = [
    ("defaults", {}),
    ("PB-GATT as Zephyr (100 ms for 60 s, then 1 s)", {"gatt_fast_ms": 100, "gatt_slow_ms": 1000}),
    ("no PB-GATT", {"gatt": False}),
    ("no PB-GATT, backoff x16 (stalled provisioner)", {"gatt": False, "interval_min_ms": 1600,
                                                       "interval_max_ms": 1760, "backoff_max_ms": 1760}),
    ("no duty cycle: beacon always on, no PB-GATT", {"gatt": False, "on_ms": 10_000, "window_jitter_ms": 0}),
]


def air_us(data):
    return 8 * (1 + 4 + 2 + 6 + len(data) + 3)


def airtime(cfg, hours=1, seed=1):
    rng = random.Random(seed)
    s = adv.Scheduler(rng.randbytes(16), 0, None, cfg, rng.randbytes)
    horizon = hours * HOUR_MS
    adverts = density.lock_adverts(s, 0, horizon)
    kinds = {0x2B: "beacon", 0x01: "gatt"}
    count = {"beacon": 0, "gatt": 0}
    tx_us = rx_us = 0
    for k, (t0, a) in enumerate(adverts):
        stop = min(a.until_ms, adverts[k + 1][0] if k + 1 < len(adverts) else horizon) * 1000
        t = t0 * 1000
        while t < stop:
            count[kinds[a.data[1]]] += 1
            tx_us += 3 * (air_us(a.data) + RAMP_US)
            if a.connectable:
                rx_us += 3 * RX_LISTEN_US
            t += a.interval_ms * 1000 + rng.randrange(density.ADV_DELAY_US + 1)
    c = adv.make_config(cfg)
    # events at 0, i1, i1+i2, ... inside the window: on/mean + 1/2 on average (one when the interval is longer)
    mean = (c["interval_min_ms"] + c["interval_max_ms"]) / 2
    if c["interval_min_ms"] == c["interval_max_ms"]:
        mean += density.ADV_DELAY_US / 2000  # one Advert per window: the controller adds advDelay
    per_window = 1.0 if mean >= c["on_ms"] else c["on_ms"] / mean + 0.5
    expect = hours * HOUR_MS / c["period_ms"] * per_window
    on = (tx_us + rx_us) / (horizon * 1000)
    mah_day = (tx_us * TX_MA + rx_us * RX_MA) / 1e6 / 3600 * 24 / hours
    return {"beacon": count["beacon"] / hours, "gatt": count["gatt"] / hours, "expect": expect / hours,
            "on": on, "mah_day": mah_day, "polls": len(adverts) / hours}


_MP_SNIPPET = """
import sys, time
sys.path[:0] = ['lib', 'tests/mp']
from mesh import adv
from adv_helpers import Rand
s = adv.Scheduler(bytes(16), 0, None, None, Rand(1))
s.enable(0)
t = 0
n = 0
t0 = time.ticks_us() if hasattr(time, 'ticks_us') else int(time.perf_counter() * 1e6)
while t < %d:
    s.poll(t)
    n += 1
    d = s.deadline()
    t = d if d > t else t + 1
t1 = time.ticks_us() if hasattr(time, 'ticks_us') else int(time.perf_counter() * 1e6)
print(n, (t1 - t0) / n)
"""


def poll_cost(horizon_ms=HOUR_MS):
    out = {}
    code = _MP_SNIPPET % horizon_ms
    for name, exe in (("micropython", str(pathlib.Path(sys.executable).with_name("micropython"))),
                      ("cpython", sys.executable)):
        r = subprocess.run([exe, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
        n, us = r.stdout.split()
        out[name] = (int(n), float(us))
    return out


def main(argv):
    quick = "--quick" in argv
    print("## 1. Airtime and energy, one idle unprovisioned lock, per hour")
    print("| configuration | beacon events/h | vs closed form | PB-GATT events/h | radio on | radio mAh/day |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, cfg in CONFIGS:
        r = airtime(cfg)
        print("| %s | %.0f | %.3f | %.0f | %.3f %% | %.2f |" % (label, r["beacon"], r["beacon"] / r["expect"],
                                                           r["gatt"], 100 * r["on"], r["mah_day"]))
    print("\n## 2. Scheduler cost (one simulated %s, defaults)" % ("minute" if quick else "hour"))
    pc = poll_cost(60_000 if quick else HOUR_MS)
    (n, mp), (_, cp) = pc["micropython"], pc["cpython"]
    print("| interpreter | polls/h | us per poll |\n|---|---:|---:|")
    print("| MicroPython unix | %d | %.1f |\n| CPython 3.11 | %d | %.1f |" % (n, mp, n, cp))
    print("MicroPython/CPython: %.1fx" % (mp / cp))
    locks = 10 if quick else 1000
    print("\n## 3. Rolling-UUID resolver, %d locks (counter window 96 ahead, RTC window +-2)" % locks)
    b = uuid_resolver.bench(locks)
    print("| entries | counter windows build | RTC window build | look-up |\n|---:|---:|---:|---:|")
    print("| %d | %.0f ms | %.0f ms | %.2f us |" % (b["entries"], b["counter_build_s"] * 1000,
                                                   b["rtc_build_s"] * 1000, b["lookup_us"]))
    print("\n## 4. Density study (tools/density.py %s)" % ("smallest configuration" if quick else "--full"))
    t = time.perf_counter()
    rows = density.table(ns=(50,), scenarios=("together",), variants=density.VARIANTS[:1]) if quick else density.table()
    print(density.markdown(rows))
    print("(%.1f s)" % (time.perf_counter() - t))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
