"""One provisioning attempt: the provisioner-side protocol (protocol.py) over one bearer (pb_adv.py or pb_gatt.py).

Sans-I/O, like the pieces it joins; cli.py does the radio I/O. What goes in: PB-ADV PDUs heard on air (bearer
"adv") or Data Out notifications (bearer "gatt"), and the time. What comes out: PB-ADV PDUs to advertise, or
ATT values to write to Data In, and in the end an outcome.

    a = Attempt("adv", uuid16, provisioner, allocate=db.allocate_address)
    a.start(now_ms)                  # PB-ADV: Link Open. PB-GATT: call once connected and the MTU is known
    a.receive(now_ms, data)
    a.poll(now_ms)
    a.take_output() -> list[bytes]
    a.deadline() -> int | None
    a.outcome                        # None while running, then "complete" or "failed"; a.reason says why
    a.address, a.provisioner.result  # after "complete"

The unicast address is chosen once the device's Capabilities give its element count (`allocate(elements)`),
before the Provisioning Data goes out. The protocol timeout (§5.4.4: 60 s, 120 s with Output or Input OOB,
`provisioner.timeout_ms`) runs from the last PDU received.
"""

from . import pb_adv, pb_gatt
from . import protocol as proto


class Attempt:
    def __init__(self, bearer, uuid, provisioner, *, allocate=None, mtu=pb_gatt.ATT_MTU_MIN, link_id=None,
                 establish_ms=pb_adv.LINK_ESTABLISH_MS):
        if bearer not in ("adv", "gatt"):
            raise ValueError("bearer is 'adv' or 'gatt'")
        self.bearer, self.provisioner, self._allocate = bearer, provisioner, allocate
        if bearer == "adv":
            self._link = pb_adv.Link(uuid, link_id=link_id, establish_ms=establish_ms)
        else:
            self._link = pb_gatt.Client(mtu)
        self._out = []
        self._last_pdu = None
        self.address = None
        self.outcome = None
        self.reason = ""

    # --- API -------------------------------------------------------------------------------------------
    def start(self, now_ms):
        if self.bearer == "adv":
            self._link.open(now_ms)
        else:
            self._begin(now_ms)
        self._drain()

    def receive(self, now_ms, data):
        if self.outcome is None:
            self._events(now_ms, self._link.receive(now_ms, data))
        self._drain()

    def poll(self, now_ms):
        if self.outcome is None:
            timeout = self.provisioner.timeout_ms
            if self._last_pdu is not None and now_ms - self._last_pdu >= timeout:
                self._end(now_ms, "failed", f"protocol timeout ({timeout // 1000} s without a PDU)", proto.CLOSE_TIMEOUT)
            else:
                self._events(now_ms, self._link.poll(now_ms))
        self._drain()

    def take_output(self):
        out, self._out = self._out, []
        return out

    def deadline(self):
        if self.outcome is not None:
            return None
        ds = [self._link.deadline()]
        if self._last_pdu is not None:
            ds.append(self._last_pdu + self.provisioner.timeout_ms)
        return min((d for d in ds if d is not None), default=None)

    def set_mtu(self, mtu):
        """PB-GATT: the ATT_MTU the connection negotiated."""
        self._link.set_mtu(mtu)

    def oob_value(self, now_ms, value):
        """The Output OOB value read from the lock (when the provisioner's on_request returned None)."""
        self.provisioner.auth_value(value)
        self._pump(now_ms)
        self._drain()

    # --- internals -------------------------------------------------------------------------------------
    def _begin(self, now_ms):
        self._last_pdu = now_ms
        self.provisioner.start()
        self._pump(now_ms)

    def _events(self, now_ms, events):
        for ev in events:
            if ev[0] == "open":
                self._begin(now_ms)
            elif ev[0] == "pdu":
                self._last_pdu = now_ms
                self.provisioner.receive(ev[1])
                self._pump(now_ms)
            else:
                if self.bearer == "gatt":
                    what = "GATT protocol error"
                elif self._last_pdu is None:
                    what = "no Link Ack from the lock"
                else:
                    what = "link closed"
                self.outcome, self.reason = "failed", f"{what} (reason {ev[1]})"

    def _pump(self, now_ms):
        p = self.provisioner
        if self.address is None and p.capabilities is not None and self._allocate is not None:
            try:
                self.address = p.address = self._allocate(p.capabilities["elements"])
            except ValueError as e:
                return self._end(now_ms, "failed", str(e), proto.CLOSE_FAIL)
        for pdu in p.take_outgoing():
            if self.bearer == "adv":
                self._link.send(now_ms, pdu)
            else:
                self._out += self._link.send(pdu)
        if p.state == "complete":
            self._end(now_ms, "complete", "", proto.CLOSE_SUCCESS)
        elif p.state == "failed":
            self._end(now_ms, "failed", p.error, proto.CLOSE_FAIL)

    def _end(self, now_ms, outcome, reason, close_reason):
        self.outcome, self.reason = outcome, reason
        if self.bearer == "adv":
            self._link.close(now_ms, close_reason)  # after the ack of the device's last PDU (acks go first)

    def _drain(self):
        if self.bearer == "adv":
            self._out += self._link.take_frames()
