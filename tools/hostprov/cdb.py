"""Export the network as a Mesh Configuration Database (Bluetooth SIG MshCDB 1.0.1 JSON), which the nRF Mesh
app and other provisioners import.

Keys and addresses are upper-case hex (keys 32 digits, addresses 4), UUIDs in the 8-4-4-4-12 form, times in
ISO 8601 with a zone. Nothing has been configured on the locks yet, so each node has `configComplete: false`,
no AppKeys and elements without models (a configurator fills them in after reading the Composition Data).
`security` is "secure" when the lock was provisioned with OOB authentication, else "insecure"; a NetKey's
`minSecurity` is the lowest of its nodes'. The IV Index and the hotel keys are not part of the format and stay
in the database only (a phone learns the IV Index from Secure Network beacons).

Our provisioner owns unicast 0x0001..0x3FFF (db.UNICAST_RANGE), groups C000..CFFF and scenes 0001..0FFF, so a
phone that imports the file can allocate itself the rest.
"""

import datetime
import json
import os
import uuid as uuidlib

from . import db as provdb

SCHEMA = "http://json-schema.org/draft-04/schema#"
ID = "https://www.bluetooth.com/specifications/specs/mesh-cdb-1-0-1-schema.json#"
VERSION = "1.0.1"
GROUP_RANGE = (0xC000, 0xCFFF)
SCENE_RANGE = (0x0001, 0x0FFF)


def _addr(a):
    return f"{a:04X}"


def _key(k):
    return k.hex().upper()


def _uuid(u):
    return str(uuidlib.UUID(bytes=bytes(u)) if isinstance(u, (bytes, bytearray)) else uuidlib.UUID(u)).upper()


def _node(uuid, name, address, elements, dev_key, secure, net_key_index):
    return {
        "UUID": _uuid(uuid),
        "name": name,
        "unicastAddress": _addr(address),
        "deviceKey": _key(dev_key),
        "security": "secure" if secure else "insecure",
        "netKeys": [{"index": net_key_index, "updated": False}],
        "configComplete": False,
        "appKeys": [],
        "elements": [{"name": f"Element {i}", "index": i, "location": "0000", "models": []} for i in range(elements)],
        "excluded": False,
    }


def export(database, now=None):
    """The MshCDB document (a dict) for an open `db.ProvDB`."""
    net = database.network()
    nodes = database.nodes()
    stamp = (now or datetime.datetime.now(datetime.UTC)).replace(microsecond=0).isoformat()
    idx = net["net_key_index"]
    secure = all(n["secure"] for n in nodes)
    doc = {
        "$schema": SCHEMA,
        "id": ID,
        "version": VERSION,
        "meshUUID": _uuid(net["mesh_uuid"]),
        "meshName": net["mesh_name"],
        "timestamp": stamp,
        "partial": False,
        "netKeys": [{"name": "Hotel network", "index": idx, "key": _key(net["net_key"]), "phase": 0,
                     "minSecurity": "secure" if secure else "insecure", "timestamp": stamp}],
        "appKeys": [],
        "provisioners": [{
            "provisionerName": "hostprov",
            "UUID": _uuid(net["provisioner_uuid"]),
            "allocatedUnicastRange": [{"lowAddress": _addr(provdb.UNICAST_RANGE[0]),
                                       "highAddress": _addr(provdb.UNICAST_RANGE[1])}],
            "allocatedGroupRange": [{"lowAddress": _addr(GROUP_RANGE[0]), "highAddress": _addr(GROUP_RANGE[1])}],
            "allocatedSceneRange": [{"firstScene": _addr(SCENE_RANGE[0]), "lastScene": _addr(SCENE_RANGE[1])}],
        }],
        # The provisioner is a node too (the app finds its address there); then every lock.
        "nodes": [_node(net["provisioner_uuid"], "hostprov", net["provisioner_address"], 1,
                        net["provisioner_dev_key"], True, idx)] + [
            _node(n["uuid"], f"Lock {n['lock_id']}" + (f" (room {n['room']})" if n["room"] is not None else ""),
                  n["address"], n["elements"], n["dev_key"], n["secure"], idx) for n in nodes],
        "groups": [],
        "scenes": [],
        "networkExclusions": [{"ivIndex": iv, "addresses": [_addr(a) for a in addrs]}
                              for iv, addrs in sorted(database.exclusions().items())],
    }
    return doc


def write(database, path):
    """Write the export owner-only: it holds every key of the network in clear, as the format requires."""
    fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    os.fchmod(fd, 0o600)  # also when the file existed with a wider mode
    with os.fdopen(fd, "w") as f:
        json.dump(export(database), f, indent=2)
        f.write("\n")
