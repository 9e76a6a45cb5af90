# MicroPython-side helpers for tests/test_crypto_oracle.py (called through the `mpy` RPC fixture).
from mesh import crypto


def ecdh_first_step(private32, peer_public64):
    """Run only the first slice of the cooperative ECDH (where a bad peer key must already raise)."""
    next(crypto.p256_ecdh_steps(private32, peer_public64))
    return True


def ecdh_by_steps(private32, peer_public64):
    """(shared X, number of yields) of the cooperative form."""
    gen = crypto.p256_ecdh_steps(private32, peer_public64)
    n = 0
    try:
        while True:
            next(gen)
            n += 1
    except StopIteration as e:
        return e.value, n
