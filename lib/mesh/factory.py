# Per-lock factory data, read at boot from the NVS namespace "factory" (written by tools/factory.py as an NVS
# partition image; docs/keystore.md "Factory data"). Missing or malformed items never stop a boot: each one
# gives a clear log line (naming the item, never its value) and a safe default -- the feature it enables is off
# (no static OOB, no OOB public key, no rolling UUID, no hotel check) or the board's capability value stays.
from binascii import hexlify

from mesh import const, keystore, log
from mesh.p256 import N as P256_N  # P-256 group order: a private key is in [1, n - 1]

NAMESPACE = "factory"
_TAG = const("factory")
_I32_MAX = const(0x7FFFFFFF)

# blobs: NVS key -> accepted lengths
BLOBS = (("uuid_secret", range(16, 65)), ("static_oob", (16, 32)), ("oob_priv", (32,)), ("oob_pub", (64,)))
# capability overrides (i32), named as the provisionee's config keys (docs/provisioning.md), with their ranges
# from the Provisioning Capabilities PDU (§5.4.1.2); a range ending 2**n - 1 is a bit field whose RFU bits are
# prohibited. Algorithms 2-3: "The BTM_ECDH_P256_HMAC_SHA256_AES_CCM bit [...] shall be set to 1 by a Provisionee".
CAPS = (("elements", 1, 255), ("algorithms", 2, 0x03), ("oob_required", 0, 1), ("output_size", 0, 8),
         ("output_actions", 0, 0x1F), ("input_size", 0, 8), ("input_actions", 0, 0x0F))


class FactoryData:
    """uuid_secret, static_oob, oob_keypair ((private32, public64) or None), room, floor (int or None),
    capabilities (dict of overrides), problems (list of messages). config() -> the provisionee config items."""

    def __init__(self):
        self.uuid_secret = self.static_oob = self.oob_keypair = self.room = self.floor = None
        self.capabilities = {}
        self.problems = []

    def __repr__(self):
        return "<FactoryData uuid_secret:%s static_oob:%s oob_keypair:%s room:%s floor:%s overrides:%s>" % (
            "yes" if self.uuid_secret else "no", len(self.static_oob) if self.static_oob else "no",
            "yes" if self.oob_keypair else "no", self.room, self.floor, ",".join(sorted(self.capabilities)) or "-")

    def config(self):
        """What this lock's factory data adds to the board's provisioning config (Provisionee(config, ...))."""
        c = dict(self.capabilities)
        if "oob_required" in c:
            c["oob_required"] = bool(c["oob_required"])
        if self.static_oob:
            c["static_oob"] = self.static_oob
        if self.oob_keypair:
            c["oob_keypair"] = self.oob_keypair
        if self.room is not None and self.floor is not None:
            c["hotel"] = {"floor": self.floor, "room": self.room}
        return c

    def secrets_hex(self):
        out = [self.uuid_secret, self.static_oob] + list(self.oob_keypair[:1] if self.oob_keypair else ())
        return [hexlify(s).decode() for s in out if s]


def _problem(fd, key, why):
    fd.problems.append("%s: %s" % (key, why))
    log.error(_TAG, "%s %s: ignored, using the default", key, why)


def _read(fd, nvs, key, blob):
    # -> value, or None when absent/unreadable (logged unless simply absent)
    try:
        if blob:
            buf = bytearray(64)
            n = nvs.get_blob(key, buf)
            return bytes(buf[:n])
        return nvs.get_i32(key)
    except OSError as e:
        if keystore.missing(e):
            return None
        _problem(fd, key, "unreadable (error %s)" % (e.args[0] if e.args else "?"))
        return None


def load(nvs):
    """FactoryData from an esp32.NVS(NAMESPACE)-like object (or None: no factory data). Never raises."""
    fd = FactoryData()
    if nvs is None:
        log.info(_TAG, "no factory data: defaults")
        return fd
    blobs = {}
    for key, lengths in BLOBS:
        v = _read(fd, nvs, key, True)
        if v is not None and len(v) not in lengths:
            _problem(fd, key, "has a bad length (%d bytes)" % len(v))
            v = None
        blobs[key] = v
    fd.uuid_secret, fd.static_oob = blobs["uuid_secret"], blobs["static_oob"]
    priv, pub = blobs["oob_priv"], blobs["oob_pub"]
    if priv is not None and not 0 < int.from_bytes(priv, "big") < P256_N:
        _problem(fd, "oob_priv", "is not a P-256 private key")
        priv = None
    if (priv is None) != (pub is None):
        _problem(fd, "oob_priv/oob_pub", "come as a pair; one is missing or bad (no OOB public key)")
    elif priv is not None:
        fd.oob_keypair = (priv, pub)
    for key in ("room", "floor"):
        v = _read(fd, nvs, key, False)
        if v is not None and not 0 <= v <= _I32_MAX:
            _problem(fd, key, "is negative")
            v = None
        setattr(fd, key, v)
    if (fd.room is None) != (fd.floor is None):
        _problem(fd, "room/floor", "come as a pair; one is missing (no hotel check)")
        fd.room = fd.floor = None
    for key, lo, hi in CAPS:
        v = _read(fd, nvs, key, False)
        if v is None:
            continue
        if not lo <= v <= hi:
            _problem(fd, key, "out of range (%d)" % v)
        else:
            fd.capabilities[key] = v
    for size, actions in (("output_size", "output_actions"), ("input_size", "input_actions")):
        c = fd.capabilities
        if (c.get(size, 0) > 0) != (c.get(actions, 0) > 0) and (size in c or actions in c):
            _problem(fd, size + "/" + actions, "disagree (a size needs actions and actions a size)")
            c.pop(size, None)
            c.pop(actions, None)
    if fd.uuid_secret is None and not fd.problems:
        log.info(_TAG, "no rolling-UUID secret")
    log.info(_TAG, "%r", fd)
    return fd
