"""A lock loses power in the middle of provisioning (SIGKILL of its `micropython` process while it blinks its
Output OOB count, keys exchanged) and boots again: the provisioner sees it beacon a new rolling UUID, gives the attempt up and
provisions it on the retry. Power cut again once provisioned: it boots provisioned. Then a factory reset by the
button held 10 s (pressed through the hub) erases its keys and it beacons again, and it can be provisioned anew.
"""

import contextlib
import threading

from e2e_helpers import Corridor, heard, results, stored

LOCK = dict(lock_id="401", uuid_secret="random", room="401", floor="4", output_size="1", output_actions="1")


@contextlib.contextmanager
def _one_lock(tmp_path, seed, row):
    """A corridor with the air, a hotel network and one booted lock described by its lock-table `row`."""
    with Corridor(tmp_path, seed=seed) as c:
        c.start_air()
        c.write_table([row])
        c.init_db(hotel=True)
        lock = c.add_lock(row["lock_id"])
        c.wait_booted()
        yield c, lock


def _provision_with_power_cut(c, lock, when):
    """Run the provisioner over PB-ADV; cut the lock's power once its console says `when`, boot it again.
    Returns the provisioner's CompletedProcess."""
    out = []
    prov = threading.Thread(target=lambda: out.append(c.provision("--bearer", "adv", check=False)))
    prov.start()
    try:
        lock.wait_log(when, timeout=30)
        lock.power_cut()
        since = lock.mark()
        lock.start()
        lock.wait_log("unprovisioned, UUID", since=since)
    finally:
        prov.join(120)
    return out[0]


def test_power_cut_mid_provisioning_then_retry_then_button_reset(tmp_path):
    with _one_lock(tmp_path, 9, LOCK) as (c, lock):
        first_uuid = lock.status()["uuid"]
        p = _provision_with_power_cut(c, lock, "Output OOB: showing a count")  # past Start and the public keys
        row = results(p.stdout)["401"]
        assert p.returncode == 0 and row["outcome"].endswith(", 2 attempts"), p.stdout + p.stderr
        assert row["method"] == "output/blink/HMAC"
        record = stored(lock)[0]
        assert row["outcome"].startswith("ok 0x%04X" % record["address"])
        st = lock.status()
        assert st["state"] == "provisioned" and st["uuid"] != first_uuid  # a new rolling UUID after the reboot
        # power cut once provisioned: the keys were committed, it boots provisioned and silent
        lock.power_cut()
        since = lock.mark()
        lock.start()
        lock.wait_log("node: provisioned: address 0x%04x" % record["address"], since=since)
        assert heard(c.air, lock.addr, 1.5) == []
        # factory reset: the button held 10 s
        since = lock.mark()
        lock.press(hold_ms=10_500)
        lock.wait_log("keystore: all keys erased", since=since)
        assert any(d[1] == 0x2B for _, d in heard(c.air, lock.addr, 12, lambda got: got[-1][1][1] == 0x2B))
        assert stored(lock)[0] is None and lock.status()["state"] == "unprovisioned"
        again = c.provision("--bearer", "adv", "--again", timeout=90)
        row = results(again.stdout)["401"]
        assert row["outcome"].startswith("ok 0x") and stored(lock)[0]["address"] != record["address"]
        assert "Traceback" not in lock.text()


PUSH_LOCK = dict(lock_id="402", uuid_secret="random", room="402", floor="4", input_size="1", input_actions="1")


def test_power_cut_while_the_provisioner_pushes_the_button_then_retry(tmp_path):
    """Regression: the button presses of a failed attempt must stop with it, or they land in the retry's count
    (the lock then fails Confirmation and only a third attempt succeeds)."""
    with _one_lock(tmp_path, 11, PUSH_LOCK) as (c, lock):
        p = _provision_with_power_cut(c, lock, "Input OOB: press the button")
        row = results(p.stdout)["402"]
        assert p.returncode == 0 and row["outcome"].endswith(", 2 attempts"), p.stdout + p.stderr
        assert row["method"].startswith("input/push")
        assert stored(lock)[0] is not None and lock.status()["state"] == "provisioned"
