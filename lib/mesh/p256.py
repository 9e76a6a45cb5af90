# NIST P-256 (secp256r1) for provisioning: key pairs and ECDH (Mesh Protocol v1.1 §5.4.2.3; FIPS 186-4 D.1.2.3).
# Pure Python on big ints, so it runs on stock ESP32 MicroPython, the unix port and CPython alike.
#
# Scalar multiplication is a generator (cooperative): every next() does a bounded slice of work (one window of
# the ladder, a few squarings of the inversion), so the firmware keeps serving the radio during the ~1 s an ESP32
# needs. The blocking functions just drive the generators to the end.
#
# Speed (see docs/performance.md): on MicroPython a big-int `%` costs about two multiplications, and a doubling
# done by calling a helper measured about twice as slow as the same code inline, so the hot loops are written
# out inline in the generators; the helpers below serve the rare paths and the table.
# - Jacobian coordinates, doubling with a = -3 (3M+5S, dbl-2001-b); one inversion at the end (Fermat, by an
#   addition chain whose runs of squarings are done by pow() in C; pow(x, -1, p) returns 0 on the ESP32 port).
# - Variable point (ECDH): a regular signed 4-bit window (64 digits, all odd and non-zero, from a table of
#   P, 3P, ..., 15P kept in Jacobian form with Z^2 and Z^3 cached).
# - Generator (key generation): a 4-tooth comb over a precomputed table of 15 affine points (64 doublings).
# The MESH_LOCK firmware has a C module, _mesh_p256 (boards/MESH_LOCK/cmodules: mbedTLS's P-256, which ESP-IDF
# already links for TLS), several times faster; the functions below use it when it is there, after the same
# key checks, as one slice. Stock firmware, the PyPI unix port and CPython run the Python code.
# Timing: ECDH runs the same sequence of field operations for every scalar, so every slice between two yields
# costs the same whatever the key (a window NAF would be ~10% faster, but its additions fall where the key's
# bits say, and with the cooperative form that pattern becomes visible as radio-response timing; a
# passive listener who learned the device's ephemeral key would decrypt the provisioning data). The comb does
# a dummy addition for an all-zero column; it only skips work while the top columns are all zero. Not constant
# time: the table index is key-dependent, and big-int arithmetic takes time that depends on the values.
import os

from mesh import const

try:
    import _mesh_p256 as _native  # ecdh(d32, q64) -> x32, public_key(d32) -> x32 || y32
except ImportError:
    _native = None

_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # group order (mesh.factory checks keys with it)
_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B

_WINDOWS = const(64)  # signed 4-bit digits of the ECDH scalar
_COMB_SPACING = const(64)  # comb teeth at bits 0, 64, 128, 192
_SQUARINGS_PER_STEP = const(16)  # inversion: squarings per next()

# Comb table: for b = 1..15, the affine point (sum of 2^(64 j) for each set bit j of b) * G, as X || Y.
# Computed on the host with pyca/cryptography; entry 1 is G itself. Decoded on first use. Kept as bytes, not hex
# text: the .mpy stores a bytes constant at half the size (960 bytes).
_COMB = (
    # b = 1: G
    b"\x6b\x17\xd1\xf2\xe1\x2c\x42\x47\xf8\xbc\xe6\xe5\x63\xa4\x40\xf2"
    b"\x77\x03\x7d\x81\x2d\xeb\x33\xa0\xf4\xa1\x39\x45\xd8\x98\xc2\x96"
    b"\x4f\xe3\x42\xe2\xfe\x1a\x7f\x9b\x8e\xe7\xeb\x4a\x7c\x0f\x9e\x16"
    b"\x2b\xce\x33\x57\x6b\x31\x5e\xce\xcb\xb6\x40\x68\x37\xbf\x51\xf5"
    # b = 2
    b"\x0f\xa8\x22\xbc\x28\x11\xaa\xa5\x84\x92\x59\x2e\x32\x6e\x25\xde"
    b"\x29\x49\x3b\xaa\xad\x65\x1f\x7e\x90\xe7\x5c\xb4\x8e\x14\xdb\x63"
    b"\xbf\xf4\x4a\xe8\xf5\xdb\xa8\x0d\x6f\x4a\xd4\xbc\xb3\xdf\x18\x8b"
    b"\x34\xb1\xa6\x50\x50\xfe\x82\xf5\xe4\x11\x24\x54\x5f\x46\x2e\xe7"
    # b = 3
    b"\x30\x0a\x4b\xbc\x89\xd6\x72\x6f\xb2\x57\xc0\xde\x95\xe0\x27\x89"
    b"\xe9\x6c\x98\xfd\x0d\x35\xf1\xfa\x93\x39\x1c\xe2\x09\x79\x92\xaf"
    b"\x72\xaa\xc7\xe0\xd0\x9b\x46\x44\x7f\x1d\xdb\x25\xff\x1e\x3c\x6f"
    b"\x5b\xb1\xee\xad\xa9\xd8\x06\xa5\xaa\x54\xa2\x91\xc0\x81\x27\xa0"
    # b = 4
    b"\x44\x7d\x73\x9b\xee\xdb\x5e\x67\xfb\x98\x2f\xd5\x88\xc6\x76\x6e"
    b"\xfc\x35\xff\x7d\xc2\x97\xea\xc3\x57\xc8\x4f\xc9\xd7\x89\xbd\x85"
    b"\x2d\x48\x25\xab\x83\x41\x31\xee\xe1\x2e\x9d\x95\x3a\x4a\xaf\xf7"
    b"\x3d\x34\x9b\x95\xa7\xfa\xe5\x00\x0c\x7e\x33\xc9\x72\xe2\x5b\x32"
    # b = 5
    b"\xef\x95\x19\x32\x8a\x9c\x72\xff\xdd\xc6\x06\x8b\xb9\x1d\xfc\x60"
    b"\xef\x7f\xbd\x2b\x1a\x0a\x11\xb7\x13\x94\x9c\x93\x2a\x1d\x36\x7f"
    b"\x61\x1e\x9f\xc3\x7d\xbb\x2c\x9b\xc1\xee\x98\x07\x02\x2c\x21\x9c"
    b"\x23\x18\x3b\x08\x95\xca\x17\x40\x19\x60\x35\xa7\x73\x76\xd8\xa8"
    # b = 6
    b"\x55\x06\x63\x79\x7b\x51\xf5\xd8\x7d\xea\x64\x82\xe1\x12\x38\xbf"
    b"\x29\x36\xdf\x5e\xc6\xc9\xbc\x36\xca\xe2\xb1\x92\x0b\x57\xf4\xbc"
    b"\x15\x71\x64\x84\x8a\xec\xb8\x51\x0a\xfa\x40\x01\x8d\x9d\x50\xe5"
    b"\x9f\xb3\xd5\x76\xdb\xde\xfb\xe1\x44\xff\xe2\x16\x34\x8a\x96\x4c"
    # b = 7
    b"\xeb\x5d\x77\x45\xb2\x11\x41\xea\xa2\xe8\xf4\x83\xf4\x3e\x43\x91"
    b"\x7c\xcd\x84\xe7\x0d\x71\x5f\x26\xe4\x8e\xca\xff\xfc\x5c\xde\x01"
    b"\xea\xfd\x72\xeb\xdb\xec\xc1\x7b\x09\x90\xe6\xa1\x58\x00\x6c\xee"
    b"\x85\xf2\x2c\xfe\x28\x44\xb6\x45\xca\xc9\x17\xe2\x73\x1a\x34\x79"
    # b = 8
    b"\xa6\xd3\x96\x77\xa7\x84\x92\x76\x27\x36\xff\x83\x44\x31\x5f\xc5"
    b"\x96\x43\x95\x91\xa3\xc6\xb9\x4a\x6c\xf2\x0f\xfb\x31\x37\x28\xbe"
    b"\x67\x4f\x84\x74\x9b\x0b\x88\x16\x66\xb8\xba\xbd\x2d\x27\xec\xdf"
    b"\x82\x4a\x92\x0c\x22\x84\x05\x9b\xf2\xba\xb8\x33\xc3\x57\xf5\xf4"
    # b = 9
    b"\x4e\x76\x9e\x76\x72\xc9\xdd\xad\x31\x85\x5f\x7d\xb8\xc7\xfe\xdb"
    b"\x74\xe0\x2f\x08\x02\x03\xa5\x6b\x2d\xf4\x8c\x04\x67\x7c\x8a\x3e"
    b"\x42\xb9\x90\x82\xde\x83\x06\x63\x1e\xc0\x05\x72\x06\x94\x72\x81"
    b"\xfb\x9a\xe1\x6f\x3b\x91\x22\xa5\xa4\xc3\x61\x65\xb8\x24\xbb\xb0"
    # b = 10
    b"\x78\x87\x8e\xf6\x1c\x6c\xe0\x4d\x7f\xdc\x1c\xa0\x08\xa1\xc4\x78"
    b"\xd1\xf8\x9e\x79\x9c\x0c\xe1\x31\x6e\xf9\x51\x50\xdd\xa8\x68\xb9"
    b"\xb6\xcb\x3f\x5d\x7b\x72\xc3\x21\xde\x53\x14\x2c\x12\x30\x9d\xef"
    b"\x6a\xce\x57\x0e\xbd\xe0\x8d\x4f\x9c\x62\xb9\x12\x1f\xe0\xd9\x76"
    # b = 11
    b"\x0c\x88\xbc\x4d\x71\x6b\x12\x87\x59\x5c\x52\x20\x81\x2f\xfc\xae"
    b"\x5b\x82\xdd\x5b\xd5\x4f\xb4\x96\x7f\x99\x1e\xd2\xc3\x1a\x35\x73"
    b"\xdd\x5d\xde\xa3\xf3\x90\x1d\xc6\x18\xd1\xb5\xb3\x9c\x04\xe6\xaa"
    b"\x7c\x81\x81\xf4\xdf\x25\x64\xf3\x3a\x57\xbf\x63\x5f\x48\xac\xa8"
    # b = 12
    b"\x68\xf3\x44\xaf\x6b\x31\x74\x66\xef\xe0\xa4\x23\x08\x3e\x49\xf3"
    b"\x43\xa0\xa2\x8c\x42\xba\x79\x2f\xe9\x6a\x79\xfb\x3e\x72\xad\x0c"
    b"\x31\xb9\xc4\x05\xf8\x54\x0a\x20\x60\x4e\xd9\x3c\x24\xd6\x7f\xf3"
    b"\x66\x8b\xfc\x22\x71\xf5\xc6\x26\xcd\xfe\x17\xdb\x3f\xb2\x4d\x4a"
    # b = 13
    b"\x40\x52\xbf\x4b\x6f\x46\x1d\xb9\x66\x3c\x62\xc3\xed\xba\xd7\xa0"
    b"\x0d\x1a\x10\x14\x4e\xc3\x9c\x28\xd3\x6b\x47\x89\xa2\x58\x2e\x7f"
    b"\xfe\xcf\x4d\x51\x90\xb0\xfc\x61\x86\x2b\xe6\xbd\x71\xd7\x0c\xc8"
    b"\xe7\x24\xf3\x39\x99\xbf\xcc\x5b\x23\x5a\x27\xc3\x18\x8d\x25\xeb"
    # b = 14
    b"\x1e\xdd\xba\xe2\xc8\x02\xe4\x1a\x12\x32\x02\xa8\xf6\x2b\xff\x7a"
    b"\xaf\xdf\x5c\xc0\x85\x26\xa7\xa4\x74\x34\x6c\x10\xa1\xd4\xcf\xac"
    b"\x43\x10\x4d\x86\x56\x0e\xbc\xfc\x0c\x45\xf4\x52\x73\xdb\x33\xa0"
    b"\x36\xe0\x6b\x7e\x4c\x70\x19\x17\x8f\xa0\xaf\x2d\xd6\x03\xf8\x44"
    # b = 15
    b"\xb4\x8e\x26\xb4\x84\xf7\xa2\x1c\x0a\x4a\x46\xfb\x6a\xaf\x36\x3a"
    b"\x66\xb0\xde\x32\x25\xc4\x74\x4b\x96\x15\xb5\x11\x0d\x1d\x78\xe5"
    b"\xfa\xc0\x15\x40\x4d\x4d\x3d\xab\x64\x13\x1b\xcd\xfe\xd6\xf6\x68"
    b"\xc0\x04\xe4\x04\x8b\x7b\x0f\x98\x06\xeb\xb0\xf6\x21\xa0\x1b\x2d"
)
_comb = None


def _comb_table():
    global _comb
    if _comb is None:
        xs, ys = [0], [0]
        for i in range(0, len(_COMB), 64):
            xs.append(int.from_bytes(_COMB[i:i + 32], "big"))
            ys.append(int.from_bytes(_COMB[i + 32:i + 64], "big"))
        _comb = (xs, ys)
    return _comb


def _double(x, y, z):
    # Jacobian doubling, a = -3. Only for the rare paths; the hot loops below carry inline copies.
    p = _P
    d = z * z % p
    g = y * y % p
    b = (x * g << 2) % p
    a = (x - d) * (x + d) * 3 % p
    x3 = (a * a - b - b) % p
    return x3, (a * (b - x3) - (g * g << 3)) % p, (y * z << 1) % p


def _add(x1, y1, z1, x2, y2, z2, zz2, zzz2):
    # Jacobian + Jacobian with the second point's Z^2, Z^3 cached (add-1998-cmo-2). Equal inputs fall back to
    # doubling; opposite inputs give the point at infinity (z = 0).
    p = _P
    zz = z1 * z1 % p
    u1 = x1 * zz2 % p
    s1 = y1 * zzz2 % p
    h = x2 * zz % p - u1
    r = y2 * (zz * z1 % p) % p - s1
    if h == 0:
        if r == 0:
            return _double(x1, y1, z1)
        return 0, 1, 0
    hh = h * h % p
    hhh = h * hh % p
    v = u1 * hh % p
    x3 = (r * r - hhh - v - v) % p
    return x3, (r * (v - x3) - s1 * hhh) % p, z1 * z2 % p * h % p


def _sqr_steps(r, n):
    # r^(2^n) mod p: runs of at most _SQUARINGS_PER_STEP squarings, each one pow() in C, a yield after each run.
    while n:
        k = n if n < _SQUARINGS_PER_STEP else _SQUARINGS_PER_STEP
        r = pow(r, 1 << k, _P)
        n -= k
        yield
    return r


def _inv_steps(z):
    # z^(p-2) mod p (Fermat): the usual P-256 addition chain, 255 squarings and 12 multiplications
    # (a plain pow(z, p - 2, p) does 127 more multiplications).
    p = _P
    x2 = z * z % p * z % p  # z^(2^2 - 1)
    x3 = x2 * x2 % p * z % p
    x6 = pow(x3, 1 << 3, p) * x3 % p
    x12 = pow(x6, 1 << 6, p) * x6 % p
    x15 = pow(x12, 1 << 3, p) * x3 % p
    yield
    x30 = (yield from _sqr_steps(x15, 15)) * x15 % p
    x32 = pow(x30, 1 << 2, p) * x2 % p
    r = (yield from _sqr_steps(x32, 32)) * z % p  # exponent so far: ffffffff 00000001
    r = (yield from _sqr_steps(r, 128)) * x32 % p  # 00000000 00000000 00000000 ffffffff
    r = (yield from _sqr_steps(r, 32)) * x32 % p  # ffffffff
    r = (yield from _sqr_steps(r, 30)) * x30 % p  # fffffffd: thirty ones,
    return pow(r, 1 << 2, p) * z % p  # then 01


def _to_affine_steps(x, y, z):
    zi = yield from _inv_steps(z)
    p = _P
    zi2 = zi * zi % p
    return x * zi2 % p, y * zi2 % p * zi % p


def _ecdh_ladder_steps(k, px, py):
    # k * (px, py) for 0 < k < n: regular signed window. Returns the affine (x, y).
    p = _P
    neg = not k & 1
    if neg:
        k = N - k  # the recoding needs an odd scalar; (n - k) P = -(k P), same x
    # Recode: k = sum(digit[i] * 16^i), every digit odd in [-15, 15], the top one in [1, 15] (so the ladder
    # starts from a table point, never from infinity, and the intermediate multiples stay in (0, n)).
    # digit[i] = (k_i mod 32) - 16 with k_(i+1) = (k_i - digit[i]) / 16 works out, on the nibbles n_i of the
    # odd k, to (n_i | 1) - 16 if n_(i+1) is even, else n_i | 1: small-int work only, without branches.
    kb = k.to_bytes(32, "big")
    digits = [0] * _WINDOWS
    hi = kb[31] >> 4
    digits[0] = (kb[31] & 15 | 1) - ((~hi & 1) << 4)
    for i in range(1, _WINDOWS - 1):
        lo = hi
        hi = kb[31 - ((i + 1) >> 1)] >> ((i + 1) & 1) * 4 & 15
        digits[i] = (lo | 1) - ((~hi & 1) << 4)
    digits[_WINDOWS - 1] = hi | 1
    yield
    # Table of (2j + 1) P for j = 0..7: X, Y, -Y, Z, Z^2, Z^3 (indexes j and j + 8 for the Y lists).
    tx = [px] * 8
    ty = [py] * 16
    tz = [1] * 8
    tzz = [1] * 8
    tzzz = [1] * 8
    ty[8] = p - py
    x2, y2, z2 = _double(px, py, 1)
    zz2 = z2 * z2 % p
    zzz2 = zz2 * z2 % p
    x, y, z = px, py, 1
    for j in range(1, 8):
        x, y, z = _add(x, y, z, x2, y2, z2, zz2, zzz2)
        zz = z * z % p
        tx[j], ty[j], ty[j + 8], tz[j], tzz[j], tzzz[j] = x, y, p - y, z, zz, zz * z % p
        yield
    j = digits[_WINDOWS - 1] >> 1
    x, y, z = tx[j], ty[j], tz[j]
    for i in range(_WINDOWS - 2, -1, -1):
        for n in range(4):
            if n == 2:
                yield  # two slices per window
            # Inline Jacobian doubling, a = -3 (as _double).
            d = z * z % p
            g = y * y % p
            b = (x * g << 2) % p
            a = (x - d) * (x + d) * 3 % p
            x3 = (a * a - b - b) % p
            z = (y * z << 1) % p
            y = (a * (b - x3) - (g * g << 3)) % p
            x = x3
        # Add digit * P without a branch on the digit: s = -1 for a negative digit, else 0.
        d = digits[i]
        s = d >> 5
        j = ((d ^ s) - s) >> 1
        # Inline Jacobian addition (as _add).
        zz = z * z % p
        u1 = x * tzz[j] % p
        s1 = y * tzzz[j] % p
        h = tx[j] * zz % p - u1
        r = ty[j | (s & 8)] * (zz * z % p) % p - s1
        if h == 0:  # only for k = n + 2 * digit[0], on the last addition: the points are equal
            x, y, z = _add(x, y, z, tx[j], ty[j | (s & 8)], tz[j], tzz[j], tzzz[j])
        else:
            hh = h * h % p
            hhh = h * hh % p
            v = u1 * hh % p
            x3 = (r * r - hhh - v - v) % p
            y = (r * (v - x3) - s1 * hhh) % p
            z = z * tz[j] % p * h % p
            x = x3
        yield
    x, y = yield from _to_affine_steps(x, y, z)
    return x, (p - y) % p if neg else y


def _comb_steps(k):
    # k * G for 0 < k < n with the 4-tooth comb: 63 doublings and up to 64 mixed additions.
    p = _P
    xs, ys = _comb_table()
    kb = k.to_bytes(32, "big")
    x, y, z = 0, 1, 0  # z == 0: the point at infinity
    for i in range(_COMB_SPACING - 1, -1, -1):
        if z:
            d = z * z % p
            g = y * y % p
            b = (x * g << 2) % p
            a = (x - d) * (x + d) * 3 % p
            x3 = (a * a - b - b) % p
            z = (y * z << 1) % p
            y = (a * (b - x3) - (g * g << 3)) % p
            x = x3
        # Column i: bits i, i + 64, i + 128, i + 192 of k.
        c = (kb[31 - (i >> 3)] >> (i & 7) & 1) | (kb[23 - (i >> 3)] >> (i & 7) & 1) << 1 | \
            (kb[15 - (i >> 3)] >> (i & 7) & 1) << 2 | (kb[7 - (i >> 3)] >> (i & 7) & 1) << 3
        if z == 0:  # still at infinity: only while the top columns are all zero
            if c:
                x, y, z = xs[c], ys[c], 1
        else:
            # Inline mixed addition (Jacobian + affine). An all-zero column adds G too and drops the result,
            # so that every column costs the same.
            cc = c or 1
            zz = z * z % p
            h = xs[cc] * zz % p - x
            r = ys[cc] * (zz * z % p) % p - y
            if h == 0:
                x3, y3, z3 = _add(x, y, z, xs[cc], ys[cc], 1, 1, 1)
            else:
                hh = h * h % p
                hhh = h * hh % p
                v = x * hh % p
                x3 = (r * r - hhh - v - v) % p
                y3 = (r * (v - x3) - y * hhh) % p
                z3 = z * h % p
            if c:
                x, y, z = x3, y3, z3
        yield
    if z == 0:
        raise ValueError("point at infinity")
    return (yield from _to_affine_steps(x, y, z))


def _scalar(private32):
    if len(private32) != 32:
        raise ValueError("private key must be 32 bytes")
    k = int.from_bytes(private32, "big")
    if not 0 < k < N:
        raise ValueError("private key out of range")
    return k


def _point(public64):
    # §5.4.2.3: the peer's key must be a point on the curve; coordinates >= p, and the all-zero encoding of the
    # point at infinity, are not (0, 0 is off the curve since b != 0).
    if len(public64) != 64:
        raise ValueError("public key must be 64 bytes")
    x = int.from_bytes(public64[:32], "big")
    y = int.from_bytes(public64[32:], "big")
    p = _P
    if x >= p or y >= p or (y * y - (x * x - 3) * x - _B) % p:
        raise ValueError("public key not on P-256")
    return x, y


def _public64(x, y):
    return x.to_bytes(32, "big") + y.to_bytes(32, "big")


def p256_ecdh_steps(private32, peer_public64):
    """Cooperative ECDH: a generator whose return value is the 32-byte shared X coordinate.

    A bad peer key (off the curve, a coordinate >= p, all zeros) or private key raises ValueError on the
    first next().
    """
    k = _scalar(private32)
    px, py = _point(peer_public64)
    if _native:
        yield
        return _native.ecdh(private32, peer_public64)
    x, _ = yield from _ecdh_ladder_steps(k, px, py)
    return x.to_bytes(32, "big")


def p256_keypair_steps(rand=os.urandom):
    """Cooperative key generation: a generator whose return value is (private32, public64)."""
    while True:
        d = bytes(rand(32))
        if len(d) != 32:
            raise ValueError("rand(32) must return 32 bytes")
        k = int.from_bytes(d, "big")
        if 0 < k <= N >> 1:  # rejection sampling: uniform in [1, n/2] (§5.4.3.1: "between 1 and r/2")
            break
    if _native:
        yield
        return d, _native.public_key(d)
    x, y = yield from _comb_steps(k)
    return d, _public64(x, y)


def implementation():
    """Which P-256 runs: "C module" (the MESH_LOCK image's _mesh_p256) or "Python"."""
    return "C module" if _native else "Python"


def run_steps(gen):
    """Drive a cooperative generator to the end and return its result (StopIteration.value)."""
    try:
        while True:
            next(gen)
    except StopIteration as e:
        return e.value


def p256_public_key(private32):
    """The 64-byte public key X||Y of a 32-byte private key."""
    k = _scalar(private32)  # one range check and message for both paths
    if _native:
        return _native.public_key(private32)
    return _public64(*run_steps(_comb_steps(k)))


def p256_ecdh(private32, peer_public64):
    """Blocking ECDH: the 32-byte shared X coordinate; ValueError for a bad peer or private key."""
    return run_steps(p256_ecdh_steps(private32, peer_public64))


def p256_keypair(rand=os.urandom):
    """A fresh key pair (private32, public64)."""
    return run_steps(p256_keypair_steps(rand))
