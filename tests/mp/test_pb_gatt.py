# PB-GATT bearer (Proxy PDU SAR on the Mesh Provisioning Service) against the §8.8 sample.
from bearer_helpers import gatt_segments
from mesh import pb_gatt
from mesh.pb_gatt import PbGatt
from mpunit import h, raises, vectors

V = vectors("provisioning.txt")
PK = h("03" + V["PublicKeyProvisionerX"] + V["PublicKeyProvisionerY"])


def _conn(mtu=23):
    g = PbGatt(mtu)
    assert g.connected(0) == [("open",)]
    return g


def test_sample_segmentation_at_mtu_23():
    segs = gatt_segments()
    assert len(segs) == 4 and [len(s) for s in segs] == [20, 20, 20, 9]
    assert pb_gatt.proxy_segments(PK, 23) == segs
    g = _conn()
    assert g.send(0, PK) == segs
    assert [g.receive(i, s) for i, s in enumerate(segs)] == [[], [], [], [("pdu", PK)]]
    assert g.deadline() is None


def test_segment_sizes_across_mtus():
    for mtu in (23, 24, 30, 68, 69, 70, 185, 517, 600):
        g = _conn(mtu)
        for n in (1, 18, 19, 20, 38, 39, 64, 65):
            pdu = bytes(range(n))
            segs = g.send(0, pdu)
            assert all(2 <= len(s) <= min(mtu, 517) - 3 for s in segs)
            assert b"".join(s[1:] for s in segs) == pdu
            if len(segs) == 1:
                assert segs[0][0] == 0x03 and n + 4 <= min(mtu, 517)
            else:
                hdrs = [s[0] for s in segs]
                assert hdrs == [0x43] + [0x83] * (len(segs) - 2) + [0xC3]
                assert all(len(s) == min(mtu, 517) - 3 for s in segs[:-1])
            r = _conn(mtu)
            out = []
            for s in segs:
                out += r.receive(0, s)
            assert out == [("pdu", pdu)]
    assert _conn(69).send(0, bytes(65))[0][0] == 0x03  # 65 + 1 fits in 66 = 69 - 3
    raises(ValueError, PbGatt, 22)
    raises(ValueError, _conn().send, 0, b"")


def test_set_mtu_from_exchange():
    g = _conn()
    g.set_mtu(185)
    assert g.send(0, PK) == [b"\x03" + PK]
    raises(ValueError, g.set_mtu, 0)


def _closes(values, reason=pb_gatt.CLOSE_FAIL):
    g = _conn()
    out = []
    for v in values:
        out += g.receive(0, v)
    assert out == [("close", reason)], values
    assert not g.is_open and g.disconnected(1) == [] and g.receive(2, h("0300")) == []
    assert g.send(3, h("0100")) == []


def test_sar_violations_disconnect():
    segs = gatt_segments()
    _closes([segs[1]])  # continuation without a first
    _closes([segs[3]])  # last without a first
    _closes([segs[0], segs[0]])  # a second first
    _closes([segs[0], h("0300")])  # a complete inside a transfer
    _closes([b""])  # no header at all
    _closes([h("03")])  # an empty Provisioning PDU
    _closes([h("43"), h("c3")])  # ... also when segmented
    _closes([segs[0], segs[1], segs[2], segs[1]])  # 76 octets: longer than any Provisioning PDU
    _closes([b"\x03" + bytes(66)])


def test_other_message_types_are_ignored():
    # §6.3.2: a Message Type that is RFU or not supported by the Proxy PDU Server is ignored, whatever its SAR
    # value; this service supports Provisioning PDUs only (§7.1.3.1.1). Zephyr's pb_gatt_srv drops them the same way.
    segs = gatt_segments()
    g = _conn()
    for t in (0x00, 0x01, 0x02, 0x04, 0x3F):  # Network PDU, beacon, proxy config, RFU
        for sar in (0x00, 0x40, 0x80, 0xC0):
            assert g.receive(0, bytes((sar | t, 0x00))) == [] and g.is_open
    assert g.deadline() is None
    out = []
    for v in (segs[0], h("8100"), segs[1], h("c2") + bytes(5), segs[2], h("4000"), segs[3]):
        out += g.receive(0, v)  # foreign types mid-transfer change nothing
    assert out == [("pdu", PK)] and g.is_open


def test_sar_timeout_20_s():
    segs = gatt_segments()
    g = _conn()
    g.receive(1000, segs[0])
    assert g.deadline() == 21000
    g.receive(20000, segs[1])  # measured from the first segment, not restarted
    assert g.poll(20999) == []
    assert g.poll(21000) == [("close", pb_gatt.CLOSE_TIMEOUT)]
    assert g.deadline() is None and g.disconnected(21001) == []


def test_disconnect_ends_the_link_and_reconnect_starts_clean():
    segs = gatt_segments()
    g = _conn()
    g.receive(0, segs[0])
    assert g.disconnected(1) == [("close", pb_gatt.CLOSE_DISCONNECTED)]
    assert g.disconnected(2) == [] and g.receive(3, segs[1]) == [] and g.poll(30000) == []
    assert g.connected(4) == [("open",)]
    assert g.receive(5, segs[1]) == [("close", pb_gatt.CLOSE_FAIL)]  # no half-message carried over
    g.connected(6)
    assert g.receive(7, h("0300")) == [("pdu", h("00"))]
