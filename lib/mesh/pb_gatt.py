# PB-GATT bearer, device side (Mesh Protocol v1.1 §5.2.2): Proxy PDUs (§6.3) on the Mesh Provisioning
# Service (0x1827; Data In 0x2ADB write without response, Data Out 0x2ADC notify, §7.1). One object per
# connection; the connection is the link. Sans-I/O: ATT values in, notification payloads out.
#
# Proxy PDU = SAR (2 bits) | Message Type (6 bits) | data (§6.3.1). SAR 0 complete, 1 first, 2 continuation,
# 3 last. Only Message Type 0x03 (Provisioning PDU) belongs on this service (§7.1.3.1.1); any other is ignored
# (§6.3.2), an unexpected SAR value disconnects (§6.3.2.2).
from mesh import const, log

# Reasons of this bearer's ("close", reason) events. TIMEOUT and FAIL share the values of the PB-ADV Link
# Close reasons (§5.3.1.4.3); DISCONNECTED (the connection went away) is outside 0..255 so it never
# collides with one.
CLOSE_TIMEOUT = const(0x01)  # SAR transfer not finished in 20 s: disconnect (§6.3.2.2)
CLOSE_FAIL = const(0x02)  # unexpected SAR value, or longer than any Provisioning PDU: disconnect
CLOSE_DISCONNECTED = const(0x100)

_SAR_COMPLETE = const(0)
_SAR_FIRST = const(1)
_SAR_CONT = const(2)
_SAR_LAST = const(3)
_TYPE_PROV = const(0x03)  # Table 6.3: Provisioning PDU
_SAR_TIMEOUT_MS = const(20000)  # §6.3.2.2: "The timeout for the SAR transfer is 20 seconds"
_MTU_MIN = const(23)  # ATT_MTU of LE (Core Vol 3 Part F §3.2.8)
_MTU_MAX = const(517)  # 512-octet attribute value + 5: a larger ATT_MTU buys nothing
_MAX_PDU = const(65)  # largest Provisioning PDU a provisioner sends (Public Key); bounds reassembly


def proxy_segments(pdu, mtu):
    """Proxy PDUs carrying one Provisioning PDU, each <= ATT_MTU - 3 octets (§6.3.2.1)."""
    room = mtu - 4  # ATT opcode (1) + handle (2) + Proxy PDU header (1)
    if len(pdu) <= room:
        return [bytes((_TYPE_PROV,)) + pdu]
    out = [bytes(((_SAR_FIRST << 6) | _TYPE_PROV,)) + pdu[:room]]
    off = room
    while off < len(pdu):
        sar = _SAR_LAST if off + room >= len(pdu) else _SAR_CONT
        out.append(bytes(((sar << 6) | _TYPE_PROV,)) + pdu[off:off + room])
        off += room
    return out


class PbGatt:
    def __init__(self, mtu=_MTU_MIN):
        self.is_open = False
        self._buf = None  # reassembly in progress (bytearray), else None
        self._sar_deadline = 0
        self.set_mtu(mtu)

    def set_mtu(self, mtu):
        """ATT_MTU from the exchange (or 23 if none happened). Segments are <= mtu - 3 octets."""
        if mtu < _MTU_MIN:
            raise ValueError("ATT_MTU < 23")
        self.mtu = min(mtu, _MTU_MAX)

    def connected(self, now_ms):
        self.is_open, self._buf = True, None
        return [("open",)]

    def disconnected(self, now_ms):
        if not self.is_open:
            return []  # already closed by this bearer
        self.is_open, self._buf = False, None
        return [("close", CLOSE_DISCONNECTED)]

    def _fail(self, reason, why):
        log.info("pb-gatt", "disconnect: %s", why)
        self.is_open, self._buf = False, None
        return [("close", reason)]

    def receive(self, now_ms, value):
        """A write to Data In. Returns events; ("close", r) means: disconnect this connection."""
        if not self.is_open:
            return []
        if not value:
            return self._fail(CLOSE_FAIL, "empty write")
        sar, data = value[0] >> 6, bytes(value[1:])
        if value[0] & 0x3F != _TYPE_PROV:
            return []  # §6.3.2: an RFU or unsupported Message Type is ignored
        if (sar in (_SAR_COMPLETE, _SAR_FIRST)) != (self._buf is None):
            return self._fail(CLOSE_FAIL, "unexpected SAR")  # §6.3.2.2
        if sar == _SAR_FIRST:
            self._buf, self._sar_deadline = bytearray(), now_ms + _SAR_TIMEOUT_MS
        if sar != _SAR_COMPLETE:
            self._buf.extend(data)
            if len(self._buf) > _MAX_PDU:
                return self._fail(CLOSE_FAIL, "PDU too long")
            if sar != _SAR_LAST:
                return []
            data, self._buf = bytes(self._buf), None
        if not 0 < len(data) <= _MAX_PDU:
            return self._fail(CLOSE_FAIL, "PDU length")
        return [("pdu", data)]

    def send(self, now_ms, prov_pdu):
        """Notification payloads for Data Out carrying one Provisioning PDU ([] when not connected)."""
        if not prov_pdu:
            raise ValueError("empty pdu")
        return proxy_segments(bytes(prov_pdu), self.mtu) if self.is_open else []

    def poll(self, now_ms):
        if self._buf is not None and now_ms >= self._sar_deadline:
            return self._fail(CLOSE_TIMEOUT, "SAR timeout")
        return []

    def deadline(self):
        return None if self._buf is None else self._sar_deadline
