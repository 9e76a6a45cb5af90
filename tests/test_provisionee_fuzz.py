"""Mutated provisioning exchanges (hypothesis) into the MicroPython provisionee: bad input always gets a defined
answer (one Provisioning Failed, then silence), never an exception, and never a stored key it should not have."""

import pathlib
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from bench_prov import exchange, vectors  # noqa: E402

SETS = {name: exchange(vectors(name)) for name in ("provisioning.txt", "provisioning_hmac.txt")}
DEVICE_TYPES = {0x01, 0x03, 0x04, 0x05, 0x06, 0x08, 0x09}


@st.composite
def mutated(draw):
    name = draw(st.sampled_from(sorted(SETS)))
    pdus = list(SETS[name]["pdus"])
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(pdus) - 1))
        kind = draw(st.sampled_from(["truncate", "extend", "flip", "retype", "drop", "duplicate", "swap", "random"]))
        p = bytearray(pdus[i])
        if kind == "truncate":
            pdus[i] = bytes(p[:draw(st.integers(0, max(0, len(p) - 1)))])
        elif kind == "extend":
            pdus[i] = bytes(p) + draw(st.binary(min_size=1, max_size=40))
        elif kind == "flip" and len(p) > 1:
            j = draw(st.integers(1, len(p) - 1))
            p[j] ^= 1 << draw(st.integers(0, 7))
            pdus[i] = bytes(p)
        elif kind == "retype" and p:
            p[0] = draw(st.integers(0, 255))
            pdus[i] = bytes(p)
        elif kind == "drop" and len(pdus) > 1:
            del pdus[i]
        elif kind == "duplicate":
            pdus.insert(i, pdus[i])
        elif kind == "swap" and i + 1 < len(pdus):
            pdus[i], pdus[i + 1] = pdus[i + 1], pdus[i]
        elif kind == "random":
            pdus[i] = draw(st.binary(min_size=0, max_size=70))
    return name, pdus


@settings(max_examples=150, deadline=None)
@given(mutated())
def test_mutated_exchanges_get_defined_answers(mpy, case):
    name, pdus = case
    r = mpy.call("prov_helpers.fuzz", pdus, name)
    assert r["error"] is None, r["error"]
    out = r["out"]
    assert all(o and o[0] in DEVICE_TYPES for o in out)
    failed = [k for k, o in enumerate(out) if o[0] == 0x09]
    assert len(failed) <= 1 and (not failed or failed[0] == len(out) - 1)  # one Failed, then silence
    if failed:
        assert len(out[-1]) == 2 and 0x01 <= out[-1][1] <= 0x09
        assert r["record"] is None and not r["secrets"] and r["state"] == "failed"
    elif r["record"] is not None:  # provisioned: only ever with the spec's own data, and Complete was sent last
        assert out[-1] == b"\x08" and r["record"]["dev_key"] == SETS[name]["dev_key"]
        assert r["state"] == "complete" and r["close_reason"] == 0
    else:  # stalled (a PDU missing): the 60 s timer ended the attempt and dropped its secrets
        assert r["close_reason"] == 1 and not r["secrets"] and r["state"] == "failed"
