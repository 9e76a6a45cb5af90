# A lock's provisioning stack (lib: PbAdv + PbGatt -> Link -> Provisionee) inside MicroPython, driven from
# tests/test_hostprov_session.py through the `mpy` fixture, so the host provisioner is checked against the code
# that runs on the board. Each call returns what the device wants to send.
from bearer_helpers import MemStore
from mesh import log
from mesh.link import Link
from mesh.pb_adv import PbAdv
from mesh.pb_gatt import PbGatt
from mesh.provisionee import Provisionee

_devs = {}
CONN = 1


class _App:
    def __init__(self):
        self.shown = []  # Output OOB values the lock "displays"
        self.asked = []  # Input OOB requests

    def output_number(self, action, number):
        self.shown.append(number)

    def output_string(self, string):
        self.shown.append(string)

    def input(self, action, size):
        self.asked.append([action, size])


def _quiet(line):
    pass


def new(name, uuid, config):
    log.sink = _quiet  # stdout carries the RPC replies
    if config.get("oob_keypair"):
        config["oob_keypair"] = tuple(config["oob_keypair"])
    app = _App()
    prov = Provisionee(config, MemStore(), app=app)
    _devs[name] = (Link(prov, PbAdv(uuid), PbGatt()), app)
    _settle(name, 0)
    return True


def _settle(name, now):
    link = _devs[name][0]
    while link.deadline() == 0:  # key generation / ECDH in slices, as the firmware's loop runs them
        link.poll(now)


def _out(name):
    link = _devs[name][0]
    return {"frames": [f for f, urgent in link.take_adv_frames()], "notify": [v for c, v in link.take_notifications()],
            "drop": link.take_disconnects(), "deadline": link.deadline(), "shown": _devs[name][1].shown,
            "busy": link.bearer is not None,
            "asked": _devs[name][1].asked}


def adv(name, now, frames):
    link = _devs[name][0]
    for f in frames:
        link.adv_receive(now, f)
    _settle(name, now)
    return _out(name)


def connect(name, now, mtu):
    link = _devs[name][0]
    link.gatt_connected(now, CONN)
    link.gatt_mtu(CONN, mtu)
    return _out(name)


def write(name, now, values):
    link = _devs[name][0]
    for v in values:
        link.gatt_write(now, CONN, v)
    _settle(name, now)
    return _out(name)


def poll(name, now):
    _devs[name][0].poll(now)
    _settle(name, now)
    return _out(name)


def input_value(name, now, value):
    prov = _devs[name][0].prov
    if isinstance(value, str):
        prov.input_string(value)
    else:
        prov.input_number(value)
    _devs[name][0].poll(now)
    _settle(name, now)
    return _out(name)


def record(name):
    return _devs[name][0].prov.record


def drop(name):
    _devs.pop(name, None)
    return True
