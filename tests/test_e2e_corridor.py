"""A full provisioning of a corridor at 10 % packet loss, every output captured: five `micropython firmware/main.py`
locks with every kind of authentication the host provisioner does (static OOB over PB-ADV and PB-GATT, blink Output
OOB, push Input OOB, an OOB public key), the hotel extension on, provisioned by tools/provision.py through a spy
that records the provisioner's per-attempt secrets. Then:
- every lock holds the keys the provisioner's database exported, and the hotel keys of its own room and floor;
- no secret's hex -- NetKey, DevKeys, derived network keys, hotel keys, rolling-UUID secrets, static OOB values,
  the OOB private key, AuthValues, ECDH secrets, ConfirmationKeys, session keys and nonces, the provisioner's
  private keys, nor the database passphrase -- appears anywhere in what the locks, the provisioner or the hub
  printed (issue 6, Security).
"""

import json

import pytest
from e2e_helpers import Corridor, leaks, lock_secrets, results, spied, stored

LOSS = 0.1
LOCKS = (  # lock id, factory data, bearer, the method the provisioner must pick
    ("201", {"static_oob": "random"}, "PB-ADV", "static/HMAC"),
    ("202", {"static_oob": "random"}, "PB-GATT", "static/HMAC"),
    ("203", {"output_size": "1", "output_actions": "1"}, "PB-GATT", "output/blink/HMAC"),
    ("204", {"input_size": "1", "input_actions": "1"}, "PB-ADV", "input/push/HMAC"),
    ("205", {"oob_private": "random", "static_oob": "random"}, "PB-ADV", "static/HMAC/OOB-key"),
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("corridor")
    with Corridor(tmp, loss=LOSS, seed=11, hub_log=tmp / "hub.log") as c:
        c.start_air()
        table = c.write_table([dict(lock_id=i, uuid_secret="random", room=i, floor="2", **fd)
                               for i, fd, _, _ in LOCKS])
        for i, *_ in LOCKS:
            c.add_lock(i)
        c.wait_booted()
        out = {"init": c.init_db(hotel=True)}
        gatt = ",".join(i for i, _, b, _ in LOCKS if b == "PB-GATT")
        out["provision"] = c.provision("--bearer", "adv", "--gatt-locks", gatt, "--parallel", "3",
                                       prefix=("tests/e2e_helpers.py", str(tmp / "spy.jsonl")), check=False)
        for lock in c.locks.values():  # what an installer would look at on each lock
            lock.status()
        out["list"] = c.tool("list", "--db", str(c.db))
        c.tool("export", "--db", str(c.db), "--out", str(tmp / "cdb.json"))
        yield c, table, out


def test_every_lock_provisioned_at_ten_percent_loss_with_its_keys(run):
    c, table, out = run
    p = out["provision"]
    rows = results(p.stdout)
    assert p.returncode == 0 and set(rows) == {i for i, *_ in LOCKS}, p.stdout + p.stderr
    for i, _, bearer, method in LOCKS:
        assert (rows[i]["bearer"], rows[i]["method"]) == (bearer, method), rows[i]
        assert rows[i]["outcome"].startswith("ok 0x"), rows[i]
    cdb = json.loads((c.dir / "cdb.json").read_text())
    net_key = cdb["netKeys"][0]["key"].lower()
    nodes = {n["unicastAddress"]: n for n in cdb["nodes"]}
    for i, *_ in LOCKS:
        record, fd = stored(c.locks[i])
        addr = "%04X" % record["address"]
        assert rows[i]["outcome"].startswith("ok 0x" + addr)
        assert record["net_key"].hex() == net_key and record["dev_key"].hex() == nodes[addr]["deviceKey"].lower()
        assert nodes[addr]["name"] == f"Lock {i} (room {i})"
        h = record["hotel"]  # seed 002: FloorKey = MHKey XOR be32(floor), RoomKey = HMAC(MHKey, be32(room))[:4]
        assert h["floor_key"] == bytes(a ^ b for a, b in zip(h["mh_key"], (2).to_bytes(4, "big")))
        assert (fd.room, fd.floor) == (int(i), 2)
    assert len({stored(c.locks[i])[0]["hotel"]["room_key"] for i, *_ in LOCKS}) == len(LOCKS)
    assert len({stored(c.locks[i])[0]["hotel"]["mh_key"] for i, *_ in LOCKS}) == 1


def test_no_secret_in_any_output_of_a_full_provisioning(run):
    c, table, out = run
    secrets = {}
    for lock in c.locks.values():
        secrets.update(lock_secrets(lock))
    spy = spied(c.dir / "spy.jsonl")
    secrets.update(spy)
    # the secret set is complete: per lock NetKey, DevKey, EncryptionKey, PrivacyKey, IdentityKey, BeaconKey,
    # PrivateBeaconKey, MHKey, FloorKey, RoomKey; factory data: 5 rolling-UUID secrets, 3 static OOB values,
    # 1 OOB private key; 7 values per attempt that reached the Provisioning Data
    assert len(spy) >= 7 * len(LOCKS) and len(spy) % 7 == 0
    assert len(secrets) == 10 * len(LOCKS) + 9 + len(spy)
    texts = {f"lock {i} console": lk.text() for i, lk in c.locks.items()}
    texts["hub log"] = (c.dir / "hub.log").read_text()
    for name, p in out.items():
        texts[f"provision {name} stdout"], texts[f"provision {name} stderr"] = p.stdout, p.stderr
    # the capture holds what a full provisioning prints (so an empty capture cannot pass)
    for i in c.locks:
        assert "prov: provisioned" in texts[f"lock {i} console"] and "keys       " in texts[f"lock {i} console"]
    assert "joined" in texts["hub log"] and "ok 0x" in texts["provision provision stdout"]
    assert leaks(texts, secrets) == []
    # ...and the check finds a secret where one is: the exported CDB holds the NetKey and DevKeys in clear
    # (upper case); the database passphrase is looked for as typed
    cdb = (c.dir / "cdb.json").read_text()
    found = {label for label, _ in leaks({"cdb": cdb}, secrets)}
    assert {f"lock {i} key 0" for i in c.locks} <= found and {f"lock {i} key 1" for i in c.locks} <= found
    assert not any(c.env["HOSTPROV_PASSPHRASE"] in t for t in texts.values())
