"""Crypto benchmark (issue 2): mesh.crypto on the MicroPython unix port, python-ecdsa on CPython, same run.

Prints: ECDH shared-secret time (median of RUNS), key-pair generation time, the provisionee's whole crypto for
one CMAC provisioning (key pair already made), the heap allocated by one ECDH, python-ecdsa's ECDH and the ratio,
and the longest stretch between two yields of the cooperative forms as a fraction of their total.
Timing targets live here, not in tests: ratio <= 1.0, longest stretch <= 1/50.

The machine is shared, so every time is a median, and python-ecdsa is measured before and after MicroPython.
Usage: python tools/bench_crypto.py [runs]
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
HEAP = "256K"  # roughly the Python heap of an ESP32 (no PSRAM); the slice lists need a little more
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 10  # per round
ROUNDS = 3

MP_PRELUDE = r"""
import sys, time, gc, json
sys.path.insert(0, "lib")
sys.path.insert(0, "tests/mp")
from mpunit import h, vectors
from mesh import crypto

RUNS = %d
V = vectors("provisioning.txt")
v = lambda k: h(V[k])
DEV, PROV_PUB = v("PrivateKeyDevice"), v("PublicKeyProvisionerX") + v("PublicKeyProvisionerY")
assert crypto.p256_ecdh(DEV, PROV_PUB) == v("ECDHSecret")


def times(fn):
    ts = []
    for _ in range(RUNS):
        t = time.ticks_us()
        fn()
        ts.append(time.ticks_diff(time.ticks_us(), t))
    return ts
"""

MP_ECDH = r"""
print(json.dumps({"ecdh_us": times(lambda: crypto.p256_ecdh(DEV, PROV_PUB))}))
"""

MP_REST = r"""
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
    "keygen_us": times(crypto.p256_keypair),
    "provisionee_cmac_us": times(provisionee_cmac),
    "ecdh_slices": slices(lambda: crypto.p256_ecdh_steps(DEV, PROV_PUB)),
    "keygen_slices": slices(lambda: crypto.p256_keypair_steps(lambda n: DEV)),
}))
"""

MP_HEAP = r"""
crypto.p256_ecdh(DEV, PROV_PUB)  # warm: module globals, comb table
gc.collect()
gc.disable()
before = gc.mem_alloc()
crypto.p256_ecdh(DEV, PROV_PUB)
allocated = gc.mem_alloc() - before
gc.enable()
gc.collect()
print(json.dumps({"allocated": allocated, "retained": gc.mem_alloc() - before}))
"""


def micropython(script, heap):
    p = subprocess.run([MICROPYTHON, "-X", "heapsize=" + heap, "-c", script], cwd=ROOT, capture_output=True,
                       text=True, timeout=900)
    if p.returncode:
        sys.exit("micropython failed:\n" + p.stdout + p.stderr)
    return json.loads(p.stdout.strip().splitlines()[-1])


def ecdsa_ecdh_times(runs):
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


def ecdsa_keygen_times(runs):
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
    ref, ref_kg, mine = [], [], []
    for _ in range(ROUNDS):  # alternate, so that a change in the machine's load hits both sides
        ref += ecdsa_ecdh_times(RUNS)
        mine += micropython(MP_PRELUDE % RUNS + MP_ECDH, HEAP)["ecdh_us"]
        ref_kg += ecdsa_keygen_times(RUNS)
    mp = micropython(MP_PRELUDE % RUNS + MP_REST, HEAP)
    heap = micropython(MP_PRELUDE % 1 + MP_HEAP, "16M")
    ecdh_us = statistics.median(mine)
    ecdsa_us = statistics.median(ref) * 1e6
    ecdsa_kg_us = statistics.median(ref_kg) * 1e6
    keygen_us = statistics.median(mp["keygen_us"])
    e_frac, e_n = stretch(mp["ecdh_slices"])
    k_frac, k_n = stretch(mp["keygen_slices"])
    best_ratio = min(mine) / (min(ref) * 1e6)
    rows = [
        ("ECDH shared secret, mesh.crypto on micropython", "%.2f ms  (best %.2f)" % (ecdh_us / 1000,
                                                                                  min(mine) / 1000)),
        ("ECDH shared secret, python-ecdsa on CPython", "%.2f ms  (best %.2f)" % (ecdsa_us / 1000,
                                                                               min(ref) * 1000)),
        ("ratio project / python-ecdsa (target <= 1.0)", "%.2f  (best/best %.2f)" % (ecdh_us / ecdsa_us,
                                                                                   best_ratio)),
        ("key pair generation, mesh.crypto", "%.2f ms" % (keygen_us / 1000)),
        ("key pair generation, python-ecdsa", "%.2f ms  (ratio %.2f)" % (ecdsa_kg_us / 1000,
                                                                        keygen_us / ecdsa_kg_us)),
        ("provisionee crypto, one CMAC provisioning (key pair made)",
         "%.2f ms" % (statistics.median(mp["provisionee_cmac_us"]) / 1000)),
        ("heap allocated during one ECDH (gc.mem_alloc delta)",
         "%d bytes, %d retained" % (heap["allocated"], heap["retained"])),
        ("ECDH: longest stretch between yields / total (<= 1/50)", "1/%.0f, %d slices" % (1 / e_frac, e_n)),
        ("key generation: longest stretch / total", "1/%.0f, %d slices" % (1 / k_frac, k_n)),
    ]
    print("micropython -X heapsize=%s; medians of %d runs each side (%d rounds, alternating)"
          % (HEAP, RUNS * ROUNDS, ROUNDS))
    for name, value in rows:
        print("  %-58s %s" % (name, value))
    return 0


if __name__ == "__main__":
    sys.exit(main())
