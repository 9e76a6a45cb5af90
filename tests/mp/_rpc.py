# Line-oriented RPC server, run under MicroPython by tests/mpy.py so that CPython tests (hypothesis,
# the `cryptography` oracle) exercise the code that runs on the board.
# Request:  ["module.function", [args...]]      bytes are {"b": "<hex>"}
# Response: {"ok": value} | {"err": "ExceptionName", "msg": "...", "tb": "..."}
import sys

sys.path.insert(0, "tests/mp")
sys.path.insert(0, "lib")
import binascii
import io
import json


def _dec(v):
    if isinstance(v, dict):
        if "b" in v:
            return binascii.unhexlify(v["b"])
        return {k: _dec(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_dec(x) for x in v]
    return v


def _enc(v):
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"b": binascii.hexlify(bytes(v)).decode()}
    if isinstance(v, (list, tuple)):
        return [_enc(x) for x in v]
    if isinstance(v, dict):
        return {k: _enc(x) for k, x in v.items()}
    return v


def _resolve(path):
    mod, fn = path.rsplit(".", 1)
    m = __import__(mod)
    for part in mod.split(".")[1:]:
        m = getattr(m, part)
    return getattr(m, fn)


def main():
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        try:
            path, args = json.loads(line)
            out = {"ok": _enc(_resolve(path)(*_dec(args)))}
        except Exception as e:  # noqa: BLE001 - every error goes back to the test
            buf = io.StringIO()
            if hasattr(sys, "print_exception"):
                sys.print_exception(e, buf)
            out = {"err": type(e).__name__, "msg": str(e), "tb": buf.getvalue()}
        sys.stdout.write(json.dumps(out) + "\n")


main()
