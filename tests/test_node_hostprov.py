"""The whole lock (mesh.node.Node: scheduler, rolling UUID, bearers, provisionee, key store over the NVS stand-in)
inside MicroPython, provisioned by the host provisioner's attempt (tools/hostprov: protocol on `cryptography`,
written apart from lib/). Frames cross a simulated channel in virtual time; the node emits them through its
advertising scheduler (bursts, response jitter) exactly as the firmware puts them on air.
"""

import pathlib
import random
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from hostprov import protocol as proto  # noqa: E402
from hostprov.session import Attempt  # noqa: E402

NET_KEY = bytes.fromhex("7dd7364cd842ad18c17c2b820c84c3d6")
STATIC = bytes(range(32))
SECRET = bytes(range(200, 232))
STEP_MS = 20


def _provision(mpy, dev, bearer, *, loss=0.0, seed=1, static_oob=None, mtu=23, address=0x0200):
    """Run one attempt against the node created by node_helpers.new (`dev` is its first report)."""
    uuid = bytes.fromhex(dev["status"]["uuid"])
    shown, to_type = [], []
    prov = proto.Provisioner(NET_KEY, 1, 7, 0, static_oob=static_oob, on_request=lambda action, size: None,
                             on_display=lambda action, value: to_type.append(value))
    a = Attempt(bearer, uuid, prov, allocate=lambda n: address, mtu=mtu)
    rng = random.Random(seed)
    now = dev["deadline"] or 0
    dev = mpy.call("node_helpers.step", now, {"until": now + 1000})  # key pair ready, beaconing
    now += 1000
    a.start(now)
    if bearer == "gatt":
        dev = mpy.call("node_helpers.step", now, {"connect": True, "mtu": mtu})
    while a.outcome is None and now < 120_000:
        sent = [f for f in a.take_output() if rng.random() >= loss]
        number = to_type.pop() if to_type and dev["asked"] else None  # the installer types what it shows
        if bearer == "adv":
            dev = mpy.call("node_helpers.step", now, {"frames": sent, "until": now + STEP_MS, "number": number})
        else:
            dev = mpy.call("node_helpers.step", now, {"writes": sent, "until": now + STEP_MS, "number": number})
        now += STEP_MS
        for f in dev["frames"] if bearer == "adv" else dev["notify"]:
            if bearer == "gatt" or rng.random() >= loss:
                a.receive(now, f)
        if dev["shown"] and len(dev["shown"]) > len(shown) and prov.state == "auth":
            shown = list(dev["shown"])
            a.oob_value(now, shown[-1])  # the installer reads the value the lock shows
        a.poll(now)
    if bearer == "adv":  # the Link Close reaches the lock (sent a few times, as the provisioner does)
        for _ in range(3):
            dev = mpy.call("node_helpers.step", now, {"frames": a.take_output(), "until": now + STEP_MS})
            now += STEP_MS
    else:
        dev = mpy.call("node_helpers.step", now, {"disconnect": True, "until": now + STEP_MS})
    return a, dev, now


def _same_keys(a, record, address=0x0200):
    assert a.outcome == "complete", a.reason
    assert record["dev_key"] == a.provisioner.result["dev_key"] and record["net_key"] == NET_KEY
    assert record["address"] == address and (record["net_key_index"], record["iv_index"]) == (1, 7)


def test_pb_adv_static_oob_rolling_uuid_ten_percent_loss(mpy):
    dev = mpy.call("node_helpers.new", {"provisioning": {"oob_required": True}}, None,
                   {"uuid_secret": SECRET, "static_oob": STATIC})
    assert dev["status"]["uuid_kind"] == "rolling" and dev["status"]["state"] == "unprovisioned"
    a, dev, now = _provision(mpy, dev, "adv", loss=0.1, seed=3, static_oob=STATIC)
    _same_keys(a, mpy.call("node_helpers.record"))
    assert a.provisioner.start_params[:3] == (proto.ALG_HMAC, 0, proto.AUTH_STATIC)
    st = dev["status"]
    assert st["state"] == "provisioned" and st["address"] == "0x0200" and not st["scanning"]
    assert dev["on_air"] is None
    text = repr(st)
    assert STATIC.hex() not in text and SECRET.hex()[:8] not in text and NET_KEY.hex() not in text


def test_pb_gatt_output_numeric_then_reboot_is_silent(mpy):
    board = {"provisioning": {"output_size": 6, "output_actions": ["numeric"]}}
    dev = mpy.call("node_helpers.new", board, bytes(range(16)))
    a, dev, now = _provision(mpy, dev, "gatt", mtu=69)
    _same_keys(a, mpy.call("node_helpers.record"))
    assert a.provisioner.start_params[2:] == (proto.AUTH_OUTPUT, proto.OUTPUT_NUMERIC, 6)
    dev = mpy.call("node_helpers.step", now, {"until": now + 60_000})
    assert dev["on_air"] is None and dev["frames"] == []
    dev = mpy.call("node_helpers.reboot", 0)  # power cycle: a new Node over the same NVS
    assert dev["status"]["state"] == "provisioned" and dev["deadline"] is None and dev["on_air"] is None
    assert not dev["status"]["scanning"]


def test_pb_adv_input_push_then_reset_and_again(mpy):
    board = {"provisioning": {"input_size": 1, "input_actions": ["push"]}}
    dev = mpy.call("node_helpers.new", board, bytes(range(16, 32)))
    a, dev, now = _provision(mpy, dev, "adv", seed=5)
    _same_keys(a, mpy.call("node_helpers.record"))
    assert a.provisioner.start_params[2:4] == (proto.AUTH_INPUT, proto.INPUT_PUSH)
    first = a.provisioner.result["dev_key"]
    mpy.call("node_helpers.reset", now)
    dev = mpy.call("node_helpers.step", now, {"until": now + 12_000})
    assert dev["status"]["state"] == "unprovisioned" and dev["status"]["scanning"]
    assert mpy.call("node_helpers.record") is None
    a, dev, now = _provision(mpy, dev, "adv", seed=6, address=0x0300)
    _same_keys(a, mpy.call("node_helpers.record"), address=0x0300)
    assert a.provisioner.result["dev_key"] != first  # a fresh key pair (and ECDH) for the new network
