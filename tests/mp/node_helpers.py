# Drive mesh.node.Node the way firmware/radio.py does, without a radio: apply its actions to a model of the
# controller and poll it at its deadlines. Used by tests/mp/test_node.py and, through the `mpy` fixture, by
# tests/test_node_hostprov.py (the host provisioner against the whole node running in MicroPython).
import sys

sys.path.insert(0, "tools/host")
import esp32  # noqa: E402  (host stand-in: the key store's NVS)

from hostprov_helpers import _App  # noqa: E402  (records the Output OOB values shown and Input OOB requests)
from test_factory import nvs as factory_nvs  # noqa: E402

from mesh import beacon, factory, log  # noqa: E402
from mesh.node import Node  # noqa: E402

ADDR = b"\xc0\xff\xee\x00\x00\x01"
CONN = 5


class Air:
    """What the node asked of the controller: adverts started (with the time), notifications, disconnects."""

    def __init__(self, node):
        self.node = node
        self.adverts = []  # (now, Advert)
        self.on_air = None
        self.scanning = False
        self.notified = []  # (conn, value)
        self.dropped = []  # conns
        self.renewed = []  # (now, number of adverts started before): "addr" actions (a new private address)

    def apply(self, now):
        for a in self.node.take_actions():
            if a[0] == "adv":
                self.on_air = a[1]
                if a[1] is not None:
                    self.adverts.append((now, a[1]))
            elif a[0] == "scan":
                self.scanning = a[1]
            elif a[0] == "notify":
                self.notified.append((a[1], a[2]))
            elif a[0] == "addr":
                self.renewed.append((now, len(self.adverts)))
            else:
                self.dropped.append(a[1])

    def connect(self, now, conn):
        """A central connects: the controller stops advertising, then the IRQ reaches the node."""
        self.on_air = None
        self.node.connected(now, conn)
        self.apply(now)

    def run(self, now, until):
        """Poll at every deadline up to `until` (crypto slices included); returns `until`."""
        self.apply(now)
        while True:
            d = self.node.deadline()
            if d is None or d > until:
                return until
            now = max(now, d)
            self.node.poll(now)
            self.apply(now)

    def take_frames(self):
        """PB-ADV PDUs put on air since the last call, in order (one per Advert: a burst shows as repeats)."""
        out = [a.data[2:] for t, a in self.adverts if a.data[1] == beacon.AD_PB_ADV]
        self.adverts = []
        return out


def quiet(line):
    pass


# ---- RPC side for tests/test_node_hostprov.py (one node per MicroPython process at a time) ----
_s = {}


def new(board, uuid, factory_items=None):
    """A fresh lock over an empty in-memory NVS partition; factory_items: {key: bytes | int} in "factory"."""
    log.sink = quiet  # stdout carries the RPC replies
    fd = None
    if factory_items:
        fd = factory.load(factory_nvs(**factory_items))  # a fresh partition with these factory items
    else:
        esp32.use_flash(None)
    app = _App()
    node = Node(esp32.NVS("mesh"), board, fd, now_ms=0, app=app, uuid=uuid)
    _s.update(node=node, air=Air(node), app=app, board=board)
    return step(0)


def reboot(now):
    """Power-cycle: a new Node over the same NVS partition (what the next boot sees)."""
    esp32.flash().power_cycle()
    fd = factory.load(esp32.NVS(factory.NAMESPACE))
    node = Node(esp32.NVS("mesh"), _s["board"], fd, now_ms=now, app=_s["app"])
    _s.update(node=node, air=Air(node))
    return step(now)


def step(now, ev=None):
    """Feed the events of dict `ev` at `now` (frames: PB-ADV PDUs heard, connect, mtu, writes, number: an Input
    OOB answer, disconnect), run to ev["until"] (default `now`), report what the node did."""
    node, air = _s["node"], _s["air"]
    ev = ev or {}
    frames, connect, mtu, writes = ev.get("frames", ()), ev.get("connect"), ev.get("mtu"), ev.get("writes", ())
    disconnect, until, number = ev.get("disconnect"), ev.get("until"), ev.get("number")
    if connect:
        air.connect(now, CONN)
    if mtu:
        node.mtu_exchanged(CONN, mtu)
    for f in frames:
        if air.scanning:
            node.scan_result(now, 3, ADDR, bytes((len(f) + 1, beacon.AD_PB_ADV)) + f)
    for v in writes:
        node.write(now, CONN, v)
    if number is not None:
        if isinstance(number, str):
            node.input_string(number, now)
        else:
            node.input_number(number, now)
    if disconnect:
        node.disconnected(now, CONN)
    air.run(now, now if until is None else until)
    notified, air.notified = [v for c, v in air.notified], []
    dropped, air.dropped = air.dropped, []
    on = air.on_air
    return {"frames": air.take_frames(), "notify": notified, "drop": dropped, "deadline": node.deadline(),
            "status": node.status(), "shown": _s["app"].shown, "asked": _s["app"].asked,
            "on_air": None if on is None else [on.data, on.connectable]}


def reset(now):
    _s["node"].reset(now)
    return True


def record():
    return _s["node"].prov.record
