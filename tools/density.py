"""Density study: N unprovisioned locks in one radio range, each driven by the real scheduler (lib/mesh/adv.py),
heard by one provisioner. Seeded and deterministic.

Model (stated so it can be argued with):
* Each lock runs mesh.adv.Scheduler with its own seeded random source; it is switched on (enable) at a boot time
  drawn from the scenario: "together" (all within 50 ms: a wing powered up at once, the worst case) or
  "staggered" (uniformly over 60 s: batteries put in one door after another).
* Controller: an Advert's first event goes out at its start; further events of the same Advert every
  interval_ms + advDelay, advDelay uniform 0-10 ms (Core Vol 6 Part B §4.4.2.2.1). Each event sends the PDU on
  channels 37, 38, 39, one packet each, PITCH_US apart, AIR_US = 376 us on air (31-byte payload at 1 Mbit/s).
* Collision: two packets overlapping in time on one channel are both lost (no capture effect). Beacons and
  PB-GATT connectable adverts from all locks interfere alike.
* Provisioner: scans continuously in 30 ms windows, channel 37, 38, 39 in turn; it receives a packet that lies
  wholly inside a window on the packet's channel and did not collide.
* Reported: delivered = beacon events of which the provisioner received at least one packet / beacon events
  sent; time until heard = from a lock's boot to its first received beacon, p50/p95 over the locks. The run lasts
  until `horizon_ms` after the last boot; a lock never heard counts as the whole run, and in "unheard".

Usage: python tools/density.py [--full] [--seed S]  (the full table takes under a minute; tests run a small one)
"""

import argparse
import pathlib
import random
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "lib"))
from mesh import adv  # noqa: E402

AIR_US = 376
PITCH_US = 500
SCAN_WINDOW_US = 30_000
CHANNELS = 3
ADV_DELAY_US = 10_000
TOGETHER_MS = 50
STAGGER_MS = 60_000

FIXED = {"interval_min_ms": 100, "interval_max_ms": 100, "window_jitter_ms": 0}


def lock_adverts(s, boot_ms, horizon_ms):
    """Drive one scheduler like the firmware: [(start_ms, Advert)] for every new Advert."""
    out = []
    last = None
    t = boot_ms
    s.enable(t)
    while t < horizon_ms:
        a = s.poll(t)
        if a is not None and a is not last:
            out.append((t, a))
        last = a
        d = s.deadline()
        if d is None:
            break
        t = d if d > t else t + 1
    return out


def lock_events(adverts, horizon_ms, rng):
    """Controller model: [(time_us, is_beacon)] for every advertising event."""
    ev = []
    end_us = horizon_ms * 1000
    for k, (t0, a) in enumerate(adverts):
        stop = min(a.until_ms, adverts[k + 1][0] if k + 1 < len(adverts) else horizon_ms) * 1000
        is_beacon = a.data[1] == 0x2B
        t = t0 * 1000
        while t < stop and t < end_us:
            ev.append((t, is_beacon))
            t += a.interval_ms * 1000 + rng.randrange(ADV_DELAY_US + 1)
    return ev


def received(packets):
    """packets[channel] = [(start_us, *tag)]: the tags of packets the provisioner receives (sorts in place)."""
    out = []
    for c, pk in enumerate(packets):
        pk.sort()
        for k, p in enumerate(pk):
            t = p[0]
            if k and t - pk[k - 1][0] < AIR_US:
                continue  # overlaps the packet before it on this channel
            if k + 1 < len(pk) and pk[k + 1][0] - t < AIR_US:
                continue  # overlaps the one after
            w = t // SCAN_WINDOW_US
            if w % CHANNELS == c and (t + AIR_US - 1) // SCAN_WINDOW_US == w:  # wholly inside [w, w+1)
                out.append(p[1:])
    return out


def simulate(n, config=None, scenario="together", horizon_ms=60_000, seed=1):
    rng = random.Random(seed)
    boots = [rng.randrange(TOGETHER_MS if scenario == "together" else STAGGER_MS) for _ in range(n)]
    horizon_ms += max(boots)  # every lock is watched for at least horizon_ms after its boot
    packets = [[] for _ in range(CHANNELS)]  # (start_us, lock, event index) per channel
    events = []  # per lock: list of (time_us, is_beacon)
    for i in range(n):
        r = random.Random(seed * 1_000_003 + i)
        s = adv.Scheduler(r.randbytes(16), 0, None, config, r.randbytes)
        ev = lock_events(lock_adverts(s, boots[i], horizon_ms), horizon_ms, r)
        events.append(ev)
        for j, (t, _) in enumerate(ev):
            for c in range(CHANNELS):
                packets[c].append((t + c * PITCH_US, i, j))
    heard = [set() for _ in range(n)]  # event indices of lock i with a received packet
    for i, j in received(packets):
        heard[i].add(j)
    sent = got = 0
    first = []
    for i, ev in enumerate(events):
        f = None
        for j, (t, b) in enumerate(ev):
            if b:
                sent += 1
                if j in heard[i]:
                    got += 1
                    if f is None:
                        f = t
        first.append((f - boots[i] * 1000) / 1000 if f is not None else None)
    lat = sorted(x if x is not None else float(horizon_ms) for x in first)  # "never" sorts last
    return {
        "n": n,
        "scenario": scenario,
        "beacons": sent,
        "delivered": got / sent if sent else 0.0,
        "p50_ms": _pct(lat, 50),
        "p95_ms": _pct(lat, 95),
        "unheard": sum(x is None for x in first),
    }


def _pct(xs, p):
    return xs[min(len(xs) - 1, (len(xs) * p) // 100)]


# The table in docs/advertising.md: label -> scheduler overrides.
VARIANTS = [
    ("defaults: jitter", {}),
    ("fixed 100 ms, fixed windows", FIXED),
    ("jitter, PB-GATT as Zephyr (100 ms for 60 s, then 1 s)", {"gatt_fast_ms": 100, "gatt_slow_ms": 1000}),
    ("jitter, PB-GATT 100 ms for 10 s, then 2 s", {"gatt_fast_ms": 100, "gatt_fast_for_ms": 10_000}),
    ("jitter, no PB-GATT", {"gatt": False}),
    ("fixed, no PB-GATT", dict(FIXED, gatt=False)),
]


def table(ns=(50, 120, 300), scenarios=("together", "staggered"), variants=VARIANTS, horizon_ms=60_000, seed=1):
    rows = []
    for label, cfg in variants:
        for sc in scenarios:
            for n in ns:
                r = simulate(n, cfg, sc, horizon_ms, seed)
                r["variant"] = label
                rows.append(r)
    return rows


def markdown(rows):
    out = ["| variant | boot | N | beacons sent | delivered | heard p50 | heard p95 | unheard |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append("| %s | %s | %d | %d | %.1f %% | %.0f ms | %.0f ms | %d |" % (
            r["variant"], r["scenario"], r["n"], r["beacons"], 100 * r["delivered"], r["p50_ms"], r["p95_ms"],
            r["unheard"]))
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description="advertising density study")
    ap.add_argument("--full", action="store_true", help="N = 50/120/300, all variants (the docs table)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--horizon", type=int, default=60_000, help="simulated ms")
    a = ap.parse_args(argv)
    if a.full:
        rows = table(horizon_ms=a.horizon, seed=a.seed)
    else:
        rows = table(ns=(50,), scenarios=("together",), variants=VARIANTS[:2], horizon_ms=a.horizon, seed=a.seed)
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
