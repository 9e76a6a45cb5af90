"""Host provisioner bearers (tools/hostprov/pb_adv.py, pb_gatt.py) against the spec's §8.7 and §8.8 samples."""

import pathlib
import random
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from hostprov import pb_adv, pb_gatt

VECTORS = (ROOT / "tests" / "vectors" / "provisioning.txt").read_text()
LINK_ID = 0x23AF5850


def _values():
    out = {}
    for line in VECTORS.splitlines():
        line = line.split("#", 1)[0]
        if "=" in line:
            k, v = line.split("=", 1)
            out.setdefault(k.strip(), v.strip())  # first wins: the §8.17.1 block precedes the on-air one
    return out


V = _values()
UUID = bytes.fromhex(V["DeviceUUID"])


def _on_air():
    """The §8.7 exchange as [(sender, frame)], in the order the specification prints it."""
    section = VECTORS.split("8.7  PB-ADV on-air")[1].split("## =====")[0]
    frames, who = [], None
    for line in section.splitlines()[1:]:
        line = line.split("#", 1)[0]
        if "=" not in line or "DeviceUUID" in line:
            continue
        key, value = line.split("=", 1)
        if "(prov" in key:
            who = "prov"
        elif "(dev" in key:
            who = "dev"
        frames.append((who, bytes.fromhex(value.strip())))
    return frames


def _prov_pdus():
    return {
        "invite": bytes.fromhex("00" + V["ProvisioningInvite"]),
        "start": bytes.fromhex("02" + V["ProvisioningStart"]),
        "pubkey": bytes.fromhex("03" + V["PublicKeyProvisionerX"] + V["PublicKeyProvisionerY"]),
        "confirm": bytes.fromhex("05" + V["ConfirmationProvisioner"]),
        "random": bytes.fromhex("06" + V["RandomProvisioner"]),
        "data": bytes.fromhex("07" + V["EncryptedProvisioningData"] + V["ProvisioningDataMIC"]),
    }


def test_fcs_matches_the_sample():
    assert pb_adv.fcs(bytes.fromhex("0000")) == 0x14
    assert pb_adv.fcs(bytes.fromhex("010100010000000000000000")) == 0xD6
    assert pb_adv.fcs(bytes.fromhex("08")) == 0x3E


def test_pb_adv_reproduces_the_8_7_exchange_byte_for_byte():
    """Play the provisioner's part of §8.7: every frame it puts on air must be the sample's, in order."""
    p = _prov_pdus()
    # What the provisioning protocol sends after each device event (it is not under test here).
    react = {"open": ["invite"], 0x01: ["start", "pubkey"], 0x03: ["confirm"], 0x05: ["random"], 0x06: ["data"]}
    link = pb_adv.Link(UUID, link_id=LINK_ID)
    link.open(0)
    sent, received, now = [], [], 0
    for who, frame in _on_air():
        now += 10
        sent += link.take_frames()
        if who == "prov":
            assert sent, f"provisioner silent where the sample has {frame.hex()}"
            assert sent.pop(0).hex() == frame.hex()
            continue
        for ev in link.receive(now, frame):
            key = "open" if ev[0] == "open" else ev[1][0]
            if ev[0] == "pdu":
                received.append(ev[1])
            if key == 0x08:
                link.close(now, pb_adv.CLOSE_SUCCESS)
            for name in react.get(key, []):
                link.send(now, p[name])
    sent += link.take_frames()
    assert sent == [bytes.fromhex("23af5850000b00")] * (pb_adv.CLOSE_REPEATS - 1)
    assert [r[0] for r in received] == [0x01, 0x03, 0x05, 0x06, 0x08]
    assert received[0] == bytes.fromhex("01" + V["ProvisioningCapabilities"])
    assert link.state == "closed" and link.deadline() is None


def _opened(now=0):
    link = pb_adv.Link(UUID, link_id=LINK_ID)
    link.open(now)
    link.take_frames()
    assert link.receive(now, bytes.fromhex("23af58500007")) == [("open",)]
    return link


def _device_tx(tx, pdu):
    return [LINK_ID.to_bytes(4, "big") + bytes([tx]) + s for s in pb_adv.segment(pdu)]


def test_link_open_is_repeated_until_acked_then_gives_up():
    link = pb_adv.Link(UUID, link_id=LINK_ID)
    link.open(0)
    first = link.take_frames()
    assert link.deadline() == pb_adv.RETRANSMIT_MS
    link.poll(pb_adv.RETRANSMIT_MS)
    assert link.take_frames() == first
    assert link.poll(pb_adv.LINK_ESTABLISH_MS) == [("close", pb_adv.CLOSE_TIMEOUT)]
    assert link.state == "closed" and link.take_frames() == []


def test_unacked_transaction_is_retransmitted_then_the_link_times_out():
    link = _opened()
    link.send(0, bytes(67))
    segs = link.take_frames()
    assert len(segs) == 4 and link.deadline() == 500
    assert link.poll(499) == [] and link.take_frames() == []
    link.poll(500)
    assert link.take_frames() == segs
    assert link.poll(pb_adv.TRANSACTION_TIMEOUT_MS) == [("close", pb_adv.CLOSE_TIMEOUT)]
    assert link.take_frames() == [bytes.fromhex("23af5850000b01")] * pb_adv.CLOSE_REPEATS


def test_only_the_ack_of_the_current_transaction_counts_and_numbers_wrap():
    link = _opened()
    link._tx = 0x7F
    link.send(0, b"\x05" + bytes(16))
    link.send(0, b"\x06" + bytes(16))
    assert link.take_frames()[0][4] == 0x7F  # the second PDU waits for the first one's ack
    link.receive(1, bytes.fromhex("23af5850" "00" "01"))  # an ack for some other transaction
    assert link.take_frames() == []
    link.receive(2, bytes.fromhex("23af5850" "7f" "01"))
    frames = link.take_frames()
    assert frames[0][4] == 0x00 and frames[0][9] == 0x06


def test_device_segments_reassemble_in_any_order_with_duplicates_and_are_acked_once_delivered():
    link = _opened()
    pdu = b"\x03" + bytes(range(64))
    segs = _device_tx(0x81, pdu)
    order = [2, 1, 2, 0]
    events = []
    for i in order:
        events += link.receive(5, segs[i])
    assert events == [("pdu", pdu)]
    assert link.take_frames() == [bytes.fromhex("23af5850" "81" "01")]
    # the device did not hear the ack and repeats the transaction: acked again, not delivered twice
    assert link.receive(6, segs[0]) == []
    assert link.take_frames() == [bytes.fromhex("23af5850" "81" "01")]


def test_a_bad_fcs_is_dropped_without_an_ack():
    link = _opened()
    frame = bytearray(_device_tx(0x80, b"\x08")[0])
    frame[8] ^= 0xFF
    assert link.receive(1, bytes(frame)) == [] and link.take_frames() == []
    assert link.receive(2, _device_tx(0x80, b"\x08")[0]) == [("pdu", b"\x08")]


@pytest.mark.parametrize("gpc_and_body", [
    "08 0002 14 0000",  # SegN 2 for a 2-octet PDU
    "00 0030 00" + "00" * 20,  # 48 octets announced without continuations
    "00 0000 00",  # empty PDU
    "00 0003 00 0000",  # data shorter than announced
])
def test_an_impossible_transaction_start_fails_the_link(gpc_and_body):
    link = _opened()
    assert link.receive(1, bytes.fromhex("23af5850" "80" + gpc_and_body)) == [("close", pb_adv.CLOSE_FAIL)]
    assert link.take_frames() == [bytes.fromhex("23af5850000b02")] * pb_adv.CLOSE_REPEATS


def test_other_links_and_garbage_are_ignored_and_a_device_link_close_ends_the_link():
    link = _opened()
    assert link.receive(1, bytes.fromhex("11223344" "80" "00000114" "08")) == []
    assert link.receive(1, b"\x23\xaf") == []
    assert link.receive(1, bytes.fromhex("23af5850" "00" "03") + UUID) == []  # a Link Open echoed back
    assert link.take_frames() == []
    assert link.receive(2, bytes.fromhex("23af5850000b01")) == [("close", 1)]
    assert link.state == "closed" and link.receive(3, _device_tx(0x80, b"\x08")[0]) == []


def test_pb_adv_segments_round_trip_for_every_length():
    rng = random.Random(8)
    for n in range(1, pb_adv.MAX_RX_PDU + 1):
        link = _opened()
        pdu = bytes(rng.randrange(256) for _ in range(n))
        segs = _device_tx(0x80, pdu)
        assert all(len(s) <= 29 for s in segs)
        rng.shuffle(segs)
        assert [e for s in segs for e in link.receive(1, s)] == [("pdu", pdu)]


# --- PB-GATT -------------------------------------------------------------------------------------------

GATT_SAMPLE = [bytes.fromhex(V[f"Seg{i} ATT value"]) for i in range(1, 5)]


def test_pb_gatt_segments_the_8_8_sample_byte_for_byte():
    pubkey = _prov_pdus()["pubkey"]
    assert pb_gatt.Client(mtu=23).send(pubkey) == GATT_SAMPLE


def test_pb_gatt_reassembles_the_8_8_sample_and_short_pdus():
    g = pb_gatt.Client()
    events = [e for v in GATT_SAMPLE for e in g.receive(0, v)]
    assert events == [("pdu", _prov_pdus()["pubkey"])]
    assert g.receive(0, b"\x03\x08") == [("pdu", b"\x08")]
    assert g.deadline() is None


def test_pb_gatt_uses_the_negotiated_mtu():
    g = pb_gatt.Client()
    pubkey = _prov_pdus()["pubkey"]
    g.set_mtu(68)
    assert g.send(pubkey) == [b"\x43" + pubkey[:64], b"\xc3" + pubkey[64:]]
    g.set_mtu(69)
    assert g.send(_prov_pdus()["pubkey"]) == [b"\x03" + _prov_pdus()["pubkey"]]
    with pytest.raises(ValueError):
        g.set_mtu(22)


@pytest.mark.parametrize("values", [
    ["c3 08"],  # last without first
    ["83 08"],  # continuation without first
    ["43 0300", "03 08"],  # a complete PDU in the middle of a segmented one
    ["03"],  # header only
])
def test_pb_gatt_protocol_violations_disconnect(values):
    g = pb_gatt.Client()
    events = [e for v in values for e in g.receive(0, bytes.fromhex(v))]
    assert events[-1] == ("close", pb_gatt.CLOSE_PROTOCOL)


def test_pb_gatt_other_message_types_are_ignored():
    # §6.3.2: 'Upon receiving a message with the Message Type field set to a value that is Reserved for Future Use
    # or a value that is not supported by the Proxy PDU Client, the Proxy PDU Client shall ignore this message.'
    # Network PDU, Mesh Beacon, Proxy Configuration and RFU types, with any SAR value, also inside a transfer
    others = [bytes([sar << 6 | typ]) + b"\x08" for typ in (0x00, 0x01, 0x02, 0x04, 0x3F) for sar in range(4)]
    g = pb_gatt.Client()
    assert [e for v in others for e in g.receive(0, v)] == [] and g.deadline() is None
    events = []
    for seg in GATT_SAMPLE:
        events += g.receive(0, seg)
        for v in others + [bytes([0x02])]:  # (and a header alone)
            events += g.receive(0, v)
    assert events == [("pdu", _prov_pdus()["pubkey"])] and g.deadline() is None


def test_pb_gatt_sar_timeout_restarts_with_every_segment():
    g = pb_gatt.Client()
    g.receive(0, GATT_SAMPLE[0])
    g.receive(15_000, GATT_SAMPLE[1])
    assert g.poll(20_000) == [] and g.deadline() == 35_000
    assert g.poll(35_000) == [("close", pb_gatt.CLOSE_SAR_TIMEOUT)]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=30), max_size=20), st.booleans())
def test_pb_adv_garbage_never_raises(frames, same_link):
    link = _opened()
    link.send(0, b"\x02" + bytes(5))
    now = 0
    for f in frames:
        now += 7
        pdu = (LINK_ID.to_bytes(4, "big") + f[4:]) if same_link else f
        for ev in link.receive(now, pdu) + link.poll(now):
            assert ev[0] in ("pdu", "close") and (ev[0] != "pdu" or 0 < len(ev[1]) <= pb_adv.MAX_RX_PDU)
        assert all(6 <= len(x) <= 29 for x in link.take_frames())


@settings(max_examples=400, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=40), max_size=20))
def test_pb_gatt_garbage_never_raises(values):
    g = pb_gatt.Client()
    for v in values:
        for ev in g.receive(0, v):
            assert ev[0] in ("pdu", "close")
