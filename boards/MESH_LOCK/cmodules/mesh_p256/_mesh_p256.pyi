# Type stub of the MESH_LOCK firmware's C module (mesh_p256.c), for `make typecheck` (pyproject's mypy_path).
# All buffers are big-endian bytes as in Mesh Protocol v1.1 §5.4.2.3.
# Both raise ValueError for a bad private key (not in [1, n-1]) or peer key (not a point on P-256).

def ecdh(private32: bytes, peer_public64: bytes) -> bytes: ...  # the shared X coordinate (32 bytes)
def public_key(private32: bytes) -> bytes: ...  # X || Y (64 bytes)
