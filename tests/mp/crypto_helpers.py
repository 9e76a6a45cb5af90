# MicroPython-side helpers for tests/test_crypto_oracle.py (called through the `mpy` RPC fixture).
from mesh import crypto


def ecdh_first_step(private32, peer_public64):
    """Run only the first slice of the cooperative ECDH (where a bad peer key must already raise)."""
    next(crypto.p256_ecdh_steps(private32, peer_public64))
    return True


def count_steps(gen):
    """(result, number of yields) of a cooperative form."""
    n = 0
    try:
        while True:
            next(gen)
            n += 1
    except StopIteration as e:
        return e.value, n


def ecdh_by_steps(private32, peer_public64):
    return count_steps(crypto.p256_ecdh_steps(private32, peer_public64))


def use_native(on):
    """Make mesh.p256 use its C module (if this micropython has one) or its Python code; True if native is on."""
    from mesh import p256

    try:
        import _mesh_p256 as native
    except ImportError:
        native = None
    p256._native = native if on else None
    return p256._native is not None
