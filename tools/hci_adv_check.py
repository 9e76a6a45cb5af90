"""Which advertising PDU type does `gap_advertise` make NimBLE ask for? (`make check-patch`, docs/deploy.md)

Runs a MicroPython unix port built with NimBLE (MICROPY_BLUETOOTH_NIMBLE=1) against a fake Bluetooth controller:
a pty that the port opens as its H4 HCI UART (env MICROPYBTUART). The fake answers every HCI command with
Command Complete and records the Advertising_Type of each HCI LE Set Advertising Parameters command
(Core v5.4 Vol 4 Part E §7.8.5: 0 ADV_IND, 2 ADV_SCAN_IND, 3 ADV_NONCONN_IND). The NimBLE host code that picks
the type (ble_gap_adv_type) is the same on the ESP32 (ESP-IDF's NimBLE) as in MicroPython's NimBLE submodule.

    python tools/hci_adv_check.py path/to/micropython      exit 0: patched, 1: stock behaviour, 2: other
"""

import os
import select
import subprocess
import sys
import time
import tty

ADV_TYPES = {0: "ADV_IND", 2: "ADV_SCAN_IND", 3: "ADV_NONCONN_IND"}
_H4_COMMAND, _H4_EVENT, _EVT_COMMAND_COMPLETE = 0x01, 0x04, 0x0E
_OP_LE_SET_ADV_PARAMS = 0x2006
_ADV_TYPE_OFFSET = 4  # Interval_Min(2) Interval_Max(2) Advertising_Type(1) ...

# Return parameters (after Status) of the commands NimBLE sends while starting and advertising. Unlisted commands
# get Status alone, which NimBLE accepts for those it sends (set masks, addresses, data, enables).
_RETURNS = {
    0x1001: bytes([0x08, 0, 0, 0x08, 0x5F, 0, 0, 0]),  # Read Local Version: HCI/LMP 4.2, like the ESP32
    0x1002: b"\xff" * 64,  # Read Local Supported Commands: all
    0x1003: bytes([0, 0, 0, 0, 0x60, 0, 0, 0]),  # Read Local Supported Features: LE, no BR/EDR
    0x1005: bytes([251, 0, 0, 8, 0, 0, 0]),  # Read Buffer Size
    0x1009: bytes([0x01, 0x02, 0x03, 0x04, 0x05, 0x06]),  # Read BD_ADDR
    0x2002: bytes([251, 0, 8]),  # LE Read Buffer Size
    0x2003: bytes(8),  # LE Read Local Supported Features: none
    0x2007: bytes(1),  # LE Read Advertising Physical Channel Tx Power
    0x200F: bytes([8]),  # LE Read Filter Accept List Size
    0x2018: bytes(8),  # LE Rand
    0x201C: bytes(8),  # LE Read Supported States
    0x202A: bytes([8]),  # LE Read Resolving List Size
}

# What the check asks for, and what the patched and the stock builds answer.
CALLS = ("connectable=True", "connectable=False", "connectable=False, resp_data=b'\\x02\\x09L'",
         "connectable=False, resp_data=b''")
PATCHED = [0, 3, 2, 3]
STOCK = [0, 2, 2, 2]


def script():
    lines = ["import bluetooth", "b = bluetooth.BLE()", "b.active(True)"]
    lines += ["b.gap_advertise(100000, b'\\x02\\x01\\x06', %s)" % args for args in CALLS]
    lines += ["b.gap_advertise(None)", "b.active(False)", "print('done')"]
    return "\n".join(lines)


def run(micropython, timeout_s=30):
    """Advertising_Type of each LE Set Advertising Parameters, and the port's output."""
    master, slave = os.openpty()
    tty.setraw(slave)  # a UART carries bytes: no echo, no line discipline (the port sets this too)
    env = dict(os.environ, MICROPYBTUART=os.ttyname(slave))
    p = subprocess.Popen([micropython, "-c", script()], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    buf, types = b"", []
    deadline = time.monotonic() + timeout_s
    try:
        while p.poll() is None and time.monotonic() < deadline:
            if not select.select([master], [], [], 0.1)[0]:
                continue
            buf += os.read(master, 4096)
            while len(buf) >= 4 and buf[0] == _H4_COMMAND and len(buf) >= 4 + buf[3]:
                op, params, buf = buf[1] | buf[2] << 8, buf[4:4 + buf[3]], buf[4 + buf[3]:]
                if op == _OP_LE_SET_ADV_PARAMS:
                    types.append(params[_ADV_TYPE_OFFSET])
                body = bytes([1, op & 0xFF, op >> 8, 0]) + _RETURNS.get(op, b"")
                os.write(master, bytes([_H4_EVENT, _EVT_COMMAND_COMPLETE, len(body)]) + body)
            if buf and buf[0] != _H4_COMMAND:
                raise RuntimeError("unexpected H4 packet from the host: %s" % buf[:8].hex())
    finally:
        if p.poll() is None:
            p.kill()
        out = p.communicate()[0].decode(errors="replace")
        os.close(master)
        os.close(slave)
    return types, out


def main(argv):
    if len(argv) != 1 or not os.access(argv[0], os.X_OK):
        print("usage: hci_adv_check.py MICROPYTHON (a unix port built with MICROPY_BLUETOOTH_NIMBLE=1)",
              file=sys.stderr)
        return 2
    types, out = run(argv[0])
    print("== gap_advertise(...) -> HCI LE Set Advertising Parameters, Advertising_Type")
    for label, t in zip(CALLS, types):
        print("  %-45s %s (%d)" % (label, ADV_TYPES.get(t, "?"), t))
    if types == PATCHED:
        print("== patched: non-connectable advertising without scan response data is ADV_NONCONN_IND")
        return 0
    if types == STOCK:
        print("== stock behaviour (upstream issue 18480): non-connectable advertising is ADV_SCAN_IND")
        return 1
    print("== unexpected: %r\n%s" % (types, out))
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
