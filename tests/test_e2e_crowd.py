"""Twenty `micropython firmware/main.py` locks on one air at once (a floor of a hotel), all booted together and
provisioned by one host provisioner with four radios: every lock gets its own address and the keys of its room;
none is left over, none provisioned twice. Four of them over PB-GATT, the rest over PB-ADV, static OOB throughout.
The locks run as on a board: code precompiled by mpy-cross, in a small heap (HEAP; the unix port is 64-bit, so
about twice an ESP32's objects) while hearing nineteen neighbours and four provisioners.
"""

import os

from e2e_helpers import Corridor, precompile, results, stored

HEAP = os.environ.get("E2E_LOCK_HEAP", "320k")
N = 20
IDS = [str(301 + k) for k in range(N)]
GATT = IDS[::5]


def test_twenty_locks_at_once(tmp_path):
    with Corridor(tmp_path, seed=5) as c:
        c.start_air()
        c.write_table([dict(lock_id=i, uuid_secret="random", static_oob="random", room=i, floor="3") for i in IDS])
        mpy = precompile(tmp_path / "mpy")
        for i in IDS:
            c.add_lock(i, heap=HEAP, mpy=mpy)
        c.init_db(hotel=True)
        c.wait_booted(timeout=40)
        p = c.provision("--bearer", "adv", "--gatt-locks", ",".join(GATT), "--parallel", "4", check=False,
                        timeout=180)
        rows = results(p.stdout)
        assert p.returncode == 0 and sorted(rows) == IDS, p.stdout + p.stderr
        for i in IDS:
            assert rows[i]["bearer"] == ("PB-GATT" if i in GATT else "PB-ADV") and rows[i]["method"] == "static/HMAC"
        records = {i: stored(c.locks[i])[0] for i in IDS}
        assert all(r is not None for r in records.values())
        addresses = sorted(r["address"] for r in records.values())
        assert addresses == list(range(2, 2 + N))  # 0x0001 is the provisioner
        assert len({r["dev_key"] for r in records.values()}) == N and len({r["net_key"] for r in records.values()}) == 1
        for i in IDS:
            assert rows[i]["outcome"].startswith("ok 0x%04X" % records[i]["address"])
            assert "Traceback" not in c.locks[i].text() and "MemoryError" not in c.locks[i].text()
