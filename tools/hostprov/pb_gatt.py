"""PB-GATT, client (provisioner) side: Proxy PDU segmentation and reassembly on the Mesh Provisioning Service.

Mesh Protocol v1.1 §5.2.2 (PB-GATT), §6.3.1 (Proxy PDU: SAR(2) | Message Type(6)), §6.6 (20 s SAR timeout).
Written independently of lib/mesh/pb_gatt.py. Sans-I/O: the caller writes what `send` returns to Data In
(0x2ADB, Write Without Response) and feeds every Data Out (0x2ADC) notification to `receive`.

    g = Client(mtu=23)
    g.set_mtu(mtu)                        # ATT_MTU after the exchange; one segment is at most mtu - 3 octets
    g.send(prov_pdu) -> list[bytes]       # ATT values to write, in order
    g.receive(now_ms, value) -> events    # ("pdu", bytes) or ("close", reason): disconnect; other Message
                                          # Types than Provisioning PDU are ignored (§6.3.2)
    g.poll(now_ms) -> events              # SAR timeout
    g.deadline() -> int | None
"""

SAR_COMPLETE = 0b00
SAR_FIRST = 0b01
SAR_CONTINUATION = 0b10
SAR_LAST = 0b11
TYPE_PROVISIONING = 0x03  # §6.3.1 Table 6.3: Provisioning PDU

SAR_TIMEOUT_MS = 20_000  # §6.3.2.2: 20 s without the next segment of a PDU -> drop the connection
ATT_MTU_MIN, ATT_MTU_MAX = 23, 517
ATT_HEADER = 3  # opcode + handle: what ATT_MTU leaves for the value

# Reasons given with ("close", reason), i.e. "disconnect": the proxy protocol has no error PDU.
CLOSE_SAR_TIMEOUT = 1
CLOSE_PROTOCOL = 2  # unexpected SAR value (§6.3.2.2: the Proxy PDU Client shall disconnect)


def segment(prov_pdu, mtu=ATT_MTU_MIN):
    """The ATT values that carry one Provisioning PDU (§6.3.2)."""
    room = mtu - ATT_HEADER - 1
    if not prov_pdu:
        raise ValueError("empty Provisioning PDU")
    if len(prov_pdu) <= room:
        return [bytes([SAR_COMPLETE << 6 | TYPE_PROVISIONING]) + prov_pdu]
    chunks = [prov_pdu[i:i + room] for i in range(0, len(prov_pdu), room)]
    sar = [SAR_FIRST] + [SAR_CONTINUATION] * (len(chunks) - 2) + [SAR_LAST]
    return [bytes([s << 6 | TYPE_PROVISIONING]) + c for s, c in zip(sar, chunks)]


class Client:
    def __init__(self, mtu=ATT_MTU_MIN):
        self.set_mtu(mtu)
        self._buf = None  # bytearray while a segmented PDU is being reassembled
        self._timeout_at = None

    def set_mtu(self, mtu):
        if not ATT_MTU_MIN <= mtu <= ATT_MTU_MAX:
            raise ValueError(f"ATT_MTU {mtu}")
        self.mtu = mtu

    def send(self, prov_pdu):
        return segment(bytes(prov_pdu), self.mtu)

    def deadline(self):
        return self._timeout_at

    def poll(self, now_ms):
        if self._timeout_at is not None and now_ms >= self._timeout_at:
            self._buf = self._timeout_at = None
            return [("close", CLOSE_SAR_TIMEOUT)]
        return []

    def receive(self, now_ms, value):
        if value and value[0] & 0x3F != TYPE_PROVISIONING:
            return []  # §6.3.2: an RFU or unsupported Message Type is ignored (a transfer in progress goes on)
        if len(value) < 2:
            return self._violation()
        sar, data = value[0] >> 6, bytes(value[1:])
        if sar == SAR_COMPLETE or sar == SAR_FIRST:
            if self._buf is not None:
                return self._violation()  # a new PDU before the previous one ended
            if sar == SAR_COMPLETE:
                return [("pdu", data)]
            self._buf = bytearray(data)
            self._timeout_at = now_ms + SAR_TIMEOUT_MS
            return []
        if self._buf is None:
            return self._violation()  # continuation or last without a first
        self._buf += data
        if sar == SAR_CONTINUATION:
            self._timeout_at = now_ms + SAR_TIMEOUT_MS  # restarted by every segment, as Zephyr's proxy does
            return []
        pdu, self._buf, self._timeout_at = bytes(self._buf), None, None
        return [("pdu", pdu)]

    def _violation(self):
        self._buf = self._timeout_at = None
        return [("close", CLOSE_PROTOCOL)]
