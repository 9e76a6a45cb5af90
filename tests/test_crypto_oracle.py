"""mesh.crypto under MicroPython checked against pyca/cryptography (and hmac/hashlib) in CPython.

Every call goes through the `mpy` fixture, so the code under test is the code that runs on the board.
"""

import hashlib
import hmac
import random

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from cryptography.hazmat.primitives.cmac import CMAC
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpy import ROOT

P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
RNG = random.Random(0x5EED)  # reproducible inputs; hypothesis adds its own


def rnd(n):
    return bytes(RNG.getrandbits(8) for _ in range(n))


def cmac(key, msg):
    c = CMAC(algorithms.AES(key))
    c.update(msg)
    return c.finalize()


@pytest.fixture(params=["python", "native"])
def p256_path(request, mpy):
    """Run a P-256 test on mesh.p256's Python code, then on the MESH_LOCK build's C module (_mesh_p256), which
    only a micropython built with it has (`make check-cmodule`); the PyPI unix port skips that half."""
    native = request.param == "native"
    if mpy.call("crypto_helpers.use_native", native) != native:
        mpy.call("crypto_helpers.use_native", True)
        pytest.skip("this micropython has no _mesh_p256 (the MESH_LOCK C module): make check-cmodule MICROPY_DIR=...")
    yield request.param
    mpy.call("crypto_helpers.use_native", True)  # back to what the interpreter has


def pub_bytes(priv):
    n = priv.public_key().public_numbers()
    return n.x.to_bytes(32, "big") + n.y.to_bytes(32, "big")


def priv_bytes(priv):
    return priv.private_numbers().private_value.to_bytes(32, "big")


def load_pub(pub64):
    x, y = int.from_bytes(pub64[:32], "big"), int.from_bytes(pub64[32:], "big")
    return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()  # raises if off the curve


# ---- AES-CMAC, s1, k1 ------------------------------------------------------------------------------


def test_cmac_every_length_0_to_80(mpy):
    for n in range(81):
        key, msg = rnd(16), rnd(n)
        assert mpy.call("mesh.crypto.aes_cmac", key, msg) == cmac(key, msg), n


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.binary(min_size=16, max_size=16), msg=st.binary(max_size=200))
def test_cmac_property(mpy, key, msg):
    assert mpy.call("mesh.crypto.aes_cmac", key, msg) == cmac(key, msg)


def test_k1_and_s1_match_their_definitions(mpy):
    for n in (0, 16, 32, 145):
        nn, salt, p = rnd(n), rnd(16), rnd(n % 7 + 1)
        assert mpy.call("mesh.crypto.k1", nn, salt, p) == cmac(cmac(salt, nn), p)
        assert mpy.call("mesh.crypto.s1", nn) == cmac(bytes(16), nn)


# ---- HMAC-SHA256, s2, k5 ---------------------------------------------------------------------------


def test_hmac_sha256_key_and_message_lengths(mpy):
    for klen in (0, 1, 16, 32, 63, 64, 65, 100):
        for mlen in (0, 1, 55, 56, 64, 65, 145):
            key, msg = rnd(klen), rnd(mlen)
            want = hmac.new(key, msg, hashlib.sha256).digest()
            assert mpy.call("mesh.crypto.hmac_sha256", key, msg) == want, (klen, mlen)


def test_s2_and_k5_match_their_definitions(mpy):
    for n in (0, 32, 64, 145):
        m, salt, p = rnd(n), rnd(32), b"prck256"
        assert mpy.call("mesh.crypto.s2", m) == hmac.new(bytes(32), m, hashlib.sha256).digest()
        t = hmac.new(salt, m, hashlib.sha256).digest()
        assert mpy.call("mesh.crypto.k5", m, salt, p) == hmac.new(t, p, hashlib.sha256).digest()


# ---- AES-CCM ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mic_len", [4, 8])
def test_ccm_every_length_0_to_64_and_tampering(mpy, mic_len):
    for n in range(65):
        key, nonce, plain = rnd(16), rnd(13), rnd(n)
        want = AESCCM(key, tag_length=mic_len).encrypt(nonce, plain, None)
        sealed = mpy.call("mesh.crypto.aes_ccm_encrypt", key, nonce, plain, mic_len)
        assert sealed == want, n
        assert mpy.call("mesh.crypto.aes_ccm_decrypt", key, nonce, sealed, mic_len) == plain
        bad = bytearray(sealed)
        bad[RNG.randrange(len(bad))] ^= 1 << RNG.randrange(8)  # one flipped bit, in data or MIC
        with pytest.raises(ValueError):
            mpy.call("mesh.crypto.aes_ccm_decrypt", key, nonce, bytes(bad), mic_len)
        with pytest.raises(ValueError):  # the wrong nonce
            mpy.call("mesh.crypto.aes_ccm_decrypt", key, bytes(13), sealed, mic_len)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.binary(min_size=16, max_size=16), nonce=st.binary(min_size=13, max_size=13),
       plain=st.binary(max_size=100), aad=st.binary(max_size=40), mic_len=st.sampled_from([4, 8]))
def test_ccm_property_with_aad(mpy, key, nonce, plain, aad, mic_len):
    # Associated data is used by virtual-address access messages (Label UUID, §3.9.7.1).
    want = AESCCM(key, tag_length=mic_len).encrypt(nonce, plain, aad or None)
    assert mpy.call("mesh.crypto.aes_ccm_encrypt", key, nonce, plain, mic_len, aad) == want
    assert mpy.call("mesh.crypto.aes_ccm_decrypt", key, nonce, want, mic_len, aad) == plain


def test_ccm_rejects_bad_sizes(mpy):
    key = rnd(16)
    with pytest.raises(ValueError):
        mpy.call("mesh.crypto.aes_ccm_encrypt", key, rnd(12), b"x", 4)
    with pytest.raises(ValueError):
        mpy.call("mesh.crypto.aes_ccm_encrypt", key, rnd(13), b"x", 5)
    with pytest.raises(ValueError):  # shorter than the MIC
        mpy.call("mesh.crypto.aes_ccm_decrypt", key, rnd(13), b"abc", 4)


def test_ccm_decrypt_of_cryptography_output(mpy):
    for n in (1, 15, 16, 17, 33):
        key, nonce, plain = rnd(16), rnd(13), rnd(n)
        sealed = AESCCM(key, tag_length=8).encrypt(nonce, plain, None)
        assert mpy.call("mesh.crypto.aes_ccm_decrypt", key, nonce, sealed, 8) == plain
        with pytest.raises(InvalidTag):  # sanity of the oracle itself
            AESCCM(key, tag_length=8).decrypt(nonce, sealed[:-1] + bytes([sealed[-1] ^ 1]), None)


# ---- P-256 -----------------------------------------------------------------------------------------


def test_ecdh_random_key_pairs(mpy, p256_path):
    for _ in range(6):
        a, b = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        want = a.exchange(ec.ECDH(), b.public_key())
        assert mpy.call("mesh.crypto.p256_ecdh", priv_bytes(a), pub_bytes(b)) == want
        secret, yields = mpy.call("crypto_helpers.ecdh_by_steps", priv_bytes(b), pub_bytes(a))
        assert secret == want and (yields >= 50 if p256_path == "python" else yields == 1)
        assert mpy.call("mesh.crypto.p256_public_key", priv_bytes(a)) == pub_bytes(a)


def test_ecdh_edge_scalars(mpy, p256_path):
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    peer = ec.generate_private_key(ec.SECP256R1())
    for d in (1, 2, 3, 15, 16, 17, 31, 32, 33, 2**128 + 1, n - 2, n - 1, (1 << 255) - 1, 1 << 255):
        priv = ec.derive_private_key(d, ec.SECP256R1())
        want = priv.exchange(ec.ECDH(), peer.public_key())
        assert mpy.call("mesh.crypto.p256_ecdh", d.to_bytes(32, "big"), pub_bytes(peer)) == want, d
        assert mpy.call("mesh.crypto.p256_public_key", d.to_bytes(32, "big")) == pub_bytes(priv), d


def test_keypair_from_micropython_is_valid(mpy, p256_path):
    priv, pub = mpy.call("mesh.crypto.p256_keypair")
    key = ec.derive_private_key(int.from_bytes(priv, "big"), ec.SECP256R1())
    assert pub_bytes(key) == pub
    peer = ec.generate_private_key(ec.SECP256R1())
    assert peer.exchange(ec.ECDH(), load_pub(pub)) == mpy.call("mesh.crypto.p256_ecdh", priv, pub_bytes(peer))


def _small_x_point():
    # A curve point whose x is tiny, so x + p still fits in 32 bytes: the "coordinate >= p" alias of a
    # valid point, which a sloppy implementation would reduce mod p and accept.
    for x in range(1, 1000):
        rhs = (x * x * x - 3 * x + B) % P
        y = pow(rhs, (P + 1) // 4, P)  # p = 3 mod 4
        if y * y % P == rhs:
            return x, y
    raise AssertionError("no point")


def test_invalid_peer_public_keys_rejected(mpy, p256_path):
    d = priv_bytes(ec.generate_private_key(ec.SECP256R1()))
    good = pub_bytes(ec.generate_private_key(ec.SECP256R1()))
    x, y = int.from_bytes(good[:32], "big"), int.from_bytes(good[32:], "big")
    sx, sy = _small_x_point()
    be = lambda v: v.to_bytes(32, "big")  # noqa: E731
    bad = {
        "all zeros (point at infinity)": bytes(64),
        "off curve (y+1)": be(x) + be((y + 1) % P),
        "off curve (x+1)": be((x + 1) % P) + be(y),
        "x = p": be(P) + be(y),
        "y = p": be(x) + be(P),
        "x >= p aliasing a valid point": be(sx + P) + be(sy),
        "y >= p aliasing a valid point": be(sx) + be(sy + P) if sy + P < 1 << 256 else be(sx) + be(P + 1),
        "all ones": b"\xff" * 64,
        "x only": be(x),
        "65 bytes (uncompressed prefix)": b"\x04" + good,
    }
    assert mpy.call("mesh.crypto.p256_ecdh", d, be(sx) + be(sy))  # the alias base is valid
    for why, pub in bad.items():
        for fn in ("mesh.crypto.p256_ecdh", "crypto_helpers.ecdh_first_step"):
            try:
                mpy.call(fn, d, pub)
            except ValueError:
                continue
            pytest.fail("%s accepted: %s" % (fn, why))


def test_invalid_private_keys_rejected(mpy, p256_path):
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    good = pub_bytes(ec.generate_private_key(ec.SECP256R1()))
    for d in (bytes(32), n.to_bytes(32, "big"), (n + 1).to_bytes(32, "big"), b"\xff" * 32, b"\x01" * 31):
        with pytest.raises(ValueError):
            mpy.call("mesh.crypto.p256_ecdh", d, good)
        with pytest.raises(ValueError):
            mpy.call("mesh.crypto.p256_public_key", d)


# ---- the sample-data files themselves ------------------------------------------------------------


def _vectors(name):
    out = {}
    for line in (ROOT / "tests" / "vectors" / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = bytes.fromhex(v.strip())
    return out


def test_hmac_sample_file_recomputed_with_cryptography():
    # tests/vectors/provisioning_hmac.txt (§8.17.2) was transcribed; recompute every value independently.
    v = _vectors("provisioning_hmac.txt")
    prov = ec.derive_private_key(int.from_bytes(v["PrivateKeyProvisioner"], "big"), ec.SECP256R1())
    dev = ec.derive_private_key(int.from_bytes(v["PrivateKeyDevice"], "big"), ec.SECP256R1())
    assert pub_bytes(prov) == v["PublicKeyProvisionerX"] + v["PublicKeyProvisionerY"]
    assert pub_bytes(dev) == v["PublicKeyDeviceX"] + v["PublicKeyDeviceY"]
    ecdh = dev.exchange(ec.ECDH(), prov.public_key())
    assert ecdh == v["ECDHSecret"] == prov.exchange(ec.ECDH(), dev.public_key())
    inputs = v["ProvisioningInvite"] + v["ProvisioningCapabilities"] + v["ProvisioningStart"] + pub_bytes(prov) + \
        pub_bytes(dev)
    assert inputs == v["ConfirmationInputs"] and len(inputs) == 145

    def hm(k, m):
        return hmac.new(k, m, hashlib.sha256).digest()

    csalt = hm(bytes(32), inputs)
    assert csalt == v["ConfirmationSalt"]
    assert v["K5_N_confirm"] == ecdh + v["AuthValue"] and v["K5_P_confirm"] == b"prck256"
    t = hm(csalt, ecdh + v["AuthValue"])
    assert t == v["K5_T_confirm"]
    ckey = hm(t, b"prck256")
    assert ckey == v["ConfirmationKey"]
    assert hm(ckey, v["RandomProvisioner"]) == v["ConfirmationProvisioner"]
    assert hm(ckey, v["RandomDevice"]) == v["ConfirmationDevice"]
    assert v["ProvisioningSaltInput"] == csalt + v["RandomProvisioner"] + v["RandomDevice"]
    psalt = cmac(bytes(16), v["ProvisioningSaltInput"])
    assert psalt == v["ProvisioningSalt"]
    assert cmac(psalt, ecdh) == v["K1_T_prov"]
    skey = cmac(cmac(psalt, ecdh), b"prsk")
    assert skey == v["SessionKey"]
    nonce_full = cmac(cmac(psalt, ecdh), b"prsn")
    assert nonce_full == v["SessionNonceFull"] and nonce_full[3:] == v["SessionNonce"]
    assert cmac(cmac(psalt, ecdh), b"prdk") == v["DevKey"]
    data = v["NetworkKey"] + v["NetKeyIndex"] + v["Flags"] + v["IVIndex"] + v["UnicastAddress"]
    assert data == v["ProvisioningData"]
    sealed = AESCCM(skey, tag_length=8).encrypt(v["SessionNonce"], data, None)
    assert sealed == v["EncryptedProvisioningData"] + v["ProvisioningDataMIC"]


def test_urandom_is_the_default_randomness(mpy):
    a = mpy.call("mesh.crypto.p256_keypair")
    b = mpy.call("mesh.crypto.p256_keypair")
    assert a[0] != b[0] and a[1] != b[1]
