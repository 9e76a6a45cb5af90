# Advertising scheduler: ESP32 MicroPython has ONE advertising set, so the Unprovisioned Device beacon, the URI
# advert, PB-GATT connectable advertising and PB-ADV PDUs take turns on it. Sans-I/O: the node tells it what
# happened (enable, link opened/closed, Provisioning Start seen, PDUs queued) with now_ms; poll(now_ms) says what
# to have on air; deadline() says when to ask again. Given the same `rand`, the same calls give the same answers.
#
# poll() returns an Advert or None (radio idle). A NEW Advert object means "(re)start advertising with this" (the
# controller sends its first event at once); the SAME object as last time means "leave the radio alone". Most
# Adverts last one advertising event (until_ms = start + interval_ms), which is how the jitter below is applied
# to every event and how the set is shared; the PB-GATT advert outside beacon windows lasts longer.
#
# Priorities: PB-ADV frames first (urgent ones, i.e. acks, ahead of the rest; a frame preempts any beacon or
# PB-GATT advert at once), then, only when no link is open, the duty-cycled beacon window, then PB-GATT.
# Behaviour, defaults and their source (the density study): docs/advertising.md.
from collections import namedtuple
import os

from mesh import beacon, const, log

# Advertising interval floor for non-connectable/scannable events (Core Vol 6 Part B §4.4.2.2.1: 20 ms).
_MIN_INTERVAL_MS = const(20)
# Spacing between the URI advert and the beacon before it (one minimum interval).
_URI_GAP_MS = const(20)

Advert = namedtuple("Advert", ("data", "interval_ms", "connectable", "until_ms", "resp"))

DEFAULTS = {
    # Beacon interval, drawn afresh for every event from [min, max] (on top of the controller's 0-10 ms advDelay).
    "interval_min_ms": 100,
    "interval_max_ms": 110,
    # Duty cycle: a beacon window of on_ms in every period_ms slot; the window's start inside its slot is drawn
    # from [0, window_jitter_ms] so that locks switched on together drift apart (see the density study).
    "on_ms": 1000,
    "period_ms": 10000,
    "window_jitter_ms": 9000,
    "uri_every": 5,  # with a URI: a URI advert after every 5th beacon (and the first of each window)
    # Stall backoff: a PB-ADV link without Provisioning Start within stall_ms, or a failed attempt, doubles the
    # beacon interval up to backoff_max_ms; back to 1x after backoff_quiet_ms without a link, or when provisioned.
    "stall_ms": 500,
    "backoff_max_ms": 1600,
    "backoff_quiet_ms": 60000,
    # PB-ADV: each PDU goes out pb_adv_count times, pb_adv_spacing_ms apart (2: tools/bench_bearers.py gives
    # ~0.8 s per provisioning without loss and ~0.9 s at 10 % loss, against 1.45/1.4 s for 3 and 0.33/1.6 s for
    # 1); the first response on a new link waits a random 0..response_jitter_ms (provisioners open links to many
    # locks at once).
    "pb_adv_count": 2,
    "pb_adv_spacing_ms": 20,
    "response_jitter_ms": 50,
    # PB-GATT connectable advertising outside beacon windows: fast for the first 60 s after enabling (and after
    # each link closes), then slow. Zephyr uses 100 ms then 1 s; with many locks in range that much connectable
    # advertising costs the beacons of all of them (density study), hence 500 ms, then 2 s.
    "beacon": True,
    "gatt": True,
    "gatt_fast_ms": 500,
    "gatt_slow_ms": 2000,
    "gatt_fast_for_ms": 60000,
}

_TAG = const("adv")


def make_config(overrides=None):
    """DEFAULTS with `overrides` applied and checked; an unknown key or an impossible value is a ValueError."""
    c = dict(DEFAULTS)
    for k in overrides or ():
        if k not in c:
            raise ValueError("unknown advertising option " + k)
        c[k] = overrides[k]
    lo, hi = c["interval_min_ms"], c["interval_max_ms"]
    if lo < _MIN_INTERVAL_MS or hi < lo or c["pb_adv_spacing_ms"] < _MIN_INTERVAL_MS:
        raise ValueError("advertising intervals must be >= 20 ms and min <= max")
    if c["gatt_fast_ms"] < _MIN_INTERVAL_MS or c["gatt_slow_ms"] < _MIN_INTERVAL_MS:
        raise ValueError("PB-GATT intervals must be >= 20 ms")
    if not 0 < c["on_ms"] <= c["period_ms"] or not 0 <= c["window_jitter_ms"] <= c["period_ms"] - c["on_ms"]:
        raise ValueError("need 0 < on_ms <= period_ms and window_jitter_ms <= period_ms - on_ms")
    if c["pb_adv_count"] < 1 or c["uri_every"] < 1 or c["backoff_max_ms"] < lo:
        raise ValueError("pb_adv_count, uri_every >= 1 and backoff_max_ms >= interval_min_ms")
    for k in ("stall_ms", "backoff_quiet_ms", "response_jitter_ms", "gatt_fast_for_ms"):
        if c[k] < 0:
            raise ValueError(k + " must be >= 0")
    return c


class Scheduler:
    def __init__(self, uuid, oob_info, uri=None, config=None, rand=os.urandom):
        """uuid: 16 bytes, or an object with a .uuid attribute and freeze()/unfreeze() (mesh.rolling_uuid
        .RollingUuid): the scheduler freezes it while a link is open and follows its changes otherwise."""
        self.cfg = c = make_config(config)
        self._rand = rand
        self._src = uuid
        self._oob = oob_info
        self._uri = uri
        self.uuid = None  # the UUID the beacon and PB-GATT adverts are built from (node.py: address renewal)
        self._payloads()  # builds now, so a bad UUID/OOB/URI is a ValueError here, not on air
        self._uri_ad = beacon.uri_advert(uri) if uri is not None else None
        k = 0
        while c["interval_min_ms"] << (k + 1) <= c["backoff_max_ms"]:
            k += 1
        self._k_max = k
        self.backoff = 0  # the beacon interval is multiplied by 2**backoff
        self.enabled = False
        self.link = None  # None, "adv" or "gatt"
        self._urgent = []  # bursts: [ad, transmissions left, not before]
        self._normal = []
        self._cur = None
        self._dirty = False
        self._wake = None
        self._resp_at = None
        self._stall_at = None
        self._quiet_at = None
        self._penalized = False
        self._slot = self._win_start = self._win_end = self._next_evt = 0
        self._uri_at = None
        self._n = 0
        self._fast_until = 0

    # ---- what happened -------------------------------------------------------------------------------------
    def enable(self, now_ms):
        """Unprovisioned and ready: beacon windows and PB-GATT advertising start now."""
        self.enabled = True
        self._fast_until = now_ms + self.cfg["gatt_fast_for_ms"]
        self._slot = now_ms
        self._place_window(self._uniform(0, self.cfg["interval_max_ms"]) if self.cfg["window_jitter_ms"] else 0)
        self._dirty = True

    def disable(self):
        """Provisioned (or beaconing switched off): no more beacons or PB-GATT adverts; queued PB-ADV frames
        (the last acks, Link Close) still go out. The backoff resets (a successful provisioning)."""
        self.enabled = False
        self.backoff = 0
        self._quiet_at = None
        self._dirty = True

    def link_opened(self, now_ms, gatt=False):
        """A provisioning link opened (PB-ADV Link Open accepted, or a PB-GATT connection): no beacon until it
        closes, and the UUID is frozen."""
        self.link = "gatt" if gatt else "adv"
        self._freeze(True)
        self._penalized = False
        self._quiet_at = None
        if not gatt:
            self._resp_at = now_ms + self._uniform(0, self.cfg["response_jitter_ms"])
            self._stall_at = now_ms + self.cfg["stall_ms"]
        self._dirty = True

    def prov_started(self, now_ms):
        """Provisioning Start arrived: the provisioner is not stalled."""
        self._stall_at = None

    def link_closed(self, now_ms, success=False):
        """The link ended. Without success this counts as a failed attempt (one backoff step per link)."""
        self.link = None
        self._stall_at = None
        self._resp_at = None
        self._freeze(False)
        if success:
            self.backoff = 0
        else:
            self._penalize()
        if self.backoff:
            self._quiet_at = now_ms + self.cfg["backoff_quiet_ms"]
        self._fast_until = now_ms + self.cfg["gatt_fast_for_ms"]
        self._dirty = True

    def queue(self, now_ms, pb_adv_pdu, urgent=False):
        """One PB-ADV PDU from the bearer's take_frames(): sent pb_adv_count times. ValueError if too long."""
        burst = [beacon.pb_adv_ad(pb_adv_pdu), self.cfg["pb_adv_count"], 0]
        (self._urgent if urgent else self._normal).append(burst)
        cur = self._cur
        if urgent or cur is None or cur.data[1] != beacon.AD_PB_ADV:
            self._dirty = True

    # ---- what to do ----------------------------------------------------------------------------------------
    def poll(self, now_ms):
        # Backoff timers first: a stalled link is one step up, a quiet spell back to 1x
        if self._stall_at is not None and now_ms >= self._stall_at:
            self._stall_at = None
            self._penalize()
        if self._quiet_at is not None and now_ms >= self._quiet_at:
            self._quiet_at = None
            self.backoff = 0
        cur = self._cur
        if cur is not None and not self._dirty and now_ms < cur.until_ms:
            return cur
        self._dirty = False
        self._wake = None
        adv = self._frame(now_ms)
        if adv is None and not (self._urgent or self._normal) and self.link is None and self.enabled:
            adv = self._idle(now_ms)
        self._cur = adv
        return adv

    def deadline(self):
        """Next now_ms at which poll() must run (0: at once), or None when nothing is pending."""
        if self._dirty:
            return 0
        t = self._cur.until_ms if self._cur is not None else self._wake
        for d in (self._stall_at, self._quiet_at):
            if d is not None and (t is None or d < t):
                t = d
        return t

    # ---- internals -----------------------------------------------------------------------------------------
    def _uniform(self, lo, hi):
        if hi <= lo:
            return lo
        return lo + int.from_bytes(self._rand(2), "big") % (hi - lo + 1)

    def _freeze(self, on):
        src = self._src
        if hasattr(src, "freeze"):
            if on:
                src.freeze()
            else:
                src.unfreeze()

    def _penalize(self):
        # Stall and failure within one link count once: the provisioner's trouble, not two pieces of evidence.
        if not self._penalized:
            self._penalized = True
            if self.backoff < self._k_max:
                self.backoff += 1
                log.info(_TAG, "beacon backoff x%d", 1 << self.backoff)

    def _payloads(self):
        u = self._src if isinstance(self._src, (bytes, bytearray)) else self._src.uuid
        if u != self.uuid:
            self._beacon_ad = beacon.unprovisioned_beacon(u, self._oob, self._uri)
            self._gatt_ad = beacon.pb_gatt_adv(u, self._oob)
            self.uuid = bytes(u)

    def _frame(self, now):
        if not (self._urgent or self._normal):
            return None
        if self._resp_at is not None and now < self._resp_at:
            self._wake = self._resp_at
            return None
        sp = self.cfg["pb_adv_spacing_ms"]
        wake = None
        for q in (self._urgent, self._normal):
            for b in q:
                if b[2] <= now:
                    b[1] -= 1
                    b[2] = now + sp
                    if not b[1]:
                        q.remove(b)
                    self._resp_at = None
                    return Advert(b[0], sp, False, now + sp, None)
                if wake is None or b[2] < wake:
                    wake = b[2]
        self._wake = wake
        return None

    def _place_window(self, offset):
        self._win_start = self._slot + offset
        self._win_end = self._win_start + self.cfg["on_ms"]
        self._next_evt = self._win_start
        self._uri_at = None
        self._n = 0

    def _idle(self, now):
        c = self.cfg
        self._payloads()
        while now >= self._win_end:
            self._slot += c["period_ms"]
            self._place_window(self._uniform(0, c["window_jitter_ms"]))
        if c["beacon"] and now >= self._win_start:
            if self._uri_at is not None and now >= self._uri_at:
                self._uri_at = None
                until = min(self._next_evt, self._win_end)
                return Advert(self._uri_ad, max(until - now, _MIN_INTERVAL_MS), False, until, None)
            if now < self._next_evt:
                self._wake = self._uri_at or self._next_evt
                return None
            iv = self._uniform(c["interval_min_ms"], c["interval_max_ms"]) << self.backoff
            self._next_evt = now + iv
            until = min(self._next_evt, self._win_end)
            if self._uri_ad is not None and self._n % c["uri_every"] == 0 and now + _URI_GAP_MS < until:
                self._uri_at = until = now + _URI_GAP_MS
            elif c["interval_min_ms"] == c["interval_max_ms"]:
                # Fixed interval: one Advert for the rest of the window, so the controller's own 0-10 ms
                # advDelay (Core Vol 6 Part B §4.4.2.2.1) still separates events; restarting every event would
                # remove it and keep locks that started together in lockstep.
                until = self._win_end
            self._n += 1
            return Advert(self._beacon_ad, iv, False, until, None)
        if not c["gatt"]:
            self._wake = self._win_start if c["beacon"] else None
            return None
        fast = now < self._fast_until
        until = self._win_start if c["beacon"] else 1 << 62
        if fast and self._fast_until < until:
            until = self._fast_until
        return Advert(self._gatt_ad, c["gatt_fast_ms"] if fast else c["gatt_slow_ms"], True, until, self._uri_ad)
