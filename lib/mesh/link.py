# One provisionee core behind both bearers (Mesh Protocol v1.1 §5.2): routes PB-ADV and PB-GATT events to
# the single Provisionee, lets only one provisioning run at a time, and closes the bearer when the
# provisionee asks. A second link (PB-ADV Link Open) or connection (PB-GATT) is refused without touching
# the first: the Link Open gets no Link Ack, the connection is listed in take_disconnects().
# Sans-I/O like the bearers: node.py feeds it radio events and drains frames, notifications, disconnects.
from mesh import pb_adv
from mesh.provisionee import BEARER_ADV as ADV, BEARER_GATT as GATT


class Link:
    def __init__(self, prov, adv, gatt):
        self.prov, self.adv, self.gatt = prov, adv, gatt
        self.bearer = None  # ADV (1) or GATT (2), as the provisionee names them, while a provisioning runs
        self.conn = None  # the connection handle that carries PB-GATT
        self._notify = []  # (conn, value) for Data Out
        self._drop = []  # connections the node must disconnect

    # ---- PB-ADV ----------------------------------------------------------------------------------------
    def adv_receive(self, now_ms, pb_adv_pdu):
        """A PB-ADV PDU heard on air (the AD data after type 0x29)."""
        if self.bearer != GATT:  # while PB-GATT provisions, Link Opens go unanswered
            self._route(now_ms, ADV, self.adv.receive(now_ms, pb_adv_pdu))

    def take_adv_frames(self):
        """[(pb_adv_pdu, urgent)] for the advertising scheduler."""
        return self.adv.take_frames()

    # ---- PB-GATT ---------------------------------------------------------------------------------------
    def gatt_connected(self, now_ms, conn):
        """A central connected. False: refused (busy), the connection is in take_disconnects()."""
        if self.bearer is not None or self.conn is not None:
            self._drop.append(conn)
            return False
        self.conn = conn
        self._route(now_ms, GATT, self.gatt.connected(now_ms))
        return self.bearer == GATT

    def gatt_disconnected(self, now_ms, conn):
        if conn == self.conn:
            self.conn = None
            self._route(now_ms, GATT, self.gatt.disconnected(now_ms))

    def gatt_mtu(self, conn, mtu):
        if conn == self.conn:
            self.gatt.set_mtu(mtu)

    def gatt_write(self, now_ms, conn, value):
        """A write to Mesh Provisioning Data In (0x2ADB); writes of refused connections are ignored."""
        if conn == self.conn:
            self._route(now_ms, GATT, self.gatt.receive(now_ms, value))

    def take_notifications(self):
        """[(conn, value)] to notify on Mesh Provisioning Data Out (0x2ADC), in order."""
        out, self._notify = self._notify, []
        return out

    def take_disconnects(self):
        out, self._drop = self._drop, []
        return out

    # ---- both ------------------------------------------------------------------------------------------
    def poll(self, now_ms):
        self._route(now_ms, ADV, self.adv.poll(now_ms))
        self._route(now_ms, GATT, self.gatt.poll(now_ms))
        self.prov.poll(now_ms)
        self._pump(now_ms)

    def deadline(self):
        ds = [d for d in (self.adv.deadline(), self.gatt.deadline(), self.prov.deadline()) if d is not None]
        return min(ds) if ds else None

    def _route(self, now_ms, which, events):
        for ev in events:
            if ev[0] == "open":
                if self.bearer is None and self.prov.link_open(now_ms, which):
                    self.bearer = which
                else:
                    self._close_bearer(now_ms, which, pb_adv.CLOSE_FAIL)
            elif self.bearer != which:
                continue
            elif ev[0] == "pdu":
                self.prov.receive(now_ms, ev[1])
            else:  # the bearer's link ended (peer close, timeout, failure or disconnect)
                if which == GATT and self.conn is not None:
                    self._drop.append(self.conn)  # the bearer asks for the disconnect
                    self.conn = None
                self.bearer = None
                self.prov.link_closed(now_ms, ev[1])
        self._pump(now_ms)

    def _pump(self, now_ms):
        which = self.bearer
        if which is None:
            return
        for pdu in self.prov.take_outgoing():
            if which == ADV:
                self.adv.send(now_ms, pdu)
            else:
                self._notify.extend((self.conn, v) for v in self.gatt.send(now_ms, pdu))
        reason = self.prov.close_reason
        # On PB-ADV, close only once our last transaction (e.g. Provisioning Failed) is acked or timed out.
        if reason is not None and (which == GATT or not self.adv.tx_pending):
            self._close_bearer(now_ms, which, reason)
            self.bearer = None
            self.prov.link_closed(now_ms, reason)

    def _close_bearer(self, now_ms, which, reason):
        if which == ADV:
            self.adv.close(now_ms, reason)
        else:
            self.gatt.disconnected(now_ms)  # forget the connection's state; the node disconnects it
            if self.conn is not None:
                self._drop.append(self.conn)
                self.conn = None
