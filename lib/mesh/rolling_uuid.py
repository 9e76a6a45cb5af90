# Rolling Device UUID: a lock's UUID changes every period so an observer cannot follow one lock from period to
# period, while the hotel's provisioner, which holds every lock's secret, can say which lock a beacon belongs to
# (tools/uuid_resolver.py). UUID = first 16 octets of HMAC-SHA256(secret, period number as 4 octets big-endian)
# with the RFC 4122 version-4 and variant bits set, so it looks like any random UUID (the specification asks only
# that the Device UUID follow RFC 4122).
#
# Period number (the firmware supplies it; lib never reads a clock or NVS):
#   * RTC set: period_from_rtc(unix_seconds) = seconds // period_s (about 986,000 in 2026);
#   * no RTC: PeriodCounter, a counter the firmware keeps in NVS, bumped at every boot and every period_s of
#     uptime. Small numbers (1, 2, ...), so the two sources never collide. docs/advertising.md says how the
#     provisioner finds either.
# The secret never appears in a repr or a log line.
from mesh import const, crypto

DEFAULT_PERIOD_S = const(1800)  # 30 minutes
_SECRET_MIN_LEN = const(16)
_PERIOD_MAX = const(0xFFFFFFFF)


def derive(secret, period):
    """The UUID of `secret` in period `period` (0 <= period < 2**32)."""
    if len(secret) < _SECRET_MIN_LEN:
        raise ValueError("rolling-UUID secret shorter than 16 bytes")
    if not 0 <= period <= _PERIOD_MAX:
        raise ValueError("period number out of range")
    return uuid4(crypto.hmac_sha256(secret, period.to_bytes(4, "big"))[:16])


def uuid4(raw16):
    """16 random (or pseudo-random) octets as an RFC 4122 version-4 UUID."""
    u = bytearray(raw16)
    u[6] = (u[6] & 0x0F) | 0x40  # RFC 4122 §4.4: version 4
    u[8] = (u[8] & 0x3F) | 0x80  # RFC 4122 §4.1.1: variant 10x
    return bytes(u)


def period_from_rtc(unix_s, period_s=DEFAULT_PERIOD_S):
    return unix_s // period_s


class PeriodCounter:
    """Period numbers for a lock whose clock is not set. Give it the value the firmware stored in NVS (0 if none)
    and the boot time; persist `period(now_ms)` every time it changes, starting now (the boot bump: a lock that
    reboots every few minutes must still change its UUID)."""

    def __init__(self, stored, boot_ms, period_s=DEFAULT_PERIOD_S):
        if stored < 0:
            raise ValueError("stored period counter is negative")
        if period_s < 1:
            raise ValueError("period_s")
        self.base = stored + 1
        self.boot_ms = boot_ms
        self.period_ms = period_s * 1000

    def period(self, now_ms):
        return self.base + (now_ms - self.boot_ms) // self.period_ms


class RollingUuid:
    """The current UUID of one lock. update(period) moves it on, except while frozen (a link is open or a
    provisioning is running: the provisioner must keep seeing the UUID it opened the link to); the move then
    happens at unfreeze()."""

    def __init__(self, secret, period):
        self._secret = bytes(secret)
        self.uuid = derive(self._secret, period)
        self.period = period
        self.frozen = False
        self._pending = None

    def update(self, period):
        """Returns True when the UUID changed now."""
        if self.frozen:
            self._pending = None if period == self.period else period
            return False
        if period == self.period:
            return False
        self.uuid = derive(self._secret, period)
        self.period = period
        return True

    def freeze(self):
        self.frozen = True

    def unfreeze(self):
        """Returns True when a period change held back while frozen took effect."""
        self.frozen = False
        p, self._pending = self._pending, None
        return p is not None and self.update(p)

    def __repr__(self):
        return "<RollingUuid period=%d%s>" % (self.period, " frozen" if self.frozen else "")
