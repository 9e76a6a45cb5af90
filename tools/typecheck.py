"""Type-check lib/ and firmware/ against the MicroPython ESP32 stubs (`make typecheck`).

mypy does not pick the stub-only packages up from the venv on its own (micropython-stubs docs, "MyPy"): their
modules shadow CPython's standard library (time, os, asyncio...), which mypy takes from its typeshed. So this
assembles one typeshed directory, build/typeshed/, from exactly the pinned packages:
  stdlib/  = micropython-stdlib-stubs' reduced stdlib + every module of micropython-esp32-stubs (+ _mpy_shed),
             each module listed in stdlib/VERSIONS (mypy ignores stdlib modules not listed there);
  stubs/   = mypy-extensions (mypy refuses a typeshed without it).
Five errata (ERRATA below) correct `bluetooth` signatures the stubs get wrong, from MicroPython's source.
pyproject.toml points mypy's custom_typeshed_dir at it. Rebuilt when the stub versions change.

    python tools/typecheck.py            # mypy on lib/ + firmware/, then the host stand-in API check
    python tools/typecheck.py FILE...    # mypy on these files (same typeshed, same options)

Host stand-ins (tools/host/bluetooth.py, esp32.py, machine.py) run firmware/ on the unix port. They are held to
the same stubs (check_standins): every name a stand-in shares with the board's module must be callable the way
the stub allows (positional arity, keyword names, each overload) and shared integer constants must be equal.
Names only the stand-in has (test hooks such as machine.drive) are fine: firmware/ is type-checked against the
stubs, so it cannot use them. A stand-in may define `BLE()` as a function returning `_BLE`: the stub class
`BLE` is then compared with `_BLE`.
"""

import ast
import importlib.metadata as md
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
TYPESHED = ROOT / "build" / "typeshed"
DISTS = ("micropython-esp32-stubs", "micropython-stdlib-stubs")


# Where the pinned stubs contradict MicroPython itself (extmod/modbluetooth.c, v1.28.0), build/typeshed gets the
# board's signature; each pattern must match, so a stubs upgrade that fixes or moves them stops here for a look.
ERRATA = (
    # Handles are small ints (mp_obj_get_int(args[1]) ...), not memoryviews.
    ("bluetooth.pyi", r"\b(conn_handle|value_handle): memoryview", r"\1: int"),
    ("bluetooth.pyi", r"-> tuple\[tuple\[memoryview, \.\.\.\], \.\.\.\]", "-> tuple[tuple[int, ...], ...]"),
    # MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(bluetooth_ble_gatts_notify_obj, 3, 4): (conn_handle, value_handle[, data])
    ("bluetooth.pyi", r"def gatts_notify\(self, value_handle: int, data: bytes, /\)",
     "def gatts_notify(self, conn_handle: int, value_handle: int, data: AnyReadableBuf | None = None, /)"),
    ("bluetooth.pyi", r"def gatts_indicate\(self, conn_handle: int, value_handle: int, /\)",
     "def gatts_indicate(self, conn_handle: int, value_handle: int, data: AnyReadableBuf | None = None, /)"),
    # bluetooth_ble_gatts_set_buffer: args[1] is the value handle
    ("bluetooth.pyi", r"def gatts_set_buffer\(self, conn_handle: int,",
     "def gatts_set_buffer(self, value_handle: int,"),
)


def _stamp():
    return " ".join("%s==%s" % (d, md.version(d)) for d in DISTS) + " errata=%d\n" % len(ERRATA)


def _apply_errata(stdlib):
    for name, pattern, repl in ERRATA:
        path = stdlib / name
        text, n = re.subn(pattern, repl, path.read_text())
        if not n:
            raise SystemExit("tools/typecheck.py: stub erratum %r no longer matches %s: re-check it against "
                             "MicroPython's source and update ERRATA" % (pattern, name))
        path.write_text(text)


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
    """Create build/typeshed if missing or made from other stub versions; return its path. Built beside it and
    renamed into place, so several engineers' test runs in one checkout never see a half-built typeshed."""
    stamp = TYPESHED / "STAMP"
    if stamp.exists() and stamp.read_text() == _stamp():
        return TYPESHED
    TYPESHED.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="typeshed.", dir=TYPESHED.parent))
    tmp.chmod(0o755)
    stdlib = tmp / "stdlib"
    stdlib.mkdir()
    top = []
    for dist in DISTS:
        top += _copy(dist, stdlib)
    _apply_errata(stdlib)
    versions = stdlib / "VERSIONS"
    listed = {line.split(":")[0].strip() for line in versions.read_text().splitlines() if ":" in line}
    extra = sorted(set(top) - listed)
    with versions.open("a") as fh:
        fh.write("# MicroPython ESP32 modules (added by tools/typecheck.py)\n")
        fh.writelines("%s: 3.0-\n" % name for name in extra)
    (tmp / "STAMP").write_text(_stamp())
    old = TYPESHED.with_name("typeshed.old.%d" % os.getpid())
    if TYPESHED.exists():
        os.replace(TYPESHED, old)  # a directory cannot be replaced in one step: move the stale one aside first
    try:
        os.replace(tmp, TYPESHED)
    except OSError:  # another run put a fresh one in place meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    return TYPESHED


def default_targets():
    """lib/ and firmware/ as pyproject.toml names them, minus folders with no Python yet (mypy rejects those)."""
    return [d for d in ("lib", "firmware") if any((ROOT / d).rglob("*.py"))]


# --- host stand-ins against the stubs ------------------------------------------------------------------------

def _sig(fn, method):
    """(min positional, max positional or None for *args, keyword-able names, has **kwargs)."""
    a = fn.args
    pos = a.posonlyargs + a.args
    if method and pos:
        pos = pos[1:]  # self
    named = [x.arg for x in a.args[(1 if method and not a.posonlyargs else 0):]] + [x.arg for x in a.kwonlyargs]
    required_kw = [x.arg for x, d in zip(a.kwonlyargs, a.kw_defaults) if d is None]
    return (len(pos) - len(a.defaults), None if a.vararg else len(pos), set(named), a.kwarg is not None,
            required_kw)


def _compatible(stub_fn, host_fn, method):
    """(why a call the stub allows would fail or mean something else on the stand-in, or None; note or None)."""
    s_min, s_max, s_named, s_kwargs, _ = _sig(stub_fn, method)
    h_min, h_max, h_named, h_kwargs, h_req_kw = _sig(host_fn, method)
    if h_min > s_min:
        return "needs %d positional argument(s), the board needs %d" % (h_min, s_min), None
    if h_max is not None and (s_max is None or h_max < s_max):
        return "takes at most %d positional argument(s), the board takes %s" % (h_max, s_max or "any number"), None
    s_pos, h_pos = _positional(stub_fn, method), _positional(host_fn, method)
    for i, (sp, hp) in enumerate(zip(s_pos, h_pos)):
        if sp is not None and sp != hp:  # a keyword-able name must mean the same in the same place
            return "positional argument %d is `%s`, on the board `%s`" % (i + 1, hp, sp), None
    extra = [n for n in h_req_kw if n not in s_named]
    if extra:
        return "requires keyword argument(s) %s the board does not have" % ", ".join(extra), None
    missing = sorted(n for n in s_named if n not in h_named and not h_kwargs)
    # Not an error: firmware/ using such a keyword fails on the host at once (TypeError in the end-to-end tests).
    return None, ("lacks the board's optional keyword(s) %s" % ", ".join(missing)) if missing else None


def _positional(fn, method):
    """Names of the positional parameters, without self; None for positional-only ones, whose names the
    stubs choose freely (and sometimes wrongly: gatts_notify's first argument is a connection handle)."""
    a = fn.args
    names = [None] * len(a.posonlyargs) + [x.arg for x in a.args]
    return names[1:] if method and names else names


def _defs(body):
    """name -> [FunctionDef...] (overloads), ClassDef, or a constant's value node."""
    out = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            prev = out.get(node.name)
            out[node.name] = (prev if isinstance(prev, list) else []) + [node]
        elif isinstance(node, ast.ClassDef):
            out[node.name] = node
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            out[node.targets[0].id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = node.value
    return out


def _int_value(node):
    if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "const" and node.args:
        node = node.args[0]  # `const(n)` in the stand-in
    try:
        v = ast.literal_eval(node) if node is not None else None
    except ValueError:
        return None
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _compare_callables(where, stub_fns, host_fns, method, notes):
    problems = []
    for stub_fn in stub_fns:
        why, note = _compatible(stub_fn, host_fns[-1], method)  # the stand-in's last definition counts
        if why:
            problems.append("%s %s" % (where, why))
        if note:
            notes.append("%s %s" % (where, note))
    return problems


def check_module(name, stub_text, host_text, notes=None):
    """Drift between a stand-in module and the board's stub: a list of problems, empty when none.
    Optional keywords the stand-in lacks go to `notes`."""
    notes = [] if notes is None else notes
    stub, host = _defs(ast.parse(stub_text).body), _defs(ast.parse(host_text).body)
    for attr, h in list(host.items()):  # `soft_reset = reset`: an alias of a function is that function
        if isinstance(h, ast.Name) and isinstance(host.get(h.id), list):
            host[attr] = host[h.id]
    problems = []
    for attr, h in sorted(host.items()):
        if attr.startswith("_") or attr not in stub:
            continue
        s, where = stub[attr], "%s.%s" % (name, attr)
        if isinstance(s, ast.ClassDef):
            cls = h if isinstance(h, ast.ClassDef) else host.get("_" + attr)
            if isinstance(h, list):  # a singleton constructor function: compare it with the stub's __init__
                init = _defs(s.body).get("__init__")
                if isinstance(init, list):
                    problems += _compare_callables(where + "()", init, [_as_method(h[-1])], True, notes)
            elif not isinstance(h, ast.ClassDef):
                problems.append("%s is a class on the board, not a %s here" % (where, type(h).__name__))
                continue
            if isinstance(cls, ast.ClassDef):
                s_members, h_members = _defs(s.body), _defs(cls.body)
                for m, hm in sorted(h_members.items()):
                    sm = s_members.get(m)
                    if m.startswith("_") or not isinstance(sm, list) or not isinstance(hm, list):
                        continue
                    problems += _compare_callables("%s.%s()" % (where, m), sm, hm, True, notes)
        elif isinstance(s, list):
            if isinstance(h, list):
                problems += _compare_callables(where + "()", s, h, False, notes)
            elif not isinstance(h, ast.ClassDef):
                problems.append("%s is a function on the board, not a value here" % where)
        else:
            sv, hv = _int_value(s), _int_value(h)
            if sv is not None and hv is not None and sv != hv:
                problems.append("%s = %d here, %d on the board" % (where, hv, sv))
    return problems


def _as_method(fn):
    """A module-level constructor function seen as a method (prepend a `self`) for comparison with __init__."""
    clone = ast.FunctionDef(name=fn.name, args=ast.arguments(
        posonlyargs=[], args=[ast.arg(arg="self")] + fn.args.posonlyargs + fn.args.args, vararg=fn.args.vararg,
        kwonlyargs=fn.args.kwonlyargs, kw_defaults=fn.args.kw_defaults, kwarg=fn.args.kwarg,
        defaults=fn.args.defaults), body=fn.body, decorator_list=[])
    return clone


def check_standins(host_dir=ROOT / "tools" / "host"):
    """Every tools/host/<m>.py that shadows a board module <m> against build/typeshed's <m>.pyi."""
    stdlib = build_typeshed() / "stdlib"
    problems, checked, notes = [], [], []
    for path in sorted(pathlib.Path(host_dir).glob("*.py")):
        stub = stdlib / (path.stem + ".pyi")
        if path.stem.startswith("_") or not stub.exists():
            continue
        checked.append(path.stem)
        problems += check_module(path.stem, stub.read_text(), path.read_text(), notes)
    return checked, problems, notes


def main(argv):
    build_typeshed()
    explicit = bool(argv)
    argv = argv or default_targets()
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")] + argv
    rc = subprocess.call(cmd, cwd=ROOT)
    if explicit:
        return rc
    checked, problems, notes = check_standins()
    for n in notes:
        print("tools/host: note: %s" % n)
    for p in problems:
        print("tools/host: error: %s" % p)
    print("host stand-ins vs. ESP32 stubs: %s: %s" % (
        ", ".join(checked) or "none found", "%d problem(s)" % len(problems) if problems else "no drift"))
    return rc or (1 if problems else 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
