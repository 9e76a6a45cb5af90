"""firmware/main.py as real `micropython` processes on the virtual air (tools/air.py), started by tools/sim_lock.py
with factory images from tools/factory.py, provisioned by the host provisioner's CLI (tools/provision.py):
one lock over PB-ADV (static OOB), one over PB-GATT with Output OOB blinks read from its LED pin. Then a
provisioned lock restarted comes up provisioned and silent, and `node.reset()` typed on its console brings it
back to beaconing. (The processes: tools/demo.py's Corridor, shared through tests/e2e_helpers.py.)
"""

from e2e_helpers import Corridor, air_client, heard, results

LOCKS = [dict(lock_id="101", uuid_secret="random", static_oob="random", room="101", floor="1"),
         dict(lock_id="102", uuid_secret="random", room="102", floor="1", output_size="1", output_actions="1")]


def test_locks_provisioned_over_the_air_restart_provisioned_and_reset(tmp_path):
    with Corridor(tmp_path, seed=3) as c:
        hub = c.start_air()
        c.write_table(LOCKS)
        c.init_db(hotel=True)
        a, b = c.add_lock("101"), c.add_lock("102")
        c.wait_booted()
        beacons = heard(hub, a.addr, 12, lambda got: len({t for t, d in got}) == 2)
        assert any(t == air_client.ADV_NONCONN_IND and d[1] == 0x2B for t, d in beacons)  # beacon (sim: patched)
        assert any(t == air_client.ADV_IND and d[5:7] == b"\x27\x18" for t, d in beacons)  # PB-GATT advert
        out = c.provision("--bearer", "adv", "--gatt-locks", "102", timeout=90).stdout
        rows = results(out)
        assert rows["101"]["bearer"] == "PB-ADV" and "static" in rows["101"]["method"], out
        assert rows["102"]["bearer"] == "PB-GATT" and "output/blink" in rows["102"]["method"], out
        assert all(r["outcome"].startswith("ok 0x") for r in rows.values()), out
        for lk in (a, b):
            lk.wait_log("node: provisioned: address")
        # restart lock 101: it loads its keys and stays off the air
        a.stop()
        since = a.mark()
        a.start()
        a.wait_log("node: provisioned: address", since=since)
        assert heard(hub, a.addr, 2.5) == []
        # node reset from the console: keys erased, beaconing again
        a.type("node.reset()")
        a.wait_log("keystore: all keys erased", since=since)
        assert any(d[1] == 0x2B for t, d in heard(hub, a.addr, 12, lambda got: got[-1][1][1] == 0x2B))
        text = a.text() + b.text()
        assert "Traceback" not in text and "Unhandled exception" not in text
