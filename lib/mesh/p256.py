# NIST P-256 (secp256r1) ECDH for provisioning (Mesh Protocol v1.1 §5.4.2.3, FIPS 186-4 D.1.2.3).
# Pure Python on big ints so it runs on stock ESP32 MicroPython. Scalar multiplication is a generator
# (cooperative): each next() does a bounded slice of work, so the firmware keeps serving the radio
# during the ~1 s an ESP32 needs. Blocking wrappers drive the generator to the end.
import os

_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
_GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
_GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5

_BITS_PER_STEP = 4  # bit-steps of the ladder per next()


def _on_curve(x, y):
    return (y * y - (x * x * x - 3 * x + _B)) % _P == 0


def _dbl(x, y, z):
    # Jacobian doubling with a = -3 (dbl-2001-b); z == 0 stands for the point at infinity.
    p = _P
    if z == 0 or y == 0:
        return 0, 1, 0
    d = z * z % p
    g = y * y % p
    b = x * g % p
    a = 3 * (x - d) * (x + d) % p
    x3 = (a * a - 8 * b) % p
    z3 = ((y + z) * (y + z) - g - d) % p
    y3 = (a * (4 * b - x3) - 8 * g * g) % p
    return x3, y3, z3


def _madd(x1, y1, z1, x2, y2):
    # Jacobian + affine addition.
    p = _P
    if z1 == 0:
        return x2, y2, 1
    zz = z1 * z1 % p
    h = (x2 * zz - x1) % p
    r = (y2 * zz * z1 - y1) % p
    if h == 0:
        if r == 0:
            return _dbl(x1, y1, z1)
        return 0, 1, 0
    hh = h * h % p
    hhh = h * hh % p
    v = x1 * hh % p
    x3 = (r * r - hhh - 2 * v) % p
    y3 = (r * (v - x3) - y1 * hhh) % p
    return x3, y3, z1 * h % p


def _affine(x, y, z):
    if z == 0:
        raise ValueError("point at infinity")
    zi = pow(z, _P - 2, _P)  # Fermat: pow(z, -1, p) returns 0 on the ESP32 port
    zi2 = zi * zi % _P
    return x * zi2 % _P, y * zi2 * zi % _P


def _scalar(private32):
    if len(private32) != 32:
        raise ValueError("private key must be 32 bytes")
    k = int.from_bytes(private32, "big")
    if not 0 < k < _N:
        raise ValueError("private key out of range")
    return k


def _point(public64):
    if len(public64) != 64:
        raise ValueError("public key must be 64 bytes")
    x = int.from_bytes(public64[:32], "big")
    y = int.from_bytes(public64[32:], "big")
    if x >= _P or y >= _P or not _on_curve(x, y):
        raise ValueError("public key not on P-256")
    return x, y


def _mul_steps(k, px, py):
    # Left-to-right double-and-add; yields every _BITS_PER_STEP bits. Returns affine (x, y).
    x, y, z = 0, 1, 0
    i = 255
    n = 0
    while i >= 0:
        x, y, z = _dbl(x, y, z)
        if (k >> i) & 1:
            x, y, z = _madd(x, y, z, px, py)
        i -= 1
        n += 1
        if n % _BITS_PER_STEP == 0:
            yield
    return _affine(x, y, z)


def p256_ecdh_steps(private32, peer_public64):
    """Cooperative ECDH: a generator whose return value is the 32-byte shared X coordinate.

    Bad input (a peer point off the curve, a coordinate >= p, all zeros) raises ValueError on the first next().
    """
    k = _scalar(private32)
    px, py = _point(peer_public64)
    x, _ = yield from _mul_steps(k, px, py)
    return x.to_bytes(32, "big")


def p256_keypair_steps(rand=os.urandom):
    """Cooperative key generation: a generator whose return value is (private32, public64)."""
    while True:
        d = rand(32)
        k = int.from_bytes(d, "big")
        if 0 < k < _N:
            break
    x, y = yield from _mul_steps(k, _GX, _GY)
    return bytes(d), x.to_bytes(32, "big") + y.to_bytes(32, "big")


def run_steps(gen):
    """Drive a cooperative generator to the end and return its result."""
    try:
        while True:
            next(gen)
    except StopIteration as e:
        return e.value


def p256_public_key(private32):
    """The 64-byte public key X||Y of a 32-byte private key."""
    k = _scalar(private32)
    x, y = run_steps(_mul_steps(k, _GX, _GY))
    return x.to_bytes(32, "big") + y.to_bytes(32, "big")


def p256_ecdh(private32, peer_public64):
    """Blocking ECDH: 32-byte shared X coordinate; ValueError for a bad peer key."""
    return run_steps(p256_ecdh_steps(private32, peer_public64))


def p256_keypair(rand=os.urandom):
    """A fresh key pair (private32, public64)."""
    return run_steps(p256_keypair_steps(rand))
