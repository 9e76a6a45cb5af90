# Host stand-in for MicroPython's `esp32` module: the NVS class, file-backed, with the device's semantics.
# HOST ONLY: imported by firmware/main.py on the unix port (MICROPYPATH puts tools/host first) and by tests.
# Never copied to a board, never frozen. Runs under the MicroPython unix port and CPython.
#
# What the device does (ports/esp32/esp32_nvs.c over ESP-IDF nvs_flash; see docs/keystore.md):
# - NVS(namespace) opens the namespace read-write in the default "nvs" partition, creating it if needed.
# - Errors are OSError(-esp_err, "ESP_ERR_..."), e.g. a missing key is OSError(-4354, "ESP_ERR_NVS_NOT_FOUND").
# - Keys are at most 15 characters (ESP_ERR_NVS_KEY_TOO_LONG on set). The stand-in also refuses a long key on
#   get/erase, where the device would quietly answer NOT_FOUND: a bug shows on the host instead of silently
#   reading "nothing stored" on the board.
# - set_i32 takes a signed 32-bit value: on the ESP32 mp_obj_get_int() raises OverflowError beyond it.
# - get_blob(key, buf) fills a caller-sized writable buffer and returns the blob's length; a buffer shorter than
#   the blob raises OSError(-4364, "ESP_ERR_NVS_INVALID_LENGTH") and leaves the buffer untouched.
# - erase_key on a missing key raises NOT_FOUND; reading a key of the other type raises TYPE_MISMATCH.
# - MicroPython documents that changes are lost at reset unless commit() is called. (ESP-IDF's nvs_commit() is in
#   fact a no-op today and each set/erase reaches flash at once, in order.) Both are modelled: durable="commit"
#   (the documented contract, the default) and durable="write" (what ESP-IDF does now).
#
# Test hooks (not in the device API): crash_after(k, torn) raises PowerLoss after the k-th write or commit,
# power_cycle() is the reboot that follows, load_image() "flashes" an NVS partition image made by ESP-IDF's
# generator (tools/factory.py), so a simulated lock reads exactly what a real one would.
import json
import os
import struct
from binascii import crc32

ESP_ERR_NVS_NOT_FOUND = 0x1102
ESP_ERR_NVS_TYPE_MISMATCH = 0x1103
ESP_ERR_NVS_NOT_ENOUGH_SPACE = 0x1105
ESP_ERR_NVS_INVALID_HANDLE = 0x1107
ESP_ERR_NVS_KEY_TOO_LONG = 0x1109
ESP_ERR_NVS_INVALID_LENGTH = 0x110C
_NAMES = {
    ESP_ERR_NVS_NOT_FOUND: "ESP_ERR_NVS_NOT_FOUND",
    ESP_ERR_NVS_TYPE_MISMATCH: "ESP_ERR_NVS_TYPE_MISMATCH",
    ESP_ERR_NVS_NOT_ENOUGH_SPACE: "ESP_ERR_NVS_NOT_ENOUGH_SPACE",
    ESP_ERR_NVS_INVALID_HANDLE: "ESP_ERR_NVS_INVALID_HANDLE",
    ESP_ERR_NVS_KEY_TOO_LONG: "ESP_ERR_NVS_KEY_TOO_LONG",
    ESP_ERR_NVS_INVALID_LENGTH: "ESP_ERR_NVS_INVALID_LENGTH",
}
KEY_MAX = 15  # NVS_KEY_NAME_MAX_SIZE - 1
NVS_SIZE = 0x6000  # MicroPython's partitions-4MiBplus.csv: nvs at 0x9000, size 0x6000 (docs/keystore.md)
_PAGE = 4096
_ENTRY = 32
_ENTRIES_PER_PAGE = 126
_I32_MIN = -(1 << 31)
_I32_MAX = (1 << 31) - 1

# NVS item type codes (nvs_types.hpp; also in the partition generator)
_T_U8, _T_I8, _T_U16, _T_I16, _T_U32, _T_I32, _T_U64, _T_I64 = 0x01, 0x11, 0x02, 0x12, 0x04, 0x14, 0x08, 0x18
_T_SZ, _T_BLOB, _T_BLOB_DATA, _T_BLOB_IDX = 0x21, 0x41, 0x42, 0x48
_INT_FORMATS = {_T_U8: "<B", _T_I8: "<b", _T_U16: "<H", _T_I16: "<h", _T_U32: "<I", _T_I32: "<i",
                _T_U64: "<Q", _T_I64: "<q"}
_TYPE_NAMES = {_T_U8: "u8", _T_I8: "i8", _T_U16: "u16", _T_I16: "i16", _T_U32: "u32", _T_I32: "i32",
               _T_U64: "u64", _T_I64: "i64", _T_SZ: "str"}


def _err(code):
    return OSError(-code, _NAMES[code])


class PowerLoss(BaseException):
    """Raised by the fault-injection hook: the power failed. BaseException so `except Exception` in code under
    test cannot swallow it. Follow it with power_cycle()."""


class Flash:
    """One NVS partition: what survives power loss (`disk`, saved to `path`) plus writes not yet durable."""

    def __init__(self, path=None, durable="commit", size=NVS_SIZE):
        if durable not in ("commit", "write"):
            raise ValueError("durable must be 'commit' or 'write'")
        self.path, self.durable, self.size = path, durable, size
        self.disk = {}  # namespace -> {key: [type, value]}; type "i32" | "blob" | another NVS type name
        self.writes = 0  # writes and commits so far (the fault hook counts these)
        self.generation = 0  # bumped by power_cycle(): handles opened before a reboot are dead
        self._crash_at = None
        self._torn = False
        self._handles = []
        self._read()

    # ---- persistence (host file; replaced atomically so the host itself never tears it) ----
    def _read(self):
        # a memory-only partition keeps `disk` across power cycles; a file-backed one re-reads the file
        if not self.path:
            return
        self.disk = {}
        try:
            with open(self.path) as f:
                self.disk = json.load(f)
        except OSError:
            pass  # no file yet: an erased partition
        for keys in self.disk.values():
            for item in keys.values():
                if item[0] != "i32" and isinstance(item[1], str):
                    item[1] = bytes.fromhex(item[1]) if item[0] == "blob" else item[1]

    def _write(self):
        if not self.path:
            return
        out = {}
        for ns, keys in self.disk.items():
            out[ns] = {k: [t, v.hex() if isinstance(v, (bytes, bytearray)) else v] for k, (t, v) in keys.items()}
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(out, f)
        os.rename(tmp, self.path)

    # ---- fault injection and reboot ----
    def crash_after(self, k, torn=False):
        """Raise PowerLoss right after the k-th (1-based) write or commit from now. torn=True: if that operation
        is a set_blob, only its first half reaches flash (rest left erased, 0xFF) -- a torn write that NVS's own
        CRC did not catch, which ESP-IDF does not promise and the key store must survive anyway."""
        self._crash_at, self._torn = self.writes + k, torn

    def power_cycle(self):
        """Reboot: everything not durable is gone, open handles are dead, the fault hook is disarmed."""
        self._crash_at = None
        for h in self._handles:
            h._pending = []
        self._handles = []
        self.generation += 1
        self._read()

    def _tick(self):
        self.writes += 1
        return self._crash_at is not None and self.writes >= self._crash_at

    # ---- the partition as every handle sees it ----
    def view(self, ns):
        keys = dict(self.disk.get(ns, {}))
        for h in self._handles:
            if h._ns == ns:
                for key, item in h._pending:
                    if item is None:
                        keys.pop(key, None)
                    else:
                        keys[key] = item
        return keys

    def _entries(self):
        # Entries in use, as NVS counts them: one per namespace and integer; a blob is an index entry plus a
        # chunk header plus its data in 32-byte entries. Erased entries are reclaimed by NVS's garbage collection,
        # which keeps one page free.
        n = 0
        for ns in set(self.disk) | set(h._ns for h in self._handles):
            n += 1
            for t, v in self.view(ns).values():
                n += 2 + (len(v) + _ENTRY - 1) // _ENTRY if t in ("blob", "str") else 1
        return n

    def _apply(self, ns, ops):
        keys = self.disk.setdefault(ns, {})
        for key, item in ops:
            if item is None:
                keys.pop(key, None)
            else:
                keys[key] = item
        self._write()

    def load_image(self, image):
        """Flash an NVS partition image (bytes or a path) over this partition, as esptool would at the nvs offset:
        everything previously stored is replaced."""
        if isinstance(image, str):
            with open(image, "rb") as f:
                image = f.read()
        self.disk = parse_image(image)
        self._write()
        self.power_cycle()


_default = None


def use_flash(path=None, durable="commit", size=NVS_SIZE):
    """Select the partition NVS() opens (tests, simulator). Default: the file named by the environment variable
    ESP32_NVS; memory only if it is unset."""
    global _default
    _default = Flash(path, durable, size)
    return _default


def flash():
    if _default is None:
        use_flash(os.getenv("ESP32_NVS") or None)
    return _default


def _check_key(key):
    if not isinstance(key, str):
        raise TypeError("key must be str")
    if len(key) > KEY_MAX:
        raise _err(ESP_ERR_NVS_KEY_TOO_LONG)


class NVS:
    """esp32.NVS(namespace): the same six methods as the device."""

    def __init__(self, namespace):
        _check_key(namespace)  # namespace names follow the key rules
        self._flash = flash()
        self._ns = namespace
        self._gen = self._flash.generation
        self._pending = []  # (key, item or None) written but not committed
        self._flash._handles.append(self)

    def __repr__(self):
        return "<NVS namespace>"

    def _live(self):
        if self._gen != self._flash.generation:
            raise _err(ESP_ERR_NVS_INVALID_HANDLE)

    def _get(self, key, want):
        self._live()
        _check_key(key)
        item = self._flash.view(self._ns).get(key)
        if item is None:
            raise _err(ESP_ERR_NVS_NOT_FOUND)
        if item[0] != want:
            raise _err(ESP_ERR_NVS_TYPE_MISMATCH)
        return item[1]

    def _put(self, key, item, torn_item=None):
        self._live()
        _check_key(key)
        f = self._flash
        if item is not None:
            self._pending.append((key, item))
            if f._entries() > (f.size // _PAGE - 1) * _ENTRIES_PER_PAGE:
                self._pending.pop()
                raise _err(ESP_ERR_NVS_NOT_ENOUGH_SPACE)
        elif key not in f.view(self._ns):
            raise _err(ESP_ERR_NVS_NOT_FOUND)
        else:
            self._pending.append((key, None))
        crash = f._tick()
        if crash and torn_item is not None and f._torn:
            self._pending[-1] = (key, torn_item)
        if f.durable == "write":
            f._apply(self._ns, self._pending)
            self._pending = []
        if crash:
            raise PowerLoss("after write %d" % f.writes)

    def set_i32(self, key, value):
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, int):
            raise TypeError("can't convert to int")
        if not _I32_MIN <= value <= _I32_MAX:
            raise OverflowError("overflow converting long int to machine word")
        self._put(key, ["i32", value])

    def get_i32(self, key):
        return self._get(key, "i32")

    def set_blob(self, key, value):
        data = value.encode() if isinstance(value, str) else bytes(value)
        half = len(data) // 2
        self._put(key, ["blob", data], ["blob", data[:half] + b"\xff" * (len(data) - half)])

    def get_blob(self, key, buf):
        if isinstance(buf, (bytes, str)):
            raise TypeError("object with buffer protocol required")  # must be writable (MP_BUFFER_WRITE)
        data = self._get(key, "blob")
        if len(buf) < len(data):
            raise _err(ESP_ERR_NVS_INVALID_LENGTH)
        buf[:len(data)] = data
        return len(data)

    def erase_key(self, key):
        self._put(key, None)

    def commit(self):
        self._live()
        f = self._flash
        crash = f._tick()
        if self._pending:
            f._apply(self._ns, self._pending)
            self._pending = []
        if crash:
            raise PowerLoss("after commit %d" % f.writes)


# ---- NVS partition image reader (format: ESP-IDF "NVS Partition Format", version 2 multi-page blobs) ----
def _crc(b):
    return crc32(b, 0xFFFFFFFF) & 0xFFFFFFFF


def parse_image(image):
    """Namespaces and items of an NVS partition image: {namespace: {key: [type, value]}}. Entries whose CRC is
    wrong are skipped, as NVS does; multi-page blobs are reassembled from their index."""
    names, items, chunks, index = {}, [], {}, []
    for base in range(0, len(image) - _PAGE + 1, _PAGE):
        state = struct.unpack("<I", image[base:base + 4])[0]
        if state not in (0xFFFFFFFE, 0xFFFFFFFC):  # ACTIVE or FULL; erased/freeing pages hold nothing here
            continue
        bitmap = image[base + 32:base + 64]
        i = 0
        while i < _ENTRIES_PER_PAGE:
            if (bitmap[i // 4] >> (2 * (i % 4))) & 3 != 2:  # 0b10 = written
                i += 1
                continue
            off = base + 64 + i * _ENTRY
            e = image[off:off + _ENTRY]
            ns, typ, span, chunk = e[0], e[1], e[2], e[3]
            if span == 0 or struct.unpack("<I", e[4:8])[0] != _crc(e[0:4] + e[8:32]):
                i += 1
                continue
            key = e[8:24].split(b"\x00", 1)[0].decode()
            if typ in (_T_SZ, _T_BLOB, _T_BLOB_DATA):
                size, dcrc = struct.unpack("<H", e[24:26])[0], struct.unpack("<I", e[28:32])[0]
                data = image[off + _ENTRY:off + _ENTRY + size]
                if len(data) == size and _crc(data) == dcrc:
                    if typ == _T_BLOB_DATA:
                        chunks[(ns, key, chunk)] = data
                    else:
                        items.append((ns, key, "blob" if typ == _T_BLOB else "str",
                                      data if typ == _T_BLOB else data.rstrip(b"\x00").decode()))
            elif typ == _T_BLOB_IDX:
                size, count, start = struct.unpack("<I", e[24:28])[0], e[28], e[29]
                index.append((ns, key, size, count, start))
            elif typ in _INT_FORMATS:
                value = struct.unpack(_INT_FORMATS[typ], e[24:24 + struct.calcsize(_INT_FORMATS[typ])])[0]
                if ns == 0:
                    names[value] = key  # namespace entry: name -> index, stored in namespace 0
                else:
                    items.append((ns, key, _TYPE_NAMES[typ], value))
            i += span
    for ns, key, size, count, start in index:
        parts = [chunks.get((ns, key, start + n)) for n in range(count)]
        if None not in parts:
            data = b"".join(parts)
            if len(data) == size:
                items.append((ns, key, "blob", data))
    out = {}
    for ns, key, typ, value in items:
        if ns in names:
            out.setdefault(names[ns], {})[key] = [typ, value]
    return out
