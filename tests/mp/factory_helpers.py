# MicroPython side of tests/test_factory_tool.py: "flash" an NVS partition image made by tools/factory.py into the
# host stand-in and read it the way the lock does at boot.
import sys

sys.path.insert(0, "tools/host")
import esp32  # noqa: E402  (host stand-in)
from keystore_helpers import Logs  # noqa: E402

from mesh import factory  # noqa: E402


def read_image(path):
    with Logs() as lg:
        esp32.use_flash(None).load_image(path)
        fd = factory.load(esp32.NVS(factory.NAMESPACE))
    return {"uuid_secret": fd.uuid_secret, "static_oob": fd.static_oob,
            "oob_keypair": list(fd.oob_keypair) if fd.oob_keypair else None, "room": fd.room, "floor": fd.floor,
            "capabilities": fd.capabilities, "problems": fd.problems, "log": lg.lines}
