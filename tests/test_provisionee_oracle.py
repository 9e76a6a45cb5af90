"""The MicroPython provisionee against the independent reference provisioner (tools/hostprov/protocol.py, CPython on
pyca/cryptography): every algorithm x public-key type x authentication method x action, the hotel extension, the
unicast range for several elements and random provisioning data. DevKey and stored record must agree on both sides."""

import pathlib
import sys

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from hostprov import protocol as R  # noqa: E402

NET_KEY = bytes.fromhex("7dd7364cd842ad18c17c2b820c84c3d6")
STATIC32 = bytes.fromhex("906d73a3c7a7cb3ff730dca68a46b9c18d673f50e078202311473ebbe253669f")
_OOB_PRIV = ec.derive_private_key(0x1234567890ABCDEF1234567890ABCDEF1234567890ABCDEF1234567890ABCDEF, ec.SECP256R1())
OOB_PAIR = [(0x1234567890ABCDEF1234567890ABCDEF1234567890ABCDEF1234567890ABCDEF).to_bytes(32, "big"),
            R.public_key_bytes(_OOB_PRIV)]
FULL = {"elements": 2, "static_oob": STATIC32, "oob_keypair": OOB_PAIR, "output_size": 8, "output_actions": 0x1F,
        "input_size": 8, "input_actions": 0x0F}


def provision(mpy, config, start=None, name="o", net_key_index=0x123, iv_index=0x01020304, address=0x0100,
              flags=0, **kw):
    """Run one provisioning between the reference provisioner and a MicroPython provisionee session."""
    assert mpy.call("prov_helpers.new", name, config)
    assert mpy.call("prov_helpers.open_link", name, 0)
    shown = {}
    kw.setdefault("static_oob", config.get("static_oob"))
    prov = R.Provisioner(NET_KEY, net_key_index, iv_index, address, flags=flags, choose=start,
                         device_public_key=OOB_PAIR[1],
                         on_display=lambda action, value: shown.__setitem__("input", value), **kw)
    prov.start()
    seen, status = 0, None
    for _ in range(20):
        pdus = prov.take_outgoing()
        if not pdus:
            break
        for pdu in pdus:
            status = mpy.call("prov_helpers.feed", name, 0, pdu)
            out = status["out"]
            for ev in status["events"][seen:]:
                if ev[0] in ("output_number", "output_string"):
                    shown["output"] = ev[-1]
                elif ev[0] == "input":
                    v = shown["input"]
                    fn = "prov_helpers.input_string" if isinstance(v, str) else "prov_helpers.input_number"
                    out += mpy.call(fn, name, v)["out"]
            seen = len(status["events"])
            for d in out:
                prov.receive(d)
            if prov.needs_value and "output" in shown:
                prov.auth_value(shown["output"])
    record, saves = mpy.call("prov_helpers.stored", name)
    return prov, status, record


def _combinations():
    for alg in (R.ALG_CMAC, R.ALG_HMAC):
        for key in (R.PUBKEY_NO_OOB, R.PUBKEY_OOB):
            yield alg, key, R.AUTH_NO_OOB, 0, 0
            yield alg, key, R.AUTH_STATIC, 0, 0
            for action in range(5):
                yield alg, key, R.AUTH_OUTPUT, action, 1 + (action * 3 + alg * 2 + key) % 8
            for action in range(4):
                yield alg, key, R.AUTH_INPUT, action, 1 + (action * 5 + alg + key * 3) % 8


@pytest.mark.parametrize("start", list(_combinations()), ids=lambda s: "alg%d-key%d-method%d-action%d-size%d" % s)
def test_every_algorithm_key_method_action(mpy, start):
    prov, status, record = provision(mpy, FULL, start)
    assert prov.error is None and prov.state == "complete"
    assert status["state"] == "complete" and status["provisioned"]
    assert record == prov.result  # NetKey, index, flags, IV Index, address, elements, DevKey: same on both sides
    assert record["elements"] == 2 and len(record["dev_key"]) == 16
    events = [e[0] for e in status["events"]]
    assert events[-1] == "complete"
    if start[2] == R.AUTH_OUTPUT:
        assert "input_complete" in events
        value = [e for e in status["events"] if e[0].startswith("output_")][0][-1]
        if start[3] == R.OUTPUT_ALPHANUMERIC:
            assert len(value) == start[4] and value.isalnum() and value == value.upper()
        else:
            assert 0 <= value < 10 ** start[4] and (value > 0 or start[3] == R.OUTPUT_NUMERIC)
    if start[2] == R.AUTH_INPUT:
        assert ["input", 1 << start[3], start[4]] in status["events"]
    if start[1] == R.PUBKEY_OOB:
        assert prov.device_key == OOB_PAIR[1]
    logs = "\n".join(mpy.call("prov_helpers.logs"))
    for secret in (record["dev_key"], record["net_key"], STATIC32, OOB_PAIR[0]):
        assert secret.hex() not in logs


def test_wrong_output_value_fails_confirmation(mpy):
    prov, status, record = provision(mpy, FULL, (R.ALG_HMAC, 0, R.AUTH_OUTPUT, R.OUTPUT_NUMERIC, 6),
                                     on_request=lambda action, size: 10 ** 6)  # not the value shown
    # the device finds out when the provisioner's Random does not match its Confirmation
    assert prov.failed_code == 0x04 and status["state"] == "failed" and record is None


def test_different_static_oob_fails_confirmation(mpy):
    prov, status, record = provision(mpy, dict(FULL, static_oob=bytes(32)), (R.ALG_CMAC, 0, R.AUTH_STATIC, 0, 0),
                                     static_oob=STATIC32)
    assert prov.failed_code == 0x04 and record is None


def test_16_byte_static_oob_with_both_algorithms(mpy):
    cfg = {"static_oob": STATIC32[:16]}
    # §5.4.2.4.1: with HMAC the 16 octets are zero-padded to the 32-octet AuthValue, on both sides; the strongest
    # choice (§5.4.2.3: 'The Provisioner should choose the strongest algorithm') is HMAC with the static OOB
    prov, status, record = provision(mpy, cfg, None)
    assert prov.start_params == (R.ALG_HMAC, 0, R.AUTH_STATIC, 0, 0) and prov.error is None
    assert record == prov.result
    prov, status, record = provision(mpy, cfg, (R.ALG_CMAC, 0, R.AUTH_STATIC, 0, 0))
    assert record == prov.result


def test_unicast_range_covers_every_element(mpy):
    cfg = {"elements": 3}
    prov, status, record = provision(mpy, cfg, None, address=0x7FFD)
    assert record == prov.result and record["address"] == 0x7FFD
    for address in (0x7FFE, 0x7FFF):  # a unicast primary, but no room for elements 2 and 3: Cannot Assign Addresses
        prov, status, record = provision(mpy, cfg, None, address=address)
        assert prov.failed_code == 0x08 and record is None and status["state"] == "failed"


HOTEL = {"floor": 3, "room": 305}
MH = bytes.fromhex("c0ffee42")


@pytest.mark.parametrize("alg", [R.ALG_CMAC, R.ALG_HMAC])
def test_hotel_extension(mpy, alg):
    cfg = {"hotel": dict(HOTEL)}
    prov, status, record = provision(mpy, cfg, (alg, 0, 0, 0, 0), hotel=R.hotel_keys(MH, 3, 305))
    assert record == prov.result
    assert record["hotel"] == {"mh_key": MH, "floor_key": bytes.fromhex("c0ffee41"),
                               "room_key": R.hmac_sha256(MH, (305).to_bytes(4, "big"))[:4]}


def test_hotel_standard_data_accepted_unless_required(mpy):
    prov, status, record = provision(mpy, {"hotel": dict(HOTEL)}, None)
    assert record == prov.result and record["hotel"] is None
    prov, status, record = provision(mpy, {"hotel": dict(HOTEL, required=True)}, None)
    assert prov.failed_code == 0x09 and record is None


def test_hotel_wrong_floor_or_room_is_invalid_data(mpy):
    for keys in (R.hotel_keys(MH, 4, 305), R.hotel_keys(MH, 3, 306),
                 MH + R.hotel_keys(MH, 3, 305)[4:8] + bytes(4)):
        prov, status, record = provision(mpy, {"hotel": dict(HOTEL)}, None, hotel=keys)
        assert prov.failed_code == 0x09 and record is None


def test_hotel_data_refused_by_a_standard_device(mpy):
    prov, status, record = provision(mpy, {}, None, hotel=R.hotel_keys(MH, 3, 305))
    assert prov.failed_code == 0x02 and record is None


@settings(max_examples=25, deadline=None)
@given(index=st.integers(0, 0xFFFF), flags=st.integers(0, 0xFF), iv=st.integers(0, 0xFFFFFFFF),
       address=st.integers(0, 0xFFFF), elements=st.integers(1, 4))
def test_random_provisioning_data(mpy, index, flags, iv, address, elements):
    prov, status, record = provision(mpy, {"elements": elements}, (R.ALG_CMAC, 0, 0, 0, 0), net_key_index=index,
                                     flags=flags, iv_index=iv, address=address)
    if index > 0x0FFF or flags > 3 or not 0 < address < 0x8000:
        assert prov.failed_code == 0x09 and record is None  # Invalid Data
    elif address + elements - 1 > 0x7FFF:
        assert prov.failed_code == 0x08 and record is None  # Cannot Assign Addresses (§5.4.1.10, Table 5.38)
    else:
        assert record == prov.result
