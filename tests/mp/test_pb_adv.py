# PB-ADV bearer and Generic Provisioning layer against the §8.7 on-air sample (Mesh Protocol v1.1).
from bearer_helpers import LINK, UUID, exchange
from mesh import pb_adv
from mesh.pb_adv import PbAdv
from mpunit import h, hx, raises


def _zero(n):
    return bytes(n)


def _open(now=0):
    a = PbAdv(UUID, rand=_zero)
    assert a.receive(now, exchange()[0][2]) == [("open",)]
    assert a.take_frames() == [(LINK + h("0007"), True)]
    return a


def _pdus():
    """Provisioning PDUs of §8.7 (both directions), reassembled from the sample frames by hand."""
    out = []
    for who, _name, f in exchange():
        if f[5] & 3 == 0:
            out.append([who, f[9:]])
        elif f[5] & 3 == 2:
            out[-1][1] += f[6:]
    return out


def test_fcs_of_sample_pdus():
    assert pb_adv.fcs(h("0000")) == 0x14
    assert pb_adv.fcs(h("010100010000000000000000")) == 0xD6
    # Each sample Start's FCS is the FCS of the whole reassembled Provisioning PDU.
    starts = [f for w, n, f in exchange() if f[5] & 3 == 0]
    pdus = _pdus()
    assert len(starts) == len(pdus) == 11
    for f, (_who, pdu) in zip(starts, pdus):
        assert f[8] == pb_adv.fcs(pdu) and ((f[6] << 8) | f[7]) == len(pdu)


def test_segments_reproduce_device_frames():
    frames = [(n, f) for w, n, f in exchange() if w == "dev" and f[5] & 3 != 1 and f[5] != 7]
    by_tn = {}
    for _n, f in frames:
        by_tn.setdefault(f[4], []).append(f)
    for tn, pdu in zip(range(0x80, 0x85), [p for w, p in _pdus() if w == "dev"]):
        assert pb_adv.segments(LINK, tn, pdu) == by_tn[tn]
    assert pb_adv.last_seg(20) == 0 and pb_adv.last_seg(21) == 1 and pb_adv.last_seg(43) == 1
    assert pb_adv.last_seg(44) == 2 and pb_adv.last_seg(65) == 2
    raises(ValueError, pb_adv.segments, LINK, 0x80, b"")


def test_sample_exchange_byte_for_byte():
    # Play the provisioner's frames; the device answers with the sample's device PDUs. Every frame the
    # device puts on air must be the sample's, in order (acks first).
    a = PbAdv(UUID, rand=_zero)
    ex = exchange()
    dev_pdus = [p for w, p in _pdus() if w == "dev"]
    prov_pdus = [p for w, p in _pdus() if w == "prov"]
    now, got, expected, events = 0, [], [], []
    for who, _name, f in ex:
        now += 30
        if who == "dev":
            expected.append(f)
            continue
        for ev in a.receive(now, f):
            events.append(ev)
            if ev[0] == "pdu":
                assert ev[1] == prov_pdus.pop(0)
                if ev[1][0] != 0x02:  # every provisioner PDU but Start gets an answer
                    a.send(now, dev_pdus.pop(0))
        got.extend(fr for fr, urgent in a.take_frames())
        assert a.poll(now) == []
    assert [hx(x) for x in got] == [hx(x) for x in expected]
    assert events[0] == ("open",) and events[-1] == ("close", 0) and len(events) == 8
    assert not dev_pdus and a.state == pb_adv.IDLE


def test_link_open_rules():
    a = PbAdv(UUID, rand=_zero)
    other = LINK + h("0003") + h("00" * 16)
    assert a.receive(0, other) == [] and a.take_frames() == []  # not our UUID
    assert a.receive(0, LINK + h("0003") + UUID + b"\x00") == []  # 17-octet Link Open: malformed
    a = _open()
    assert a.receive(60, exchange()[0][2]) == []  # a copy of the same burst: no second Link Ack
    assert a.take_frames() == []
    assert a.receive(100, exchange()[0][2]) == []  # repeated Link Open: another Link Ack
    assert a.take_frames() == [(LINK + h("0007"), True)]
    assert a.receive(20, h("11223344") + h("0003") + UUID) == []  # second link: ignored
    assert a.take_frames() == [] and a.link_id == LINK
    # PDUs of other Link IDs are ignored while our link is open
    assert a.receive(30, h("11223344") + h("00000002140000")) == [] and a.take_frames() == []
    assert a.receive(40, h("11223344") + h("000b00")) == [] and a.state == pb_adv.OPEN


def test_reassembly_any_order_and_duplicates():
    a = _open()
    a.receive(1, LINK + h("00000002140000"))  # Invite tx 00
    a.receive(1, next(f for w, n, f in exchange() if n == "Start"))  # Start tx 01
    a.take_frames()
    pk = [f for w, n, f in exchange() if w == "prov" and f[4] == 2]
    assert len(pk) == 3
    assert a.receive(2, pk[2]) == [] and a.receive(3, pk[2]) == []
    assert a.receive(4, pk[1]) == [] and a.take_frames() == []
    ev = a.receive(5, pk[0])
    assert len(ev) == 1 and ev[0][0] == "pdu" and len(ev[0][1]) == 65 and ev[0][1][0] == 0x03
    assert a.take_frames() == [(LINK + h("0201"), True)]
    # the rest of the burst that completed it: no more acks
    assert a.receive(25, pk[0]) == [] and a.receive(45, pk[0]) == [] and a.take_frames() == []
    # the provisioner missed our ack and repeats any segment: ack again (once per 100 ms), deliver nothing
    assert a.receive(505, pk[1]) == [] and a.receive(525, pk[0]) == []
    assert a.take_frames() == [(LINK + h("0201"), True)]
    assert a.receive(1005, pk[2]) == [] and a.take_frames() == [(LINK + h("0201"), True)]


def test_bad_fcs_dropped_then_retransmission_delivered():
    a = _open()
    bad = bytearray(LINK + h("00000002140000"))
    bad[8] ^= 1
    assert a.receive(1, bytes(bad)) == [] and a.take_frames() == []
    assert a.receive(2, LINK + h("00000002140000")) == [("pdu", h("0000"))]
    assert a.take_frames() == [(LINK + h("0001"), True)]


def test_unknown_transaction_numbers_ignored():
    a = _open()
    assert a.receive(1, LINK + h("01000002140000")) == []  # first must be 0x00
    assert a.receive(1, LINK + h("80000002140000")) == []  # a device number
    assert a.take_frames() == []


def _fails(frame, *before):
    a = _open()
    for f in before:
        a.receive(1, f)
    a.take_frames()
    assert a.receive(2, frame) == [("close", pb_adv.CLOSE_FAIL)], hx(frame)
    assert a.take_frames() == [(LINK + h("000b02"), False)] * 3
    assert a.state == pb_adv.IDLE


def test_impossible_segmentation_fails_the_link():
    _fails(LINK + h("00000000140000"))  # TotalLength 0
    _fails(LINK + h("00000042ff") + bytes(20))  # TotalLength 66 > the largest Provisioning PDU
    _fails(LINK + h("000400021400"))  # SegN 1 for 2 octets
    _fails(LINK + h("00000003140000"))  # 2 data octets for TotalLength 3
    _fails(LINK + h("000000"))  # Start too short
    _fails(LINK + h("0002") + bytes(23))  # Continuation index 0
    _fails(LINK + h("000e00"))  # Continuation index 3 > any SegN
    _fails(LINK + h("0006") + bytes(24))  # 24 data octets in a Continuation
    pk = pb_adv.segments(LINK, 0, next(p for w, p in _pdus() if p[0] == 0x03))
    _fails(pk[2][:-1], pk[0])  # last segment one octet short
    _fails(pk[1][:-1], pk[0])  # middle segment short
    _fails(pk[0], pk[2][:-1] + b"\x00\x00")  # early continuation too long for the Start that follows


def test_retransmission_jitter_and_ack():
    a = PbAdv(UUID, rand=lambda n: b"\xff" * n)  # the largest jitter
    a.receive(0, exchange()[0][2])
    a.receive(0, LINK + h("00000002140000"))
    a.take_frames()
    caps = h("010100010000000000000000")
    a.send(100, caps)
    first = a.take_frames()
    assert first == [(LINK + h("8000000cd6") + caps, False)]
    assert a.deadline() == 650 and a.tx_pending
    assert a.poll(649) == [] and a.take_frames() == []
    assert a.poll(650) == [] and a.take_frames() == first
    assert a.deadline() == 1200
    a.receive(700, LINK + h("8101"))  # ack of another transaction: ignored
    assert a.tx_pending
    a.receive(700, LINK + h("8001"))
    assert not a.tx_pending and a.deadline() is None and a.poll(5000) == [] and a.take_frames() == []
    b = PbAdv(UUID, rand=_zero)
    b.receive(0, exchange()[0][2])
    b.send(0, caps)
    assert b.deadline() == 500


def test_transaction_timeout_closes_link_three_times():
    a = _open()
    a.send(0, h("0100"))
    a.take_frames()
    t = 0
    while a.deadline() is not None and t < 40000:
        t = a.deadline()
        ev = a.poll(t)
        if ev:
            break
        assert len(a.take_frames()) == 1
    assert ev == [("close", pb_adv.CLOSE_TIMEOUT)] and t == 30000
    assert a.take_frames() == [(LINK + h("000b01"), False)] * 3
    assert a.state == pb_adv.IDLE and a.deadline() is None


def test_provisioner_link_close_and_reopen():
    a = _open()
    a.send(0, h("0100"))
    assert a.receive(5, LINK + h("000b00")) == [("close", 0)]
    assert a.take_frames() == [] and a.deadline() is None
    assert a.receive(6, LINK + h("00000002140000")) == []  # link gone
    assert a.receive(7, LINK + h("000b00")) == []
    b = h("01020304")
    assert a.receive(8, b + h("0003") + UUID) == [("open",)]
    assert a.take_frames() == [(b + h("0007"), True)]


def test_device_close_and_queueing():
    a = _open()
    a.send(0, h("0100"))
    a.send(0, h("0200"))  # waits for the first's ack
    assert [f for f, u in a.take_frames()] == [LINK + h("80000002") + bytes((pb_adv.fcs(h("0100")),)) + h("0100")]
    a.receive(10, LINK + h("8001"))
    assert [f[4] for f, u in a.take_frames()] == [0x81]
    a.close(20, pb_adv.CLOSE_FAIL)
    assert a.take_frames() == [(LINK + h("000b02"), False)] * 3
    a.close(21, pb_adv.CLOSE_FAIL)  # already closed: nothing
    assert a.take_frames() == [] and a.state == pb_adv.IDLE
    a.send(22, h("0100"))  # no link: dropped
    assert a.take_frames() == []
    raises(ValueError, a.send, 0, b"")


def test_new_provisioner_transaction_acks_ours_implicitly():
    a = _open()
    a.receive(1, LINK + h("00000002140000"))
    a.send(2, h("010100010000000000000000"))
    a.take_frames()
    start = next(f for w, n, f in exchange() if n == "Start")
    assert a.receive(3, start)[0][0] == "pdu"
    assert not a.tx_pending and a.deadline() is None


def test_transaction_numbers_wrap():
    a = _open()
    for i in range(130):
        tn = i & 0x7F
        assert a.receive(i, LINK + bytes((tn,)) + h("000002140000")) == [("pdu", h("0000"))]
        a.send(i, h("0100"))
        frames = a.take_frames()
        assert frames[0] == (LINK + bytes((tn, 1)), True)
        assert frames[1][0][4] == 0x80 | (i & 0x7F)
        a.receive(i, LINK + bytes((0x80 | (i & 0x7F), 1)))
        assert not a.tx_pending


def test_uuid_from_a_rolling_uuid_object():
    class Rolling:
        uuid = UUID

    src = Rolling()
    a = PbAdv(src, rand=_zero)
    link_open = exchange()[0][2]
    src.uuid = bytes(16)  # the UUID rolled: Link Opens for the old one are not ours any more
    assert a.receive(0, link_open) == []
    src.uuid = UUID
    assert a.receive(1, link_open) == [("open",)]
