# Unprovisioned Device beacon, URI advert and PB-GATT advertising data against the spec samples (§8.4.1, §8.4.2,
# §8.5.1 in tests/vectors/provisioning.txt) and the strict parsers.
from mpunit import h, raises, vectors

from mesh import beacon

V = vectors("provisioning.txt")
UUID = h(V["DeviceUUID"])
URI = V["URI"]


def test_beacon_without_uri_matches_8_4_1():
    oob = beacon.OOB_STRING | beacon.OOB_ON_PAPER | beacon.OOB_ON_DEVICE
    assert oob == 0xA040
    b = beacon.unprovisioned_beacon(UUID, oob)
    assert b == bytes((len(b) - 1, 0x2B)) + h(V["UnprovBeacon (no URI)"])
    assert len(b) == 21
    assert beacon.parse_unprovisioned_beacon(b) == (UUID, 0xA040, None)


def test_uri_data_and_hash_match_8_4_2():
    assert beacon.encode_uri(URI) == h(V["URIData"])
    assert beacon.uri_hash(URI) == h(V["URIHash(full s1)"])[:4]
    oob = beacon.OOB_NUMBER | beacon.OOB_INSIDE_MANUAL
    b = beacon.unprovisioned_beacon(UUID, oob, URI)
    assert b[2:] == h(V["UnprovBeacon (with URI)"])
    assert b[0] == 24 and len(b) == 25
    assert beacon.parse_unprovisioned_beacon(b) == (UUID, 0x4020, h("d36b25b8"))


def test_spec_sample_light_switch_uri():
    # Mesh Protocol v1.1 §8.4 sample "Unprovisioned Device beacon with URI" as the specification prints it (the
    # vectors file carries a shorter URI): URI Hash = first 4 octets of s1(URI Data), OOB Information big-endian
    uri = "https://www.example.com/mesh/products/light-switch-v3"
    data = h("172f2f7777772e6578616d706c652e636f6d2f6d6573682f70726f64756374732f6c696768742d7377697463682d7633")
    assert beacon.encode_uri(uri) == data
    assert beacon.uri_hash(uri) == h("d97478b3")
    b = beacon.unprovisioned_beacon(h("70cf7c9732a345b691494810d2e9cbf4"), beacon.OOB_NUMBER | beacon.OOB_INSIDE_MANUAL,
                                    uri)
    assert b == h("182b") + h("0070cf7c9732a345b691494810d2e9cbf44020d97478b3")


def test_uri_advert_round_trip():
    u = beacon.uri_advert(URI)
    assert u == bytes((len(u) - 1, 0x24)) + h(V["URIData"])
    assert beacon.parse_uri_advert(u) == URI


def test_uri_scheme_codes():
    assert beacon.encode_uri("http://a") == b"\x16//a"
    assert beacon.encode_uri("https:x") == b"\x17x"
    assert beacon.encode_uri("urn:uuid:1") == b"\x4euuid:1"
    # the longest scheme wins ("ws:" is a prefix of nothing here, but "https:" must not become "http:" + "s")
    assert beacon.encode_uri("wss://h")[:1] == b"\x51"
    # codes >= 0x80 are written as a UTF-8 code point (two bytes)
    assert beacon.encode_uri("bluetooth:x") == b"\xc2\xbbx"
    assert beacon.decode_uri(b"\xc2\xbbx") == "bluetooth:x"
    # unknown scheme: 0x01 (empty scheme name) and the URI as written
    assert beacon.encode_uri("lock://7") == b"\x01lock://7"
    assert beacon.decode_uri(b"\x01lock://7") == "lock://7"
    for uri in ("http://x", "tel:+44", "coaps://h/p", "mailto:a@b", "x"):
        assert beacon.decode_uri(beacon.encode_uri(uri)) == uri


def test_uri_rejects_malformed():
    raises(ValueError, beacon.decode_uri, b"")
    raises(ValueError, beacon.decode_uri, b"\x00abc")  # code 0 is not assigned
    raises(ValueError, beacon.decode_uri, b"\x02x")  # assigned ("aaa:") but not in our table
    raises(ValueError, beacon.decode_uri, b"\xc2")  # truncated code point
    raises(ValueError, beacon.decode_uri, b"\xff\x80")
    raises(ValueError, beacon.decode_uri, b"\x17\xff\xfe")  # not UTF-8
    raises(ValueError, beacon.encode_uri, "")
    raises(ValueError, beacon.parse_uri_advert, h("0324170a0b"))  # length byte lies
    raises(ValueError, beacon.parse_uri_advert, h("03161718"))  # wrong AD type
    raises(ValueError, beacon.uri_advert, "https://" + "a" * 29)  # 30-byte value: 32 bytes in all


def test_uri_advert_size_limit_is_exact():
    u = beacon.uri_advert("https:" + "a" * 28)  # 1 + 28 = 29 value bytes -> 31 bytes
    assert len(u) == 31
    raises(ValueError, beacon.uri_advert, "https:" + "a" * 29)


def test_beacon_rejects_bad_arguments():
    raises(ValueError, beacon.unprovisioned_beacon, UUID[:15], 0)
    raises(ValueError, beacon.unprovisioned_beacon, UUID, 0x10000)
    raises(ValueError, beacon.unprovisioned_beacon, UUID, -1)


def test_beacon_parser_rejects_malformed():
    good = beacon.unprovisioned_beacon(UUID, 0xA040)
    raises(ValueError, beacon.parse_unprovisioned_beacon, b"")
    raises(ValueError, beacon.parse_unprovisioned_beacon, good[:-1])  # length byte no longer matches
    raises(ValueError, beacon.parse_unprovisioned_beacon, good + b"\x00")
    raises(ValueError, beacon.parse_unprovisioned_beacon, bytes((good[0], 0x2A)) + good[2:])  # other AD type
    raises(ValueError, beacon.parse_unprovisioned_beacon, bytes((good[0], 0x2B, 0x01)) + good[3:])  # SNB type
    short = bytes((good[0] - 1,)) + good[1:-1]  # 18-byte beacon body
    raises(ValueError, beacon.parse_unprovisioned_beacon, short)
    odd = bytes((good[0] + 2,)) + good[1:] + b"\x00\x00"  # 21-byte body: neither 19 nor 23
    raises(ValueError, beacon.parse_unprovisioned_beacon, odd)


def test_pb_gatt_service_data_matches_8_5_1_little_endian_oob():
    sd = beacon.pb_gatt_service_data(UUID, beacon.OOB_NUMBER | beacon.OOB_INSIDE_MANUAL)
    assert sd == h(V["ADVData"])
    assert sd[-2:] == h("2040")  # decision: little-endian, as §8.5.1 and ESP-IDF (Zephyr writes 40 20)


def test_pb_gatt_adv_layout():
    a = beacon.pb_gatt_adv(UUID, 0x4020)
    assert len(a) == 29
    assert a[:7] == h("020106 03032718")
    assert a[7:] == h(V["ADVData"])
    assert beacon.parse_pb_gatt_adv(a) == (UUID, 0x4020)
    assert beacon.ad_structures(a) == [(0x01, b"\x06"), (0x03, h("2718")), (0x16, h("2718") + UUID + h("2040"))]


def test_pb_gatt_adv_parser_rejects_malformed():
    a = beacon.pb_gatt_adv(UUID, 0x4020)
    raises(ValueError, beacon.parse_pb_gatt_adv, a[:-1])  # last structure runs past the end
    raises(ValueError, beacon.parse_pb_gatt_adv, a[:7])  # no service data
    raises(ValueError, beacon.parse_pb_gatt_adv, a[:7] + h("1416 2718") + UUID + h("20"))  # 19-byte value
    raises(ValueError, beacon.parse_pb_gatt_adv, a + h("0101 01"))  # 32 bytes
    # a zero length ends the data early (Core Vol 3 Part C §11)
    assert beacon.ad_structures(h("020106 00 ffff")) == [(0x01, b"\x06")]


def test_pb_adv_wrapper():
    pdu = h("23af58500007")  # Link Ack from §8.7
    assert beacon.pb_adv_ad(pdu) == h("0729") + pdu
    assert len(beacon.pb_adv_ad(bytes(29))) == 31
    raises(ValueError, beacon.pb_adv_ad, bytes(30))
    raises(ValueError, beacon.pb_adv_ad, b"")


def test_oob_bits_are_distinct_single_bits():
    names = ("OTHER", "URI", "2D_CODE", "BAR_CODE", "NFC", "NUMBER", "STRING", "CERTIFICATE", "RECORDS",
             "ON_BOX", "INSIDE_BOX", "ON_PAPER", "INSIDE_MANUAL", "ON_DEVICE")
    seen = 0
    for n in names:
        v = getattr(beacon, "OOB_" + n)
        assert v & (v - 1) == 0 and not seen & v
        seen |= v
    assert seen == 0xF9FF  # bits 9 and 10 RFU


def test_parsers_answer_value_error_or_a_result_for_any_input():
    # Mutated and random inputs (deterministic LCG): every parser either returns or raises ValueError.
    seeds = [beacon.unprovisioned_beacon(UUID, 0xA040), beacon.unprovisioned_beacon(UUID, 0x4020, URI),
             beacon.uri_advert(URI), beacon.pb_gatt_adv(UUID, 0x4020), beacon.uri_advert("bluetooth:x")]
    parsers = (beacon.parse_unprovisioned_beacon, beacon.parse_uri_advert, beacon.parse_pb_gatt_adv,
               beacon.ad_structures, beacon.decode_uri)
    x = 12345
    ok = 0
    for n in range(1500):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        d = bytearray(seeds[n % len(seeds)])
        if n % 3 == 0:  # flip one byte
            d[x % len(d)] ^= 1 + (x >> 8) % 255
        elif n % 3 == 1:  # truncate or extend
            d = d[:x % (len(d) + 1)] + bytes((x >> 8) % 3)
        else:  # random bytes of random length
            d = bytearray(((x >> (i % 24)) + i * 7) & 0xFF for i in range(x % 34))
        for p in parsers:
            try:
                p(bytes(d))
                ok += 1
            except ValueError:
                pass
    assert ok > 100  # some mutations still parse (e.g. a flipped UUID byte)
