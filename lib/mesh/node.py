# The lock as one sans-I/O object: advertising scheduler + rolling UUID + PB-ADV + PB-GATT + Link + Provisionee +
# key store. The firmware (firmware/radio.py) feeds it radio events with now_ms and applies the actions it
# returns; it never decides anything itself. Tests drive it with constructed events (tests/mp/test_node.py).
#
# Actions (take_actions(), in order):
#   ("adv", Advert)   (re)start advertising with this scheduler Advert (mesh.adv)
#   ("adv", None)     stop advertising
#   ("scan", bool)    start (continuous) / stop scanning for PB-ADV
#   ("notify", conn, value)   one notification on Mesh Provisioning Data Out
#   ("disconnect", conn)
#   ("addr", None)    the adverts from here on carry a new UUID: a board with private_address renews its address
#                     (advertising and scanning stopped first; the next "adv" restarts). Emitted before the
#                     first advert built from each UUID (the first one after boot included), never while a
#                     connection is up: the UUID is frozen during a link, and one still closing holds it back.
# Unprovisioned: scan + beacon/PB-GATT advertising, key pair generated ahead in deadline-0 slices. Provisioned:
# the configured state -- no provisioning adverts, no scanning, NetKey-derived keys in RAM (mesh.netkeys).
# docs/firmware.md has the firmware around it; the contract is in docs/architecture.md ("Node").
import os
from binascii import hexlify

from mesh import adv, beacon, const, keystore, log, netkeys, p256, pb_adv, pb_gatt, provisionee, rolling_uuid
from mesh.link import ADV, GATT, Link

PERIOD_KEY = "uuid_period"  # NVS key (namespace "mesh") of the rolling-UUID period counter; survives node reset
# Advertising PDU types of a scan result (Core Vol 4 Part E §7.7.65.2); PB-ADV rides ADV_NONCONN_IND (§5.2.1),
# but a provisioner on stock MicroPython can only send ADV_SCAN_IND or ADV_IND: all three are accepted.
_ADV_IND = const(0)
_ADV_SCAN_IND = const(2)
_ADV_NONCONN_IND = const(3)
_TAG = const("node")

# Board-config names, in bit order: OOB actions (§5.4.1.2, Tables 5.24 and 5.26), algorithms (Table 5.20),
# OOB Information (§3.10.2, Table 3.55). Bits 7 (certificate-based provisioning) and 8 (provisioning records) would
# promise what this device does not do (it answers the record PDUs with Invalid PDU); 9-10 are RFU: none can be set.
_OUTPUT_ACTIONS = const(("blink", "beep", "vibrate", "numeric", "alphanumeric"))
_INPUT_ACTIONS = const(("push", "twist", "numeric", "alphanumeric"))
_ALGORITHMS = const(("cmac", "hmac"))
_OOB_INFO = const(("other", "uri", "2d_code", "bar_code", "nfc", "number", "string", "", "", "", "",
                    "on_box", "inside_box", "on_paper", "inside_manual", "on_device"))
_OOB_UNSUPPORTED = const(0x0780)


def _bits(value, names):
    # an int, or a list of names; an unknown name is a ValueError (tuple.index)
    if isinstance(value, int):
        return value
    n = 0
    for v in value:
        n |= 1 << names.index(v or "?")
    return n


def board_config(board):
    """The board configuration (boards/config/*.json, a dict) -> (provisionee config, scheduler overrides,
    OOB Information, URI). ValueError for an unknown name."""
    p = dict(board.get("provisioning") or {})
    for key, names in (("output_actions", _OUTPUT_ACTIONS), ("input_actions", _INPUT_ACTIONS),
                       ("algorithms", _ALGORITHMS)):
        if key in p:
            p[key] = _bits(p[key], names)
    if board.get("hotel"):
        p["hotel"] = dict(board["hotel"])
    oob = _bits(board.get("oob_info", 0), _OOB_INFO)
    if oob & _OOB_UNSUPPORTED:
        raise ValueError("oob_info")
    return p, dict(board.get("advertising") or {}), oob, board.get("uri")


class Node:
    """nvs: esp32.NVS("mesh")-like (key store and rolling-UUID counter). board: a board-config dict.
    factory: mesh.factory.FactoryData or None. app: the firmware's provisionee callbacks (docs/provisioning.md).
    uuid: a fixed 16-byte Device UUID (tests, bring-up) instead of the rolling or per-boot random one.
    keypair: (private32, public64) for the first attempt (spec sample data)."""

    def __init__(self, nvs, board=None, factory=None, now_ms=0, rand=os.urandom, app=None, uuid=None,
                 keypair=None):
        self.nvs, self.rand, self.app = nvs, rand, app
        self._now = now_ms
        self._actions = []
        board = board or {}
        cfg, adv_cfg, oob_info, uri = board_config(board)
        self.store = keystore.KeyStore(nvs)
        self.prov = self._provisionee(cfg, factory, keypair)
        self._counter = self.rolling = None
        if uuid is None and factory is not None and factory.uuid_secret:
            period_s = board.get("uuid_period_s", rolling_uuid.DEFAULT_PERIOD_S)  # shorter only for tests and bring-up
            self._counter = rolling_uuid.PeriodCounter(self._stored_period(), now_ms, period_s)
            self._period = self._counter.period(now_ms)
            self.rolling = rolling_uuid.RollingUuid(factory.uuid_secret, self._period)
            self._save_period()
            self._kind = "rolling"
        elif uuid is None:  # no rolling-UUID secret: a new random UUID every boot
            uuid, self._kind = rolling_uuid.uuid4(rand(16)), "random"
            log.info(_TAG, "no rolling-UUID secret: random UUID for this boot")
        else:
            self._kind = "fixed"
        self.uuid_src = self.rolling or bytes(uuid)  # what the scheduler and PB-ADV read the UUID from
        self.sched = adv.Scheduler(self.uuid_src, oob_info, uri, adv_cfg, rand)
        self.link = Link(self.prov, pb_adv.PbAdv(self.uuid_src, rand), pb_gatt.PbGatt())
        self.net = None  # NetKeys once provisioned (RAM only)
        self._bearer = None  # link.bearer as last seen: scheduler link_opened/link_closed on changes
        self._started = False  # Provisioning Start seen on the current PB-ADV link
        self._provisioned = False
        self._on_air = None  # the Advert the controller is sending (None: not advertising)
        self._addr_uuid = None  # the UUID the current radio address has carried ("addr" action)
        self._conns = set()  # connections up (a refused or closed one stays until its disconnect event)
        self._scanning = False
        if self.prov.is_provisioned:
            self._configured()
        else:
            self.sched.enable(now_ms)
        self._after(now_ms)

    def _provisionee(self, cfg, factory, keypair):
        # Factory data wins over the board; a combination the provisionee refuses falls back to the board's
        # config rather than crash-looping the lock (docs/keystore.md, "Factory data").
        full = dict(cfg)
        if factory is not None:
            full.update(factory.config())
        try:
            return provisionee.Provisionee(full, self.store, self.rand, self.app, keypair)
        except ValueError:
            log.error(_TAG, "factory data and board config disagree: board config only")
            return provisionee.Provisionee(cfg, self.store, self.rand, self.app, keypair)

    # ---- rolling-UUID period counter (no RTC: +1 per boot and per period of uptime, kept in NVS) ----
    def _stored_period(self):
        try:
            return max(0, self.nvs.get_i32(PERIOD_KEY))
        except OSError as e:
            if not keystore.missing(e):
                log.error(_TAG, "period counter unreadable (%s): starting at 0", e.args[0] if e.args else "?")
            return 0

    def _save_period(self):
        try:
            self.nvs.set_i32(PERIOD_KEY, self._period)
            self.nvs.commit()
        except OSError as e:  # the UUID still rolls; after a reboot it may repeat an earlier period's
            log.error(_TAG, "period counter not saved (%s)", e.args[0] if e.args else "?")

    # ---- radio events in ----
    def scan_result(self, now_ms, adv_type, addr, data):
        """One advertisement heard while scanning: PB-ADV PDUs (AD type 0x29) go to the link."""
        self._now = now_ms
        if not self._scanning or adv_type not in (_ADV_NONCONN_IND, _ADV_SCAN_IND, _ADV_IND):
            return
        try:
            ads = beacon.ad_structures(data)
        except ValueError:
            return  # malformed advertising data: not ours to repair
        for typ, value in ads:
            if typ == beacon.AD_PB_ADV:
                self.link.adv_receive(now_ms, value)
                self._after(now_ms)  # only for PB-ADV: the other adverts of a busy air cost just the parse

    def connected(self, now_ms, conn):
        """A central connected (_IRQ_CENTRAL_CONNECT): the controller has stopped advertising."""
        self._now = now_ms
        self._on_air = None
        self._conns.add(conn)
        self.link.gatt_connected(now_ms, conn)
        self._after(now_ms)

    def disconnected(self, now_ms, conn):
        self._now = now_ms
        self._conns.discard(conn)
        self.link.gatt_disconnected(now_ms, conn)
        self._after(now_ms)

    def mtu_exchanged(self, conn, mtu):
        self.link.gatt_mtu(conn, mtu)

    def write(self, now_ms, conn, value):
        """A write to Mesh Provisioning Data In (0x2ADB)."""
        self._now = now_ms
        self.link.gatt_write(now_ms, conn, value)
        self._after(now_ms)

    def poll(self, now_ms):
        """Timers, one slice of pending crypto, the rolling-UUID period; then what to put on air."""
        self._now = now_ms
        self.link.poll(now_ms)
        c = self._counter
        if c is not None:
            p = c.period(now_ms)
            if p != self._period:
                self._period = p
                self.rolling.update(p)  # held back while a link is open (the scheduler froze it)
                self._save_period()
        self._after(now_ms)

    def deadline(self):
        """Next now_ms at which poll() must run (0: as soon as the radio allows, e.g. key generation)."""
        ds = [d for d in (self.link.deadline(), self.sched.deadline()) if d is not None]
        c = self._counter
        if c is not None:
            ds.append(c.boot_ms + (self._period - c.base + 1) * c.period_ms)
        return min(ds) if ds else None

    def take_actions(self):
        out, self._actions = self._actions, []
        return out

    # ---- the user (REPL, button) ----
    def input_number(self, number, now_ms=None):
        """The Input OOB number the user entered (push/twist count or numeric); ValueError if none is expected."""
        self.prov.input_number(number)
        self.poll(self._now if now_ms is None else now_ms)

    def input_string(self, string, now_ms=None):
        self.prov.input_string(string)
        self.poll(self._now if now_ms is None else now_ms)

    def reset(self, now_ms=None):
        """Node reset (§3.10.7 / Config Node Reset's effect): erase the keys, abandon any attempt, fresh key pair,
        back to beaconing. OSError if NVS fails (call again to finish)."""
        now = self._now if now_ms is None else now_ms
        log.info(_TAG, "node reset")
        self.prov.reset()  # store.erase() first: nothing changes in RAM if it raises
        self.net = None
        self._provisioned = False
        self.sched.enable(now)
        self.poll(now)  # the link closes the bearer the provisionee gave up (disconnect / Link Close)

    def status(self):
        """State, UUID, bearer, address, which keys are present (16-bit fingerprints): never a secret."""
        uuid = self.uuid_src
        if not isinstance(uuid, bytes):
            uuid = uuid.uuid
        r = self.prov.record
        p = self.prov
        return {
            "state": "provisioned" if r is not None else ("provisioning" if self._bearer else "unprovisioned"),
            "step": p.state,
            "uuid": hexlify(uuid).decode(),
            "uuid_kind": self._kind,
            "bearer": {ADV: "PB-ADV", GATT: "PB-GATT"}.get(self._bearer),
            "address": None if r is None else "0x%04x" % r["address"],
            "keys": keystore.summary(r),
            "nid": None if self.net is None else "0x%02x" % self.net.nid,
            "crypto": "busy" if p.deadline() == 0 else "idle",  # key pair generation or ECDH in slices
            "p256": p256.implementation(),  # the MESH_LOCK image has the C module _mesh_p256
            "advertising": "off" if self._on_air is None else "0x%02x" % self._on_air.data[1],  # first AD type
            "scanning": self._scanning,
            "backoff": 1 << self.sched.backoff,
        }

    # ---- internals ----
    def _configured(self):
        r = self.prov.record
        self.net = netkeys.NetKeys(r["net_key"])
        self.sched.disable()
        self._provisioned = True
        log.info(_TAG, "provisioned: address 0x%04x, %d element(s), NID 0x%02x", r["address"], r["elements"],
                 self.net.nid)

    def _after(self, now):
        # Everything that follows an input: scheduler told about link changes, frames queued, actions listed.
        link, s, prov = self.link, self.sched, self.prov
        b = link.bearer
        if b != self._bearer:
            if self._bearer is not None:
                s.link_closed(now, prov.is_provisioned)
            if b is not None:
                s.link_opened(now, b == GATT)
            self._bearer, self._started = b, False
        if b == ADV and not self._started and prov.state not in ("idle", "invite", "start"):
            self._started = True
            s.prov_started(now)
        if prov.is_provisioned and not self._provisioned:
            self._configured()
        for pdu, urgent in link.take_adv_frames():
            s.queue(now, pdu, urgent)
        acts = self._actions
        for conn, value in link.take_notifications():
            acts.append(("notify", conn, value))
        for conn in link.take_disconnects():
            acts.append(("disconnect", conn))
        a = s.poll(now)
        if a is not None and s.uuid != self._addr_uuid:
            if self._conns:
                a = None  # a link we closed, its connection not yet gone: the new UUID waits for the disconnect
            else:
                self._addr_uuid = s.uuid
                acts.append(("addr", None))
        if a is not self._on_air:
            self._on_air = a
            acts.append(("adv", a))
        scan = not self._provisioned or b == ADV or link.adv.state == pb_adv.OPEN
        if scan != self._scanning:
            self._scanning = scan
            acts.append(("scan", scan))
