"""Drive the MicroPython unix port from CPython tests.

`MicroPython.call("mesh.crypto.aes_cmac", key, msg)` runs the function inside one long-lived
`micropython` process (tests/mp/_rpc.py), so oracle and property tests check the code that runs
on the board, not a CPython copy of it. Exceptions come back as the same builtin type, with the
MicroPython traceback in the message.
"""

import builtins
import binascii
import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
MICROPYTHON = os.environ.get("MICROPYTHON") or str(pathlib.Path(sys.executable).with_name("micropython"))


def _enc(v):
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"b": bytes(v).hex()}
    if isinstance(v, (list, tuple)):
        return [_enc(x) for x in v]
    if isinstance(v, dict):
        return {k: _enc(x) for k, x in v.items()}
    return v


def _dec(v):
    if isinstance(v, dict):
        if set(v) == {"b"}:
            return binascii.unhexlify(v["b"])
        return {k: _dec(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_dec(x) for x in v]
    return v


class MicroPythonError(Exception):
    """An exception raised inside MicroPython whose type has no CPython builtin twin."""


class MicroPython:
    def __init__(self, heapsize="8M"):
        self.proc = subprocess.Popen(
            [MICROPYTHON, "-X", "heapsize=" + heapsize, "tests/mp/_rpc.py"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def call(self, path, *args):
        self.proc.stdin.write(json.dumps([path, _enc(list(args))]) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("micropython RPC process died (exit %s)" % self.proc.poll())
        reply = json.loads(line)
        if "ok" in reply:
            return _dec(reply["ok"])
        exc = getattr(builtins, reply["err"], None)
        if not (isinstance(exc, type) and issubclass(exc, BaseException)):
            exc = MicroPythonError
        raise exc("%s: %s\n--- MicroPython traceback ---\n%s" % (reply["err"], reply["msg"], reply["tb"]))

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
