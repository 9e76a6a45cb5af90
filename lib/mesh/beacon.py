# What an unprovisioned device puts on the air (Mesh Protocol v1.1):
#   Unprovisioned Device beacon (§3.10.2), carried in the Mesh Beacon AD type (§3.3.1, Table 3.2);
#   the URI advertising structure the beacon's URI Hash points to (§3.10.2; Core Specification Supplement
#   Part A §1.18 for the AD type, Assigned Numbers §2.7 for the scheme codes);
#   PB-GATT connectable advertising data for the Mesh Provisioning Service (§7.1.2.2.1).
# Every builder returns whole AD structures ([len][type][value]) and raises ValueError rather than cut a payload
# that would not fit in 31 bytes of legacy advertising data. The parsers are strict: anything malformed is a
# ValueError, never a partial answer.
from mesh import const

ADV_DATA_MAX = const(31)  # legacy advertising data (Core Vol 6 Part B §2.3.1.3)

AD_FLAGS = const(0x01)
_AD_UUID16_COMPLETE = const(0x03)
AD_SERVICE_DATA16 = const(0x16)
_AD_URI = const(0x24)
AD_PB_ADV = const(0x29)
AD_MESH_BEACON = const(0x2B)

_BEACON_UNPROVISIONED = const(0x00)  # §3.10.1 Beacon Type
_MESH_PROVISIONING_SERVICE = const(0x1827)  # §7.1
_FLAGS_GENERAL_NO_BREDR = const(0x06)  # LE General Discoverable | BR/EDR Not Supported (CSS Part A §1.3)
_UUID_LEN = const(16)
_URI_HASH_LEN = const(4)

# OOB Information field (§3.10.2): where the provisioner finds the OOB data.
OOB_OTHER = const(0x0001)
OOB_URI = const(0x0002)  # Electronic / URI
OOB_2D_CODE = const(0x0004)  # 2D machine-readable code
OOB_BAR_CODE = const(0x0008)
OOB_NFC = const(0x0010)
OOB_NUMBER = const(0x0020)
OOB_STRING = const(0x0040)
OOB_CERTIFICATE = const(0x0080)  # v1.1: supports certificate-based provisioning
OOB_RECORDS = const(0x0100)  # v1.1: supports provisioning records
# bits 9-10 are RFU
OOB_ON_BOX = const(0x0800)
OOB_INSIDE_BOX = const(0x1000)
OOB_ON_PAPER = const(0x2000)
OOB_INSIDE_MANUAL = const(0x4000)
OOB_ON_DEVICE = const(0x8000)

# URI scheme name string codes (Assigned Numbers §2.7, "URI Schemes"), the common subset. The code is written as a
# UTF-8 encoded code point in place of the scheme name; 0x01 is the empty scheme (the URI follows as written).
_SCHEME_EMPTY = const(0x01)
URI_SCHEMES = {
    "coap:": 0x09, "coaps:": 0x0A, "data:": 0x0C, "file:": 0x10, "ftp:": 0x11, "geo:": 0x12,
    "http:": 0x16, "https:": 0x17, "mailto:": 0x26, "sms:": 0x3E, "tel:": 0x45, "urn:": 0x4E,
    "ws:": 0x50, "wss:": 0x51, "sftp:": 0xA0, "ssh:": 0xA7, "bluetooth:": 0xBB,
}


def ad(ad_type, value):
    """One AD structure [len][type][value] (Core Vol 3 Part C §11)."""
    if len(value) + 2 > ADV_DATA_MAX:
        raise ValueError("AD structure too long")
    return bytes((len(value) + 1, ad_type)) + bytes(value)


def ad_structures(data):
    """Split advertising data into [(type, value)]; a length running past the end is a ValueError.
    A zero length ends the data early (Core Vol 3 Part C §11)."""
    out = []
    i = 0
    n = len(data)
    if n > ADV_DATA_MAX:
        raise ValueError("advertising data longer than 31 bytes")
    while i < n:
        ln = data[i]
        if ln == 0:
            break
        if i + 1 + ln > n:
            raise ValueError("AD structure runs past the data")
        out.append((data[i + 1], bytes(data[i + 2:i + 1 + ln])))
        i += 1 + ln
    return out


def _check_uuid_oob(uuid, oob_info):
    if len(uuid) != _UUID_LEN:
        raise ValueError("Device UUID must be 16 bytes")
    if not 0 <= oob_info <= 0xFFFF:
        raise ValueError("OOB Information is 16 bits")


def encode_uri(uri):
    """URI data as the URI AD type carries it: scheme code (UTF-8 code point) + the rest of the URI."""
    if not isinstance(uri, str) or not uri:
        raise ValueError("URI must be a non-empty str")
    best = None
    for scheme in URI_SCHEMES:
        if uri.startswith(scheme) and (best is None or len(scheme) > len(best)):
            best = scheme
    if best is None:
        return bytes((_SCHEME_EMPTY,)) + uri.encode()
    return chr(URI_SCHEMES[best]).encode() + uri[len(best):].encode()


def decode_uri(data):
    """Inverse of encode_uri. A scheme code outside URI_SCHEMES, or bad UTF-8, is a ValueError."""
    if not data:
        raise ValueError("empty URI data")
    b0 = data[0]
    if b0 < 0x80:
        code, n = b0, 1
    elif 0xC2 <= b0 <= 0xDF and len(data) > 1 and 0x80 <= data[1] <= 0xBF:
        code, n = ((b0 & 0x1F) << 6) | (data[1] & 0x3F), 2
    else:
        raise ValueError("bad URI scheme code")
    try:
        rest = bytes(data[n:]).decode()
    except UnicodeError:
        raise ValueError("URI is not UTF-8")
    if code == _SCHEME_EMPTY:
        return rest
    for scheme in URI_SCHEMES:
        if URI_SCHEMES[scheme] == code:
            return scheme + rest
    raise ValueError("unknown URI scheme code")


def uri_hash(uri):
    """URI Hash (§3.10.2): the first 4 octets of s1(URI data)."""
    from mesh.crypto import s1  # here, not at the top: only a lock with a URI needs the crypto module loaded

    return s1(encode_uri(uri))[:_URI_HASH_LEN]


def uri_advert(uri):
    """The URI AD structure (type 0x24) the URI Hash in the beacon refers to."""
    return ad(_AD_URI, encode_uri(uri))


def unprovisioned_beacon(uuid, oob_info, uri=None):
    """[len][0x2B][0x00][Device UUID 16][OOB Information 2, big-endian][URI Hash 4 if uri] (§3.10.2)."""
    _check_uuid_oob(uuid, oob_info)
    body = bytes((_BEACON_UNPROVISIONED,)) + bytes(uuid) + oob_info.to_bytes(2, "big")
    if uri is not None:
        body += uri_hash(uri)
    return ad(AD_MESH_BEACON, body)


def parse_unprovisioned_beacon(data):
    """Whole AD structure -> (uuid, oob_info, uri_hash or None); anything else is a ValueError."""
    if len(data) < 2 or data[0] + 1 != len(data) or data[1] != AD_MESH_BEACON:
        raise ValueError("not a Mesh Beacon AD structure")
    body = data[2:]
    if len(body) not in (19, 23) or body[0] != _BEACON_UNPROVISIONED:
        raise ValueError("not an Unprovisioned Device beacon")
    return bytes(body[1:17]), int.from_bytes(body[17:19], "big"), (bytes(body[19:]) if len(body) == 23 else None)


def parse_uri_advert(data):
    """Whole URI AD structure -> URI str."""
    if len(data) < 3 or data[0] + 1 != len(data) or data[1] != _AD_URI:
        raise ValueError("not a URI AD structure")
    return decode_uri(data[2:])


# PB-GATT advertising (§7.1.2.2.1). BYTE ORDER: the OOB Information in the Service Data is written little-endian,
# as the specification's sample data (§8.5.1: OOB 0x4020 on air as 20 40), ESP-IDF (proxy_server.c) and the
# nRF Mesh provisioner apps do; Zephyr (pb_gatt_srv.c) writes it big-endian. The beacon (§3.10.2) stays
# big-endian. Recorded in docs/advertising.md.
def pb_gatt_service_data(uuid, oob_info):
    """The Service Data AD structure alone: [0x15][0x16][27 18][Device UUID][OOB Information LE]."""
    _check_uuid_oob(uuid, oob_info)
    value = _MESH_PROVISIONING_SERVICE.to_bytes(2, "little") + bytes(uuid) + oob_info.to_bytes(2, "little")
    return ad(AD_SERVICE_DATA16, value)


def pb_gatt_adv(uuid, oob_info):
    """Connectable advertising data: Flags, Complete List of 16-bit UUIDs (0x1827), Service Data. 29 bytes."""
    return (ad(AD_FLAGS, bytes((_FLAGS_GENERAL_NO_BREDR,)))
            + ad(_AD_UUID16_COMPLETE, _MESH_PROVISIONING_SERVICE.to_bytes(2, "little"))
            + pb_gatt_service_data(uuid, oob_info))


def parse_pb_gatt_adv(data):
    """Advertising data -> (uuid, oob_info) from the Mesh Provisioning Service data; ValueError if absent/bad."""
    svc = _MESH_PROVISIONING_SERVICE.to_bytes(2, "little")
    for t, v in ad_structures(data):
        if t == AD_SERVICE_DATA16 and v[:2] == svc:
            if len(v) != 20:
                raise ValueError("bad Mesh Provisioning Service data length")
            return v[2:18], int.from_bytes(v[18:20], "little")
    raise ValueError("no Mesh Provisioning Service data")


def pb_adv_ad(pb_adv_pdu):
    """Wrap one PB-ADV PDU (LinkID|TransNum|Generic Provisioning PDU) in its AD structure (§5.2.1)."""
    if not pb_adv_pdu:
        raise ValueError("empty PB-ADV PDU")
    return ad(AD_PB_ADV, pb_adv_pdu)
