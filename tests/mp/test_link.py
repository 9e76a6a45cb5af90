# PbAdv / PbGatt -> Link -> Provisionee, device side end to end with the §8.7 sample keys and randoms, and the
# one-provisioning-at-a-time rule (a second link or connection is refused without disturbing the first).
from bearer_helpers import LINK, UUID, MemStore, exchange
from mpunit import h, hx, vectors

from mesh import pb_adv, pb_gatt
from mesh import prov_pdu as P
from mesh.link import ADV, GATT, Link
from mesh.pb_adv import PbAdv
from mesh.pb_gatt import PbGatt
from mesh.provisionee import Provisionee

V = vectors("provisioning.txt")
CONN, CONN2 = 1, 2


def _link():
    store = MemStore()
    prov = Provisionee({"algorithms": P.ALGS_CMAC}, store, rand=lambda n: (h(V["RandomDevice"]) * 2)[:n],
                       keypair=(h(V["PrivateKeyDevice"]), h(V["PublicKeyDeviceX"] + V["PublicKeyDeviceY"])))
    return Link(prov, PbAdv(UUID, rand=lambda n: bytes(n)), PbGatt()), store


def _settle(link, now):
    while link.deadline() == 0:  # cooperative crypto (ECDH) in slices, as the firmware's loop runs it
        link.poll(now)


def _pdus(who):
    out = []
    for w, _name, f in exchange():
        if w == who and f[5] & 3 == 0:
            out.append(f[9:])
        elif w == who and f[5] & 3 == 2:
            out[-1] += f[6:]
    return out


def _check_record(store):
    r = store.record
    assert r["net_key"] == h(V["NetworkKey"]) and r["net_key_index"] == 0x0567 and r["iv_index"] == 0x01020304
    assert r["address"] == 0x0B0C and r["flags"] == 0 and r["dev_key"] == h(V["DevKey"])


def _run_adv(link, t0=0, between=None):
    """Play the provisioner's §8.7 frames; return the device's frames."""
    now, got = t0, []
    for i, (who, _name, f) in enumerate(exchange()):
        if who != "prov":
            continue
        now += 40
        link.adv_receive(now, f)
        _settle(link, now)
        got.extend(fr for fr, urgent in link.take_adv_frames())
        if between:
            between(i, now)
    return got


def test_pb_adv_sample_exchange_end_to_end():
    link, store = _link()
    got = _run_adv(link)
    want = [f for who, name, f in exchange() if who == "dev"]
    assert [hx(x) for x in got] == [hx(x) for x in want]  # every device frame, byte for byte, in order
    assert link.bearer is None and link.prov.is_provisioned and link.prov.state == "idle"
    _check_record(store)


def test_pb_gatt_sample_pdus_end_to_end():
    link, store = _link()
    assert link.gatt_connected(0, CONN) and link.bearer == GATT
    got = []
    client = pb_gatt.PbGatt()  # the provisioner's SAR is the same Proxy PDU format
    client.connected(0)
    for i, pdu in enumerate(_pdus("prov")):
        for v in pb_gatt.proxy_segments(pdu, 23):
            link.gatt_write(i * 40, CONN, v)
        _settle(link, i * 40)
        for conn, v in link.take_notifications():
            assert conn == CONN and len(v) <= 20
            got += [e[1] for e in client.receive(i * 40, v)]
    assert got == _pdus("dev")
    assert link.prov.is_provisioned and link.take_disconnects() == []
    link.gatt_disconnected(1000, CONN)
    assert link.bearer is None and link.prov.state == "idle"
    _check_record(store)


def test_gatt_connection_refused_during_pb_adv_link():
    link, store = _link()

    def intruder(i, now):
        if i == 3:  # while the PB-ADV provisioning runs, a phone connects and writes
            assert not link.gatt_connected(now, CONN)
            assert link.take_disconnects() == [CONN]
            link.gatt_write(now, CONN, b"\x03\x00\x00")
            link.gatt_disconnected(now, CONN)
            assert link.take_notifications() == [] and link.bearer == ADV

    got = _run_adv(link, between=intruder)
    assert got == [f for who, name, f in exchange() if who == "dev"]
    _check_record(store)


def test_pb_adv_link_open_ignored_during_pb_gatt():
    link, store = _link()
    assert link.gatt_connected(0, CONN)
    link.adv_receive(5, exchange()[0][2])  # a PB-ADV Link Open: no Link Ack
    assert link.take_adv_frames() == [] and link.adv.state == pb_adv.IDLE
    assert not link.gatt_connected(6, CONN2) and link.take_disconnects() == [CONN2]
    link.gatt_write(7, CONN2, b"\x03\x00\x00")  # writes of the refused connection are ignored
    assert link.take_notifications() == []
    link.gatt_write(8, CONN, b"\x03\x00\x00")  # the first connection is untouched: Invite -> Capabilities
    assert [v for c, v in link.take_notifications()] == [b"\x03" + _pdus("dev")[0]]
    link.gatt_disconnected(9, CONN2)  # the refused one going away changes nothing
    assert link.bearer == GATT
    link.gatt_disconnected(10, CONN)
    assert link.bearer is None and link.prov.state == "idle"
    link.adv_receive(11, exchange()[0][2])  # now PB-ADV may open
    assert link.take_adv_frames() == [(LINK + h("0007"), True)] and link.bearer == ADV


def test_gatt_sar_violation_disconnects_and_resets_provisionee():
    link, store = _link()
    link.gatt_connected(0, CONN)
    link.gatt_write(1, CONN, b"\x83\x00")  # continuation without a first
    assert link.take_disconnects() == [CONN] and link.bearer is None and link.prov.state == "idle"
    link.gatt_disconnected(2, CONN)
    assert link.take_disconnects() == [] and link.gatt_connected(3, CONN2)


def test_provisionee_timeout_closes_each_bearer():
    link, store = _link()
    link.adv_receive(0, exchange()[0][2])
    link.adv_receive(10, LINK + h("00000002140000"))  # Invite; Capabilities goes out
    link.take_adv_frames()
    link.adv_receive(20, LINK + h("8001"))  # acked: nothing of ours in flight
    t = link.deadline()
    assert t == 10 + 60000  # §5.4.4 protocol timeout, from the last PDU sent
    link.poll(t)
    assert link.take_adv_frames() == [(LINK + h("000b01"), False)] * 3
    assert link.bearer is None and link.prov.state == "idle"

    link, store = _link()
    link.gatt_connected(0, CONN)
    t = link.deadline()
    link.poll(t)
    assert t == 60000 and link.take_disconnects() == [CONN] and link.bearer is None


def test_pb_adv_close_waits_for_the_last_transaction():
    # When the provisionee wants the link closed while a PDU of ours is still unacknowledged, the Link Close
    # waits for that ack (or the bearer's 30 s timeout), so the PDU is not cut off by our own close.
    link, store = _link()
    link.adv_receive(0, exchange()[0][2])
    link.adv_receive(10, LINK + h("00000002140000"))  # Invite: Capabilities (0x80) in flight
    link.take_adv_frames()
    link.prov.reset()  # e.g. the user's factory reset: close_reason = Fail
    link.poll(20)
    _settle(link, 20)
    assert link.bearer == ADV and link.adv.tx_pending and link.take_adv_frames() == []
    link.adv_receive(30, LINK + h("8001"))
    assert link.take_adv_frames() == [(LINK + h("000b02"), False)] * 3 and link.bearer is None
