"""Start one simulated lock: `micropython firmware/main.py` on the unix port, on the virtual air (docs/firmware.md).

    python tools/sim_lock.py --air 127.0.0.1:40123 --addr c0ffee000101 --nvs build/sim/lock-101.nvs.json \
        [--board boards/config/sim.json] [--factory build/factory/101.bin] [--name lock-101] [--log FILE]

--nvs is the lock's flash (the NVS partition, a JSON file the esp32 stand-in keeps): keys survive a restart of
the same command. --factory "flashes" an NVS partition image made by tools/factory.py into it, as esptool would at
the factory, but only when the NVS file does not exist yet (flashing replaces all of NVS, the keys included);
--reflash forces it. The process is replaced by micropython (same pid: stop the lock by killing it); its console
(log lines, Output OOB values) goes to stdout, or to --log (what tools/provision.py --console reads).
machine.reset() ends it with exit status 3: whoever started the lock restarts it with the same arguments.
"""

import argparse
import json
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
MICROPYPATH = "tools/host:lib:firmware:.frozen"  # the stand-ins first; .frozen holds the unix port's asyncio


def command(args):
    """(argv, env) that run the lock; the NVS file is prepared first."""
    nvs = pathlib.Path(args.nvs).resolve()
    if args.factory and (args.reflash or not nvs.exists()):
        sys.path.insert(0, str(ROOT / "tools" / "host"))
        import esp32  # the stand-in (CPython runs it too): parses ESP-IDF's NVS page format

        nvs.parent.mkdir(parents=True, exist_ok=True)
        esp32.Flash(str(nvs)).load_image(str(pathlib.Path(args.factory).resolve()))
    board = pathlib.Path(args.board).resolve()
    with open(board) as f:
        kind = json.load(f).get("pb_adv_type", "auto")
    env = dict(os.environ, AIR=args.air, ESP32_NVS=str(nvs), BOARD_CONFIG=str(board), MICROPYPATH=MICROPYPATH,
               AIR_NAME=args.name or "")
    if args.addr:
        env["AIR_ADDR"] = args.addr
    if kind == "nonconn":  # the board config asks for the patched MESH_LOCK build's ADV_NONCONN_IND
        env["AIR_NONCONN_IND"] = "1"
    micropython = args.micropython or str(pathlib.Path(sys.executable).with_name("micropython"))
    argv = [micropython] + (["-X", "heapsize=" + args.heap] if args.heap else []) + ["firmware/main.py"]
    return argv, env


def main(argv=None):
    ap = argparse.ArgumentParser(description="run one simulated lock on the virtual air")
    ap.add_argument("--air", required=True, help="the hub, HOST:PORT (tools/air.py prints it)")
    ap.add_argument("--nvs", required=True, help="the lock's NVS partition file (created if missing)")
    ap.add_argument("--board", default=str(ROOT / "boards" / "config" / "sim.json"))
    ap.add_argument("--addr", help="radio address, 12 hex digits (default: the hub picks one)")
    ap.add_argument("--name", help="label in the hub's radio list")
    ap.add_argument("--factory", help="NVS partition image from tools/factory.py (flashed into a new --nvs)")
    ap.add_argument("--reflash", action="store_true", help="flash --factory even if --nvs exists (erases keys)")
    ap.add_argument("--log", help="append the console to this file instead of stdout")
    ap.add_argument("--heap", help="MicroPython heap size, e.g. 256k (default: the unix port's)")
    ap.add_argument("--micropython", help="the unix port binary (default: next to this Python)")
    args = ap.parse_args(argv)
    argv, env = command(args)
    if args.log:
        fd = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
    os.chdir(ROOT)
    os.execvpe(argv[0], argv, env)


if __name__ == "__main__":
    main()
