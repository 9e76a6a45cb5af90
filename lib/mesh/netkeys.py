# Keys derived from a NetKey (Mesh Protocol v1.1 §3.9.6.3), computed at boot and kept in RAM only: the key store
# persists the NetKey and nothing derived from it.
from mesh.crypto import k1, k2, k3, s1

_ID128 = b"id128\x01"  # P for IdentityKey, BeaconKey and PrivateBeaconKey


class NetKeys:
    """nid (int, 7 bits), encryption_key, privacy_key: k2(NetKey, 0x00), the managed-flooding credentials;
    network_id: k3(NetKey); identity_key, beacon_key, private_beacon_key: k1(NetKey, s1("nkik"|"nkbk"|"nkpk"),
    "id128" || 0x01). NID and Network ID go on air; the rest are secrets and stay out of repr()."""

    def __init__(self, net_key):
        if len(net_key) != 16:
            raise ValueError("NetKey must be 16 bytes")
        self.nid, self.encryption_key, self.privacy_key = k2(net_key, b"\x00")
        self.network_id = k3(net_key)
        self.identity_key = k1(net_key, s1(b"nkik"), _ID128)
        self.beacon_key = k1(net_key, s1(b"nkbk"), _ID128)
        self.private_beacon_key = k1(net_key, s1(b"nkpk"), _ID128)

    def __repr__(self):
        return "<NetKeys NID 0x%02x>" % self.nid

    def secrets(self):
        return [self.encryption_key, self.privacy_key, self.identity_key, self.beacon_key, self.private_beacon_key]
