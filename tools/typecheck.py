"""Type-check lib/ and firmware/ against the MicroPython ESP32 stubs (`make typecheck`).

mypy does not pick the stub-only packages up from the venv on its own (micropython-stubs docs, "MyPy"): their
modules shadow CPython's standard library (time, os, asyncio...), which mypy takes from its typeshed. So this
assembles one typeshed directory, build/typeshed/, from exactly the pinned packages:
  stdlib/  = micropython-stdlib-stubs' reduced stdlib + every module of micropython-esp32-stubs (+ _mpy_shed),
             each module listed in stdlib/VERSIONS (mypy ignores stdlib modules not listed there);
  stubs/   = mypy-extensions (mypy refuses a typeshed without it).
pyproject.toml points mypy's custom_typeshed_dir at it. Rebuilt when the stub versions change.

    python tools/typecheck.py            # mypy on the files named in pyproject.toml
    python tools/typecheck.py FILE...    # mypy on these files (same typeshed, same options)
"""

import importlib.metadata as md
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
TYPESHED = ROOT / "build" / "typeshed"
DISTS = ("micropython-esp32-stubs", "micropython-stdlib-stubs")


def _stamp():
    return " ".join("%s==%s" % (d, md.version(d)) for d in DISTS) + "\n"


def _copy(dist, dest):
    """Copy a distribution's .pyi files (and the stdlib/ VERSIONS file) into dest, keeping relative paths."""
    names = []
    for f in md.files(dist) or ():
        parts = f.parts
        if f.suffix != ".pyi" and f.name != "VERSIONS":
            continue
        if parts[0].endswith(".dist-info"):
            continue
        if parts[0] == "stdlib":  # micropython-stdlib-stubs ships its stdlib in typeshed layout already
            rel = pathlib.PurePath(*parts[1:])
        elif parts[0] == "stubs":  # third-party stubs (mypy-extensions) keep typeshed's stubs/ layout
            rel = pathlib.PurePath("..", *parts)
        else:
            rel = pathlib.PurePath(*parts)
            names.append(parts[0][:-4] if len(parts) == 1 else parts[0])
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f.locate(), target)
    return names


def build_typeshed():
    """Create build/typeshed if missing or made from other stub versions; return its path."""
    stamp = TYPESHED / "STAMP"
    if stamp.exists() and stamp.read_text() == _stamp():
        return TYPESHED
    if TYPESHED.exists():
        shutil.rmtree(TYPESHED)
    stdlib = TYPESHED / "stdlib"
    stdlib.mkdir(parents=True)
    top = []
    for dist in DISTS:
        top += _copy(dist, stdlib)
    versions = stdlib / "VERSIONS"
    listed = {line.split(":")[0].strip() for line in versions.read_text().splitlines() if ":" in line}
    extra = sorted(set(top) - listed)
    with versions.open("a") as fh:
        fh.write("# MicroPython ESP32 modules (added by tools/typecheck.py)\n")
        fh.writelines("%s: 3.0-\n" % name for name in extra)
    stamp.write_text(_stamp())
    return TYPESHED


def default_targets():
    """lib/ and firmware/ as pyproject.toml names them, minus folders with no Python yet (mypy rejects those)."""
    return [d for d in ("lib", "firmware") if any((ROOT / d).rglob("*.py"))]


def main(argv):
    build_typeshed()
    argv = argv or default_targets()
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")] + argv
    return subprocess.call(cmd, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
