"""A real `micropython firmware/main.py` lock with the board option private_address on the air hub (tools/air.py):
every new rolling UUID goes out from a new non-resolvable private address, and no UUID is ever heard from two
addresses (so an observer cannot join two periods by the address). The UUID period is shortened to 2 s with the
board key uuid_period_s; beacon windows of 400 ms every 700 ms put each UUID on air soon after it starts. Then
tools/provision.py provisions it over PB-ADV: scanning came back after every address change.
"""

import json
import sys

from e2e_helpers import ROOT, Corridor, results, sniff

sys.path.insert(0, str(ROOT / "tools"))
import uuid_resolver  # noqa: E402

SNIFF_S = 7
AD_MESH_BEACON = 0x2B  # the beacon's AD type (Core Supplement; Mesh Protocol §3.3.1)


def _carried(data):
    """The Device UUID an advert carries (beacon or PB-GATT service data), or None."""
    try:
        return uuid_resolver.uuid_of(data)
    except ValueError:
        return None  # PB-ADV frames, URI adverts


def _sniff(hub, seconds):
    """Every advert on air: (address hex, address type, Device UUID carried or None, AD type)."""
    return sniff(hub, seconds, lambda a: (a.addr.hex(), a.addr_type, _carried(a.data), a.data[1]))


def test_each_uuid_from_its_own_private_address(tmp_path):
    board = json.loads((ROOT / "boards" / "config" / "sim.json").read_text())
    board.update(private_address=True, uuid_period_s=2)
    board["advertising"].update(on_ms=400, period_ms=700, window_jitter_ms=0)
    (tmp_path / "board.json").write_text(json.dumps(board))
    with Corridor(tmp_path / "c", seed=5) as c:
        hub = c.start_air()
        rows = c.write_table([dict(lock_id="101", uuid_secret="random", room="101", floor="1")])
        lock = c.add_lock("101", board=tmp_path / "board.json")
        c.wait_booted()
        got = _sniff(hub, SNIFF_S)
        c.init_db(hotel=True)  # and the lock still hears PB-ADV: scanning came back after every renewal
        out = c.provision("--bearer", "adv", timeout=60).stdout
        lock.wait_log("node: provisioned: address")
        text = lock.text()
    assert results(out)["101"]["outcome"].startswith("ok 0x"), out
    assert "new private address" in text and "failed" not in text and "Traceback" not in text, text[-2000:]
    carrying = [(addr, t, u) for addr, t, u, _ad in got if u is not None]
    by_uuid, by_addr = {}, {}
    for addr, t, u in carrying:
        by_uuid.setdefault(u, set()).add(addr)
        by_addr.setdefault(addr, set()).add(u)
        assert t == 1 and int(addr[:2], 16) >> 6 == 0, addr  # random, top two bits 00: an NRPA
    assert len(by_uuid) >= 2 and len(by_addr) >= 2, (by_uuid, by_addr)
    assert all(len(a) == 1 for a in by_uuid.values()), by_uuid  # no UUID from two addresses ...
    assert all(len(u) == 1 for u in by_addr.values()), by_addr  # ... no address with two UUIDs
    assert lock.addr not in {a for a, _t, _u, _ad in got}  # the fixed (public) address never goes on air
    assert any(ad == AD_MESH_BEACON for _a, _t, _u, ad in got)
    # every UUID is still the lock's to the hotel's provisioner (uuid_resolver's counter window)
    r = uuid_resolver.Resolver({"101": bytes.fromhex(rows["101"]["uuid_secret"])})
    assert {r.resolve(u)[0] for u in by_uuid} == {"101"}
