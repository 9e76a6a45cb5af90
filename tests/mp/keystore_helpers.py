# MicroPython side of tests/test_keystore_crash.py: power-cut a key-store operation after its k-th NVS write or
# commit, reboot, and report what the store loads. Runs inside the `micropython` process (tests/mpy.py).
import os
import sys

sys.path.insert(0, "tools/host")
import esp32  # noqa: E402  (host stand-in)

from mesh import keystore, log  # noqa: E402
from mesh.keystore import KeyStore  # noqa: E402

OLDER = {"net_key": b"\x01" * 16, "net_key_index": 1, "flags": 0, "iv_index": 1, "address": 0x0101,
         "elements": 1, "dev_key": b"\x11" * 16, "hotel": None}
OLD = dict(OLDER, net_key=b"\x02" * 16, dev_key=b"\x22" * 16, iv_index=2, address=0x0202)
NEW = dict(OLDER, net_key=b"\x03" * 16, dev_key=b"\x33" * 16, iv_index=3, address=0x0303, elements=4,
           hotel={"mh_key": b"MHKY", "floor_key": b"FLKY", "room_key": b"RMKY"})


class Logs:
    """Capture mesh.log lines: `with Logs() as lg: ...` then lg.lines / lg.text() / lg.errors()."""

    def __enter__(self):
        self.lines, self.old = [], log.sink
        log.sink = self.lines.append
        return self

    def __exit__(self, *a):
        log.sink = self.old

    def text(self):
        return "\n".join(self.lines)

    def errors(self):
        return [line for line in self.lines if line.startswith("[E]")]


def _name(rec):
    for n, r in (("older", OLDER), ("old", OLD), ("new", NEW)):
        if rec == r:
            return n
    return "none" if rec is None else "other"


def _setup(flash, scenario):
    nvs = esp32.NVS("mesh")
    if scenario in ("resave", "reset"):
        KeyStore(nvs).save(OLD)
    elif scenario in ("both", "reset-both"):  # a previous save was cut between its two commits
        for slot, rec, gen in ((0, OLDER, 1), (1, OLD, 2)):
            nvs.set_blob(keystore.SLOTS[slot], keystore.encode(rec, gen))
            nvs.commit()
    flash.power_cycle()


def crash_matrix(path, durable, torn, scenario):
    """-> [(k, crashed, what load() returned after the reboot, recovered)] for k = 1.. until an operation runs
    to the end without reaching its k-th write."""
    out = []
    with Logs():
        k = 0
        while True:
            k += 1
            try:
                os.remove(path)
            except OSError:
                pass
            f = esp32.use_flash(path, durable)
            _setup(f, scenario)
            f.crash_after(k, torn)
            store = KeyStore(esp32.NVS("mesh"))
            crashed = False
            try:
                if scenario.startswith("reset"):
                    store.erase()
                else:
                    store.save(NEW)
            except esp32.PowerLoss:
                crashed = True
            f.power_cycle()
            got = _name(KeyStore(esp32.NVS("mesh")).load())
            # after any crash the store must still work: save, reboot, load
            s2 = KeyStore(esp32.NVS("mesh"))
            s2.save(NEW)
            f.power_cycle()
            recovered = KeyStore(esp32.NVS("mesh")).load() == NEW
            out.append((k, crashed, got, recovered))
            if not crashed:
                os.remove(path)
                return out
