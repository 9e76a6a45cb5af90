"""Bearer benchmark (issue 5): air frames and provisioning time over PB-ADV and PB-GATT in a simulated channel.

Both ends are the real code: the device is lib/mesh (PbAdv / PbGatt -> Link -> Provisionee), the provisioner is
tools/hostprov (pb_adv.Link / pb_gatt.Client -> protocol.Provisioner). Time is simulated, so crypto and Python
speed cost nothing: the figures are the bearers' protocol latency alone ("without ECDH"; the device's key pair
is the §8.7 sample pair, injected, so no key generation either).

Channel models (deliberately simple):
- PB-ADV: each side has one advertising set and sends one PB-ADV PDU per advertising event, events >= 20 ms
  apart; every PDU a bearer hands over is sent `count` times (acks `ack_count` times) and acks jump the queue.
  The "mesh.adv" rows put the device's real scheduler (lib/mesh/adv.py, default configuration: bursts, response
  jitter, beacon/PB-GATT adverts sharing the set) in place of that model on the device side. Every
  transmission is lost independently with probability `loss` at the receiver.
- PB-GATT: connection interval 30 ms (typical phone), at most 4 ATT PDUs per direction per connection event,
  ATT_MTU 23 (no exchange). A lost link-layer packet is retransmitted by the controller at the next event (the
  link is reliable: loss costs time, never data); what one side produces goes out from the next event on.
Time runs from the provisioner's first Link Open / the connection, until the provisioner has Provisioning
Complete. Frames count every transmission on air (both directions) until then, plus the Link Close.

Usage: python tools/bench_bearers.py [--quick] [runs]   (default 200 runs per configuration; seeded, deterministic;
--quick: smoke test, 2 runs per configuration, and an attempt that does not complete is a failure, exit 1)
"""

import binascii
import random
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lib"), str(ROOT / "tools")]

from hostprov import pb_adv as host_adv  # noqa: E402
from hostprov import pb_gatt as host_gatt  # noqa: E402
from hostprov.protocol import Provisioner  # noqa: E402

from mesh import adv, log  # noqa: E402
from mesh import prov_pdu as P  # noqa: E402
from mesh.link import Link  # noqa: E402
from mesh.pb_adv import PbAdv  # noqa: E402
from mesh.pb_gatt import PbGatt  # noqa: E402
from mesh.provisionee import Provisionee  # noqa: E402

ADV_EVENT_MS = 20
CONN_INTERVAL_MS = 30
PDUS_PER_EVENT = 4
LIMIT_MS = 120_000


def _v():
    out = {}
    for line in (ROOT / "tests" / "vectors" / "provisioning.txt").read_text().splitlines():
        line = line.split("#", 1)[0]
        if "=" in line and "(" not in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


V = _v()
H = binascii.unhexlify
UUID = H(V["DeviceUUID"])


class _Store:
    def __init__(self):
        self.record = None

    def save(self, r):
        self.record = r

    def load(self):
        return self.record

    def erase(self):
        self.record = None


def _device(rng):
    prov = Provisionee({"algorithms": P.ALGS_CMAC}, _Store(), rand=lambda n: H(V["RandomDevice"])[:n],
                       keypair=(H(V["PrivateKeyDevice"]), H(V["PublicKeyDeviceX"] + V["PublicKeyDeviceY"])))
    return Link(prov, PbAdv(UUID, rand=rng.randbytes), PbGatt())


def _provisioner():
    return Provisioner(H(V["NetworkKey"]), 0x0567, 0x01020304, 0x0B0C, private_key=H(V["PrivateKeyProvisioner"]),
                       rand=lambda n: H(V["RandomProvisioner"])[:n])


def _settle(link, now):
    while link.deadline() == 0:
        link.poll(now)


class _Adverts:
    """One advertising set: one PDU per event, events >= ADV_EVENT_MS apart; each PDU is sent `count` times,
    each ack `ack_count` times."""

    def __init__(self, count, ack_count, phase):
        self.count, self.ack_count, self.next_ok, self.sent = count, ack_count, phase, 0
        self.urgent, self.normal = [], []

    def queue(self, now, frames):
        if not (self.urgent or self.normal):
            self.next_ok = max(self.next_ok, now)
        for pdu, urgent in frames:
            if urgent:
                self.urgent.append([pdu, self.ack_count])
            else:
                self.normal.append([pdu, self.count])

    def due(self, now):
        return self.next_ok if self.urgent or self.normal else None

    def transmit(self, now):
        q = self.urgent or self.normal
        item = q[0]
        item[1] -= 1
        if not item[1]:
            q.pop(0)
        self.next_ok, self.sent = now + ADV_EVENT_MS, self.sent + 1
        return item[0]


class _Scheduler:
    """The device's real advertising scheduler (mesh.adv.Scheduler, default configuration: bursts, response
    jitter, beacon and PB-GATT adverts sharing the set): a new PB-ADV Advert is one transmission."""

    def __init__(self, rng, dev):
        self.s, self.dev = adv.Scheduler(UUID, 0, rand=rng.randbytes), dev
        self.cur, self.sent, self.link = None, 0, None
        self.s.enable(0)

    def queue(self, now, frames):
        if self.dev.bearer != self.link:  # what node.py will tell the scheduler
            if self.dev.bearer is not None:
                self.s.link_opened(now)
            else:
                self.s.link_closed(now, self.dev.prov.is_provisioned)
            self.link = self.dev.bearer
        for pdu, urgent in frames:
            self.s.queue(now, pdu, urgent)

    def due(self, now):
        d = self.s.deadline()
        return None if d is None else max(d, now)

    def transmit(self, now):
        a = self.s.poll(now)
        new, self.cur = a is not None and a is not self.cur, a
        if new and a.data[1] == 0x29:
            self.sent += 1
            return a.data[2:]
        return None


def run_adv(seed, loss, count, ack_count, scheduler=False):
    rng = random.Random(seed)
    dev, host, prov = _device(rng), host_adv.Link(UUID, rand=rng.randbytes), _provisioner()
    d_air = _Scheduler(rng, dev) if scheduler else _Adverts(count, ack_count, rng.randrange(ADV_EVENT_MS))
    p_air = _Adverts(count, ack_count, 0)
    done = None

    def host_events(now, events):
        nonlocal done
        for ev in events:
            if ev[0] == "open":
                prov.start()
            elif ev[0] == "pdu":
                prov.receive(ev[1])
                if prov.state == "complete" and done is None:
                    done = now
        for pdu in prov.take_outgoing():
            host.send(now, pdu)
        if prov.close_reason is not None and host.state == "open":
            host.close(now, prov.close_reason)
        p_air.queue(now, [(f, f[5] & 3 == 1) for f in host.take_frames()])

    host.open(0)
    host_events(0, [])
    now = 0
    while now < LIMIT_MS and (done is None or p_air.due(now) is not None):
        times = [t for t in (d_air.due(now), p_air.due(now), dev.deadline(), host.deadline()) if t is not None]
        now = max(now, min(times))
        if d_air.due(now) == now:
            f = d_air.transmit(now)
            if f is not None and rng.random() >= loss:
                host_events(now, host.receive(now, f))
        if p_air.due(now) == now:
            f = p_air.transmit(now)
            if rng.random() >= loss:
                dev.adv_receive(now, f)
        dev.poll(now)
        _settle(dev, now)
        host_events(now, host.poll(now))
        d_air.queue(now, dev.take_adv_frames())
    return done, (d_air.sent, p_air.sent)


def run_gatt(seed, loss, mtu=23):
    rng = random.Random(seed)
    dev, cli, prov = _device(rng), host_gatt.Client(mtu), _provisioner()
    dev.gatt_connected(0, 1)
    dev.gatt_mtu(1, mtu)
    prov.start()
    writes = [v for pdu in prov.take_outgoing() for v in cli.send(pdu)]
    notes, done, sent, now = [], None, [0, 0], 0

    def deliver(queue, fn, side):
        n = 0
        while queue and n < PDUS_PER_EVENT:
            sent[side] += 1
            n += 1
            if rng.random() < loss:
                break  # the controller retransmits it at the next event; later packets wait behind it
            fn(queue.pop(0))

    def to_device(v):
        dev.gatt_write(now, 1, v)

    def to_host(v):
        nonlocal done
        for ev in cli.receive(now, v):
            if ev[0] == "pdu":
                prov.receive(ev[1])
                if prov.state == "complete" and done is None:
                    done = now
        new_writes.extend(v for pdu in prov.take_outgoing() for v in cli.send(pdu))

    while done is None and now < LIMIT_MS:
        now += CONN_INTERVAL_MS
        new_writes = []
        deliver(writes, to_device, 1)
        deliver(notes, to_host, 0)
        _settle(dev, now)
        notes += [v for c, v in dev.take_notifications()]  # from the next connection event on
        writes += new_writes
    return done, tuple(sent)


def _row(name, results, target=None):
    times = sorted(t for t, n in results if t is not None)
    dev = [n[0] for t, n in results if t is not None]
    host = [n[1] for t, n in results if t is not None]
    ok = len(times)
    p95 = times[min(len(times) - 1, int(0.95 * len(times)))] if times else float("nan")
    verdict = "" if target is None else ("  <= %.1f s: %s" % (target / 1000, "yes" if statistics.mean(times)
                                                                          <= target else "NO"))
    print("%-34s %5d/%-5d %7.0f %7.0f %7.0f %6.1f %6.1f%s" % (
        name, ok, len(results), statistics.mean(times), statistics.median(times), p95, statistics.mean(dev),
        statistics.mean(host), verdict))
    return ok == len(results)


def main(argv):
    quick = "--quick" in argv
    args = [a for a in argv[1:] if a != "--quick"]
    runs = int(args[0]) if args else 2 if quick else 200
    complete = True
    log.level = log.ERROR
    log.sink = lambda line: None
    print("%-34s %11s %7s %7s %7s %6s %6s" % ("bearer / loss / burst", "completed", "mean ms", "p50 ms", "p95 ms",
                                              "dev", "prov"))
    print("%-34s %11s %7s %7s %7s %13s" % ("", "", "", "", "", "frames on air"))
    for count, ack_count in ((1, 1), (1, 2), (3, 3)):
        for loss in (0.0, 0.10):
            res = [run_adv(seed, loss, count, ack_count) for seed in range(runs)]
            target = 1000 if loss == 0 else 3000
            complete &= _row("PB-ADV  loss %2d%%  burst %d, acks %d" % (loss * 100, count, ack_count), res, target)
    count = adv.DEFAULTS["pb_adv_count"]
    for loss in (0.0, 0.10):
        res = [run_adv(seed, loss, count, count, scheduler=True) for seed in range(runs)]
        complete &= _row("PB-ADV  loss %2d%%  mesh.adv, prov %d" % (loss * 100, count), res,
                         1000 if loss == 0 else 3000)
    for mtu in (23, 69):
        for loss in (0.0, 0.10):
            res = [run_gatt(seed, loss, mtu) for seed in range(runs)]
            complete &= _row("PB-GATT loss %2d%%  ATT_MTU %d" % (loss * 100, mtu), res, 500 if mtu == 23 else None)
    return 1 if quick and not complete else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
