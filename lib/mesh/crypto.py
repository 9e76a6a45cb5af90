# Mesh security toolbox (Mesh Protocol v1.1 §3.9.2) and the provisioning crypto (§5.4.2.2-5.4.2.5).
# Everything is bytes in, bytes out, big-endian as printed in the specification.
# Built only on what stock ESP32 MicroPython has: cryptolib.aes in ECB mode (1) and hashlib.sha256.
# CCM is therefore assembled here from ECB (there is no CTR mode on the ESP32).
import hashlib

try:
    from cryptolib import aes as _aes
except ImportError:  # CPython (host tools, tests): same interface over pyca/cryptography
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    class _aes:
        def __init__(self, key, mode):
            self.encrypt = Cipher(algorithms.AES(bytes(key)), modes.ECB()).encryptor().update  # takes any buffer

from mesh.p256 import (  # noqa: F401 - re-exported: crypto is the one import for callers
    p256_ecdh,
    p256_ecdh_steps,
    p256_keypair,
    p256_keypair_steps,
    p256_public_key,
    run_steps,
)

_ECB = 1
_ZERO16 = bytes(16)
_ZERO32 = bytes(32)
_MASK128 = (1 << 128) - 1


def _xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def _dbl(b):
    # Doubling in GF(2^128) for the CMAC subkeys (RFC 4493 §2.3): shift left, fold in Rb = 0x87.
    n = int.from_bytes(b, "big")
    n = (n << 1 & _MASK128) ^ (0x87 if n >> 127 else 0)
    return n.to_bytes(16, "big")


def aes_cmac(key, msg):
    """AES-CMAC (RFC 4493), the primitive under s1/k1-k4 and the CMAC provisioning algorithm (§3.9.2)."""
    e = _aes(key, _ECB).encrypt
    k1 = _dbl(e(_ZERO16))
    n = len(msg)
    if n and n % 16 == 0:
        last = _xor(msg[n - 16:], k1)
        full = n - 16
    else:
        full = n - n % 16
        tail = msg[full:] + b"\x80" + bytes(15 - n % 16)
        last = _xor(tail, _dbl(k1))
    x = _ZERO16
    for i in range(0, full, 16):
        x = e(_xor(x, msg[i:i + 16]))
    return e(_xor(x, last))


def s1(m):
    """s1 SALT generation (§3.9.2): AES-CMAC with a zero key."""
    return aes_cmac(_ZERO16, m)


def k1(n, salt, p):
    """Derivation function k1 (§3.9.2): T = CMAC_SALT(N); k1 = CMAC_T(P)."""
    return aes_cmac(aes_cmac(salt, n), p)


def k2(n, p):
    """Derivation function k2 (§3.9.2), network key material -> (NID, EncryptionKey, PrivacyKey)."""
    t = aes_cmac(s1(b"smk2"), n)
    t1 = aes_cmac(t, p + b"\x01")
    t2 = aes_cmac(t, t1 + p + b"\x02")
    t3 = aes_cmac(t, t2 + p + b"\x03")
    return t1[15] & 0x7F, t2, t3


def k3(n):
    """Derivation function k3 (§3.9.2), Network ID: the 64 least significant bits of CMAC_T("id64"||0x01)."""
    return aes_cmac(aes_cmac(s1(b"smk3"), n), b"id64\x01")[8:]


def k4(n):
    """Derivation function k4 (§3.9.2), AID: the 6 least significant bits of CMAC_T("id6"||0x01), as an int."""
    return aes_cmac(aes_cmac(s1(b"smk4"), n), b"id6\x01")[15] & 0x3F


def hmac_sha256(key, msg):
    """HMAC-SHA-256 (RFC 2104) on hashlib.sha256.

    Not micropython-lib's `hmac`: it is in neither the unix port nor the stock ESP32 firmware (one more
    package to install and freeze), and its digest() works on a copy() of the outer hash object, which
    ESP32 hashlib does not have (digest() also finalises there). Two fresh sha256 objects do the job.
    """
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key + bytes(64 - len(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    inner.update(msg)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    outer.update(inner.digest())
    return outer.digest()


def s2(m):
    """s2 SALT generation (§3.9.2, new in Mesh 1.1, for the HMAC-SHA256 provisioning algorithm): HMAC-SHA-256
    with a 32-octet zero key."""
    return hmac_sha256(_ZERO32, m)


def k5(n, salt, p):
    """Derivation function k5 (§3.9.2, Mesh 1.1): T = HMAC-SHA-256_SALT(N); k5 = HMAC-SHA-256_T(P).

    ConfirmationKey = k5(ECDHSecret || AuthValue, ConfirmationSalt, "prck256") (§5.4.2.4).
    """
    return hmac_sha256(hmac_sha256(salt, n), p)


# AES-CCM (RFC 3610, §3.9.2) with Mesh's fixed 13-octet nonce, so the length field L is 2 octets.
# CTR mode is built from single ECB block encryptions because the ESP32's cryptolib has no CTR.


def _ccm(key, nonce, data, mic_len, aad, encrypt):
    if len(nonce) != 13:
        raise ValueError("nonce must be 13 bytes")
    if mic_len != 4 and mic_len != 8:  # NetMIC/TransMIC sizes (§3.9.7); 8 for the provisioning data (§5.4.2.5)
        raise ValueError("mic_len must be 4 or 8")
    if not encrypt:
        if len(data) < mic_len:
            raise ValueError("too short")
        mic_in = data[len(data) - mic_len:]
        data = data[:len(data) - mic_len]
    n = len(data)
    if n > 0xFFFF or len(aad) > 0xFEFF:
        raise ValueError("too long")
    e = _aes(key, _ECB).encrypt
    ctr = bytearray(16)
    ctr[0] = 1  # flags: L - 1 = 1
    ctr[1:14] = nonce
    out = bytearray(n)
    for i in range(0, n, 16):
        c = (i >> 4) + 1
        ctr[14] = c >> 8
        ctr[15] = c & 0xFF
        s = e(ctr)
        for j in range(i, min(i + 16, n)):
            out[j] = data[j] ^ s[j - i]
    plain = data if encrypt else out
    # CBC-MAC over B0 || [len(aad) || aad || pad] || plaintext || pad
    b0 = bytearray(16)
    b0[0] = (0x40 if aad else 0) | ((mic_len - 2) // 2) << 3 | 1
    b0[1:14] = nonce
    b0[14] = n >> 8
    b0[15] = n & 0xFF
    x = e(b0)
    if aad:
        a = bytes((len(aad) >> 8, len(aad) & 0xFF)) + aad
        a += bytes(-len(a) % 16)
        for i in range(0, len(a), 16):
            x = e(_xor(x, a[i:i + 16]))
    for i in range(0, n, 16):
        blk = plain[i:i + 16]
        if len(blk) < 16:
            blk = bytes(blk) + bytes(16 - len(blk))
        x = e(_xor(x, blk))
    ctr[14] = ctr[15] = 0
    mic = _xor(x[:mic_len], e(ctr))
    if encrypt:
        return bytes(out) + mic
    diff = 0
    for a, b in zip(mic, mic_in):
        diff |= a ^ b  # compare in constant time
    if diff:
        raise ValueError("MIC mismatch")
    return bytes(out)


def aes_ccm_encrypt(key, nonce, plaintext, mic_len, aad=b""):
    """AES-CCM (§3.9.2): ciphertext || MIC (mic_len 4 or 8; aad only for virtual-address messages)."""
    return _ccm(key, nonce, plaintext, mic_len, aad, True)


def aes_ccm_decrypt(key, nonce, data, mic_len, aad=b""):
    """Inverse of aes_ccm_encrypt; raises ValueError when the MIC does not match (nothing is returned)."""
    return _ccm(key, nonce, data, mic_len, aad, False)
