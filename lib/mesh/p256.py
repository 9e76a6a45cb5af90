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
# Timing: ECDH runs the same sequence of field operations for every scalar, so every slice between two yields
# costs the same whatever the key (a window NAF would be ~10% faster, but its additions fall where the key's
# bits say, and with the cooperative form that pattern becomes visible as radio-response timing; a
# passive listener who learned the device's ephemeral key would decrypt the provisioning data). The comb does
# a dummy addition for an all-zero column; it only skips work while the top columns are all zero. Not constant
# time: the table index is key-dependent, and big-int arithmetic takes time that depends on the values.
import binascii
import os

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B

_WINDOWS = const(64)  # signed 4-bit digits of the ECDH scalar
_COMB_SPACING = const(64)  # comb teeth at bits 0, 64, 128, 192
_SQUARINGS_PER_STEP = const(16)  # inversion: squarings per next()

# Comb table: for b = 1..15, the affine point (sum of 2^(64 j) for each set bit j of b) * G, as X || Y.
# Computed on the host with pyca/cryptography; entry 1 is G itself. Decoded on first use.
_COMB_HEX = (
    "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ece"
    "cbb6406837bf51f50fa822bc2811aaa58492592e326e25de29493baaad651f7e90e75cb48e14db63bff44ae8f5dba80d6f4ad4bcb3df188b"
    "34b1a65050fe82f5e41124545f462ee7300a4bbc89d6726fb257c0de95e02789e96c98fd0d35f1fa93391ce2097992af72aac7e0d09b4644"
    "7f1ddb25ff1e3c6f5bb1eeada9d806a5aa54a291c08127a0447d739beedb5e67fb982fd588c6766efc35ff7dc297eac357c84fc9d789bd85"
    "2d4825ab834131eee12e9d953a4aaff73d349b95a7fae5000c7e33c972e25b32ef9519328a9c72ffddc6068bb91dfc60ef7fbd2b1a0a11b7"
    "13949c932a1d367f611e9fc37dbb2c9bc1ee9807022c219c23183b0895ca1740196035a77376d8a8550663797b51f5d87dea6482e11238bf"
    "2936df5ec6c9bc36cae2b1920b57f4bc157164848aecb8510afa40018d9d50e59fb3d576dbdefbe144ffe216348a964ceb5d7745b21141ea"
    "a2e8f483f43e43917ccd84e70d715f26e48ecafffc5cde01eafd72ebdbecc17b0990e6a158006cee85f22cfe2844b645cac917e2731a3479"
    "a6d39677a78492762736ff8344315fc596439591a3c6b94a6cf20ffb313728be674f84749b0b881666b8babd2d27ecdf824a920c2284059b"
    "f2bab833c357f5f44e769e7672c9ddad31855f7db8c7fedb74e02f080203a56b2df48c04677c8a3e42b99082de8306631ec0057206947281"
    "fb9ae16f3b9122a5a4c36165b824bbb078878ef61c6ce04d7fdc1ca008a1c478d1f89e799c0ce1316ef95150dda868b9b6cb3f5d7b72c321"
    "de53142c12309def6ace570ebde08d4f9c62b9121fe0d9760c88bc4d716b1287595c5220812ffcae5b82dd5bd54fb4967f991ed2c31a3573"
    "dd5ddea3f3901dc618d1b5b39c04e6aa7c8181f4df2564f33a57bf635f48aca868f344af6b317466efe0a423083e49f343a0a28c42ba792f"
    "e96a79fb3e72ad0c31b9c405f8540a20604ed93c24d67ff3668bfc2271f5c626cdfe17db3fb24d4a4052bf4b6f461db9663c62c3edbad7a0"
    "0d1a10144ec39c28d36b4789a2582e7ffecf4d5190b0fc61862be6bd71d70cc8e724f33999bfcc5b235a27c3188d25eb1eddbae2c802e41a"
    "123202a8f62bff7aafdf5cc08526a7a474346c10a1d4cfac43104d86560ebcfc0c45f45273db33a036e06b7e4c7019178fa0af2dd603f844"
    "b48e26b484f7a21c0a4a46fb6aaf363a66b0de3225c4744b9615b5110d1d78e5fac015404d4d3dab64131bcdfed6f668c004e4048b7b0f98"
    "06ebb0f621a01b2d"
)
_comb = None


def _comb_table():
    global _comb
    if _comb is None:
        raw = binascii.unhexlify(_COMB_HEX)
        xs, ys = [0], [0]
        for i in range(0, len(raw), 64):
            xs.append(int.from_bytes(raw[i:i + 32], "big"))
            ys.append(int.from_bytes(raw[i + 32:i + 64], "big"))
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
        k = _N - k  # the recoding needs an odd scalar; (n - k) P = -(k P), same x
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
    if not 0 < k < _N:
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
    x, _ = yield from _ecdh_ladder_steps(k, px, py)
    return x.to_bytes(32, "big")


def p256_keypair_steps(rand=os.urandom):
    """Cooperative key generation: a generator whose return value is (private32, public64)."""
    while True:
        d = bytes(rand(32))
        if len(d) != 32:
            raise ValueError("rand(32) must return 32 bytes")
        k = int.from_bytes(d, "big")
        if 0 < k <= _N >> 1:  # rejection sampling: uniform in [1, n/2] (§5.4.3.1: "between 1 and r/2")
            break
    x, y = yield from _comb_steps(k)
    return d, _public64(x, y)


def run_steps(gen):
    """Drive a cooperative generator to the end and return its result (StopIteration.value)."""
    try:
        while True:
            next(gen)
    except StopIteration as e:
        return e.value


def p256_public_key(private32):
    """The 64-byte public key X||Y of a 32-byte private key."""
    return _public64(*run_steps(_comb_steps(_scalar(private32))))


def p256_ecdh(private32, peer_public64):
    """Blocking ECDH: the 32-byte shared X coordinate; ValueError for a bad peer or private key."""
    return run_steps(p256_ecdh_steps(private32, peer_public64))


def p256_keypair(rand=os.urandom):
    """A fresh key pair (private32, public64)."""
    return run_steps(p256_keypair_steps(rand))
