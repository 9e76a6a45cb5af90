# The bluetooth adapter: MicroPython's `bluetooth` (NimBLE on the ESP32, tools/host/bluetooth.py on the unix port)
# on one side, mesh.node.Node on the other. The IRQ handler only copies the event, queues it and wakes the task
# (it runs on the NimBLE task with a small stack); the task feeds the node and applies its actions. No protocol
# decision is taken here (docs/firmware.md).
import asyncio
import time

import bluetooth
from micropython import const

from mesh import log

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_GATTS_WRITE = const(3)
_IRQ_SCAN_RESULT = const(5)
_IRQ_MTU_EXCHANGED = const(21)
# PB-ADV scanning: continuous, 30 ms window every 30 ms (as Zephyr's mesh scanner), passive.
_SCAN_INTERVAL_US = const(30000)
_SCAN_WINDOW_US = const(30000)
_DATA_IN_BUF = const(512)  # Data In defaults to 20 bytes: a longer write would be cut (docs/bearers.md)
_QUEUE_MAX = const(64)  # scan results beyond this are dropped (counted); GATT events never are
_IDLE_MS = const(60000)  # wake at least this often: keeps the ticks_diff clock below half its wrap
# BLE.config(addr_mode=3): NRPA. On NimBLE (extmod/nimble/modbluetooth_nimble.c, mp_bluetooth_set_address_mode)
# every call draws a fresh non-resolvable private address (ble_hs_id_gen_rnd(1)) and sets it with HCI LE Set
# Random Address, which the controller refuses while advertising or scanning (Core Vol 4 Part E §7.8.4: Command
# Disallowed; MicroPython asserts on it), hence both stopped first. RPA (2) cannot be renewed on demand: NimBLE
# rotates it on its own timer. docs/advertising.md, "Private address".
_ADDR_NRPA = const(3)
_TAG = const("radio")

# Mesh Provisioning Service (Mesh Protocol v1.1 §7.1): Data In (write without response), Data Out (notify)
_SERVICE = (bluetooth.UUID(0x1827), ((bluetooth.UUID(0x2ADB), bluetooth.FLAG_WRITE_NO_RESPONSE),
                                     (bluetooth.UUID(0x2ADC), bluetooth.FLAG_NOTIFY)))


class Clock:
    """Milliseconds since boot as an unbounded int (ticks_ms wraps; lib wants a counter that never does)."""

    def __init__(self):
        self._t = time.ticks_ms()
        self._ms = 0

    def now(self):
        t = time.ticks_ms()
        self._ms += time.ticks_diff(t, self._t)
        self._t = t
        return self._ms


class Radio:
    """nonconn_connectable: send the node's non-connectable adverts (beacons, PB-ADV) as ADV_IND -- the board
    option pb_adv_type "adv_ind" for stock MicroPython (docs/firmware.md). private: a new NRPA with every new
    UUID (board option private_address)."""

    def __init__(self, node, clock, nonconn_connectable=False, private=False):
        self.node, self.clock, self.as_ind, self.private = node, clock, nonconn_connectable, private
        self._scan = False
        self._q = []
        self.dropped = 0
        self._flag = asyncio.ThreadSafeFlag()
        ble = self.ble = bluetooth.BLE()
        ble.active(True)
        ble.irq(self._irq)
        # Registered once, before any advertising or scanning (NimBLE refuses with EBUSY afterwards).
        ((self._in, self._out),) = ble.gatts_register_services((_SERVICE,))
        ble.gatts_set_buffer(self._in, _DATA_IN_BUF)

    def _irq(self, event, data):
        try:
            if event == _IRQ_SCAN_RESULT:
                if len(self._q) >= _QUEUE_MAX:
                    self.dropped += 1
                    return
                ev = (event, data[2], bytes(data[1]), bytes(data[4]))  # adv_type, addr, adv_data
            elif event == _IRQ_GATTS_WRITE:
                if data[1] != self._in:
                    return
                ev = (event, data[0], self.ble.gatts_read(self._in), None)  # a copy, before the next write lands
            elif event in (_IRQ_CENTRAL_CONNECT, _IRQ_CENTRAL_DISCONNECT, _IRQ_MTU_EXCHANGED):
                ev = (event, data[0], data[1], None)
            else:
                return
            self._q.append(ev)
            self._flag.set()
        except Exception as e:  # noqa: BLE001 - never let an exception escape into the BLE stack
            log.error(_TAG, "irq %d: %r", event, e)

    def wake(self):
        """Something outside the radio (button, REPL) fed the node: apply its actions now."""
        self._flag.set()

    async def run(self):
        node, clock = self.node, self.clock
        while True:
            try:
                while self._q:
                    self._feed(self._q.pop(0))
                now = clock.now()
                d = node.deadline()
                if d is not None and d <= now:
                    node.poll(now)
                self._apply()
            except Exception as e:  # noqa: BLE001 - a bug must not silence the lock: log, drop the event, go on
                log.error(_TAG, "node raised %r", e)
            d = node.deadline()
            if d == 0 or self._q:
                await asyncio.sleep_ms(0)  # crypto slice done: let IRQs and other tasks in
                continue
            wait = _IDLE_MS if d is None else max(1, min(d - clock.now(), _IDLE_MS))
            try:
                await asyncio.wait_for_ms(self._flag.wait(), wait)
            except asyncio.TimeoutError:
                pass

    def _feed(self, ev):
        node, now, e = self.node, self.clock.now(), ev[0]
        if e == _IRQ_SCAN_RESULT:
            node.scan_result(now, ev[1], ev[2], ev[3])
        elif e == _IRQ_GATTS_WRITE:
            node.write(now, ev[1], ev[2])
        elif e == _IRQ_CENTRAL_CONNECT:
            log.info(_TAG, "central connected (conn %d)", ev[1])
            node.connected(now, ev[1])
        elif e == _IRQ_CENTRAL_DISCONNECT:
            log.info(_TAG, "central disconnected (conn %d)", ev[1])
            node.disconnected(now, ev[1])
        else:
            node.mtu_exchanged(ev[1], ev[2])

    def _apply(self):
        ble = self.ble
        for act in self.node.take_actions():
            try:
                k = act[0]
                if k == "adv":
                    a = act[1]
                    if a is None:
                        ble.gap_advertise(None)
                    else:  # resp b"", not None: None would reuse the previous call's scan response
                        ble.gap_advertise(a.interval_ms * 1000, a.data, resp_data=a.resp or b"",
                                          connectable=a.connectable or self.as_ind)
                elif k == "scan":
                    self._scan = act[1]
                    self._scanning(act[1])
                elif k == "addr":
                    if self.private:  # the node's next "adv" restarts advertising
                        ble.gap_advertise(None)
                        self._scanning(False)
                        try:
                            ble.config(addr_mode=_ADDR_NRPA)
                            log.info(_TAG, "new private address")
                        finally:  # scanning back on even if the address was refused (the error is logged)
                            self._scanning(self._scan)
                elif k == "notify":
                    ble.gatts_notify(act[1], self._out, act[2])  # <= MTU - 3 bytes each (PbGatt segments)
                else:
                    ble.gap_disconnect(act[1])
            except OSError as e:  # e.g. ENOTCONN: the central left meanwhile; its disconnect event follows
                log.error(_TAG, "%s failed: %r", act[0], e)

    def _scanning(self, on):
        if on:
            self.ble.gap_scan(0, _SCAN_INTERVAL_US, _SCAN_WINDOW_US)
        else:
            self.ble.gap_scan(None)
