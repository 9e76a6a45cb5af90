"""Crypto benchmark (issue 2): mesh.crypto on the MicroPython unix port, python-ecdsa on CPython, same run.

Prints: ECDH shared-secret time, key-pair generation time, the provisionee's whole crypto for one CMAC
provisioning (key pair already made), the heap allocated by one ECDH, python-ecdsa's ECDH and the ratio
project / python-ecdsa, and the longest stretch between two yields of the cooperative forms as a fraction of
their total. Timing targets live here, not in tests: ratio <= 1.0, longest stretch <= 1/50.

The machine is shared, so each figure comes two ways: the median wall-clock time of RUNS x ROUNDS calls and the
best (minimum) of them, the one least disturbed by other processes (under load even CPU time inflates on this
VM, so it is not used). Both sides are measured in alternating rounds.
A micropython built with the MESH_LOCK C module _mesh_p256 (`make check-cmodule`, MICROPYTHON=...) is measured
twice: with the C module (what that firmware runs) and with the Python code (what stock firmware runs). The
cooperative-slice and heap figures are the Python code's; the C module is one slice.
Usage: python tools/bench_crypto.py [--quick] [runs-per-round]   (--quick: smoke test, 1 call per side, 1 round)
"""

import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
MICROPYTHON = os.environ.get("MICROPYTHON") or str(pathlib.Path(sys.executable).with_name("micropython"))
HEAP = "256K"  # roughly the Python heap of an ESP32 without PSRAM
QUICK = "--quick" in sys.argv
_ARGS = [a for a in sys.argv[1:] if a != "--quick"]
RUNS = int(_ARGS[0]) if _ARGS else 1 if QUICK else 10
ROUNDS = 1 if QUICK else 3

MP_PRELUDE = r"""
import sys, time, gc, json
sys.path.insert(0, "lib")
sys.path.insert(0, "tests/mp")
from mpunit import h, vectors
from crypto_helpers import use_native
from mesh import crypto

RUNS = %d
NATIVE = use_native(%s)
V = vectors("provisioning.txt")
v = lambda k: h(V[k])
DEV, PROV_PUB = v("PrivateKeyDevice"), v("PublicKeyProvisionerX") + v("PublicKeyProvisionerY")
assert crypto.p256_ecdh(DEV, PROV_PUB) == v("ECDHSecret")


def provisionee_cmac():
    # Device side of §5.4.2 with algorithm 0 (sample data §8.17.1): everything after the key pair exists.
    ecdh = crypto.p256_ecdh(DEV, PROV_PUB)
    csalt = crypto.s1(v("ConfirmationInputs"))
    ckey = crypto.k1(ecdh, csalt, b"prck")
    assert crypto.aes_cmac(ckey, v("ConfirmationDeviceInput")) == v("ConfirmationDevice")
    assert crypto.aes_cmac(ckey, v("ConfirmationProvisionerInput")) == v("ConfirmationProvisioner")
    psalt = crypto.s1(csalt + v("RandomProvisioner") + v("RandomDevice"))
    skey = crypto.k1(ecdh, psalt, b"prsk")
    nonce = crypto.k1(ecdh, psalt, b"prsn")[3:]
    crypto.k1(ecdh, psalt, b"prdk")
    data = crypto.aes_ccm_decrypt(skey, nonce, v("EncryptedProvisioningData") + v("ProvisioningDataMIC"), 8)
    assert data == v("ProvisioningData")


def times(fn):
    ts = []
    for _ in range(RUNS):
        t = time.ticks_us()
        fn()
        ts.append(time.ticks_diff(time.ticks_us(), t))
    return ts
"""

MP_JOBS = {
    "ecdh": "lambda: crypto.p256_ecdh(DEV, PROV_PUB)",
    "keygen": "crypto.p256_keypair",
    "provisionee": "provisionee_cmac",
}
MP_TIMES = "\nprint(json.dumps(times(%s)))\n"

MP_SLICES = r"""
def slices(make):
    # Duration of every slice between two yields, one list per run.
    runs = []
    for _ in range(RUNS):
        gen, ds = make(), []
        while True:
            t = time.ticks_us()
            try:
                next(gen)
                done = False
            except StopIteration:
                done = True
            ds.append(time.ticks_diff(time.ticks_us(), t))
            if done:
                break
        runs.append(ds)
    return runs


print(json.dumps({
    "ecdh": slices(lambda: crypto.p256_ecdh_steps(DEV, PROV_PUB)),
    "keygen": slices(lambda: crypto.p256_keypair_steps(lambda n: DEV)),
}))
"""

MP_HEAP = r"""
gc.collect()
gc.disable()
before = gc.mem_alloc()
crypto.p256_ecdh(DEV, PROV_PUB)
allocated = gc.mem_alloc() - before
gc.enable()
gc.collect()
print(json.dumps({"allocated": allocated, "retained": gc.mem_alloc() - before}))
"""


def prelude(native=False, runs=RUNS):
    return MP_PRELUDE % (runs, native)


def has_native():
    return micropython(prelude(True, 1) + "\nprint(json.dumps(NATIVE))\n")


def micropython(script, heap=HEAP):
    """Run script under micropython; its last stdout line, as JSON."""
    p = subprocess.run([MICROPYTHON, "-X", "heapsize=" + heap, "-c", script], cwd=ROOT, capture_output=True,
                       text=True, timeout=900)
    if p.returncode:
        sys.exit("micropython failed:\n" + p.stdout + p.stderr)
    return json.loads(p.stdout.strip().splitlines()[-1])


def ecdsa_ecdh(runs):
    from ecdsa import ECDH, NIST256p, SigningKey

    own = SigningKey.generate(curve=NIST256p)
    peers = [SigningKey.generate(curve=NIST256p).get_verifying_key().to_string() for _ in range(runs)]
    ts = []
    for peer in peers:  # a fresh peer key each time, loaded from bytes (validated), as in provisioning
        t = time.perf_counter()
        e = ECDH(curve=NIST256p, private_key=own)
        e.load_received_public_key_bytes(peer)
        e.generate_sharedsecret_bytes()
        ts.append(time.perf_counter() - t)
    return ts


def ecdsa_keygen(runs):
    from ecdsa import NIST256p, SigningKey

    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        SigningKey.generate(curve=NIST256p).get_verifying_key().to_string()
        ts.append(time.perf_counter() - t)
    return ts


def stretch(runs):
    # Longest slice between two yields / total, from the per-slice medians over the runs (the work of slice i
    # is the same in every run), so that one slice slowed down by a busy machine does not decide the figure.
    n = min(len(r) for r in runs)
    med = [statistics.median(r[i] for r in runs) for i in range(n)]
    return max(med) / sum(med), n


def main():
    native = has_native()
    paths = (False, True) if native else (False,)
    jobs = [(name + ("_c" if on else ""), job, on) for on in paths for name, job in MP_JOBS.items()]
    wall = {k: [] for k in [j[0] for j in jobs] + ["ecdsa", "ecdsa_keygen"]}
    for _ in range(ROUNDS):  # alternate, so that a change in the machine's load hits both sides alike
        for name, fn in (("ecdsa", ecdsa_ecdh), ("ecdsa_keygen", ecdsa_keygen)):
            wall[name] += [t * 1e6 for t in fn(RUNS)]
        for name, job, on in jobs:
            wall[name] += micropython(prelude(on) + MP_TIMES % job)
    slices = micropython(prelude() + MP_SLICES)
    heap = micropython(prelude(False, 1) + MP_HEAP, "16M")
    heap_c = micropython(prelude(True, 1) + MP_HEAP, "16M") if native else None

    def w(name):
        return statistics.median(wall[name])

    def b(name):
        return min(wall[name])

    def ms(name):
        return "%6.2f ms  best %6.2f ms" % (w(name) / 1000, b(name) / 1000)

    e_frac, e_n = stretch(slices["ecdh"])
    k_frac, k_n = stretch(slices["keygen"])
    def ratio(name):
        return "%6.2f     best/best %4.2f" % (w(name) / w("ecdsa"), b(name) / b("ecdsa"))

    rows = [
        ("ECDH shared secret, mesh.crypto (Python code) on micropython", ms("ecdh")),
        ("ECDH shared secret, python-ecdsa on CPython", ms("ecdsa")),
        ("ratio project / python-ecdsa (target <= 1.0)", ratio("ecdh")),
    ]
    if native:
        rows += [
            ("ECDH shared secret, _mesh_p256 C module on micropython", ms("ecdh_c")),
            ("ratio C module / python-ecdsa (target <= 1.0)", ratio("ecdh_c")),
            ("key pair generation, _mesh_p256 C module", ms("keygen_c")),
            ("provisionee crypto, one CMAC provisioning, C module", ms("provisionee_c")),
            ("heap allocated during one ECDH, C module (mbedTLS's calloc)",
             "%d bytes, %d retained" % (heap_c["allocated"], heap_c["retained"])),
        ]
    rows += [
        ("key pair generation, mesh.crypto (Python code)", ms("keygen")),
        ("key pair generation, python-ecdsa", ms("ecdsa_keygen")),
        ("provisionee crypto, one CMAC provisioning (key pair made)", ms("provisionee")),
        ("heap allocated during one ECDH (gc.mem_alloc delta)",
         "%d bytes, %d retained" % (heap["allocated"], heap["retained"])),
        ("ECDH: longest stretch between yields / total (<= 1/50)", "1/%.0f of %d slices" % (1 / e_frac, e_n)),
        ("key generation: longest stretch / total", "1/%.0f of %d slices" % (1 / k_frac, k_n)),
    ]
    print("%s (%s)" % (MICROPYTHON, "with the _mesh_p256 C module" if native else "no C module: Python code only"))
    print("micropython -X heapsize=%s; median / best of %d calls per side, %d alternating rounds; load average "
          "%.1f on %d CPUs (a busy machine slows the longer micropython calls more: compare best with best)"
          % (HEAP, RUNS * ROUNDS, ROUNDS, os.getloadavg()[0], os.cpu_count()))
    for name, value in rows:
        print("  %-58s %s" % (name, value))
    if not native:
        print("  (no _mesh_p256 here: `make check-cmodule MICROPY_DIR=...` measures the MESH_LOCK build's C module)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
