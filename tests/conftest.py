"""Test harness.

* tests/mp/test_*.py are *portable* tests: plain functions with `assert`, importing `mesh` from lib/.
  Each file runs in a `micropython` subprocess (the unix port: the code that runs on the board) and
  again under CPython 3.11; every test function becomes one pytest item per interpreter, and a
  failure shows the MicroPython traceback. A file MicroPython cannot import fails every item.
  A module may set `INTERPRETERS = ("micropython",)` to skip the CPython run.
* tests/test_*.py are ordinary CPython tests; the `mpy` fixture calls into MicroPython for
  oracle and property tests (see tests/mpy.py).
"""

import ast
import os
import pathlib
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from mpy import MICROPYTHON, ROOT, MicroPython  # noqa: E402

MP_DIR = ROOT / "tests" / "mp"
TIMEOUT_S = int(os.environ.get("MP_TEST_TIMEOUT", "600"))
_results = {}


def _interpreters(tree):
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "INTERPRETERS" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    return ("micropython", "cpython")


def _run(path, interp):
    key = (path, interp)
    if key not in _results:
        exe = [MICROPYTHON, "-X", "heapsize=8M"] if interp == "micropython" else [sys.executable]
        rel = str(path.relative_to(ROOT))
        try:
            p = subprocess.run(exe + ["tests/mp/_runner.py", rel], cwd=ROOT, capture_output=True, text=True,
                               timeout=TIMEOUT_S)
            out, err = p.stdout, p.stderr
        except subprocess.TimeoutExpired as e:
            out, err = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""), "timeout"
        _results[key] = _parse(out, err)
    return _results[key]


def _parse(out, err):
    res = {"__import__": None, "__stderr__": err, "__stdout__": out}
    lines = out.splitlines()
    i = 0
    while i < len(lines):
        words = lines[i].split()
        if words and words[0] in ("@@FAIL", "@@IMPORT-ERROR"):
            j = i + 1
            while j < len(lines) and lines[j] != "@@END":
                j += 1
            tb = "\n".join(lines[i + 1:j])
            if words[0] == "@@IMPORT-ERROR":
                res["__import__"] = tb
            else:
                res[words[1]] = ("FAIL", tb)
            i = j
        elif words and words[0] == "@@PASS":
            res[words[1]] = ("PASS", "")
        i += 1
    return res


class PortableFailure(Exception):
    pass


class PortableItem(pytest.Item):
    def __init__(self, *, fn, interp, **kw):
        super().__init__(**kw)
        self.fn, self.interp = fn, interp

    def runtest(self):
        res = _run(self.path, self.interp)
        if res["__import__"] is not None:
            raise PortableFailure("%s could not import %s:\n%s" % (self.interp, self.path.name, res["__import__"]))
        status, tb = res.get(self.fn, (None, None))
        if status is None:
            raise PortableFailure("%s: no result for %s (crash or timeout?)\nstdout tail:\n%s\nstderr:\n%s"
                                  % (self.interp, self.fn, res["__stdout__"][-2000:], res["__stderr__"][-4000:]))
        if status == "FAIL":
            raise PortableFailure("%s traceback:\n%s" % (self.interp, tb))

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, PortableFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, 0, "%s[%s]" % (self.fn, self.interp)


class PortableFile(pytest.File):
    def collect(self):
        tree = ast.parse(self.path.read_text(), str(self.path))
        interps = _interpreters(tree)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                for interp in interps:
                    yield PortableItem.from_parent(self, name="%s[%s]" % (node.name, interp), fn=node.name,
                                                   interp=interp)


def pytest_pycollect_makemodule(module_path, parent):
    if module_path.parent == MP_DIR:
        return PortableFile.from_parent(parent, path=module_path)
    return None


@pytest.fixture(scope="session")
def mpy():
    """A long-lived MicroPython process: mpy.call("mesh.crypto.s1", b"test")."""
    m = MicroPython()
    yield m
    m.close()
