# mesh.prov_pdu: exact lengths, prohibited values, encoders (Mesh Protocol v1.1 §5.4.1).
from mpunit import h, raises

from mesh import prov_pdu as P


def _code(fn, *args):
    return raises(P.ProvError, fn, *args).code


def test_split_rejects_empty_padding_and_unknown_types():
    assert P.split(b"\x00\x05")[0] == P.INVITE and bytes(P.split(b"\x00\x05")[1]) == b"\x05"
    assert P.split(b"\x09\x01")[0] == P.FAILED
    for pdu in (b"", b"\x0a", b"\x0c", b"\x0d", b"\x3f", b"\x40", b"\xc0\x00"):
        assert _code(P.split, pdu) == P.ERR_INVALID_PDU


def test_check_len():
    P.check_len(b"\x00" * 5, 5)
    P.check_len(b"\x00" * 45, 33, 45)
    assert _code(P.check_len, b"\x00" * 4, 5) == P.ERR_INVALID_FORMAT
    assert _code(P.check_len, b"\x00" * 34, 33, 45) == P.ERR_INVALID_FORMAT


def test_capabilities_sample_and_full():
    caps = P.capabilities(1, P.ALGS_CMAC, 0, 0, 0, 0, 0, 0)
    assert caps == h("01" "0100010000000000000000")  # §8.17.1
    assert P.capabilities(255, 3, 1, 3, 8, 0x1F, 8, 0x0F) == h("01" "ff" "0003" "01" "03" "08" "001f" "08" "000f")


def test_capabilities_prohibited_values():
    for args in ((0, 1, 0, 0, 0, 0, 0, 0), (1, 0, 0, 0, 0, 0, 0, 0), (1, 4, 0, 0, 0, 0, 0, 0), (1, 1, 2, 0, 0, 0, 0, 0),
                 (1, 1, 0, 4, 0, 0, 0, 0), (1, 1, 0, 0, 9, 1, 0, 0), (1, 1, 0, 0, 1, 0x20, 0, 0),
                 (1, 1, 0, 0, 1, 0, 0, 0), (1, 1, 0, 0, 0, 0, 1, 0x10), (1, 1, 0, 0, 0, 0, 0, 1)):
        raises(ValueError, P.capabilities, *args)


def test_decode_start():
    assert P.decode_start(h("0000000000")) == (0, 0, 0, 0, 0)
    assert P.decode_start(h("0101020408")) == (1, 1, 2, 4, 8)
    assert P.decode_start(h("0100030301")) == (1, 0, 3, 3, 1)
    for bad in ("0200000000", "0002000000", "0000040000", "0000000100", "0000000001", "0000010001", "0000020500",
                "0000020501", "0000020009", "0000020000", "0000030400", "0000030000", "0000030009",
                "00000000", "000000000000"):
        assert _code(P.decode_start, h(bad)) == P.ERR_INVALID_FORMAT, bad


def test_decode_data():
    plain = h("efb2255e6422d330088e09bb015ed707056700010203040b0c")  # §8.17.1
    assert P.decode_data(plain) == (plain[:16], 0x0567, 0, 0x01020304, 0x0B0C)
    assert P.decode_data(plain[:16] + h("0fff03") + plain[19:])[1:3] == (0x0FFF, 3)
    for mid in ("100000", "056704", "056780"):
        assert _code(P.decode_data, plain[:16] + h(mid) + plain[19:]) == P.ERR_INVALID_DATA


def test_encoders():
    assert P.pdu(P.COMPLETE) == b"\x08"
    assert P.pdu(P.RANDOM, b"\x01\x02") == b"\x06\x01\x02"
    assert P.failed(P.ERR_INVALID_DATA) == b"\x09\x09"
