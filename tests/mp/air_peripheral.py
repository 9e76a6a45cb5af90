# A tiny MicroPython peripheral for tests/test_air.py, run by the unix port with the host stand-ins:
#   AIR=HOST:PORT AIR_ADDR=... MICROPYPATH=tools/host:lib:.frozen micropython tests/mp/air_peripheral.py
# Written the way board firmware is: the IRQ handler copies and wakes a task through a ThreadSafeFlag.
# It checks the NimBLE limits locally (printing "ok <name>"), then serves commands written by the test to the
# control characteristic, answering on Data Out by notification. Prints "event ..." lines for the test.
import asyncio

import bluetooth
from micropython import const

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_GATTS_WRITE = const(3)
_IRQ_SCAN_RESULT = const(5)
_IRQ_SCAN_DONE = const(6)
_IRQ_MTU_EXCHANGED = const(21)
_EINVAL = const(22)
_EBUSY = const(16)
_ENOTCONN = const(107)

_SVC = bluetooth.UUID(0x1827)
_DATA_IN = bluetooth.UUID(0x2ADB)  # default 20-byte buffer
_BIG_IN = bluetooth.UUID("6e400002-b5a3-f393-e0a9-e50e24dcca9e")  # enlarged with gatts_set_buffer
_DATA_OUT = bluetooth.UUID(0x2ADC)
_CONTROL = bluetooth.UUID(0x2A00 + 0xFF)
_SERVICES = ((_SVC, ((_DATA_IN, bluetooth.FLAG_WRITE_NO_RESPONSE), (_BIG_IN, bluetooth.FLAG_WRITE_NO_RESPONSE),
                     (_DATA_OUT, bluetooth.FLAG_NOTIFY), (_CONTROL, bluetooth.FLAG_WRITE_NO_RESPONSE))),)
_ADV = b"\x02\x01\x06\x03\x03\x27\x18"

ble = bluetooth.BLE()
flag = asyncio.ThreadSafeFlag()
events = []
kept = []  # memoryviews deliberately kept past the handler: they must not keep the data


def irq(event, data):
    if event == _IRQ_GATTS_WRITE:  # copy the value now: the next write may replace it before the task runs
        events.append((event, data[0], data[1], ble.gatts_read(data[1])))
    elif event in (_IRQ_CENTRAL_CONNECT, _IRQ_CENTRAL_DISCONNECT):
        events.append((event, data[0], data[1], bytes(data[2])))
        kept.append((bytes(data[2]), data[2]))
    elif event == _IRQ_SCAN_RESULT:
        events.append((event, data[0], bytes(data[1]), data[2], bytes(data[4])))
    else:
        events.append((event, data))
    flag.set()


def expect_oserror(name, code, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except OSError as e:
        if e.args[0] == code:
            print("ok", name)
            return
        raise
    raise AssertionError(name + ": no OSError")


def setup():
    expect_oserror("inactive", 1, ble.gap_advertise, 100000, _ADV)
    ble.active(True)
    ble.irq(irq)
    expect_oserror("adv_32_bytes", _EINVAL, ble.gap_advertise, 100000, bytes(32))
    expect_oserror("adv_interval_19ms", _EINVAL, ble.gap_advertise, 19999, _ADV)
    ble.gap_advertise(20000, bytes(31))  # both limits exactly: accepted
    expect_oserror("register_while_advertising", _EBUSY, ble.gatts_register_services, _SERVICES)
    expect_oserror("nrpa_while_advertising", _EBUSY, ble.config, addr_mode=3)
    ble.gap_advertise(None)
    ble.gap_scan(0, 30000, 30000)
    expect_oserror("register_while_scanning", _EBUSY, ble.gatts_register_services, _SERVICES)
    expect_oserror("nrpa_while_scanning", _EBUSY, ble.config, addr_mode=3)
    ble.gap_scan(None)
    nrpa = []
    for mode in (3, 3, 1, 0):  # two NRPAs, a random static address, back to the public one
        ble.config(addr_mode=mode)
        t, a = ble.config("mac")
        nrpa.append("%d:%s" % (t, bytes(a).hex()))
    print("addresses", " ".join(nrpa))
    ((din, big, dout, ctl),) = ble.gatts_register_services(_SERVICES)
    ble.gatts_set_buffer(big, 100)
    expect_oserror("notify_not_connected", _ENOTCONN, ble.gatts_notify, 0, dout, b"x")
    ble.config(mtu=69)
    print("handles", din, big, dout, ctl)
    print("mac", bytes(ble.config("mac")[1]).hex())
    return din, big, dout, ctl


async def main():
    din, big, dout, ctl = setup()
    ble.gap_advertise(50000, _ADV)
    while True:
        await flag.wait()
        while events:
            e = events.pop(0)
            if e[0] == _IRQ_CENTRAL_CONNECT:
                print("event connect", e[1], e[3].hex())
                for copy, view in kept:
                    assert bytes(view) != copy, "IRQ memoryview still valid after the handler"
                expect_oserror("register_while_connected", _EBUSY, ble.gatts_register_services, _SERVICES)
            elif e[0] == _IRQ_CENTRAL_DISCONNECT:
                print("event disconnect", e[1], e[3].hex())
            elif e[0] == _IRQ_MTU_EXCHANGED:
                print("event mtu", e[1][0], e[1][1])
            elif e[0] == _IRQ_SCAN_RESULT:
                print("event scan", e[2].hex(), e[3], e[4].hex())
            elif e[0] == _IRQ_SCAN_DONE:
                print("event scan_done")
            elif e[0] == _IRQ_GATTS_WRITE:
                conn, handle, value = e[1], e[2], e[3]
                if handle != ctl:
                    ble.gatts_notify(conn, dout, value)  # echo what the buffer kept
                    continue
                cmd = bytes(value).split(b" ")
                print("event command", cmd[0].decode())
                if cmd[0] == b"notify":
                    ble.gatts_notify(conn, dout, bytes(range(int(cmd[1]))))
                elif cmd[0] == b"update":  # to subscribed centrals only
                    ble.gatts_write(dout, bytes(range(int(cmd[1]))), True)
                elif cmd[0] == b"exchange":
                    ble.gattc_exchange_mtu(conn)
                elif cmd[0] == b"disconnect":
                    print("disconnect ->", ble.gap_disconnect(conn), ble.gap_disconnect(conn + 7))
                elif cmd[0] == b"scan":
                    ble.gap_scan(int(cmd[1]), 30000, 30000)
                elif cmd[0] == b"quit":
                    return
            if e[0] == _IRQ_CENTRAL_DISCONNECT:
                ble.gap_advertise(50000, _ADV, connectable=False)  # advertising restarted by the firmware


asyncio.run(main())
print("done")
