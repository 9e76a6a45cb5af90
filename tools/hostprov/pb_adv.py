"""PB-ADV, provisioner side (Mesh Protocol v1.1 §5.2.1 bearer, §5.3 Generic Provisioning layer).

Written from the specification, independently of lib/mesh/pb_adv.py (the device side), so each checks the other.
Sans-I/O like the device core: bytes and int milliseconds in, PB-ADV PDUs (the bytes after AD type 0x29) out.

    link = Link(uuid16, link_id=None, rand=os.urandom)
    link.open(now_ms)                     # Link Open, repeated until Link Ack (60 s link establishment)
    link.send(now_ms, prov_pdu)           # one Provisioning PDU = one provisioner transaction 0x00..0x7F
    link.receive(now_ms, pb_adv_pdu)      # -> events
    link.poll(now_ms)                     # -> events (retransmissions, timeouts)
    link.close(now_ms, reason)            # Link Close, sent 3 times
    link.take_frames() -> list[bytes]     # to put on air, acks first
    link.deadline() -> int | None
events: ("open",)  ("pdu", bytes)  ("close", reason)
"""

import os

# §5.3.1 Generic Provisioning Control Format, the two low bits of the first octet.
GPCF_START = 0b00
GPCF_ACK = 0b01
GPCF_CONT = 0b10
GPCF_CTL = 0b11
# §5.3.1.4 Provisioning Bearer Control opcodes (the six high bits).
LINK_OPEN = 0x00
LINK_ACK = 0x01
LINK_CLOSE = 0x02
# §5.3.1.4.3 Link Close reasons.
CLOSE_SUCCESS = 0x00
CLOSE_TIMEOUT = 0x01
CLOSE_FAIL = 0x02

START_MAX = 20  # §5.2.1: a PB-ADV PDU is at most 29 octets -> 24-octet Generic PDU; Start header is 4 octets
CONT_MAX = 23  # Continuation header is 1 octet
MAX_SEGN = 0x3F
MAX_RX_PDU = 65  # the longest PDU a device sends: Provisioning Public Key (1 + 64)

RETRANSMIT_MS = 500  # §5.3.2 retransmit an unacknowledged transaction (Zephyr PB_ADV_RETRANS_TIMEOUT)
TRANSACTION_TIMEOUT_MS = 30_000  # §5.3.2: no Transaction Ack within 30 s -> the link is closed
LINK_ESTABLISH_MS = 60_000  # §5.3.2: no Link Ack within 60 s -> give up opening the link
CLOSE_REPEATS = 3  # §5.3.1.4.3 Link Close is unacknowledged: send it three times (as Zephyr does)

_PROV_TX_FIRST, _PROV_TX_LAST = 0x00, 0x7F  # §5.3.2 provisioner transaction numbers
_DEV_TX_FIRST = 0x80  # device transaction numbers 0x80..0xFF


def fcs(data):
    """3GPP TS 27.010 §5.2.1.6 FCS (CRC-8, polynomial x^8+x^2+x+1, reflected), as §5.3.1.2 requires."""
    crc = 0xFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xE0 if crc & 1 else crc >> 1
    return 0xFF - crc


def segment(prov_pdu):
    """Generic Provisioning PDUs of one transaction: Transaction Start then Continuations (§5.3.1.1-2)."""
    if not 1 <= len(prov_pdu) <= START_MAX + CONT_MAX * MAX_SEGN:
        raise ValueError(f"Provisioning PDU length {len(prov_pdu)}")
    rest = prov_pdu[START_MAX:]
    conts = [rest[i:i + CONT_MAX] for i in range(0, len(rest), CONT_MAX)]
    start = bytes([len(conts) << 2 | GPCF_START]) + len(prov_pdu).to_bytes(2, "big") + bytes([fcs(prov_pdu)])
    return [start + prov_pdu[:START_MAX]] + [bytes([(i + 1) << 2 | GPCF_CONT]) + c for i, c in enumerate(conts)]


def _expected_segn(total):
    return 0 if total <= START_MAX else (total - START_MAX + CONT_MAX - 1) // CONT_MAX


class _Rx:
    """Reassembly of one device transaction; segments may arrive in any order (§5.3.3)."""

    def __init__(self, tx):
        self.tx, self.segn, self.total, self.fcs, self.parts = tx, None, None, None, {}

    def add_start(self, segn, total, check, data):
        if total == 0 or total > MAX_RX_PDU or segn != _expected_segn(total) or len(data) != min(total, START_MAX):
            raise ValueError("impossible Transaction Start")
        self.segn, self.total, self.fcs = segn, total, check
        self.parts[0] = data
        for i, d in self.parts.items():
            self._check(i, d)

    def add_cont(self, index, data):
        if index == 0 or not data:
            raise ValueError("bad Transaction Continuation")
        if self.segn is not None:
            self._check(index, data)
        self.parts.setdefault(index, data)

    def _check(self, i, d):
        if i == 0:
            return
        want = min(CONT_MAX, self.total - START_MAX - (i - 1) * CONT_MAX)
        if i > self.segn or len(d) != want:
            raise ValueError(f"segment {i} does not fit the transaction")

    def complete(self):
        """The reassembled PDU, b"" if the FCS is wrong, or None while segments are missing."""
        if self.segn is None or len(self.parts) != self.segn + 1:
            return None
        pdu = b"".join(self.parts[i] for i in range(self.segn + 1))
        return pdu if fcs(pdu) == self.fcs else b""


class Link:
    def __init__(self, uuid, link_id=None, rand=os.urandom, establish_ms=LINK_ESTABLISH_MS):
        if len(uuid) != 16:
            raise ValueError("device UUID must be 16 bytes")
        self.uuid = bytes(uuid)
        self.link_id = link_id if link_id is not None else int.from_bytes(rand(4), "big")
        self._id = self.link_id.to_bytes(4, "big")
        self._establish_ms = establish_ms  # a tool may give up sooner than the spec's 60 s and retry
        self.state = "idle"  # idle -> opening -> open -> closed
        self._frames = []  # (urgent, pdu)
        self._queue = []  # Provisioning PDUs waiting for the current transaction to be acked
        self._tx = _PROV_TX_FIRST  # number of the next provisioner transaction
        self._out = None  # (tx, segments) in flight
        self._out_started = 0
        self._resend_at = None
        self._open_until = None
        self._rx = None  # _Rx of the device transaction being reassembled
        self._last_rx = None  # number of the last device transaction delivered (re-acked if repeated)

    # --- API -------------------------------------------------------------------------------------------
    def open(self, now_ms):
        if self.state != "idle":
            raise ValueError("link already used")
        self.state = "opening"
        self._open_until = now_ms + self._establish_ms
        self._ctl(LINK_OPEN, self.uuid)
        self._resend_at = now_ms + RETRANSMIT_MS

    def send(self, now_ms, prov_pdu):
        if self.state in ("idle", "closed"):
            raise ValueError("link not open")
        self._queue.append(bytes(prov_pdu))
        if self.state == "open" and self._out is None:
            self._next_transaction(now_ms)

    def close(self, now_ms, reason=CLOSE_SUCCESS):
        if self.state in ("opening", "open"):
            for _ in range(CLOSE_REPEATS):
                self._ctl(LINK_CLOSE, bytes([reason]))
        self._finish()

    def take_frames(self):
        frames = [pdu for urgent, pdu in self._frames if urgent] + [pdu for urgent, pdu in self._frames if not urgent]
        self._frames = []
        return frames

    def deadline(self):
        return self._resend_at if self.state in ("opening", "open") else None

    def poll(self, now_ms):
        if self._resend_at is None or now_ms < self._resend_at:
            return []
        if self.state == "opening":
            if now_ms >= self._open_until:
                self._finish()
                return [("close", CLOSE_TIMEOUT)]
            self._ctl(LINK_OPEN, self.uuid)
        elif self.state == "open" and self._out is not None:
            if now_ms - self._out_started >= TRANSACTION_TIMEOUT_MS:
                self.close(now_ms, CLOSE_TIMEOUT)
                return [("close", CLOSE_TIMEOUT)]
            self._frames += [(False, self._id + bytes([self._out[0]]) + s) for s in self._out[1]]
        else:
            self._resend_at = None
            return []
        self._resend_at = now_ms + RETRANSMIT_MS
        return []

    def receive(self, now_ms, pdu):
        """One received PB-ADV PDU. Frames of other links, malformed frames and duplicates are dropped."""
        if len(pdu) < 6 or pdu[:4] != self._id or self.state in ("idle", "closed"):
            return []
        tx, gpc, body = pdu[4], pdu[5], pdu[6:]
        kind = gpc & 0x03
        if kind == GPCF_CTL:
            return self._on_ctl(now_ms, gpc >> 2, body)
        if self.state != "open":
            return []
        if kind == GPCF_ACK:
            if self._out is not None and tx == self._out[0]:
                self._out = None
                self._resend_at = None
                self._next_transaction(now_ms)
            return []
        if tx < _DEV_TX_FIRST:
            return []
        try:
            return self._on_segment(tx, gpc, body)
        except ValueError:
            self.close(now_ms, CLOSE_FAIL)
            return [("close", CLOSE_FAIL)]

    # --- internals -------------------------------------------------------------------------------------
    def _ctl(self, opcode, params):
        # §5.3.1.4: bearer control messages always carry transaction number 0.
        self._frames.append((False, self._id + b"\x00" + bytes([opcode << 2 | GPCF_CTL]) + params))

    def _finish(self):
        self.state = "closed"
        self._resend_at = None
        self._out = None
        self._queue = []
        self._rx = None

    def _next_transaction(self, now_ms):
        if not self._queue:
            return
        tx = self._tx
        self._tx = _PROV_TX_FIRST if tx == _PROV_TX_LAST else tx + 1
        self._out = (tx, segment(self._queue.pop(0)))
        self._out_started = now_ms
        self._frames += [(False, self._id + bytes([tx]) + s) for s in self._out[1]]
        self._resend_at = now_ms + RETRANSMIT_MS

    def _on_ctl(self, now_ms, opcode, body):
        if opcode == LINK_ACK and not body and self.state == "opening":
            self.state = "open"
            self._resend_at = None
            self._next_transaction(now_ms)
            return [("open",)]
        if opcode == LINK_CLOSE and len(body) == 1:
            self._finish()
            return [("close", body[0])]
        return []

    def _ack(self, tx):
        self._frames.append((True, self._id + bytes([tx, GPCF_ACK])))

    def _on_segment(self, tx, gpc, body):
        if tx == self._last_rx:
            self._ack(tx)  # §5.3.3: our ack was lost and the device retransmits a finished transaction
            return []
        if self._rx is None or self._rx.tx != tx:
            self._rx = _Rx(tx)
        if gpc & 0x03 == GPCF_START:
            if len(body) < 3:
                raise ValueError("short Transaction Start")
            if self._rx.segn is None:
                self._rx.add_start(gpc >> 2, int.from_bytes(body[:2], "big"), body[2], body[3:])
        else:
            self._rx.add_cont(gpc >> 2, body)
        pdu = self._rx.complete()
        if pdu is None:
            return []
        self._rx = None
        if not pdu:
            return []  # §5.3.1.2 FCS mismatch: dropped unacknowledged, the device will retransmit
        self._last_rx = tx
        self._ack(tx)
        return [("pdu", pdu)]
