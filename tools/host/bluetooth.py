# Host stand-in for MicroPython's `bluetooth` module on the ESP32 (NimBLE), over the virtual air (docs/air.md).
# HOST ONLY: never deployed or frozen. Imported by firmware running on the MicroPython unix port with
# MICROPYPATH=tools/host:lib:... and AIR=HOST:PORT [AIR_ADDR=12 hex digits] in the environment.
#
# The subset a peripheral provisionee uses, with MicroPython's IRQ numbers and argument tuples
# (docs/library/bluetooth.rst) and NimBLE's limits enforced:
#   31-byte advertising/scan response data and interval >= 20 ms (else OSError(EINVAL)); one advertising set;
#   advertising stops when a central connects; gatts_register_services raises OSError(EBUSY) while advertising,
#   scanning or connected; characteristic buffers hold 20 bytes unless gatts_set_buffer/gatts_write enlarged
#   them (longer client writes are truncated); notifications are cut to ATT_MTU - 3; connectable=False goes on
#   air as ADV_SCAN_IND (2) like stock MicroPython (issue 18480), or ADV_NONCONN_IND (3) with AIR_NONCONN_IND=1
#   (the patched board build). config(addr_mode=1|3) draws a new random static / non-resolvable private address
#   (as NimBLE's mp_bluetooth_set_address_mode) and tells the hub (docs/air.md, "Private addresses").
# IRQs are raised from an asyncio task in the firmware's own event loop; addr/adv_data are memoryviews valid only
# during the handler (the buffer is wiped afterwards), as on the board.
import errno
import os

import _airlink

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_GATTS_WRITE = const(3)
_IRQ_SCAN_RESULT = const(5)
_IRQ_SCAN_DONE = const(6)
_IRQ_MTU_EXCHANGED = const(21)

FLAG_BROADCAST = const(0x0001)
FLAG_READ = const(0x0002)
FLAG_WRITE_NO_RESPONSE = const(0x0004)
FLAG_WRITE = const(0x0008)
FLAG_NOTIFY = const(0x0010)
FLAG_INDICATE = const(0x0020)
FLAG_AUTHENTICATED_SIGNED_WRITE = const(0x0040)
FLAG_AUX_WRITE = const(0x0100)
FLAG_READ_ENCRYPTED = const(0x0200)
FLAG_READ_AUTHENTICATED = const(0x0400)
FLAG_READ_AUTHORIZED = const(0x0800)
FLAG_WRITE_ENCRYPTED = const(0x1000)
FLAG_WRITE_AUTHENTICATED = const(0x2000)
FLAG_WRITE_AUTHORIZED = const(0x4000)

_ADV_IND = const(0)
_ADV_SCAN_IND = const(2)
_ADV_NONCONN_IND = const(3)
_ADV_DATA_MAX = const(31)  # legacy AdvData, Core Vol 6 Part B §2.3.1
_ADV_UNIT_US = const(625)  # intervals are rounded down to 625 us units (BLE_HCI_ADV_ITVL)
_ADV_INTERVAL_MIN_UNITS = const(32)  # 20 ms (BLE_HCI_ADV_ITVL_MIN)
_SCAN_UNIT_US = const(625)
_SCAN_ITVL_MIN_UNITS = const(4)  # 2.5 ms
_SCAN_ITVL_MAX_UNITS = const(0x4000)  # 10.24 s
_ATTR_DEFAULT_LEN = const(20)  # MP_BLUETOOTH_DEFAULT_ATTR_LEN
_ATT_MTU_MIN = const(23)
_MTU_DEFAULT = const(256)  # ESP-IDF NimBLE preferred ATT MTU
_FIRST_USER_HANDLE = const(10)  # NimBLE puts the GAP (0x1800) and GATT (0x1801) services first
_EBUSY = const(16)  # MP_EBUSY; the unix port's errno module lacks the name
# BLE.config(addr_mode=...) (docs/library/bluetooth.rst)
_ADDR_PUBLIC = const(0)
_ADDR_RANDOM = const(1)
_ADDR_RPA = const(2)
_ADDR_NRPA = const(3)

# connectable=False: stock MicroPython sends ADV_SCAN_IND (issue 18480); the patched board build ADV_NONCONN_IND.
nonconn_adv_type = _ADV_NONCONN_IND if os.getenv("AIR_NONCONN_IND") == "1" else _ADV_SCAN_IND


class UUID:
    def __init__(self, value):
        if isinstance(value, UUID):
            self._le = value._le
        elif isinstance(value, int):
            if not 0 <= value <= 0xFFFFFFFF:
                raise ValueError("invalid UUID")
            n = 2 if value <= 0xFFFF else 4
            self._le = bytes((value >> (8 * i)) & 0xFF for i in range(n))
        elif isinstance(value, str):
            digits = value.replace("-", "")
            if len(digits) != 32:
                raise ValueError("invalid UUID")
            self._le = bytes(reversed(_airlink.unhex(digits)))
        else:
            b = bytes(value)
            if len(b) not in (2, 4, 16):
                raise ValueError("invalid UUID")
            self._le = b

    def __eq__(self, other):
        return isinstance(other, UUID) and self._le == other._le

    def __hash__(self):
        return hash(self._le)

    def __bytes__(self):
        return self._le

    def wire(self):  # docs/air.md: 4 or 8 hex digits, or the 36-character form; most significant first
        h = _airlink.hexs(bytes(reversed(self._le)))
        if len(h) == 32:
            h = "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])
        return h

    def __repr__(self):
        w = self.wire()
        return "UUID(0x%s)" % w if len(w) <= 8 else "UUID('%s')" % w


class _Value:  # one characteristic/descriptor buffer (NimBLE's gatts_db entry)
    def __init__(self, flags, cccd_of=None):
        self.flags, self.cccd_of = flags, cccd_of
        self.data = b""
        self.size = _ATTR_DEFAULT_LEN
        self.append = False


_ble = None
_SCRATCH_LEN = const(6 + 255)
_WIPE = b"\xee" * _SCRATCH_LEN


def BLE():  # noqa: N802 - the singleton constructor, named as on the board
    global _ble
    if _ble is None:
        _ble = _BLE()
    return _ble


class _BLE:
    def __init__(self):
        self._active = False
        self._link = None
        self._handler = None
        self._gap_name = b"MPY ESP32"
        self._mtu = _MTU_DEFAULT
        self._rxbuf = 1024
        self._adv_data = b""
        self._resp_data = b""
        self._advertising = False
        self._adv_id = 0
        self._scanning = False
        self._scan_id = 0
        self._conns = {}  # conn handle -> [addr_type, addr bytes, mtu, subscribed set]
        self._values = {}  # value handle -> _Value
        self._scratch = bytearray(_SCRATCH_LEN)
        self._addr = None  # (addr_type, addr) on air once config(addr_mode=) changed it; None: the hub's address

    # -- configuration --------------------------------------------------------------------------------------
    def active(self, *args):
        if args:
            on = bool(args[0])
            if on and not self._active:
                self._link = _airlink.get()
                if self._link is None:
                    raise OSError(errno.ENODEV)  # no air: set AIR=HOST:PORT
                h = self._link.handlers
                h["rx"], h["connected"], h["disconnected"] = self._on_rx, self._on_connected, self._on_disconnected
                h["write"], h["mtu"], h["scan_done"] = self._on_write, self._on_mtu, self._on_scan_done
                h["closed"] = self._on_closed
                self._send({"op": "config", "mtu": self._mtu})
                self._active = True
            elif not on and self._active:
                self._send({"op": "off"})
                self._advertising = self._scanning = False
                self._conns = {}
                self._values = {}
                self._addr = None
                self._active = False
        return self._active

    def config(self, *args, **kwargs):
        if args:
            if len(args) != 1 or kwargs:
                raise TypeError("must query one param")
            self._check_active()
            p = args[0]
            if p == "mac":  # the address in use, as mp_bluetooth_get_current_address
                return self._addr or (self._link.addr_type, self._link.addr)
            if p == "gap_name":
                return self._gap_name
            if p == "mtu":
                return self._mtu
            if p == "rxbuf":
                return self._rxbuf
            raise ValueError("unknown config param")
        for k, v in kwargs.items():
            if k == "gap_name":
                self._gap_name = v.encode() if isinstance(v, str) else bytes(v)
            elif k == "mtu":
                if not _ATT_MTU_MIN <= v <= 517:
                    raise OSError(errno.EINVAL)
                self._mtu = v
                if self._active:
                    self._send({"op": "config", "mtu": v})
            elif k == "rxbuf":
                self._rxbuf = v
            elif k == "addr_mode":
                self._set_addr_mode(v)
            elif k in ("bond", "mitm", "io", "le_secure"):
                pass
            else:
                raise ValueError("unknown config param")

    def irq(self, handler):
        self._handler = handler

    def _set_addr_mode(self, mode):
        # NimBLE (extmod/nimble/modbluetooth_nimble.c): PUBLIC needs a public address (else EINVAL); RANDOM and
        # NRPA draw a fresh address on every call (ble_hs_id_gen_rnd: top two bits 11 static, 00 NRPA) and set
        # it with HCI LE Set Random Address, which the controller refuses while advertising or scanning (Core
        # Vol 4 Part E §7.8.4); MicroPython then fails an assert. Here: OSError(EBUSY), stricter, for PUBLIC too
        # (the board would switch at the next start). A connection may be up (it keeps the address it was made
        # with). RPA is not emulated (NimBLE rotates it on its own timer).
        self._check_active()
        link = self._link
        if self._advertising or self._scanning:
            raise OSError(_EBUSY)
        if mode == _ADDR_PUBLIC:
            if link.addr_type != 0:
                raise OSError(errno.EINVAL)
            addr = None
        elif mode in (_ADDR_RANDOM, _ADDR_NRPA):
            while True:  # ble_hs_id_set_rnd refuses a random part of all zeros or all ones
                raw = bytearray(os.urandom(6))
                rnd = bytes([raw[0] & 0x3F]) + bytes(raw[1:])
                if rnd not in (bytes(6), b"\x3f" + b"\xff" * 5):
                    break
            addr = (1, bytes([rnd[0] | 0xC0 if mode == _ADDR_RANDOM else rnd[0]]) + rnd[1:])
        else:  # _ADDR_RPA, or a value the board silently ignores
            raise OSError(errno.EINVAL)
        self._addr = addr
        a = addr or (link.addr_type, link.addr)
        self._send({"op": "addr", "addr": _airlink.hexs(a[1]), "addr_type": a[0]})

    # -- GAP ------------------------------------------------------------------------------------------------
    def gap_advertise(self, interval_us, adv_data=None, *, resp_data=None, connectable=True):
        self._check_active()
        if interval_us is None:
            if self._advertising:
                self._send({"op": "adv", "interval_us": None})
            self._advertising = False
            return
        units = int(interval_us) // _ADV_UNIT_US
        adv = self._adv_data if adv_data is None else bytes(adv_data)
        resp = self._resp_data if resp_data is None else bytes(resp_data)
        if units < _ADV_INTERVAL_MIN_UNITS or len(adv) > _ADV_DATA_MAX or len(resp) > _ADV_DATA_MAX:
            raise OSError(errno.EINVAL)
        self._adv_data, self._resp_data = adv, resp
        self._adv_id += 1
        self._send({"op": "adv", "interval_us": units * _ADV_UNIT_US, "data": _airlink.hexs(adv),
                    "resp": _airlink.hexs(resp), "adv_type": _ADV_IND if connectable else nonconn_adv_type,
                    "id": self._adv_id})
        self._advertising = True

    def gap_scan(self, duration_ms, interval_us=1280000, window_us=11250, active=False):
        self._check_active()
        if duration_ms is None:
            if self._scanning:
                self._send({"op": "scan", "duration_ms": None})  # the hub answers scan_done -> _IRQ_SCAN_DONE
            self._scanning = False
            return
        if self._scanning:
            raise OSError(errno.EALREADY)
        itvl = min(_SCAN_ITVL_MAX_UNITS, max(_SCAN_ITVL_MIN_UNITS, int(interval_us) // _SCAN_UNIT_US))
        win = min(_SCAN_ITVL_MAX_UNITS, max(_SCAN_ITVL_MIN_UNITS, int(window_us) // _SCAN_UNIT_US))
        if win > itvl:
            raise OSError(errno.EINVAL)
        self._scan_id += 1
        self._send({"op": "scan", "duration_ms": int(duration_ms), "interval_us": itvl * _SCAN_UNIT_US,
                    "window_us": win * _SCAN_UNIT_US, "active": bool(active), "id": self._scan_id})
        self._scanning = True

    def gap_disconnect(self, conn_handle):
        self._check_active()
        if conn_handle not in self._conns:
            return False
        self._send({"op": "disconnect", "conn": conn_handle})
        return True

    # -- GATT server ----------------------------------------------------------------------------------------
    def gatts_register_services(self, services):
        self._check_active()
        if self._advertising or self._scanning or self._conns:
            raise OSError(_EBUSY)  # ble_gatts_reset() refuses while the host is busy
        values, db, result = {}, [], []
        h = _FIRST_USER_HANDLE
        for svc_uuid, chars in services:
            start = h
            h += 1
            handles, chars_db = [], []
            for ch in chars:
                c_uuid, flags = ch[0], ch[1]
                descs = ch[2] if len(ch) > 2 else ()
                vh = h + 1  # declaration, then value
                h += 2
                values[vh] = _Value(flags)
                handles.append(vh)
                entry = {"uuid": UUID(c_uuid).wire(), "handle": vh, "props": flags & 0xFF, "cccd": None,
                         "descriptors": []}
                if flags & (FLAG_NOTIFY | FLAG_INDICATE):
                    entry["cccd"] = h  # NimBLE adds the CCCD itself; it is not in the returned handles
                    values[h] = _Value(FLAG_READ | FLAG_WRITE, cccd_of=vh)
                    h += 1
                for d_uuid, d_flags in descs:
                    values[h] = _Value(d_flags)
                    handles.append(h)
                    entry["descriptors"].append({"uuid": UUID(d_uuid).wire(), "handle": h})
                    h += 1
                chars_db.append(entry)
            db.append({"uuid": UUID(svc_uuid).wire(), "start": start, "end": h - 1, "characteristics": chars_db})
            result.append(tuple(handles))
        self._values = values
        self._send({"op": "gatt_db", "services": db})  # what a central gets when it discovers services
        return tuple(result)

    def _value(self, value_handle):
        v = self._values.get(value_handle)
        if v is None:
            raise OSError(errno.EINVAL)
        return v

    def gatts_read(self, value_handle):
        self._check_active()
        v = self._value(value_handle)
        data = v.data
        if v.append:
            v.data = b""
        return data

    def gatts_write(self, value_handle, data, send_update=False):
        self._check_active()
        v = self._value(value_handle)
        data = bytes(data)
        if len(data) > v.size:  # a local write enlarges the buffer (MicroPython docs, "GATT Server")
            v.size = len(data)
        v.data = data
        if send_update:
            for conn, c in self._conns.items():
                if value_handle in c[3]:
                    self._notify(conn, value_handle, data)

    def gatts_notify(self, conn_handle, value_handle, data=None):
        self._check_active()
        if conn_handle not in self._conns:
            raise OSError(errno.ENOTCONN)
        self._notify(conn_handle, value_handle, self._value(value_handle).data if data is None else bytes(data))

    def _notify(self, conn_handle, value_handle, data):
        mtu = self._conns[conn_handle][2]
        self._send({"op": "notify", "conn": conn_handle, "handle": value_handle,
                    "data": _airlink.hexs(data[: mtu - 3])})  # ATT_HANDLE_VALUE_NTF: ATT_MTU - 3 bytes

    def gatts_set_buffer(self, value_handle, length, append=False):
        self._check_active()
        v = self._value(value_handle)
        v.size, v.append, v.data = int(length), bool(append), b""

    def gattc_exchange_mtu(self, conn_handle):
        self._check_active()
        if conn_handle not in self._conns:
            raise OSError(errno.ENOTCONN)
        self._send({"op": "mtu", "conn": conn_handle, "mtu": self._mtu})

    # -- events from the air --------------------------------------------------------------------------------
    def _on_rx(self, m):
        if not self._scanning:
            return
        addr = _airlink.unhex(m["addr"])
        data = _airlink.unhex(m["data"])
        s = self._scratch
        s[0:6] = addr
        s[6:6 + len(data)] = data
        mv = memoryview(s)
        self._irq(_IRQ_SCAN_RESULT, (m["addr_type"], mv[0:6], m["adv_type"], m["rssi"], mv[6:6 + len(data)]))

    def _on_connected(self, m):
        if m.get("role") != "peripheral":
            return
        if m.get("adv_id") == self._adv_id:  # the controller stopped our current advertising (not a stale one)
            self._advertising = False
        addr = _airlink.unhex(m["addr"])
        self._conns[m["conn"]] = [m["addr_type"], addr, _ATT_MTU_MIN, set()]
        self._scratch[0:6] = addr
        self._irq(_IRQ_CENTRAL_CONNECT, (m["conn"], m["addr_type"], memoryview(self._scratch)[0:6]))

    def _on_disconnected(self, m):
        if self._conns.pop(m["conn"], None) is None:
            return
        self._scratch[0:6] = _airlink.unhex(m["addr"])
        self._irq(_IRQ_CENTRAL_DISCONNECT, (m["conn"], m["addr_type"], memoryview(self._scratch)[0:6]))

    def _on_write(self, m):
        c = self._conns.get(m["conn"])
        v = self._values.get(m["handle"])
        if c is None or v is None:
            return  # ATT Write Command to nothing: dropped (commands get no error response)
        data = _airlink.unhex(m["data"])
        if v.cccd_of is not None:  # NimBLE keeps subscriptions itself: no IRQ
            if len(data) >= 1 and data[0] & 0x03:
                c[3].add(v.cccd_of)
            else:
                c[3].discard(v.cccd_of)
            return
        if not v.flags & (FLAG_WRITE | FLAG_WRITE_NO_RESPONSE):
            return
        if v.append:
            v.data = (v.data + data)[: v.size]
        else:
            v.data = data[: v.size]  # longer writes are truncated to the buffer, as on the device
        self._irq(_IRQ_GATTS_WRITE, (m["conn"], m["handle"]))

    def _on_mtu(self, m):
        c = self._conns.get(m["conn"])
        if c is not None:
            c[2] = m["mtu"]
            self._irq(_IRQ_MTU_EXCHANGED, (m["conn"], m["mtu"]))

    def _on_scan_done(self, m):
        if m.get("id") == self._scan_id:  # not an earlier scan's end arriving after a restart
            self._scanning = False
        self._irq(_IRQ_SCAN_DONE, ())

    def _on_closed(self, m):
        print("bluetooth (host stand-in): the air closed the connection")
        for conn in list(self._conns):
            c = self._conns.pop(conn)
            self._scratch[0:6] = c[1]
            self._irq(_IRQ_CENTRAL_DISCONNECT, (conn, c[0], memoryview(self._scratch)[0:6]))
        self._advertising = self._scanning = False

    def _irq(self, event, data):
        try:
            if self._handler is not None:
                self._handler(event, data)
        finally:
            self._scratch[:] = _WIPE  # the ring buffer is reused after the handler returns: stale views see junk

    # -- helpers --------------------------------------------------------------------------------------------
    def _check_active(self):
        if not self._active:
            raise OSError(errno.EPERM)  # MicroPython: "bluetooth not active"

    def _send(self, msg):
        if self._link.closed:
            raise OSError(errno.EIO)
        self._link.send(msg)
