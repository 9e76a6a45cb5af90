# PB-ADV bearer and Generic Provisioning layer, device side (Mesh Protocol v1.1 §5.2.1, §5.3).
# Sans-I/O: receive() takes the bytes after AD type 0x29, poll() runs the timers, take_frames() hands the
# PB-ADV PDUs to the advertising scheduler. Knows nothing of provisioning: it carries whole PDUs.
#
# PB-ADV PDU = Link ID (4) | Transaction Number (1) | Generic Provisioning PDU (<= 24 octets, §5.2.1).
# Generic Provisioning Control field, low 2 bits (§5.3.1): 00 Transaction Start, 01 Transaction Ack,
# 10 Transaction Continuation, 11 Provisioning Bearer Control (opcode in the high 6 bits).
import os

from mesh import const, log

# Link Close reasons (§5.3.1.4.3, Table 5.4); also the reasons of this bearer's ("close", reason) events.
CLOSE_SUCCESS = const(0x00)
CLOSE_TIMEOUT = const(0x01)
CLOSE_FAIL = const(0x02)

_GPCF_START = const(0)
_GPCF_ACK = const(1)
_GPCF_CONT = const(2)
_GPCF_CTL = const(3)
_LINK_OPEN = const(0x00)  # bearer opcodes (§5.3.1.4)
_LINK_ACK = const(0x01)
_LINK_CLOSE = const(0x02)

_START_DATA = const(20)  # 24-octet Generic Provisioning PDU minus the 4-octet Start header (§5.3.1.1)
_CONT_DATA = const(23)  # minus the 1-octet Continuation header (§5.3.1.3)
# The largest Provisioning PDU a provisioner sends is Public Key (1 + 64); anything longer cannot be valid
# here (this device does not do certificate-based provisioning), so it bounds the reassembly buffer.
_MAX_RX_PDU = const(65)
_MAX_TX_PDU = const(1469)  # 20 + 63 * 23: SegN is 6 bits (§5.3.1.1)
_DEVICE_TN = const(0x80)  # device transactions 0x80-0xFF, provisioner 0x00-0x7F (§5.3.1)
_RETRANSMIT_MS = const(500)  # §5.3.2: retransmit an unacknowledged transaction (Zephyr: 500 ms too)
_JITTER_MS = const(50)  # 0..50 ms on top, so two stuck peers do not stay in lock step
_TRANSACTION_TIMEOUT_MS = const(30000)  # §5.3.2: no ack within 30 s -> Link Close (Timeout)
_CLOSE_REPEATS = const(3)  # §5.3.1.4.3: a device's Link Close is sent three times
# A burst of one PDU spans <= 3 x 50 ms; provisioners retransmit every >= 100 ms (Zephyr's range 100-800)
_REACK_HOLDOFF_MS = const(100)

IDLE = const(0)
OPEN = const(1)


def fcs(data):
    """FCS of 3GPP TS 27.010 (CRC-8, x^8+x^2+x+1, reflected, init 0xFF, ones' complement) (§5.3.1.1)."""
    crc = 0xFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xE0 if crc & 1 else crc >> 1
    return 0xFF - crc


def last_seg(n):
    """SegN for a Provisioning PDU of n octets: the fewest segments that carry it."""
    return 0 if n <= _START_DATA else (n - _START_DATA + _CONT_DATA - 1) // _CONT_DATA


def segments(link_id, tn, pdu):
    """The PB-ADV PDUs of one transaction: Transaction Start then Continuations (§5.3.1.1, §5.3.1.3)."""
    n = len(pdu)
    if not 0 < n <= _MAX_TX_PDU:
        raise ValueError("pdu length")
    head = link_id + bytes((tn,))
    out = [head + bytes((last_seg(n) << 2, n >> 8, n & 0xFF, fcs(pdu))) + pdu[:_START_DATA]]
    i, off = 1, _START_DATA
    while off < n:
        out.append(head + bytes(((i << 2) | _GPCF_CONT,)) + pdu[off:off + _CONT_DATA])
        i += 1
        off += _CONT_DATA
    return out


class _Fail(Exception):
    """An impossible SegN / TotalLength / segment size: the link fails (Link Close, Fail)."""


class PbAdv:
    """One PB-ADV link at a time, as a provisionee. `uuid`: 16 bytes, or an object whose .uuid is the current
    UUID (mesh.rolling_uuid.RollingUuid, which the scheduler freezes while a link is open); read at Link Open."""

    def __init__(self, uuid, rand=os.urandom):
        self.uuid = uuid
        self._rand = rand
        self._urgent = []  # acks: they go on air before anything else (§5.3.2)
        self._ack, self._ack_at = None, 0  # the last ack queued, and when
        self._frames = []
        self._reset()

    def _reset(self):
        self.state = IDLE
        self.link_id = None
        self._rx_last = None  # last provisioner transaction delivered (re-acked when repeated)
        self._rx_tn = None  # transaction being reassembled: its SegN (-1 until the Start), segments
        self._rx_segn, self._rx_segs, self._rx_total, self._rx_fcs = -1, {}, 0, 0
        self._tx_tn = _DEVICE_TN - 1  # so the first device transaction is 0x80
        self._tx = None  # frames of the unacknowledged device transaction
        self._tx_queue = []
        self._tx_start = self._tx_next = 0

    # ---- input -----------------------------------------------------------------------------------------
    def receive(self, now_ms, pdu):
        """One PB-ADV PDU (the AD data after type 0x29). Returns a list of events."""
        if len(pdu) < 6:
            return []
        link_id, tn, gpc, body = bytes(pdu[:4]), pdu[4], pdu[5], bytes(pdu[6:])
        kind = gpc & 3
        if kind == _GPCF_CTL:
            return self._control(now_ms, link_id, gpc >> 2, body)
        if self.state != OPEN or link_id != self.link_id:
            return []  # §5.3: PDUs of other links are ignored
        if kind == _GPCF_ACK:
            if not body and tn == self._tx_tn and self._tx is not None:
                self._tx_done(now_ms)
            return []
        if tn & _DEVICE_TN:
            return []  # a device number cannot start a provisioner transaction
        try:
            return self._segment(now_ms, tn, gpc, body)
        except _Fail as e:
            log.info("pb-adv", "link failed: %s", e.args[0])
            self.close(now_ms, CLOSE_FAIL)
            return [("close", CLOSE_FAIL)]

    def _control(self, now_ms, link_id, op, body):
        if op == _LINK_OPEN and len(body) == 16:
            if self.state == OPEN:
                if link_id == self.link_id:  # our Link Ack was lost: ack again (§5.3.1.4.2)
                    self._queue_ack(now_ms, link_id + b"\x00\x07")
                return []
            u = self.uuid
            if body != (u if isinstance(u, (bytes, bytearray)) else u.uuid):
                return []
            self._reset()
            self.state, self.link_id = OPEN, link_id
            self._queue_ack(now_ms, link_id + b"\x00\x07")  # Link Ack, transaction number 0 (§5.3.1.4.2)
            return [("open",)]
        if op == _LINK_CLOSE and len(body) == 1 and self.state == OPEN and link_id == self.link_id:
            self._reset()
            self._frames, self._urgent = [], []
            return [("close", body[0])]
        return []  # Link Ack is for provisioners; other opcodes are RFU

    def _segment(self, now_ms, tn, gpc, body):
        if tn == self._rx_last and self._rx_tn is None:
            # The provisioner missed our ack of a transaction we already delivered: ack it again.
            self._queue_ack(now_ms, self.link_id + bytes((tn, _GPCF_ACK)))
            return []
        if tn != self._rx_tn:
            if tn != (0 if self._rx_last is None else (self._rx_last + 1) & 0x7F):
                return []  # neither current nor next: stale or out of range, ignore
            # A new provisioner transaction means ours was received (the protocol is strictly
            # request/response), so stop retransmitting it even if its ack was lost (as Zephyr does).
            if self._tx is not None:
                self._tx_done(now_ms)
            self._rx_tn, self._rx_segn, self._rx_segs = tn, -1, {}
        segs = self._rx_segs
        if gpc & 3 == _GPCF_START:
            if len(body) < 3:
                raise _Fail("short start")
            total, segn = (body[0] << 8) | body[1], gpc >> 2
            data = body[3:]
            if not 0 < total <= _MAX_RX_PDU or segn != last_seg(total):
                raise _Fail("SegN/TotalLength")
            if len(data) != (total if segn == 0 else _START_DATA):
                raise _Fail("start size")
            if self._rx_segn >= 0:
                return []  # duplicate
            self._rx_segn, self._rx_total, self._rx_fcs = segn, total, body[2]
            for i in segs:  # continuations that arrived before the start
                self._check_cont(i, segs[i])
            segs[0] = data
        else:
            i = gpc >> 2
            if i in segs:
                return []  # duplicate
            self._check_cont(i, body)
            segs[i] = body
        if self._rx_segn < 0 or len(segs) <= self._rx_segn:
            return []
        msg = b"".join(segs[i] for i in range(self._rx_segn + 1))
        self._rx_tn = None
        if fcs(msg) != self._rx_fcs:
            log.info("pb-adv", "bad FCS, transaction 0x%02x dropped", tn)
            return []  # no ack: the provisioner sends it again
        self._rx_last = tn
        self._queue_ack(now_ms, self.link_id + bytes((tn, _GPCF_ACK)))
        return [("pdu", msg)]

    def _check_cont(self, i, data):
        segn = self._rx_segn
        if segn < 0:  # start not seen yet: only what no start could make valid is a failure
            if not 0 < i <= last_seg(_MAX_RX_PDU) or not 0 < len(data) <= _CONT_DATA:
                raise _Fail("continuation")
        elif not 0 < i <= segn or len(data) != (
                _CONT_DATA if i < segn else self._rx_total - _START_DATA - _CONT_DATA * (segn - 1)):
            raise _Fail("continuation size")

    # ---- output ----------------------------------------------------------------------------------------
    def send(self, now_ms, prov_pdu):
        """Queue one Provisioning PDU as a device transaction (after any unacknowledged one)."""
        if not 0 < len(prov_pdu) <= _MAX_TX_PDU:
            raise ValueError("pdu length")
        if self.state != OPEN:
            return
        self._tx_queue.append(bytes(prov_pdu))
        if self._tx is None:
            self._tx_begin(now_ms)

    def _tx_begin(self, now_ms):
        self._tx_tn = _DEVICE_TN | ((self._tx_tn + 1) & 0x7F)
        self._tx = segments(self.link_id, self._tx_tn, self._tx_queue.pop(0))
        self._tx_start = now_ms
        self._transmit(now_ms)

    def _transmit(self, now_ms):
        self._frames.extend(self._tx)
        self._tx_next = now_ms + _RETRANSMIT_MS + self._rand(1)[0] * (_JITTER_MS + 1) // 256

    def _tx_done(self, now_ms):
        self._tx = None
        if self._tx_queue:
            self._tx_begin(now_ms)

    def close(self, now_ms, reason):
        """Device-initiated Link Close (e.g. the provisionee timed out): sent three times, link IDLE."""
        if self.state != OPEN:
            return
        frame = self.link_id + bytes((0, (_LINK_CLOSE << 2) | _GPCF_CTL, reason))
        self._reset()
        self._urgent, self._frames = [], [frame] * _CLOSE_REPEATS

    def _queue_ack(self, now_ms, frame):
        # The copies of one burst (the scheduler repeats every PDU) must not each draw another ack, which
        # would itself be repeated: the same ack again only after _REACK_HOLDOFF_MS (as Zephyr's ack_pending).
        if frame == self._ack and now_ms - self._ack_at < _REACK_HOLDOFF_MS:
            return
        self._ack, self._ack_at = frame, now_ms
        self._urgent.append(frame)

    @property
    def tx_pending(self):
        """True while a device transaction is unacknowledged or queued."""
        return self._tx is not None

    # ---- timers ----------------------------------------------------------------------------------------
    def poll(self, now_ms):
        if self._tx is None:
            return []
        if now_ms - self._tx_start >= _TRANSACTION_TIMEOUT_MS:
            log.info("pb-adv", "transaction 0x%02x not acked in 30 s", self._tx_tn)
            self.close(now_ms, CLOSE_TIMEOUT)
            return [("close", CLOSE_TIMEOUT)]
        if now_ms >= self._tx_next:
            self._transmit(now_ms)
        return []

    def deadline(self):
        if self._tx is None:
            return None
        return min(self._tx_next, self._tx_start + _TRANSACTION_TIMEOUT_MS)

    def take_frames(self):
        """PB-ADV PDUs to put on air, acks first: [(pdu, urgent)]. Each entry is one transmission
        request (the scheduler may repeat it in a burst)."""
        out = [(f, True) for f in self._urgent] + [(f, False) for f in self._frames]
        self._urgent, self._frames = [], []
        return out
