"""Mesh Configuration Database export (tools/hostprov/cdb.py): the shape the MshCDB 1.0.1 schema asks for."""

import datetime
import json
import os
import pathlib
import re
import stat
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from hostprov import cdb
from hostprov import db as provdb

NET_KEY = bytes.fromhex("efb2255e6422d330088e09bb015ed707")
DEV_KEY = bytes.fromhex("0520adad5e0142aa3e325087b4ec16d8")
UUID = bytes.fromhex("70cf7c9732a345b691494810d2e9cbf4")
KEY = re.compile(r"^[0-9A-F]{32}$")
ADDR = re.compile(r"^[0-9A-F]{4}$")
UUID_RE = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")
TOP = ["$schema", "id", "version", "meshUUID", "meshName", "timestamp", "partial", "netKeys", "appKeys",
       "provisioners", "nodes", "groups", "scenes", "networkExclusions"]
NODE = ["UUID", "unicastAddress", "deviceKey", "security", "netKeys", "configComplete", "appKeys", "elements",
        "excluded"]


def _network(tmp_path, secure_b=True):
    d = provdb.ProvDB.create(str(tmp_path / "n.db"), "pw", kdf_n=2**10, net_key=NET_KEY, net_key_index=0x567,
                             iv_index=5, mesh_name="Hotel Aurora")
    d.add_node("L101", uuid=UUID, address=0x0002, elements=1, dev_key=DEV_KEY, room=101, floor=1, secure=True)
    d.add_node("L102", uuid=bytes(16), address=0x0003, elements=3, dev_key=bytes(range(16)), room=102, floor=1,
               secure=secure_b)
    return d


def test_export_has_the_mshcdb_shape(tmp_path):
    with _network(tmp_path) as d:
        doc = cdb.export(d, now=datetime.datetime(2026, 11, 22, 8, 0, tzinfo=datetime.UTC))
    assert list(doc) == TOP
    assert doc["$schema"] == "http://json-schema.org/draft-04/schema#"
    assert doc["id"].endswith("mesh-cdb-1-0-1-schema.json#") and doc["version"] == "1.0.1"
    assert UUID_RE.match(doc["meshUUID"]) and doc["meshName"] == "Hotel Aurora" and doc["partial"] is False
    assert doc["timestamp"] == "2026-11-22T08:00:00+00:00"
    (nk,) = doc["netKeys"]
    assert nk["key"] == NET_KEY.hex().upper() and nk["index"] == 0x567 and nk["phase"] == 0
    assert nk["minSecurity"] == "secure"
    (prov,) = doc["provisioners"]
    assert UUID_RE.match(prov["UUID"])
    assert prov["allocatedUnicastRange"] == [{"lowAddress": "0001", "highAddress": "3FFF"}]
    assert prov["allocatedSceneRange"] == [{"firstScene": "0001", "lastScene": "0FFF"}]
    assert [n["unicastAddress"] for n in doc["nodes"]] == ["0001", "0002", "0003"]
    assert doc["nodes"][0]["UUID"] == prov["UUID"]  # the provisioner's own node
    for n in doc["nodes"]:
        assert set(NODE) <= set(n)
        assert UUID_RE.match(n["UUID"]) and KEY.match(n["deviceKey"]) and ADDR.match(n["unicastAddress"])
        assert n["netKeys"] == [{"index": 0x567, "updated": False}] and n["excluded"] is False
        assert [e["index"] for e in n["elements"]] == list(range(len(n["elements"])))
    lock = doc["nodes"][1]
    assert lock["UUID"] == "70CF7C97-32A3-45B6-9149-4810D2E9CBF4" and lock["deviceKey"] == DEV_KEY.hex().upper()
    assert "101" in lock["name"] and lock["security"] == "secure" and lock["configComplete"] is False
    assert len(doc["nodes"][2]["elements"]) == 3
    assert doc["networkExclusions"] == [] and doc["groups"] == [] and doc["scenes"] == []


def test_min_security_and_exclusions_follow_the_nodes(tmp_path):
    with _network(tmp_path, secure_b=False) as d:
        d.add_node("L101", uuid=UUID, address=0x0006, elements=1, dev_key=DEV_KEY, secure=True)
        doc = cdb.export(d)
    assert doc["netKeys"][0]["minSecurity"] == "insecure"
    assert doc["networkExclusions"] == [{"ivIndex": 5, "addresses": ["0002"]}]
    assert [n["unicastAddress"] for n in doc["nodes"]] == ["0001", "0003", "0006"]


def test_written_file_is_json_and_owner_only(tmp_path):
    out = tmp_path / "mesh.json"
    out.write_text("old")
    os.chmod(out, 0o644)
    with _network(tmp_path) as d:
        cdb.write(d, str(out))
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert json.loads(out.read_text())["nodes"][1]["deviceKey"] == DEV_KEY.hex().upper()
