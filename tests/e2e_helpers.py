"""Shared pieces of the end-to-end tests: real `micropython firmware/main.py` locks on the air hub (tools/air.py),
provisioned by tools/provision.py. The processes are tools/demo.py's Corridor and SimLock (the demo, the tests
and tools/bench_e2e.py start them the same way); here: what the tests add on top.

    python tests/e2e_helpers.py SPY.jsonl tools/provision.py provision ...

runs the host provisioner with every attempt's secrets (its private key, the ECDH secret, ConfirmationKey,
AuthValue, session key and nonce, DevKey) appended to SPY.jsonl, for the no-secrets test. Nothing else changes.
"""

import json
import pathlib
import runpy
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import air_client  # noqa: E402, F401  (re-exported for the tests, as the next line)
from demo import Corridor, SimLock, heard, precompile, results, sniff  # noqa: E402, F401

WINDOW = 8  # bytes: a leak of any 8 consecutive bytes of a secret counts, not only the whole value


def stored(lock):
    """(key store record or None, factory data) from a lock's flash file, read with lib/ under CPython."""
    for p in (ROOT / "tools" / "host", ROOT / "lib"):
        if str(p) not in sys.path:
            sys.path.insert(0, str(p))
    import esp32  # the host stand-in (CPython runs it too)
    from mesh import factory, keystore, log

    sink, log.sink = log.sink, lambda line: None
    try:
        esp32.use_flash(str(lock.nvs))
        return keystore.KeyStore(esp32.NVS("mesh")).load(), factory.load(esp32.NVS(factory.NAMESPACE))
    finally:
        log.sink = sink
        esp32.use_flash(None)


def lock_secrets(lock):
    """{label: hex} of every secret a lock holds: keys stored and derived (NetKey, DevKey, NID/EncryptionKey/
    PrivacyKey, IdentityKey, BeaconKey, hotel keys) and its factory data (rolling-UUID secret, static OOB,
    OOB private key)."""
    from mesh import keystore

    record, fd = stored(lock)
    out = {}
    for i, h in enumerate(keystore.secrets_hex(record) if record else []):
        out[f"lock {lock.id} key {i}"] = h
    for i, h in enumerate(fd.secrets_hex()):
        out[f"lock {lock.id} factory {i}"] = h
    return out


def spied(path):
    """{label: hex} from a spy file: the provisioner's secrets, attempt by attempt."""
    out = {}
    if pathlib.Path(path).exists():
        for n, line in enumerate(pathlib.Path(path).read_text().splitlines()):
            for k, v in json.loads(line).items():
                out[f"attempt {n} {k}"] = v
    return out


def _windows(h):
    raw = bytes.fromhex(h)
    yield h
    for i in range(0, len(raw) - WINDOW + 1):
        w = raw[i:i + WINDOW]
        if len(set(w)) >= 4:  # a run of zeros (a padded AuthValue of 3 blinks) carries nothing
            yield w.hex()


def leaks(texts, secrets):
    """[(secret label, text name)] for every secret whose hex (or 8 bytes of it), lower or upper case, occurs in
    one of `texts` ({name: str})."""
    found = []
    for label, h in secrets.items():
        pieces = {p for w in _windows(h.lower()) for p in (w, w.upper())}
        for name, text in texts.items():
            if any(p in text for p in pieces):
                found.append((label, name))
    return found


def _spy(out_path):
    """Record each attempt's secrets as the provisioner derives them (hostprov.protocol.Provisioner)."""
    from hostprov import protocol as proto

    on_random = proto.Provisioner._on_random

    def spy(self, params):
        secret, salt, ours, conf_key, auth = self._secret, self._salt, self._random, self._conf_key, self._auth
        on_random(self, params)
        if self.state != "data":
            return
        prov_salt = proto.s1(salt + ours + params)  # §5.4.2.5
        rec = {"private_key": self._priv.private_numbers().private_value.to_bytes(32, "big"),
               "ecdh_secret": secret, "confirmation_key": conf_key, "auth_value": auth,
               "session_key": proto.k1(secret, prov_salt, b"prsk"),
               "session_nonce": proto.k1(secret, prov_salt, b"prsn")[3:], "dev_key": self.dev_key}
        with open(out_path, "a") as f:
            f.write(json.dumps({k: bytes(v).hex() for k, v in rec.items()}) + "\n")

    proto.Provisioner._on_random = spy


if __name__ == "__main__":
    out, script = sys.argv[1], sys.argv[2]
    sys.argv = sys.argv[2:]
    _spy(out)
    runpy.run_path(script, run_name="__main__")
