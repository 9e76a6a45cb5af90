"""A provisioning attempt of the host provisioner (tools/hostprov/session.py: protocol.py over pb_adv.py or
pb_gatt.py) against the lock's own stack (lib: PbAdv/PbGatt -> Link -> Provisionee) running in MicroPython.

Frames go through a simulated channel with virtual time: each frame takes 10 ms, a seeded fraction is lost.
Both sides must end with the same keys: the host's DevKey and data equal what the lock stored.
"""

import pathlib
import random
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from hostprov import protocol as proto
from hostprov.session import Attempt

NET_KEY = bytes.fromhex("efb2255e6422d330088e09bb015ed707")
STATIC = bytes(range(32))
MH_KEY = bytes.fromhex("a1b2c3d4")
STEP_MS = 10


def _run(mpy, name, bearer, config, *, loss=0.0, seed=1, static_oob=None, hotel=None, choose=None,
         address=0x0100):
    """Provision lock `name` (config: its provisioning config) and return (attempt, lock record, virtual ms)."""
    uuid = bytes([len(name)]) * 16
    mpy.call("hostprov_helpers.new", name, uuid, config)
    shown, to_type = [], []
    prov = proto.Provisioner(NET_KEY, 0x0567, 0x01020304, 0, static_oob=static_oob, hotel=hotel, choose=choose,
                             on_request=lambda action, size: None,
                             on_display=lambda action, value: to_type.append(value))
    allocated = []
    a = Attempt(bearer, uuid, prov, allocate=lambda n: allocated.append(n) or address)
    rng = random.Random(seed)
    now = 0
    a.start(now)
    dev = mpy.call("hostprov_helpers.connect", name, now, 23) if bearer == "gatt" else None
    while a.outcome is None and now < 200_000:
        sent = [f for f in a.take_output() if rng.random() >= loss]
        if bearer == "adv":
            dev = mpy.call("hostprov_helpers.adv", name, now, sent)
            heard = dev["frames"]
        else:
            dev = mpy.call("hostprov_helpers.write", name, now, sent)
            heard = dev["notify"]
        if to_type and dev["asked"]:  # the installer types the number the provisioner shows into the lock
            dev = mpy.call("hostprov_helpers.input_value", name, now, to_type.pop())
            heard += dev["frames"] + dev["notify"]
        for f in heard:
            if bearer == "gatt" or rng.random() >= loss:
                a.receive(now, f)
        if dev["shown"] and len(dev["shown"]) > len(shown) and prov.state == "auth":
            shown = list(dev["shown"])
            a.oob_value(now, shown[-1])  # the installer reads the value the lock shows
        pending = a.take_output()
        a._out = pending
        if pending or heard:
            now += STEP_MS
        else:
            ds = [d for d in (a.deadline(), dev["deadline"]) if d is not None]
            now = max(now + STEP_MS, min(ds)) if ds else now + STEP_MS
            a.poll(now)
            if bearer == "adv":
                for f in mpy.call("hostprov_helpers.poll", name, now)["frames"]:
                    if rng.random() >= loss:
                        a.receive(now, f)
    if bearer == "adv":  # the Link Close gets to the lock
        mpy.call("hostprov_helpers.adv", name, now, a.take_output())
    record = mpy.call("hostprov_helpers.record", name)
    mpy.call("hostprov_helpers.drop", name)
    assert allocated in ([], [config.get("elements", 1)])
    return a, record, now


def _check_same_keys(a, record, address=0x0100):
    assert a.outcome == "complete", a.reason
    r = a.provisioner.result
    assert record is not None
    assert record["dev_key"] == r["dev_key"] and record["net_key"] == NET_KEY
    assert record["address"] == address == a.address
    assert (record["iv_index"], record["net_key_index"]) == (0x01020304, 0x0567)


@pytest.mark.parametrize("bearer", ["adv", "gatt"])
def test_no_oob_cmac(mpy, bearer):
    a, record, ms = _run(mpy, "nooob" + bearer, bearer, {"algorithms": 1, "elements": 3})
    _check_same_keys(a, record)
    assert record["elements"] == 3 and a.provisioner.start_params[:3] == (proto.ALG_CMAC, 0, proto.AUTH_NO_OOB)


def test_hmac_static_oob_over_pb_adv(mpy):
    a, record, _ = _run(mpy, "static", "adv", {"static_oob": STATIC, "oob_required": True}, static_oob=STATIC)
    _check_same_keys(a, record)
    assert a.provisioner.start_params[:3] == (proto.ALG_HMAC, 0, proto.AUTH_STATIC)


def test_hmac_with_16_byte_static_oob_over_pb_gatt(mpy):
    # §5.4.2.4.1, data type Binary: shorter than the AuthValue -> 'the remaining bits shall be set to 0'
    a, record, _ = _run(mpy, "static16", "gatt", {"static_oob": STATIC[:16]}, static_oob=STATIC[:16])
    _check_same_keys(a, record)
    assert a.provisioner.start_params[:3] == (proto.ALG_HMAC, 0, proto.AUTH_STATIC)


def test_output_numeric_over_pb_gatt(mpy):
    a, record, _ = _run(mpy, "output", "gatt", {"output_size": 6, "output_actions": 0x08})
    _check_same_keys(a, record)
    assert a.provisioner.start_params[2:] == (proto.AUTH_OUTPUT, proto.OUTPUT_NUMERIC, 6)


def test_input_alphanumeric_over_pb_adv(mpy):
    a, record, _ = _run(mpy, "input", "adv", {"input_size": 4, "input_actions": 0x08})
    _check_same_keys(a, record)
    assert a.provisioner.start_params[2:] == (proto.AUTH_INPUT, proto.INPUT_ALPHANUMERIC, 4)


def test_hotel_keys_reach_the_lock(mpy):
    hotel = proto.hotel_keys(MH_KEY, 1, 101)
    a, record, _ = _run(mpy, "hotel", "adv", {"hotel": {"floor": 1, "room": 101, "required": True}}, hotel=hotel)
    _check_same_keys(a, record)
    assert record["hotel"] == {"mh_key": MH_KEY, "floor_key": hotel[4:8], "room_key": hotel[8:12]}


def test_wrong_room_is_refused_by_the_lock(mpy):
    a, record, _ = _run(mpy, "wrongroom", "adv", {"hotel": {"floor": 1, "room": 102}},
                        hotel=proto.hotel_keys(MH_KEY, 1, 101))
    assert a.outcome == "failed" and "Invalid Data" in a.reason and record is None


def test_pb_adv_survives_ten_percent_loss(mpy):
    a, record, ms = _run(mpy, "lossy", "adv", {"algorithms": 1}, loss=0.10, seed=4)
    _check_same_keys(a, record)
    assert ms >= 500  # frames were lost and retransmitted (a loss-free run takes < 100 virtual ms)


def test_no_addresses_left_ends_the_attempt_before_any_data(mpy):
    def full(n):
        raise ValueError("no free unicast addresses left")

    mpy.call("hostprov_helpers.new", "full", bytes(16), {"algorithms": 1})
    prov = proto.Provisioner(NET_KEY, 0, 0, 0)
    a = Attempt("gatt", bytes(16), prov, allocate=full)
    a.start(0)
    dev = mpy.call("hostprov_helpers.connect", "full", 0, 23)
    dev = mpy.call("hostprov_helpers.write", "full", 0, a.take_output())
    for v in dev["notify"]:
        a.receive(0, v)
    assert a.outcome == "failed" and "no free" in a.reason and a.take_output() == []
    mpy.call("hostprov_helpers.drop", "full")


def test_a_silent_lock_times_out():
    a = Attempt("adv", bytes(16), proto.Provisioner(NET_KEY, 0, 0, 2))
    a.start(0)
    now = 0
    while a.outcome is None:
        now = a.deadline()
        a.poll(now)
    assert a.reason.startswith("no Link Ack") and now == 60_000


@pytest.mark.parametrize("caps, timeout_ms", [
    ("01 0001 00 00 00 0000 00 0000", 60_000),  # No OOB
    ("01 0001 00 00 01 0001 00 0000", 120_000),  # Output OOB blink: the user reads the count
    ("01 0001 00 00 00 0000 01 0001", 120_000),  # Input OOB push: the user presses the button
])
def test_protocol_timer_is_120_s_when_a_user_takes_part(caps, timeout_ms):
    # §5.4.4: 'a minimum of 60 seconds', and 'when the Authentication Method field value is Authentication with
    # Output OOB or Authentication with Input OOB ... a minimum of 120 seconds to allow sufficient time for users'
    from cryptography.hazmat.primitives.asymmetric import ec

    prov = proto.Provisioner(NET_KEY, 0, 0, 2, on_request=lambda action, size: None)
    a = Attempt("gatt", bytes(16), prov)
    a.start(0)
    device_key = proto.public_key_bytes(ec.generate_private_key(ec.SECP256R1()))
    a.receive(10, b"\x03\x01" + bytes.fromhex(caps))  # Proxy PDU, SAR complete: Capabilities
    a.receive(20, b"\x03\x03" + device_key)  # the lock's Public Key, then silence (no value read, no input)
    assert prov.state in ("auth", "confirmation") and a.deadline() == 20 + timeout_ms
    a.poll(20 + timeout_ms - 1)
    assert a.outcome is None
    a.poll(20 + timeout_ms)
    assert a.outcome == "failed" and a.reason == f"protocol timeout ({timeout_ms // 1000} s without a PDU)"
