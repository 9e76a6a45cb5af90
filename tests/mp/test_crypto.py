# Mesh Protocol v1.1 §8.1, §8.2 and §8.17 sample data through mesh.crypto (MicroPython and CPython).
from crypto_helpers import count_steps, use_native
from mpunit import h, hx, raises, vectors

from mesh import crypto

P = vectors("provisioning.txt")


def v(key):
    return h(P[key])


def test_s1_sample():
    assert hx(crypto.s1(b"test")) == "b73cefbd641ef2ea598c2b6efb62f79c"
    assert hx(crypto.s1(b"smk2")) == "4f90480c1871bfbffd16971f4d8d10b1"
    assert hx(crypto.s1(b"smk3")) == "0036443503f195cc8a716e136291c302"
    assert hx(crypto.s1(b"smk4")) == "0e9ac1b7cefa66874c97ee54ac5f49be"
    assert hx(crypto.s1(b"nkik")) == "f8795a1aabf182e4f163d86e245e19f4"
    assert hx(crypto.s1(b"nkbk")) == "2c24619ab793c1233f6e226738393dec"


def test_k1_sample():
    n = h("3216d1509884b533248541792b877f98")
    salt = h("2ba14ffa0df84a2831938d57d276cab4")
    p = h("5a09d60797eeb4478aada59db3352a0d")
    assert hx(crypto.aes_cmac(salt, n)) == "c764bea25cf9738b08956ea3c712d5af"
    assert hx(crypto.k1(n, salt, p)) == "f6ed15a8934afbe7d83e8dcb57fcf5d7"
    assert crypto.s1(b"salt") == salt and crypto.s1(b"info") == p


def test_k2_samples():
    netkey = h("f7a2a44f8e8a8029064f173ddc1e2b00")
    nid, enc, priv = crypto.k2(netkey, b"\x00")
    assert (nid, hx(enc), hx(priv)) == (0x7F, "9f589181a0f50de73c8070c7a6d27f46", "4c715bd4a64b938f99b453351653124f")
    nid, enc, priv = crypto.k2(netkey, h("010203040506070809"))
    assert (nid, hx(enc), hx(priv)) == (0x73, "11efec0642774992510fb5929646df49", "d4d7cc0dfa772d836a8df9df5510d7a7")
    netkey = h("7dd7364cd842ad18c17c2b820c84c3d6")
    nid, enc, priv = crypto.k2(netkey, b"\x00")
    assert (nid, hx(enc), hx(priv)) == (0x68, "0953fa93e7caac9638f58820220a398e", "8b84eedec100067d670971dd2aa700cf")
    nid, enc, priv = crypto.k2(netkey, h("01120123450000072f"))
    assert (nid, hx(enc), hx(priv)) == (0x5E, "be635105434859f484fc798e043ce40e", "5d396d4b54d3cbafe943e051fe9a4eb8")
    nid, enc, priv = crypto.k2(netkey, b"\x02")
    assert (nid, hx(enc), hx(priv)) == (0x0D, "b47a02c6cc9b4ac4cb9b88e765c9ade4", "9bf7ab5a5ad415fbd77e07bb808f4865")


def test_k3_k4_samples():
    assert hx(crypto.k3(h("f7a2a44f8e8a8029064f173ddc1e2b00"))) == "ff046958233db014"
    assert hx(crypto.k3(h("7dd7364cd842ad18c17c2b820c84c3d6"))) == "3ecaff672f673370"
    assert crypto.k4(h("3216d1509884b533248541792b877f98")) == 0x38
    assert crypto.k4(h("63964771734fbd76e3b40519d1d94a48")) == 0x26


def test_identity_beacon_keys_and_secure_beacon_auth():
    netkey = h("7dd7364cd842ad18c17c2b820c84c3d6")
    id128 = b"id128\x01"
    assert hx(crypto.k1(netkey, crypto.s1(b"nkik"), id128)) == "84396c435ac48560b5965385253e210c"
    beacon_key = crypto.k1(netkey, crypto.s1(b"nkbk"), id128)
    assert hx(beacon_key) == "5423d967da639a99cb02231a83f7d254"
    assert hx(crypto.k1(h("3bbb6f1fbd53e157417f308ce7aec58f"), crypto.s1(b"nkpk"), id128)) == \
        "ca478cdac626b7a8522d7272dd124f26"
    # §8.4.3: the Secure Network beacon's authentication value is CMAC_BeaconKey(flags || NetworkID || IVIndex).
    auth = crypto.aes_cmac(beacon_key, h("003ecaff672f67337012345678"))
    assert hx(auth) == "8ea261582f364f6f3c74ef80336ca17e"


def test_ccm_network_message_sample():
    # §8.3.1 (Message #1): network-layer encryption of DST || TransportPDU with the 8.2.2 EncryptionKey, NetMIC 64 bits.
    key = h("0953fa93e7caac9638f58820220a398e")
    nonce = h("00800000011201000012345678")
    plain = h("fffd034b50057e400000010000")
    sealed = h("b5e5bfdacbaf6cb7fb6bff871f035444ce83a670df")
    assert crypto.aes_ccm_encrypt(key, nonce, plain, 8) == sealed
    assert crypto.aes_ccm_decrypt(key, nonce, sealed, 8) == plain
    raises(ValueError, crypto.aes_ccm_decrypt, key, nonce, sealed[:-1] + b"\x00", 8)


def check_session_and_data(v, ecdh, csalt):
    # §5.4.2.5, the same for both algorithms: ProvisioningSalt, SessionKey, SessionNonce, DevKey, and the
    # Provisioning Data sealed with AES-CCM and a 64-bit MIC. v(name) -> bytes from the sample file.
    psalt = crypto.s1(csalt + v("RandomProvisioner") + v("RandomDevice"))
    assert psalt == v("ProvisioningSalt")
    skey = crypto.k1(ecdh, psalt, b"prsk")
    assert skey == v("SessionKey")
    nonce = crypto.k1(ecdh, psalt, b"prsn")[3:]
    assert nonce == v("SessionNonce")
    assert crypto.k1(ecdh, psalt, b"prdk") == v("DevKey")
    sealed = v("EncryptedProvisioningData") + v("ProvisioningDataMIC")
    assert crypto.aes_ccm_encrypt(skey, nonce, v("ProvisioningData"), 8) == sealed
    assert crypto.aes_ccm_decrypt(skey, nonce, sealed, 8) == v("ProvisioningData")
    bad = bytearray(sealed)
    bad[0] ^= 1
    raises(ValueError, crypto.aes_ccm_decrypt, skey, nonce, bytes(bad), 8)


def test_provisioning_cmac_sample():
    ecdh = v("ECDHSecret")
    csalt = crypto.s1(v("ConfirmationInputs"))
    assert csalt == v("ConfirmationSalt")
    ckey = crypto.k1(ecdh, csalt, b"prck")
    assert ckey == v("ConfirmationKey")
    assert crypto.aes_cmac(ckey, v("ConfirmationProvisionerInput")) == v("ConfirmationProvisioner")
    assert crypto.aes_cmac(ckey, v("ConfirmationDeviceInput")) == v("ConfirmationDevice")
    check_session_and_data(v, ecdh, csalt)


def test_p256_sample_keys_and_ecdh():
    prov_pub = v("PublicKeyProvisionerX") + v("PublicKeyProvisionerY")
    dev_pub = v("PublicKeyDeviceX") + v("PublicKeyDeviceY")
    assert crypto.p256_public_key(v("PrivateKeyProvisioner")) == prov_pub
    assert crypto.p256_public_key(v("PrivateKeyDevice")) == dev_pub
    assert crypto.p256_ecdh(v("PrivateKeyDevice"), prov_pub) == v("ECDHSecret")
    assert crypto.p256_ecdh(v("PrivateKeyProvisioner"), dev_pub) == v("ECDHSecret")


def test_p256_cooperative_forms():
    # The Python code (the C module of the MESH_LOCK build, when this interpreter has it, is one slice).
    prov_pub = v("PublicKeyProvisionerX") + v("PublicKeyProvisionerY")
    dev_pub = v("PublicKeyDeviceX") + v("PublicKeyDeviceY")
    native = use_native(True)
    use_native(False)
    try:
        a, na = count_steps(crypto.p256_ecdh_steps(v("PrivateKeyDevice"), prov_pub))
        b, nb = count_steps(crypto.p256_ecdh_steps(v("PrivateKeyProvisioner"), dev_pub))
        assert a == b == v("ECDHSecret")
        assert na == nb >= 100  # many small slices, and as many for any key (the work does not follow the key)
        d = v("PrivateKeyDevice")
        (priv, pub), n = count_steps(crypto.p256_keypair_steps(lambda n: d[:n]))
        assert priv == d and pub == dev_pub
        assert n >= 64
    finally:
        use_native(native)


def test_p256_both_paths_on_sample_data():
    # Whichever paths this interpreter has (the C module only in a MESH_LOCK-style build) give §8.1's values,
    # and the C module's cooperative form is one slice after the same key checks.
    prov_pub = v("PublicKeyProvisionerX") + v("PublicKeyProvisionerY")
    dev_pub = v("PublicKeyDeviceX") + v("PublicKeyDeviceY")
    fixed = v("PrivateKeyProvisioner")
    native = use_native(True)
    try:
        for on in (False, True) if native else (False,):
            use_native(on)
            assert crypto.p256_public_key(v("PrivateKeyDevice")) == dev_pub
            assert crypto.p256_ecdh(v("PrivateKeyProvisioner"), dev_pub) == v("ECDHSecret")
            (priv, pub), n = count_steps(crypto.p256_keypair_steps(lambda n: fixed[:n]))
            assert priv == fixed and pub == prov_pub
            secret, n = count_steps(crypto.p256_ecdh_steps(v("PrivateKeyDevice"), prov_pub))
            assert secret == v("ECDHSecret") and (n == 1) == on
            raises(ValueError, next, crypto.p256_ecdh_steps(v("PrivateKeyDevice"), bytes(64)))
    finally:
        use_native(native)


def test_p256_keypair_rejects_out_of_range_randoms():
    # §5.4.3.1: "The private keys shall be between 1 and r/2" (r, the order of the curve's group)
    half = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551 >> 1
    draws = [b"\xff" * 32, bytes(32), (half + 1).to_bytes(32, "big"), v("PrivateKeyProvisioner")]
    priv, pub = crypto.p256_keypair(lambda n: draws.pop(0))
    assert draws == []
    assert crypto.p256_keypair(lambda n: half.to_bytes(32, "big"))[0] == half.to_bytes(32, "big")
    assert priv == v("PrivateKeyProvisioner")
    assert pub == v("PublicKeyProvisionerX") + v("PublicKeyProvisionerY")
    a_priv, a_pub = crypto.p256_keypair()
    b_priv, b_pub = crypto.p256_keypair()
    assert a_priv != b_priv
    assert crypto.p256_ecdh(a_priv, b_pub) == crypto.p256_ecdh(b_priv, a_pub)


def test_p256_rejects_bad_peer_keys():
    d = v("PrivateKeyDevice")
    x, y = v("PublicKeyProvisionerX"), v("PublicKeyProvisionerY")
    p = h("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff")
    bad_y = bytearray(y)
    bad_y[31] ^= 1
    for pub in (bytes(64), x + bytes(bad_y), p + y, x + p, b"\xff" * 64, x + y[:31]):
        raises(ValueError, crypto.p256_ecdh, d, pub)
        raises(ValueError, next, crypto.p256_ecdh_steps(d, pub))
    for priv in (bytes(32), b"\xff" * 32, d[:31]):
        raises(ValueError, crypto.p256_ecdh, priv, x + y)
        raises(ValueError, crypto.p256_public_key, priv)


def test_provisioning_hmac_sample():
    # §8.17.2: BTM_ECDH_P256_HMAC_SHA256_AES_CCM with a 32-octet static OOB AuthValue.
    q = vectors("provisioning_hmac.txt")

    def w(key):
        return h(q[key])

    ecdh = w("ECDHSecret")
    assert crypto.p256_ecdh(w("PrivateKeyDevice"), w("PublicKeyProvisionerX") + w("PublicKeyProvisionerY")) == ecdh
    inputs = w("ProvisioningInvite") + w("ProvisioningCapabilities") + w("ProvisioningStart") + \
        w("PublicKeyProvisionerX") + w("PublicKeyProvisionerY") + w("PublicKeyDeviceX") + w("PublicKeyDeviceY")
    assert inputs == w("ConfirmationInputs")
    csalt = crypto.s2(inputs)
    assert csalt == w("ConfirmationSalt")
    assert crypto.hmac_sha256(csalt, ecdh + w("AuthValue")) == w("K5_T_confirm")
    ckey = crypto.k5(ecdh + w("AuthValue"), csalt, b"prck256")
    assert ckey == w("ConfirmationKey")
    assert crypto.hmac_sha256(ckey, w("RandomProvisioner")) == w("ConfirmationProvisioner")
    assert crypto.hmac_sha256(ckey, w("RandomDevice")) == w("ConfirmationDevice")
    check_session_and_data(w, ecdh, csalt)


def test_hmac_sha256_rfc4231():
    # RFC 4231 test cases 1, 2 and 6 (a key longer than the 64-octet block is hashed first).
    assert hx(crypto.hmac_sha256(b"\x0b" * 20, b"Hi There")) == \
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    assert hx(crypto.hmac_sha256(b"Jefe", b"what do ya want for nothing?")) == \
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert hx(crypto.hmac_sha256(b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First")) == \
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
