"""Board steps behind `make firmware|check-patch|flash|deploy|config|repl|factory` (docs/deploy.md: the walkthrough).

Each step says what it is about to do, prints every command before running it, and stops with one clear
`error:` line per missing input (PORT, a file, a tool) before touching the board. --dry-run prints the
commands without running them (no board needed). Exit status: 0 done, 1 a command failed, 2 bad input.

    deploy.py firmware --micropy-dir DIR --idf-path DIR   patch + build the MESH_LOCK image (ESP-IDF needed)
    deploy.py flash    --port P [--firmware F] [--erase 0|1]
    deploy.py deploy   --port P                           copy build/device (make build) with mpremote
    deploy.py config   --port P                           copy only build/device/board.json
    deploy.py repl     --port P
    deploy.py factory  --port P --csv FILE --lock ID      one lock's factory NVS image at the NVS offset
    deploy.py check-patch --micropy-dir DIR               patch, build the unix port with NimBLE, check on HCI
"""

import argparse
import csv
import os
import pathlib
import shlex
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
BOARD_DIR = ROOT / "boards" / "MESH_LOCK"
CMODULES = BOARD_DIR / "cmodules"  # C modules of the MESH_LOCK image: _mesh_p256 (mbedTLS P-256)
PATCHES = sorted((ROOT / "boards" / "patches").glob("*.patch"))
DEVICE = ROOT / "build" / "device"
FIRMWARE_OUT = ROOT / "build" / "firmware" / "MESH_LOCK.bin"
MICROPYTHON_TAG = "v1.28.0"  # the tree the patch is made and checked against (tests/test_board.py)
IDF_VERSION = "v5.5.1"  # MicroPython v1.28.0's recommended ESP-IDF (ports/esp32/README.md)

CHIP = "esp32"
BAUD = "460800"
# The original ESP32 boots the second-stage bootloader from 0x1000; MicroPython's firmware.bin is bootloader +
# partition table + app merged from there (ports/esp32/boards/ESP32_GENERIC/board.json "flash_offset").
FIRMWARE_OFFSET = 0x1000
# The `nvs` partition of ports/esp32/partitions-4MiBplus.csv, the table ESP32_GENERIC (and MESH_LOCK) uses.
NVS_OFFSET = 0x9000
NVS_SIZE = 0x6000
ESP_IMAGE_MAGIC = 0xE9  # first byte of an ESP-IDF bootloader/app image

PORT_HINT = ("give the board's serial port, e.g. `make %s PORT=/dev/ttyUSB0` "
             "(Linux: ls /dev/ttyUSB* /dev/ttyACM*; macOS: /dev/cu.usbserial-*; Windows: COM3)")


class Fail(Exception):
    """Bad input: every message is printed as an `error:` line; exit status 2."""

    def __init__(self, *messages):
        super().__init__("\n".join(messages))
        self.messages = messages


def tool(name):
    """A pinned tool from this venv (next to the interpreter), else from PATH."""
    here = pathlib.Path(sys.executable).with_name(name)
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise Fail("%s not found: run `make venv` (it is pinned in requirements.txt)" % name)
    return found


def check_port(port, target, dry_run):
    if not port:
        raise Fail("PORT is not set: " + PORT_HINT % target)
    if dry_run or "://" in port or port.upper().startswith("COM"):
        return port  # rfc2217:// and socket:// URLs, Windows COM ports: nothing to stat
    if not os.path.exists(port):
        raise Fail("PORT=%s does not exist: is the board plugged in (and its USB-serial driver loaded)? " % port
                   + "Linux: ls /dev/ttyUSB* /dev/ttyACM*")
    if not os.access(port, os.R_OK | os.W_OK):
        raise Fail("PORT=%s is not readable and writable by you: on Linux add yourself to the `dialout` group "
                   "(sudo usermod -aG dialout $USER, then log in again)" % port)
    return port


def run(cmd, dry_run, check=True, **kw):
    print("$ " + " ".join(shlex.quote(str(c)) for c in cmd), flush=True)
    if dry_run:
        return 0
    rc = subprocess.call([str(c) for c in cmd], **kw)
    if rc != 0 and check:
        raise SystemExit("error: command failed (exit %d): %s" % (rc, cmd[0]))
    return rc


def esptool(port):
    return [tool("esptool"), "--chip", CHIP, "--port", port, "--baud", BAUD]


# --- flash ----------------------------------------------------------------------------------------------------

def check_image(path, what):
    p = pathlib.Path(path)
    if not p.is_file():
        raise Fail("%s %s does not exist" % (what, p))
    with p.open("rb") as fh:
        first = fh.read(1)
    if not first or first[0] != ESP_IMAGE_MAGIC:
        raise Fail("%s %s is not an ESP32 firmware image (first byte %s, expected 0x%02X): "
                   "use MicroPython's firmware.bin / ESP32_GENERIC-*.bin, not an .elf, .uf2 or app-only .bin"
                   % (what, p, "0x%02X" % first[0] if first else "missing", ESP_IMAGE_MAGIC))
    return p


def cmd_flash(a):
    port = check_port(a.port, "flash", a.dry_run)
    firmware = a.firmware or str(FIRMWARE_OUT)
    if not a.firmware and not FIRMWARE_OUT.exists():
        raise Fail("no FIRMWARE given and %s is not built: either `make firmware MICROPY_DIR=... IDF_PATH=...`, "
                   "or download the stock ESP32_GENERIC .bin (micropython.org/download/ESP32_GENERIC) and pass "
                   "FIRMWARE=path/to/it" % FIRMWARE_OUT.relative_to(ROOT))
    image = firmware if a.dry_run else check_image(firmware, "FIRMWARE")
    erase = a.erase not in ("0", "no", "false", "")
    print("== flash %s to the ESP32 on %s at 0x%X%s" % (
        image, port, FIRMWARE_OFFSET, " after erasing ALL flash (keys, factory data and files go too)"
        if erase else " (ERASE=0: NVS keys, factory data and files are kept)"))
    if erase:
        run(esptool(port) + ["erase-flash"], a.dry_run)
    run(esptool(port) + ["write-flash", "0x%X" % FIRMWARE_OFFSET, image], a.dry_run)
    print("== flashed. Next: `make factory PORT=%s CSV=... LOCK=...` if erased, then `make deploy` "
          "(stock firmware) or `make repl`" % port)


# --- factory --------------------------------------------------------------------------------------------------

def factory_rows(path):
    """lock_id -> row of the factory CSV (tools/factory.py's format), or Fail with what is wrong."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "lock_id" not in rows[0]:
        raise Fail("CSV=%s has no `lock_id` column: see tools/factory.py for the format" % path)
    return {r["lock_id"]: r for r in rows}


def cmd_factory(a):
    problems = []
    if not a.port:
        problems.append("PORT is not set: " + PORT_HINT % "factory")
    if not a.csv:
        problems.append("CSV is not set: the factory table of locks, e.g. `make factory CSV=locks.csv LOCK=101 ...`")
    elif not pathlib.Path(a.csv).is_file():
        problems.append("CSV=%s does not exist" % a.csv)
    if not a.lock:
        problems.append("LOCK is not set: the lock_id of one row of CSV")
    gen = ROOT / "tools" / "factory.py"
    if not gen.exists():
        problems.append("tools/factory.py (the factory-data generator of the key-store issue) is not in this tree")
    if problems:
        raise Fail(*problems)
    row = factory_rows(a.csv).get(a.lock)
    if row is None:
        raise Fail("LOCK=%s is not a lock_id of %s" % (a.lock, a.csv))
    drawn = sorted(k for k, v in row.items() if (v or "").strip().lower() == "random")
    if drawn:
        # Drawing secrets here would put values on the lock that nobody kept (the hotel needs them).
        raise Fail("lock %s has `random` cells (%s): draw them once and keep the result, "
                   "`python tools/factory.py %s --completed locks-full.csv`, then `make factory CSV=locks-full.csv ...`"
                   % (a.lock, ", ".join(drawn), a.csv))
    port = check_port(a.port, "factory", a.dry_run)
    out_dir = ROOT / "build" / "factory"
    out = out_dir / ("%s.bin" % a.lock)
    print("== factory data of lock %s from %s -> %s, written to the NVS partition (0x%X, 0x%X bytes) on %s;"
          " this replaces all of NVS, keys included: the lock starts unprovisioned" % (
              a.lock, a.csv, out.relative_to(ROOT), NVS_OFFSET, NVS_SIZE, port))
    run([sys.executable, gen, a.csv, "--out", out_dir, "--size", "0x%X" % NVS_SIZE], a.dry_run)
    if not a.dry_run:
        size = out.stat().st_size if out.exists() else 0
        if size != NVS_SIZE:
            # A larger image would overwrite phy_init and the app; a smaller one leaves stale pages behind.
            raise Fail("%s is %d bytes; the NVS partition is exactly 0x%X (%d) bytes: not flashing it"
                       % (out, size, NVS_SIZE, NVS_SIZE))
    run(esptool(port) + ["write-flash", "0x%X" % NVS_OFFSET, out], a.dry_run)
    print("== done: the lock reads its factory data at the next boot (press reset, or `make repl` and Ctrl-D)")


# --- deploy / repl --------------------------------------------------------------------------------------------

def device_files(device=None):
    device = device or DEVICE
    return sorted(str(p.relative_to(device)).replace(os.sep, "/") for p in device.rglob("*") if p.is_file())


def cleanup_snippet(files):
    """Runs on the board before the copy: deletes what would shadow or outlive the new modules
    (a /lib/mesh/*.py from an earlier source copy wins over the .mpy; a renamed module's old .mpy stays)."""
    keep = sorted(f[len("lib/mesh/"):] for f in files if f.startswith("lib/mesh/"))
    return "\n".join([
        "import os",
        "keep = %r" % keep,
        "try:",
        "    names = os.listdir('lib/mesh')",
        "except OSError:",
        "    names = []",
        "for n in names:",
        "    if n not in keep:",
        "        os.remove('lib/mesh/' + n)",
        "        print('removed stale lib/mesh/' + n)",
        "try:",
        "    import mesh_board",
        "    print('WARNING: this board runs the MESH_LOCK image: its frozen modules win over the files copied now')",
        "except ImportError:",
        "    pass",
    ])


def cmd_deploy(a):
    port = check_port(a.port, "deploy", a.dry_run)
    if not DEVICE.is_dir() or not any(DEVICE.iterdir()):
        raise Fail("build/device is empty: run `make build` first (`make deploy` does it for you)")
    files = device_files()
    top = sorted({f.split("/")[0] for f in files})
    print("== copy %d files from build/device to %s (mpremote skips files whose SHA-256 is unchanged)" % (
        len(files), port))
    mpremote = tool("mpremote")
    cleanup = DEVICE.parent / "deploy_cleanup.py"  # outside build/device: never copied to the board
    cleanup.write_text(cleanup_snippet(files) + "\n")
    # One copy per top-level entry, each in the form mpremote documents: `cp -r DIR :` (into the root) and
    # `cp FILE :NAME`; mpremote hashes each file on the board and skips it when unchanged (no -f).
    copies = []
    for name in top:
        src = DEVICE / name
        copies += ["+", "fs", "cp", "-r", src, ":"] if src.is_dir() else ["+", "fs", "cp", src, ":" + name]
    run([mpremote, "connect", port, "run", cleanup] + copies, a.dry_run)
    print("== deployed. `make repl PORT=%s`, then Ctrl-D (soft reset) runs main.py" % port)


def cmd_config(a):
    port = check_port(a.port, "config", a.dry_run)
    cfg = DEVICE / "board.json"
    if not cfg.is_file():
        raise Fail("build/device/board.json is missing: run `make build BOARD=...` first (`make config` does it)")
    print("== copy the board configuration to %s:/board.json (main.py reads it at boot)" % port)
    run([tool("mpremote"), "connect", port, "fs", "cp", cfg, ":board.json"], a.dry_run)


def cmd_repl(a):
    port = check_port(a.port, "repl", a.dry_run)
    print("== MicroPython REPL on %s (Ctrl-] or Ctrl-X to leave; Ctrl-C stops main.py, Ctrl-D restarts it)" % port)
    run([tool("mpremote"), "connect", port, "repl"], a.dry_run)


# --- firmware -------------------------------------------------------------------------------------------------

def git_apply(micropy_dir, patch, *extra, dry_run=True):
    """`git apply` inside MICROPY_DIR. The ceiling keeps git from finding an enclosing repository (a MicroPython
    tree vendored inside another project), which would make it take paths relative to that one and skip ours."""
    mp = pathlib.Path(micropy_dir).resolve()
    cmd = ["git", "apply"] + list(extra) + [str(patch)]
    if not dry_run:
        print("$ (cd %s && %s)" % (shlex.quote(str(mp)), " ".join(shlex.quote(c) for c in cmd)), flush=True)
    env = dict(os.environ, GIT_CEILING_DIRECTORIES=str(mp.parent))
    return subprocess.run(cmd, cwd=mp, env=env, capture_output=True, text=True)


def check_micropy_dir(value, problems, needs="esp32"):
    mp = pathlib.Path(value) if value else None
    if mp is None:
        problems.append("MICROPY_DIR is not set: a MicroPython %s checkout with submodules, e.g. "
                        "`git clone -b %s https://github.com/micropython/micropython` (docs/deploy.md)"
                        % (MICROPYTHON_TAG, MICROPYTHON_TAG))
    elif not (mp / "ports" / needs / "Makefile").is_file():
        problems.append("MICROPY_DIR=%s is not a MicroPython source tree (no ports/%s/Makefile)" % (mp, needs))
    if shutil.which("git") is None:
        problems.append("git not found: needed to apply boards/patches/")
    return mp


def apply_patches(mp, dry_run):
    for patch in PATCHES:
        rel = patch.relative_to(ROOT)
        if git_apply(mp, patch, "--check").returncode == 0:
            if dry_run:
                print("$ (cd %s && git apply %s)" % (shlex.quote(str(mp)), shlex.quote(str(patch))))
            elif git_apply(mp, patch, dry_run=False).returncode != 0:
                raise SystemExit("error: git apply %s failed in %s" % (rel, mp))
        elif git_apply(mp, patch, "--reverse", "--check").returncode == 0:
            print("== %s is already applied" % rel)
        else:
            raise Fail("%s does not apply to %s: it is made for MicroPython %s (git -C %s checkout %s)"
                       % (rel, mp, MICROPYTHON_TAG, mp, MICROPYTHON_TAG))


def cmd_firmware(a):
    problems = []
    mp = check_micropy_dir(a.micropy_dir, problems)
    idf = pathlib.Path(a.idf_path) if a.idf_path else None
    if idf is None:
        problems.append("IDF_PATH is not set: ESP-IDF is not installed here. `make firmware` needs ESP-IDF %s "
                        "(docs/deploy.md, \"Build the MESH_LOCK firmware\"); pass IDF_PATH=~/esp/esp-idf" % IDF_VERSION)
    elif not (idf / "export.sh").is_file():
        problems.append("IDF_PATH=%s has no export.sh: not an ESP-IDF installation (need ESP-IDF %s)"
                        % (idf, IDF_VERSION))
    if problems:
        raise Fail(*problems)
    print("== MESH_LOCK firmware: patch %s, freeze lib/ + firmware/, build with ESP-IDF at %s" % (mp, idf))
    apply_patches(mp, a.dry_run)
    port_dir = mp / "ports" / "esp32"
    build = ("source %s/export.sh >/dev/null && make -C %s/mpy-cross && "
             "make -C %s BOARD_DIR=%s submodules && make -C %s BOARD_DIR=%s USER_C_MODULES=%s"
             % tuple(shlex.quote(str(x)) for x in (idf, mp, port_dir, BOARD_DIR, port_dir, BOARD_DIR,
                                                   CMODULES / "micropython.cmake")))
    run(["bash", "-c", build], a.dry_run)
    built = port_dir / "build-MESH_LOCK" / "firmware.bin"
    print("$ cp %s %s" % (built, FIRMWARE_OUT.relative_to(ROOT)))
    if not a.dry_run:
        FIRMWARE_OUT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, FIRMWARE_OUT)
    print("== built %s: `make flash PORT=...` writes it" % FIRMWARE_OUT.relative_to(ROOT))


# The unix port with NimBLE over an H4 UART: the same NimBLE host code as the ESP32's, no ESP-IDF needed.
UNIX_NIMBLE = ["MICROPY_PY_BLUETOOTH=1", "MICROPY_BLUETOOTH_NIMBLE=1", "MICROPY_PY_BTREE=0", "MICROPY_PY_FFI=0",
               "MICROPY_PY_SSL=0", "BUILD=build-nimble"]


def build_unix_port(mp, flags, dry_run, have=None):
    """mpy-cross, the submodules (skipped when `have`, a directory they provide, exists: a tree that is not a git
    checkout cannot fetch them) and MicroPython's unix port with `flags`; returns the port's directory."""
    unix = mp / "ports" / "unix"
    run(["make", "-C", mp / "mpy-cross"], dry_run)
    if have is None or not have.is_dir():
        run(["make", "-C", unix] + flags + ["submodules"], dry_run)
    run(["make", "-C", unix, "-j2"] + flags, dry_run)
    return unix


def cmd_check_patch(a):
    problems = []
    mp = check_micropy_dir(a.micropy_dir, problems, needs="unix")
    if problems:
        raise Fail(*problems)
    print("== the ADV_NONCONN_IND patch on HCI: patch %s, build its unix port with NimBLE, run it against "
          "a fake controller (tools/hci_adv_check.py)" % mp)
    apply_patches(mp, a.dry_run)
    unix = build_unix_port(mp, UNIX_NIMBLE, a.dry_run)
    rc = run([sys.executable, ROOT / "tools" / "hci_adv_check.py", unix / "build-nimble" / "micropython"],
             a.dry_run, check=False)
    if rc:
        raise SystemExit(1)


# The unix port with the MESH_LOCK C modules, on MicroPython's own mbedTLS configured as ESP-IDF's default
# (NIST_OPTIM on): the same C code and mbedTLS version family as the board, tested with the project's tests.
UNIX_CMODULE = ["MICROPY_PY_BTREE=0", "MICROPY_PY_FFI=0", "FROZEN_MANIFEST=%s" % (CMODULES / "unix_manifest.py"),
                "BUILD=build-meshlock",
                "USER_C_MODULES=%s" % CMODULES, "CFLAGS_EXTRA=-Werror -DMBEDTLS_ECP_NIST_OPTIM"]


def cmd_check_cmodule(a):
    problems = []
    mp = check_micropy_dir(a.micropy_dir, problems, needs="unix")
    if problems:
        raise Fail(*problems)
    print("== the _mesh_p256 C module: build %s's unix port with it, run the whole suite and the crypto bench "
          "on that build" % mp)
    unix = build_unix_port(mp, UNIX_CMODULE, a.dry_run, have=mp / "lib" / "mbedtls" / "library")
    exe = unix / "build-meshlock" / "micropython"
    # Without the module the suite would pass on the Python code alone, skipping the C halves: refuse that.
    if run([exe, "-c", "import _mesh_p256"], a.dry_run, check=False):
        raise Fail("%s was built without _mesh_p256: is USER_C_MODULES=%s reaching the build?" % (exe, CMODULES))
    env = dict(os.environ, MICROPYTHON=str(exe))
    rc = run([sys.executable, "-m", "pytest", "-q", "-rs"], a.dry_run, check=False, env=env, cwd=ROOT)
    rc = rc or run([sys.executable, ROOT / "tools" / "bench_crypto.py"], a.dry_run, check=False, env=env)
    if rc:
        raise SystemExit(1)


def parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="step", required=True)
    for name, fn in (("firmware", cmd_firmware), ("flash", cmd_flash), ("deploy", cmd_deploy),
                     ("config", cmd_config), ("repl", cmd_repl), ("factory", cmd_factory),
                     ("check-patch", cmd_check_patch), ("check-cmodule", cmd_check_cmodule)):
        s = sub.add_parser(name)
        s.set_defaults(fn=fn)
        s.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
        if name in ("firmware", "check-patch", "check-cmodule"):
            s.add_argument("--micropy-dir", default="")
        else:
            s.add_argument("--port", default="")
    sub.choices["firmware"].add_argument("--idf-path", default="")
    sub.choices["flash"].add_argument("--firmware", default="")
    sub.choices["flash"].add_argument("--erase", default="1")
    sub.choices["factory"].add_argument("--csv", default="")
    sub.choices["factory"].add_argument("--lock", default="")
    return p


def main(argv=None):
    a = parser().parse_args(argv)
    for name in ("firmware", "csv", "micropy_dir", "idf_path"):  # `FIRMWARE=~/x.bin` reaches us unexpanded
        if getattr(a, name, ""):
            setattr(a, name, os.path.expanduser(getattr(a, name)))
    try:
        a.fn(a)
    except Fail as e:
        for m in e.messages:
            print("error: %s" % m, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
