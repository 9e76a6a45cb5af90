# mesh.node.Node, the composition root, driven with constructed radio events as firmware/radio.py would:
# §8.7 over PB-ADV and §8.8-style PB-GATT end to end (sample keys and randoms), reboot, node reset, status
# without secrets, scanning/advertising actions, rolling-UUID counter, private-address renewal, board and factory
# configuration.
import sys

sys.path.insert(0, "tools/host")
import esp32  # noqa: E402  (host stand-in)
from bearer_helpers import UUID, exchange  # noqa: E402
from crypto_helpers import use_native  # noqa: E402
from keystore_helpers import Logs  # noqa: E402
from mpunit import h, hx, raises, vectors  # noqa: E402
from node_helpers import ADDR, CONN, Air  # noqa: E402
from test_factory import nvs as factory_nvs  # noqa: E402
from test_link import _pdus  # noqa: E402  (the §8.7 PDUs of one side, reassembled)

from mesh import beacon, factory, keystore, pb_gatt  # noqa: E402
from mesh import prov_pdu as P  # noqa: E402
from mesh.node import PERIOD_KEY, Node, board_config  # noqa: E402

V = vectors("provisioning.txt")
KEYPAIR = (h(V["PrivateKeyDevice"]), h(V["PublicKeyDeviceX"] + V["PublicKeyDeviceY"]))
# One transmission per PDU and no response jitter: every device frame shows exactly once, in order.
BOARD = {"provisioning": {"algorithms": ["cmac"]}, "advertising": {"pb_adv_count": 1, "response_jitter_ms": 0}}


def _rand(n):
    return (h(V["RandomDevice"]) * 2)[:n]


def _sample_node(lg=None):
    esp32.use_flash(None)
    node = Node(esp32.NVS("mesh"), BOARD, None, now_ms=0, rand=_rand, uuid=UUID, keypair=KEYPAIR)
    return node, Air(node)


def _check_record(r):
    assert r["net_key"] == h(V["NetworkKey"]) and r["net_key_index"] == 0x0567 and r["iv_index"] == 0x01020304
    assert r["address"] == 0x0B0C and r["dev_key"] == h(V["DevKey"])


def _provision_adv(node, air, t0=1000):
    """The provisioner's §8.7 frames, 200 ms apart, heard while scanning; returns the device's frames."""
    now, got = t0, []
    air.run(0, t0)
    air.take_frames()
    for who, _name, f in exchange():
        if who != "prov":
            continue
        assert air.scanning
        node.scan_result(now, 3, ADDR, beacon.pb_adv_ad(f))
        now = air.run(now, now + 200)
        got += air.take_frames()
    return got, now


def test_pb_adv_sample_exchange_through_the_node():
    node, air = _sample_node()
    with Logs() as lg:
        got, now = _provision_adv(node, air)
    want = [f for who, _name, f in exchange() if who == "dev"]
    assert [hx(x) for x in got] == [hx(x) for x in want]  # every device frame, byte for byte, in order
    _check_record(keystore.KeyStore(esp32.NVS("mesh")).load())  # durable in NVS
    st = node.status()
    assert st["state"] == "provisioned" and st["address"] == "0x0b0c" and st["bearer"] is None
    assert st["nid"] == "0x%02x" % node.net.nid and not air.scanning and air.on_air is None
    assert st["p256"] == ("C module" if use_native(True) else "Python")  # which P-256 this interpreter runs
    # configured state: nothing more on air, whatever time passes
    air.run(now, now + 120000)
    assert air.take_frames() == [] and air.adverts == [] and air.on_air is None
    text = lg.text() + repr(st)
    for secret in keystore.secrets_hex(node.prov.record):
        assert secret not in text


def test_pb_gatt_sample_pdus_through_the_node():
    node, air = _sample_node()
    air.run(0, 12000)
    gatt = [a for t, a in air.adverts if a.connectable]
    assert gatt and gatt[0].data == beacon.pb_gatt_adv(UUID, 0)  # connectable PB-GATT advertising
    air.connect(12000, CONN)
    node.mtu_exchanged(CONN, 23)
    assert air.on_air is None and node.status()["bearer"] == "PB-GATT"
    client, got, now = pb_gatt.PbGatt(), [], 12000
    client.connected(0)
    for pdu in _pdus("prov"):
        for v in pb_gatt.proxy_segments(pdu, 23):
            node.write(now, CONN, v)
        now = air.run(now, now + 50)
        for conn, v in air.notified:
            assert conn == CONN and len(v) <= 20  # MTU - 3
            got += [e[1] for e in client.receive(now, v)]
        air.notified = []
    assert got == _pdus("dev") and air.dropped == []
    assert node.status()["state"] == "provisioned" and air.on_air is None
    air.adverts = []
    node.disconnected(now + 100, CONN)
    air.run(now + 100, now + 60000)
    assert air.adverts == [] and air.on_air is None and not air.scanning  # provisioned: silent
    _check_record(node.prov.record)


def test_reboot_comes_up_provisioned_and_silent():
    node, air = _sample_node()
    _provision_adv(node, air)
    esp32.flash().power_cycle()
    with Logs() as lg:
        again = Node(esp32.NVS("mesh"), BOARD, None, now_ms=0, uuid=UUID)
    air2 = Air(again)
    air2.run(0, 200000)
    assert air2.adverts == [] and not air2.scanning and again.deadline() is None
    assert again.status()["state"] == "provisioned" and again.net.nid == node.net.nid
    assert "provisioned: address 0x0b0c" in lg.text()
    _check_record(again.prov.record)


def test_reset_returns_to_beaconing_with_a_fresh_key_pair():
    node, air = _sample_node()
    _, now = _provision_adv(node, air)
    before = node.status()
    with Logs() as lg:
        node.reset(now)
    air.apply(now)
    assert "node reset" in lg.text() and keystore.KeyStore(esp32.NVS("mesh")).load() is None
    assert air.scanning and node.status()["state"] == "unprovisioned" and node.net is None
    assert node.deadline() == 0  # a new key pair is being generated in slices
    air.run(now, now + 11000)
    assert node.prov._keypair is not None and node.prov._keypair[1] != KEYPAIR[1]
    beacons = [a for t, a in air.adverts if a.data[1] == beacon.AD_MESH_BEACON]
    assert beacons and beacons[0].data == beacon.unprovisioned_beacon(UUID, 0)
    assert before["keys"] != node.status()["keys"] == "unprovisioned"
    # and the lock can be provisioned again afterwards (same record: the sample again, with its key pair)
    node.prov.prepare_keypair(KEYPAIR)
    got, _ = _provision_adv(node, air, now + 12000)
    assert got[-1] == [f for who, _n, f in exchange() if who == "dev"][-1]
    _check_record(node.prov.record)


def test_reset_during_a_gatt_provisioning_disconnects():
    node, air = _sample_node()
    air.run(0, 12000)
    air.connect(12000, CONN)
    node.write(12010, CONN, pb_gatt.proxy_segments(_pdus("prov")[0], 23)[0])  # Invite
    air.run(12010, 12050)
    assert air.notified and node.status()["bearer"] == "PB-GATT"
    node.reset(12100)
    air.apply(12100)
    assert air.dropped == [CONN] and node.status()["bearer"] is None
    node.disconnected(12150, CONN)
    air.run(12150, 12200)
    assert air.on_air is not None  # back to beaconing / PB-GATT advertising
    assert node.status()["state"] == "unprovisioned" and node.status()["backoff"] == 2  # a failed attempt


def test_status_never_holds_a_secret():
    secret, static = bytes(range(40, 72)), bytes(range(100, 132))
    fd = factory.load(factory_nvs(uuid_secret=secret, static_oob=static))
    node = Node(esp32.NVS("mesh"), BOARD, fd, now_ms=0, rand=_rand, keypair=KEYPAIR)
    record = {"net_key": bytes(range(16)), "net_key_index": 3, "flags": 0, "iv_index": 9, "address": 0x0123,
              "elements": 1, "dev_key": bytes(range(16, 32)),
              "hotel": {"mh_key": b"MHKY", "floor_key": b"FLKY", "room_key": b"RMKY"}}
    unprov = repr(node.status())
    node.prov.provision(record)
    node.poll(10)
    st = repr(node.status())
    assert "0x0123" in st and "present" in st
    for text in (unprov, st):
        for s in keystore.secrets_hex(record) + fd.secrets_hex() + [hx(KEYPAIR[0])]:
            assert s not in text
        for key in (secret, static):  # not even a 4-byte piece of a factory secret
            for i in range(0, len(key) - 4, 4):
                assert hx(key[i:i + 4]) not in text


def test_key_pair_is_generated_ahead_while_beaconing():
    esp32.use_flash(None)
    node = Node(esp32.NVS("mesh"), {}, None, now_ms=0)
    air = Air(node)
    air.apply(0)
    assert air.scanning and node.deadline() == 0  # slices pending from the start
    air.run(0, 60000)
    assert node.prov._keypair is not None and node.deadline() > 0
    kinds = set(a.data[1] for t, a in air.adverts)
    assert beacon.AD_MESH_BEACON in kinds and beacon.AD_FLAGS in kinds  # beacons and PB-GATT (Flags first)


def test_scan_results_that_are_not_pb_adv_are_ignored():
    node, air = _sample_node()
    air.run(0, 1000)
    open_ = [f for who, _n, f in exchange() if who == "prov"][0]
    node.scan_result(1000, 4, ADDR, beacon.pb_adv_ad(open_))  # a scan response
    node.scan_result(1000, 3, ADDR, b"\x05\x29" + open_)  # length running past the end
    node.scan_result(1000, 3, ADDR, b"\x02\x01\x06" + bytes(30))  # over 31 bytes
    node.scan_result(1000, 3, ADDR, beacon.ad(0x2A, open_[:20]))  # another AD type
    air.run(1000, 1100)
    assert node.status()["bearer"] is None and air.take_frames() == []
    node.scan_result(1200, 2, ADDR, b"\x02\x01\x06" + beacon.pb_adv_ad(open_))  # ADV_SCAN_IND, after Flags
    air.run(1200, 1400)
    assert node.status()["bearer"] == "PB-ADV" and air.take_frames() == [h("23af58500007")]  # Link Ack


def test_connection_refused_during_pb_adv_link_restarts_the_advert():
    node, air = _sample_node()
    air.run(0, 1000)
    open_ = [f for who, _n, f in exchange() if who == "prov"][0]
    node.scan_result(1000, 3, ADDR, beacon.pb_adv_ad(open_))
    node.poll(1000)
    air.apply(1000)
    cur = air.on_air
    assert cur is not None and cur.data[1] == beacon.AD_PB_ADV
    air.connect(1005, CONN)  # a central got in (e.g. PB-ADV sent as ADV_IND): the controller stopped
    assert air.dropped == [CONN] and air.on_air is cur  # the same frame started again
    assert node.status()["bearer"] == "PB-ADV"


def test_rolling_uuid_counter_per_boot_and_period():
    fd = factory.load(factory_nvs(uuid_secret=bytes(range(32))))
    nvs = esp32.NVS("mesh")
    a = Node(nvs, {}, fd, now_ms=0)
    assert nvs.get_i32(PERIOD_KEY) == 1 and a.uuid_src.period == 1 and a.status()["uuid_kind"] == "rolling"
    esp32.flash().power_cycle()
    nvs = esp32.NVS("mesh")
    b = Node(nvs, {}, fd, now_ms=0)
    assert b.uuid_src.period == 2 and b.status()["uuid"] != a.status()["uuid"]
    d = b.deadline()
    half_hour = 1800 * 1000
    assert d <= half_hour
    Air(b).run(0, half_hour)
    assert b.uuid_src.period == 3 and nvs.get_i32(PERIOD_KEY) == 3
    b.reset(half_hour + 1)  # node reset keeps the counter: UUIDs never repeat
    assert nvs.get_i32(PERIOD_KEY) == 3


def test_per_boot_random_uuid_without_a_secret():
    esp32.use_flash(None)
    a = Node(esp32.NVS("mesh"), {}, None)
    b = Node(esp32.NVS("mesh"), {}, None)
    ua, ub = h(a.status()["uuid"]), h(b.status()["uuid"])
    assert ua != ub and ua[6] >> 4 == 4 and ub[8] >> 6 == 2 and a.status()["uuid_kind"] == "random"


def test_board_config_names_and_factory_overrides():
    cfg, adv, oob, uri = board_config({
        "provisioning": {"algorithms": ["cmac", "hmac"], "output_size": 2, "output_actions": ["blink", "numeric"],
                         "input_size": 1, "input_actions": ["push"]},
        "hotel": {"floor": 1, "room": 101}, "advertising": {"on_ms": 500}, "oob_info": ["on_device", "number"],
        "uri": "https://example.com"})
    assert cfg["algorithms"] == 3 and cfg["output_actions"] == P.OUTPUT_BLINK | P.OUTPUT_NUMERIC
    assert cfg["input_actions"] == P.INPUT_PUSH and cfg["hotel"] == {"floor": 1, "room": 101}
    assert adv == {"on_ms": 500} and oob == beacon.OOB_ON_DEVICE | beacon.OOB_NUMBER and uri == "https://example.com"
    assert board_config({"provisioning": {"output_actions": 9}})[0]["output_actions"] == 9
    raises(ValueError, board_config, {"provisioning": {"output_actions": ["wink"]}})
    raises(ValueError, board_config, {"oob_info": ["in_the_fridge"]})
    # §3.10.2 OOB Information: bits 7 and 8 claim certificate-based provisioning and provisioning records, which
    # this device answers with Invalid PDU (a provisioner that believes them cannot provision it); 9-10 are RFU
    for oob in (["certificate"], ["records"], ["on_box", "records"], 0x0080, 0x0100, 0x0200, 0x0400, 0x8180):
        raises(ValueError, board_config, {"oob_info": oob})
    assert board_config({"oob_info": 0xF87F})[2] == 0xF87F
    # factory capability overrides win over the board; a refused combination falls back to the board
    f = factory_nvs(output_size=1, output_actions=P.OUTPUT_BEEP)
    node = Node(esp32.NVS("mesh"), {"provisioning": {"output_size": 4, "output_actions": ["numeric"]}},
                factory.load(esp32.NVS("factory")))
    assert node.prov.capabilities[6:9] == bytes((1, 0, P.OUTPUT_BEEP))  # Output OOB Size, Actions (§5.4.1.2)
    f.set_i32("oob_required", 1)
    f.erase_key("output_size")
    f.erase_key("output_actions")
    f.commit()
    with Logs() as lg:
        node = Node(esp32.NVS("mesh"), {}, factory.load(esp32.NVS("factory")))
    assert "board config only" in lg.text() and not node.prov.oob_required


# ---- private address: the "addr" action comes with each new UUID (docs/advertising.md, "Private address") ----
SECRET = bytes(range(32))


def _rolling_node():
    esp32.use_flash(None)
    fd = factory.load(factory_nvs(uuid_secret=SECRET))
    node = Node(esp32.NVS("mesh"), {"uuid_period_s": 5}, fd, now_ms=0)  # a new UUID every 5 s
    return node, Air(node)


def _carried(a):
    if a.data[1] == beacon.AD_MESH_BEACON:
        return beacon.parse_unprovisioned_beacon(a.data)[0]
    return beacon.parse_pb_gatt_adv(a.data)[0] if a.connectable else None  # PB-ADV frames carry no UUID


def _per_address(air):
    """The UUIDs the adverts carried between one "addr" action and the next: one set per radio address."""
    cuts = [i for _t, i in air.renewed] + [len(air.adverts)]
    return [{_carried(a) for _t, a in air.adverts[lo:hi]} - {None} for lo, hi in zip(cuts, cuts[1:])]


def _one_uuid_per_address(air):
    got = _per_address(air)
    assert air.renewed[0][1] == 0  # a new address before the very first advert
    assert all(len(u) == 1 for u in got), got  # no UUID shared by two addresses, no address with two UUIDs
    assert all(a != b for a, b in zip(got, got[1:]))
    return got


def test_a_new_address_exactly_when_the_uuid_on_air_changes():
    node, air = _rolling_node()
    air.run(0, 40000)
    got = _one_uuid_per_address(air)
    assert len(got) >= 4 and len(air.renewed) == len(got)
    assert air.scanning  # the node leaves stopping/restarting the scan to the radio adapter


def test_no_new_address_while_a_pb_adv_link_is_open():
    node, air = _rolling_node()
    air.run(0, 1000)
    uuid, link_id = node.uuid_src.uuid, b"\x11\x22\x33\x44"
    node.scan_result(1000, 3, ADDR, beacon.pb_adv_ad(link_id + b"\x00\x03" + uuid))  # Link Open
    air.run(1000, 13000)  # two period boundaries pass
    assert node.status()["bearer"] == "PB-ADV" and node.uuid_src.uuid == uuid
    assert [t for t, _i in air.renewed] == [0]
    node.scan_result(13000, 3, ADDR, beacon.pb_adv_ad(link_id + b"\x00\x0b\x00"))  # Link Close (success)
    air.run(13000, 30000)
    assert node.status()["bearer"] is None and node.uuid_src.uuid != uuid
    assert len(air.renewed) >= 2 and air.renewed[1][0] >= 13000
    _one_uuid_per_address(air)


def test_a_gatt_link_the_lock_closes_holds_the_new_address_until_the_disconnect():
    node, air = _rolling_node()
    air.run(0, 1000)
    air.connect(1000, CONN)
    assert node.status()["bearer"] == "PB-GATT"
    air.run(1000, 12000)  # the UUID is frozen across two boundaries
    node.reset(12000)  # the lock ends the attempt: a disconnect is asked for, the connection is still up
    air.apply(12000)
    assert air.dropped == [CONN] and air.on_air is None and [t for t, _i in air.renewed] == [0]
    node.disconnected(12050, CONN)
    air.apply(12050)
    assert air.renewed[-1] == (12050, len(air.adverts) - 1) and air.on_air is not None  # new address, then advert
    air.run(12050, 30000)
    _one_uuid_per_address(air)
