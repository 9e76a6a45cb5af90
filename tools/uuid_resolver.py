"""Rolling-UUID resolver (host side): which lock sent this beacon?

A lock's Device UUID is HMAC-SHA256(secret, period as 4 bytes big-endian)[:16] with the RFC 4122 version-4 and
variant bits set (lib/mesh/rolling_uuid.py). The provisioner holds every lock's secret, so it precomputes, for a
window of period numbers, a dict UUID -> (lock, period) and answers each beacon with one dict look-up.

Two windows are searched (docs/advertising.md, "Rolling UUID"):
* RTC window: a lock whose clock is set uses period = unix_seconds // period_s. The provisioner uses its own clock:
  periods P-2 .. P+2 (`before`/`after`), i.e. +-2 periods (+-60 min by default) of clock disagreement or
  boundary skew. Rebuilt when the provisioner's period changes (1,000 locks x 5 periods = 5,000 HMACs).
* Counter window: a lock without a set clock counts periods itself (+1 at every boot, +1 every period of uptime,
  persisted), starting at 1 from the factory. For each lock the provisioner remembers the last counter value it
  resolved (`last`, 0 for a new lock) and searches last-2 .. last+`ahead` (default 96: two days of uptime, or
  fewer days plus reboots). A lock unseen for longer needs a larger `ahead` (the CLI's --ahead).
Written independently of lib/ (stdlib hmac): the tests hold the two against each other.

CLI:  python tools/uuid_resolver.py --secrets table.csv [--now UNIX_S] [--ahead N] HEX...
      table.csv lines: lock_id,secret_hex[,last_counter_period]; HEX: a beacon AD structure, PB-GATT advertising
      data or a bare 16-byte UUID.  --bench N: time building and querying an N-lock table.
"""

import argparse
import binascii
import hashlib
import hmac
import pathlib
import sys
import time

_LIB = str(pathlib.Path(__file__).resolve().parent.parent / "lib")

PERIOD_S = 1800


def uuid_for(secret, period):
    u = bytearray(hmac.new(secret, period.to_bytes(4, "big"), hashlib.sha256).digest()[:16])
    u[6] = (u[6] & 0x0F) | 0x40
    u[8] = (u[8] & 0x3F) | 0x80
    return bytes(u)


def uuid_of(data):
    """A 16-byte UUID from a bare UUID, an Unprovisioned Device beacon AD structure or PB-GATT advertising data."""
    data = bytes(data)
    if len(data) == 16:
        return data
    # Only a whole advertisement needs lib's strict parsers; the host provisioner passes bare UUIDs and so
    # never loads lib/ (it must stay an independent check of the firmware).
    if _LIB not in sys.path:
        sys.path.insert(0, _LIB)
    from mesh import beacon

    if len(data) > 2 and data[1] == beacon.AD_MESH_BEACON:
        return beacon.parse_unprovisioned_beacon(data)[0]
    return beacon.parse_pb_gatt_adv(data)[0]


class Resolver:
    def __init__(self, secrets, period_s=PERIOD_S, before=2, after=2, ahead=96, last=None):
        if before < 2 or after < 2:
            raise ValueError("the window is at least +-2 periods")
        self.secrets = {k: bytes(v) for k, v in secrets.items()}
        for k, v in self.secrets.items():
            if len(v) < 16:
                raise ValueError("secret of %r shorter than 16 bytes" % (k,))
        self.period_s, self.before, self.after, self.ahead = period_s, before, after, ahead
        self.last = {k: 0 for k in self.secrets}
        self.last.update(last or {})
        self._rtc_center = None
        self._rtc = {}
        self._ctr = {}
        self._ctr_keys = {}
        for lock in self.secrets:
            self._counter_window(lock)

    def _counter_window(self, lock):
        for u in self._ctr_keys.pop(lock, ()):
            if self._ctr.get(u, (None,))[0] == lock:
                del self._ctr[u]
        secret, last = self.secrets[lock], self.last[lock]
        keys = []
        for p in range(max(0, last - self.before), last + self.ahead + 1):
            u = uuid_for(secret, p)
            self._ctr[u] = (lock, p)
            keys.append(u)
        self._ctr_keys[lock] = keys

    def rtc_window(self, now_s):
        center = now_s // self.period_s
        if center != self._rtc_center:
            self._rtc = {}
            for lock, secret in self.secrets.items():
                for p in range(center - self.before, center + self.after + 1):
                    self._rtc[uuid_for(secret, p)] = (lock, p)
            self._rtc_center = center
        return self._rtc

    def resolve(self, data, now_s=None):
        """(lock_id, period) or None. A counter-mode hit moves that lock's window on."""
        u = uuid_of(data)
        if now_s is not None:
            hit = self.rtc_window(now_s).get(u)
            if hit is not None:
                return hit
        hit = self._ctr.get(u)
        if hit is not None and hit[1] > self.last[hit[0]]:
            self.last[hit[0]] = hit[1]
            self._counter_window(hit[0])
        return hit


def load_table(path):
    secrets, last = {}, {}
    for n, line in enumerate(pathlib.Path(path).read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        f = [x.strip() for x in line.split(",")]
        if len(f) not in (2, 3):
            raise ValueError("%s:%d: expected lock_id,secret_hex[,last_period]" % (path, n))
        secrets[f[0]] = binascii.unhexlify(f[1])
        if len(f) == 3:
            last[f[0]] = int(f[2])
    return secrets, last


def bench(n, ahead=96):
    secrets = {"lock%04d" % i: hashlib.sha256(b"bench%d" % i).digest()[:16] for i in range(n)}
    t0 = time.perf_counter()
    r = Resolver(secrets, ahead=ahead)
    t1 = time.perf_counter()
    now = 1_780_000_000
    r.rtc_window(now)
    t2 = time.perf_counter()
    queries = [uuid_for(secrets["lock%04d" % (i % n)], now // PERIOD_S + (i % 5) - 2) for i in range(10_000)]
    t3 = time.perf_counter()
    for q in queries:
        r.resolve(q, now)
    t4 = time.perf_counter()
    return {"locks": n, "counter_build_s": t1 - t0, "rtc_build_s": t2 - t1, "lookup_us": (t4 - t3) / 1e4 * 1e6,
            "entries": len(r._ctr) + len(r._rtc)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--secrets")
    ap.add_argument("--now", type=int, default=None, help="unix seconds (default: this machine's clock)")
    ap.add_argument("--ahead", type=int, default=96)
    ap.add_argument("--bench", type=int, default=0)
    ap.add_argument("data", nargs="*")
    a = ap.parse_args(argv)
    if a.bench:
        print(bench(a.bench, a.ahead))
        return 0
    secrets, last = load_table(a.secrets)
    r = Resolver(secrets, ahead=a.ahead, last=last)
    now = a.now if a.now is not None else int(time.time())
    status = 0
    for x in a.data:
        try:
            hit = r.resolve(binascii.unhexlify(x), now)
        except ValueError as e:
            print("%s: %s" % (x, e))
            status = 1
            continue
        print("%s: %s" % (x, "lock %s, period %d" % hit if hit else "unknown"))
        status |= hit is None
    return status


if __name__ == "__main__":
    sys.exit(main())
