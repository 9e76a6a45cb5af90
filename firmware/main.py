# Lock firmware: the same file on an ESP32 (MicroPython's bluetooth, esp32.NVS, machine.Pin) and on the unix
# port against the virtual air (MICROPYPATH=tools/host:lib:firmware:.frozen finds the host stand-ins first).
# Everything that decides is in lib/mesh/node.py; here: configuration, wiring, the asyncio tasks, the REPL object.
# docs/firmware.md: how to run it, the board configuration, a REPL session, the PB-ADV advertising type option.
import asyncio
import json
import os
import sys

import esp32

from mesh import factory, log
from mesh.node import Node

import pins
import radio

BOARD_FILE = "board.json"  # on the board: boards/config/<board>.json copied to the filesystem root


def _getenv(name):
    fn = getattr(os, "getenv", None)  # the unix port has it; the ESP32 port has no environment
    return fn(name) if fn else None


def load_board():
    path = _getenv("BOARD_CONFIG") or BOARD_FILE
    try:
        with open(path) as f:
            board = json.load(f)
    except (OSError, ValueError) as e:
        log.error("main", "board config %s unusable (%r): built-in defaults", path, e)
        return {}
    log.info("main", "board %s (%s)", board.get("name", "?"), path)
    return board


def nonconn_connectable(board):
    """The PB-ADV advertising type option -> True when non-connectable adverts must go out as ADV_IND."""
    try:
        from mesh_board import ADV_NONCONN  # frozen into the MESH_LOCK image only (boards/MESH_LOCK)
    except ImportError:
        ADV_NONCONN = _getenv("AIR_NONCONN_IND") == "1"  # the simulator's equivalent (docs/air.md)
    kind = board.get("pb_adv_type", "auto")
    ind = kind == "adv_ind"
    log.info("main", "PB-ADV and beacons as %s", "ADV_IND" if ind else "ADV_NONCONN_IND" if ADV_NONCONN else
             "ADV_SCAN_IND (stock MicroPython: most provisioners drop it, docs/firmware.md)")
    return ind


class Lock:
    """The REPL object `node`: node.status(), node.reset(), node.input_number(n), node.input_string(s)."""

    def __init__(self, node, clock):
        self.node, self.clock, self.radio = node, clock, None

    def status(self):
        st = self.node.status()
        for k in sorted(st):  # MicroPython dicts keep no insertion order
            print("%-11s %s" % (k, st[k]))

    def _do(self, fn, *args):
        fn(*args + (self.clock.now(),))
        if self.radio is not None:
            self.radio.wake()

    def reset(self):
        self._do(self.node.reset)

    def input_number(self, n):
        self._do(self.node.input_number, n)

    def input_string(self, s):
        self._do(self.node.input_string, s)


node = None


async def _console():
    # Lines typed on the console run with `node` in scope while the lock keeps serving the radio (the board's
    # own REPL only runs once main.py has stopped: Ctrl-C).
    reader = asyncio.StreamReader(sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        try:
            exec(line, globals())
        except Exception as e:  # noqa: BLE001 - a typo at the console must not stop the lock
            print("console:", repr(e))


async def main():
    global node
    board = load_board()
    clock = radio.Clock()
    ui = pins.Ui(board.get("pins") or {})
    n = Node(esp32.NVS("mesh"), board, factory.load(esp32.NVS(factory.NAMESPACE)), clock.now(), app=ui)
    node = ui.node = Lock(n, clock)
    r = node.radio = radio.Radio(n, clock, nonconn_connectable(board), board.get("private_address", False))
    ui.wake = r.wake
    st = n.status()
    log.info("main", "%s, UUID %s", st["state"], st["uuid"])
    if board.get("console", True):
        asyncio.create_task(_console())
    asyncio.create_task(ui.run())
    await r.run()


asyncio.run(main())
