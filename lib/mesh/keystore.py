# Power-fail-safe provisioning record in NVS (docs/keystore.md has the layout, the commit order and why).
#
# `nvs` is any object with esp32.NVS's methods: on the board esp32.NVS("mesh"), on the host the stand-in in
# tools/host/esp32.py. The design assumes only what MicroPython and ESP-IDF document: nothing is durable before
# commit(), and nothing about what a power cut in the middle of a write or a commit leaves behind. So:
#   * two slots, each one blob holding a whole record with a generation number and an integrity check;
#   * save() writes the slot that does NOT hold the current record, commits, and only then erases the old slot;
#     every commit covers exactly one mutation, so nothing depends on ordering inside a commit;
#   * load() takes the valid slot with the newest generation. A torn or corrupt slot fails its check and is
#     ignored, so a crash anywhere in save() leaves the old record or the new one, never a mix.
# Secrets never reach a log line or a repr: only presence and a 16-bit fingerprint (summary()).
import hashlib
from binascii import hexlify

from mesh import const, log

_FORMAT_VERSION = const(1)
SLOTS = ("prov.a", "prov.b")  # NVS keys (<= 15 characters)
RECORD_LEN = const(68)
_BODY_LEN = const(60)  # everything before the check
_CHECK_LEN = const(8)  # SHA-256 truncated to 64 bits, see docs/keystore.md "Integrity"
_READ_LEN = const(96)  # get_blob buffer: room for a somewhat longer future record, rejected by its version
_GEN_HALF = const(0x80000000)
_GEN_MASK = const(0xFFFFFFFF)

# ESP-IDF error codes as esp32.NVS raises them: OSError(-code)
_ESP_ERR_NVS_NOT_FOUND = const(0x1102)
_ESP_ERR_NVS_TYPE_MISMATCH = const(0x1103)
_ESP_ERR_NVS_INVALID_LENGTH = const(0x110C)

# Provisioning Data limits (§5.4.2.5; addresses §3.4.2.2)
_ADDR_UNICAST_MAX = const(0x7FFF)
_NET_KEY_INDEX_MAX = const(0x0FFF)
_FLAGS_KNOWN = const(0x03)  # bit 0 Key Refresh, bit 1 IV Update; the rest prohibited
_TAG = const("keystore")


def _check(body):
    return hashlib.sha256(body).digest()[:_CHECK_LEN]


def _errno(e):
    return e.args[0] if e.args else 0


def missing(e):
    """True when an OSError from esp32.NVS means "no such key" (ESP_ERR_NVS_NOT_FOUND, raised as OSError(-code)):
    the one NVS condition every reader treats as "absent" rather than as a fault."""
    return -_errno(e) == _ESP_ERR_NVS_NOT_FOUND


def encode(record, generation):
    """The slot blob for `record` (the dict in docs/architecture.md). ValueError if a field is out of range."""
    net_key, dev_key, hotel = record["net_key"], record["dev_key"], record.get("hotel")
    index, flags, iv = record["net_key_index"], record["flags"], record["iv_index"]
    addr, elements = record["address"], record["elements"]
    if (len(net_key) != 16 or len(dev_key) != 16 or not 0 <= index <= _NET_KEY_INDEX_MAX
            or flags & ~_FLAGS_KNOWN or not 0 <= flags or not 0 <= iv <= _GEN_MASK
            or not 1 <= elements <= 255 or not 1 <= addr <= _ADDR_UNICAST_MAX - elements + 1):
        raise ValueError("provisioning record out of range")
    extra = bytes(12)
    if hotel is not None:
        extra = bytes(hotel["mh_key"]) + bytes(hotel["floor_key"]) + bytes(hotel["room_key"])
        if len(extra) != 12:
            raise ValueError("hotel keys must be 4 bytes each")
    # bytes 5..29 are laid out exactly as the Provisioning Data PDU's plaintext (§5.4.1.8)
    body = (bytes((_FORMAT_VERSION,)) + (generation & _GEN_MASK).to_bytes(4, "big") + bytes(net_key)
            + index.to_bytes(2, "big") + bytes((flags,)) + iv.to_bytes(4, "big") + addr.to_bytes(2, "big")
            + bytes((elements,)) + bytes(dev_key) + bytes((hotel is not None,)) + extra)
    return body + _check(body)


def decode(blob):
    """(generation, record) from a slot blob, or a string saying why it is not a valid record."""
    if len(blob) < 1 or blob[0] != _FORMAT_VERSION:
        return "unsupported format version %d" % (blob[0] if blob else -1)
    if len(blob) != RECORD_LEN:
        return "wrong length %d" % len(blob)
    body = bytes(blob[:_BODY_LEN])
    if _check(body) != bytes(blob[_BODY_LEN:]):
        return "integrity check failed (torn or corrupt write)"
    hotel = None
    if body[47] == 1:
        hotel = {"mh_key": body[48:52], "floor_key": body[52:56], "room_key": body[56:60]}
    elif body[47] != 0:
        return "bad hotel marker"
    record = {"net_key": body[5:21], "net_key_index": int.from_bytes(body[21:23], "big"), "flags": body[23],
              "iv_index": int.from_bytes(body[24:28], "big"), "address": int.from_bytes(body[28:30], "big"),
              "elements": body[30], "dev_key": body[31:47], "hotel": hotel}
    try:
        encode(record, 0)  # the same range checks as a save
    except ValueError as e:
        return str(e)
    return int.from_bytes(body[1:5], "big"), record


class KeyStore:
    """save(record) / load() -> record | None / erase(). extra_keys: other keys in the same namespace that a
    node reset must erase too (the firmware's, e.g. a sequence number)."""

    def __init__(self, nvs, extra_keys=()):
        self.nvs = nvs
        self.extra_keys = tuple(extra_keys)

    def __repr__(self):
        return "<KeyStore>"

    def _slot(self, i):
        # -> (present, generation or None, record or None). Never raises for what a slot contains.
        buf = bytearray(_READ_LEN)
        try:
            n = self.nvs.get_blob(SLOTS[i], buf)
        except OSError as e:
            code = -_errno(e)
            if code == _ESP_ERR_NVS_NOT_FOUND:
                return False, None, None
            if code == _ESP_ERR_NVS_INVALID_LENGTH:
                why = "longer than any known record"
            elif code == _ESP_ERR_NVS_TYPE_MISMATCH:
                why = "not a blob"
            else:
                why = "read error %d" % _errno(e)
            log.error(_TAG, "slot %s ignored: %s", SLOTS[i], why)
            return True, None, None
        got = decode(memoryview(buf)[:n])
        if isinstance(got, str):
            log.error(_TAG, "slot %s ignored: %s", SLOTS[i], got)
            return True, None, None
        return True, got[0], got[1]

    def _scan(self):
        # -> (index of the current slot or None, [slot tuples])
        slots = [self._slot(0), self._slot(1)]
        cur = None
        for i in (0, 1):
            g = slots[i][1]
            # generation numbers compared in serial-number arithmetic, so even a wrap after 2**32 saves stays ordered
            if g is not None and (cur is None or g != slots[cur][1] and (g - slots[cur][1]) & _GEN_MASK < _GEN_HALF):
                cur = i
        return cur, slots

    def load(self):
        """The stored record, or None when unprovisioned (nothing stored, or nothing valid: logged)."""
        cur, slots = self._scan()
        if cur is None:
            if slots[0][0] or slots[1][0]:
                log.error(_TAG, "no valid provisioning record: treated as unprovisioned")
            return None
        log.info(_TAG, "loaded record generation %d from %s", slots[cur][1], SLOTS[cur])
        return slots[cur][2]

    def save(self, record):
        """Store `record`; returns once it is durable. ValueError (nothing written) for a bad record, OSError
        from NVS (then the old record, if any, is still the one load() returns)."""
        cur, slots = self._scan()
        gen = (slots[cur][1] + 1) & _GEN_MASK if cur is not None else 1
        target = 0 if cur is None else 1 - cur
        blob = encode(record, gen)
        self.nvs.set_blob(SLOTS[target], blob)
        try:
            self.nvs.commit()
        except OSError:
            # The caller will report failure (Provisioning Failed): a later commit must not make this record
            # durable behind its back. Best effort: the target never holds the current record.
            try:
                self.nvs.erase_key(SLOTS[target])
                self.nvs.commit()
            except OSError:
                pass
            raise
        # Durable from here: the new slot wins on every later load. Erasing the old one is housekeeping
        # (one copy of old keys fewer in flash); if it fails the record is still saved.
        old = 1 - target
        if slots[old][0]:
            try:
                self.nvs.erase_key(SLOTS[old])
                self.nvs.commit()
            except OSError as e:
                log.error(_TAG, "old slot %s not erased: error %d", SLOTS[old], _errno(e))
        log.info(_TAG, "saved record generation %d to %s", gen, SLOTS[target])

    def erase(self):
        """Node reset: erase every key this store owns. The slot that is not current goes first, so a power cut
        half-way leaves the current record (old state) or nothing (new state), never an older record.
        OSError if NVS fails; calling erase() again finishes the job."""
        cur, _ = self._scan()
        order = (1 - cur, cur) if cur is not None else (0, 1)
        for key in self.extra_keys + (SLOTS[order[0]], SLOTS[order[1]]):
            try:
                self.nvs.erase_key(key)
            except OSError as e:
                if not missing(e):
                    raise
                continue
            self.nvs.commit()
        log.info(_TAG, "all keys erased")


def fingerprint(key):
    """16-bit fingerprint of a key for status displays: enough to tell two keys apart, useless to an attacker."""
    return "%04x" % int.from_bytes(hashlib.sha256(bytes(key)).digest()[:2], "big")


def summary(record):
    """One line for REPL status: what is present, never a secret."""
    if record is None:
        return "unprovisioned"
    return "address 0x%04x, %d element(s), NetKey index %d (fp %s), DevKey (fp %s), IV index 0x%08x, flags 0x%02x, " \
           "hotel keys %s" % (record["address"], record["elements"], record["net_key_index"],
                              fingerprint(record["net_key"]), fingerprint(record["dev_key"]), record["iv_index"],
                              record["flags"], "present" if record.get("hotel") else "absent")


def secrets_hex(record):
    """Hex of every secret held or derived from `record` (for tests that grep logs for leaks)."""
    from mesh.netkeys import NetKeys

    keys = [record["net_key"], record["dev_key"]] + NetKeys(record["net_key"]).secrets()
    h = record.get("hotel")
    if h:
        keys += [h["mh_key"], h["floor_key"], h["room_key"]]
    return [hexlify(k).decode() for k in keys]
