# Drives a mesh.adv.Scheduler the way the firmware does: poll at every deadline, note each new Advert.
class Rand:
    """Deterministic stand-in for os.urandom (a 32-bit LCG; enough for scheduling decisions)."""

    def __init__(self, seed):
        self.x = seed & 0xFFFFFFFF

    def __call__(self, n):
        out = bytearray(n)
        for i in range(n):
            self.x = (self.x * 1664525 + 1013904223) & 0xFFFFFFFF
            out[i] = self.x >> 24
        return bytes(out)


def run(s, t, t_end, hooks=None):
    """Poll `s` from t to t_end; returns [(start_ms, Advert)] for every new Advert. hooks: {time: fn(s, time)}
    called (in time order) when the clock reaches them, before that poll."""
    out = []
    last = None
    pending = sorted((hooks or {}).items())
    while t < t_end:
        while pending and pending[0][0] <= t:
            pending.pop(0)[1](s, t)
        a = s.poll(t)
        if a is not None and a is not last:
            out.append((t, a))
        last = a
        d = s.deadline()
        if pending and (d is None or pending[0][0] < d):
            d = pending[0][0]
        if d is None:
            break
        t = d if d > t else t + 1
    return out


def kind(a):
    t = a.data[1]
    return {0x2B: "beacon", 0x24: "uri", 0x29: "pbadv", 0x01: "gatt"}[t]
