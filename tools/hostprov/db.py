"""The host provisioner's database: one SQLite file (standard library) per mesh network.

What it keeps: the network (mesh UUID and name, NetKey and its index, IV Index and flags, the provisioner's own
UUID, address and DevKey, the hotel master key MHKey) and per provisioned lock its UUID at provisioning time,
room and floor, unicast address, element count, DevKey and hotel keys, bearer, method and security.

Key material is sealed at rest: AES-256-GCM (pyca/cryptography) under a key derived from a passphrase with
scrypt (N=2^17, r=8, p=1 by default; the parameters and the salt are stored in the file). Each sealed value is
nonce(12) | ciphertext | tag(16), with "table:column:row" as associated data, so a ciphertext cannot be moved
to another row. A known plaintext sealed at creation tells a wrong passphrase apart (WrongPassphrase) before
anything is read. The file is created owner-only (0600); SQLite gives its journal the same mode.

Addresses (§3.4.2.2): a lock with N elements takes N consecutive unicast addresses, first fit inside the
provisioner's allocated range. A lock that is provisioned again gets a fresh range; its old addresses go to the
network exclusion list (Mesh Configuration Database §2.1.6) and are not reused until the IV Index has moved on by
two, because other nodes' replay protection still remembers them.
"""

import datetime
import os
import sqlite3
import stat
import uuid as uuidlib

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

KDF_N, KDF_R, KDF_P = 2**17, 8, 1  # scrypt cost, as OWASP recommends for interactive use
_SALT_LEN, _NONCE_LEN = 16, 12
_VERIFIER = b"hostprov database v1"
UNICAST_RANGE = (0x0001, 0x3FFF)  # ours; the rest of 0x0001..0x7FFF is left for a phone that imports the CDB
PROVISIONER_ADDRESS = 0x0001
EXCLUSION_IV_STEPS = 2  # an excluded address is free again once the IV Index has advanced by 2

_SCHEMA = """
CREATE TABLE kdf (id INTEGER PRIMARY KEY CHECK (id = 1), salt BLOB NOT NULL, n INTEGER NOT NULL,
                  r INTEGER NOT NULL, p INTEGER NOT NULL, verifier BLOB NOT NULL);
CREATE TABLE network (id INTEGER PRIMARY KEY CHECK (id = 1), mesh_uuid TEXT NOT NULL, mesh_name TEXT NOT NULL,
                      net_key BLOB NOT NULL, net_key_index INTEGER NOT NULL, iv_index INTEGER NOT NULL,
                      flags INTEGER NOT NULL, provisioner_uuid TEXT NOT NULL, provisioner_address INTEGER NOT NULL,
                      provisioner_dev_key BLOB NOT NULL, mh_key BLOB, created TEXT NOT NULL);
CREATE TABLE nodes (lock_id TEXT PRIMARY KEY, uuid TEXT NOT NULL, room INTEGER, floor INTEGER,
                    address INTEGER NOT NULL UNIQUE, elements INTEGER NOT NULL, dev_key BLOB NOT NULL,
                    hotel_keys BLOB, bearer TEXT, method TEXT, secure INTEGER NOT NULL, provisioned_at TEXT NOT NULL);
CREATE TABLE exclusions (address INTEGER NOT NULL, iv_index INTEGER NOT NULL);
"""


class WrongPassphrase(ValueError):
    """The passphrase does not open this database."""


def _now():
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()


def _where(column, lock_id):
    return f"nodes:{column}:{lock_id}"


def _derive(passphrase, salt, n, r, p):
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


class ProvDB:
    """Use `ProvDB.create(...)` for a new network, `ProvDB.open(path, passphrase)` afterwards."""

    def __init__(self, path, conn, key, rand):
        self.path, self._db, self._aead, self._rand = path, conn, AESGCM(key), rand

    def __repr__(self):
        return f"<ProvDB {self.path}>"  # never the key

    # --- opening ---------------------------------------------------------------------------------------
    @classmethod
    def create(cls, path, passphrase, *, mesh_name="Hotel", net_key=None, net_key_index=0, iv_index=0, flags=0,
               mh_key=None, kdf_n=KDF_N, rand=os.urandom):
        """A new database file (FileExistsError if there is one). Missing keys are drawn from `rand`."""
        if (net_key is not None and len(net_key) != 16 or mh_key is not None and len(mh_key) != 4
                or not 0 <= net_key_index <= 0xFFF or not 0 <= iv_index <= 0xFFFFFFFF or flags & ~0x03):
            raise ValueError("NetKey 16 bytes, MHKey 4, NetKey Index <= 0xFFF, IV Index 32 bits, flags bits 0-1")
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)  # owner-only before anything is written
        os.close(fd)
        try:
            salt = rand(_SALT_LEN)
            conn = sqlite3.connect(path)
            self = cls(path, conn, _derive(passphrase, salt, kdf_n, KDF_R, KDF_P), rand)
            with conn:
                conn.executescript(_SCHEMA)
                conn.execute("INSERT INTO kdf VALUES (1, ?, ?, ?, ?, ?)",
                             (salt, kdf_n, KDF_R, KDF_P, self._seal(_VERIFIER, "kdf:verifier:1")))
                conn.execute(
                    "INSERT INTO network VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (str(uuidlib.UUID(bytes=rand(16), version=4)), mesh_name,
                     self._seal(net_key or rand(16), "network:net_key:1"), net_key_index, iv_index, flags,
                     str(uuidlib.UUID(bytes=rand(16), version=4)), PROVISIONER_ADDRESS,
                     self._seal(rand(16), "network:provisioner_dev_key:1"),
                     self._seal(mh_key, "network:mh_key:1") if mh_key else None, _now()))
            return self
        except BaseException:
            os.unlink(path)
            raise

    @classmethod
    def open(cls, path, passphrase, rand=os.urandom):
        if not os.path.exists(path):
            raise FileNotFoundError(path)
        if os.stat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            os.chmod(path, 0o600)  # someone widened it: key material stays owner-only
        conn = sqlite3.connect(path)
        try:
            salt, n, r, p, verifier = conn.execute("SELECT salt, n, r, p, verifier FROM kdf").fetchone()
        except sqlite3.DatabaseError as e:
            conn.close()
            raise ValueError(f"{path} is not a provisioning database ({e})") from None
        self = cls(path, conn, _derive(passphrase, salt, n, r, p), rand)
        try:
            if self._open(verifier, "kdf:verifier:1") != _VERIFIER:
                raise ValueError
        except ValueError:
            conn.close()
            raise WrongPassphrase(f"wrong passphrase for {path}: its keys cannot be decrypted") from None
        return self

    def close(self):
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- sealing ---------------------------------------------------------------------------------------
    def _seal(self, plaintext, where):
        nonce = self._rand(_NONCE_LEN)
        return nonce + self._aead.encrypt(nonce, bytes(plaintext), where.encode())

    def _open(self, blob, where):
        try:
            return self._aead.decrypt(blob[:_NONCE_LEN], blob[_NONCE_LEN:], where.encode())
        except InvalidTag:
            raise ValueError(f"{where}: sealed value does not authenticate (tampered or moved)") from None

    # --- network ---------------------------------------------------------------------------------------
    def network(self):
        row = self._db.execute(
            "SELECT mesh_uuid, mesh_name, net_key, net_key_index, iv_index, flags, provisioner_uuid,"
            " provisioner_address, provisioner_dev_key, mh_key, created FROM network").fetchone()
        net = dict(zip(("mesh_uuid", "mesh_name", "net_key", "net_key_index", "iv_index", "flags",
                        "provisioner_uuid", "provisioner_address", "provisioner_dev_key", "mh_key", "created"), row))
        for k in ("net_key", "provisioner_dev_key", "mh_key"):
            net[k] = self._open(net[k], f"network:{k}:1") if net[k] is not None else None
        return net

    def set_iv_index(self, iv_index, flags=None):
        with self._db:
            self._db.execute("UPDATE network SET iv_index = ?, flags = COALESCE(?, flags)", (iv_index, flags))

    # --- nodes -----------------------------------------------------------------------------------------
    def allocate_address(self, elements, reserved=()):
        """The first free range of `elements` consecutive unicast addresses (ValueError when full).
        `reserved`: (address, count) ranges promised to attempts still running."""
        if not 1 <= elements <= 0xFF:
            raise ValueError(f"element count {elements}")
        net = self.network()
        taken = [(net["provisioner_address"], 1)] + list(reserved)
        taken += self._db.execute("SELECT address, elements FROM nodes").fetchall()
        taken += [(a, 1) for (a,) in self._db.execute(
            "SELECT address FROM exclusions WHERE iv_index + ? > ?", (EXCLUSION_IV_STEPS, net["iv_index"]))]
        addr = UNICAST_RANGE[0]
        for start, count in sorted(taken):
            if start >= addr + elements:
                break
            addr = max(addr, start + count)
        if addr + elements - 1 > UNICAST_RANGE[1]:
            raise ValueError(f"no {elements} free unicast addresses left")
        return addr

    def add_node(self, lock_id, *, uuid, address, elements, dev_key, room=None, floor=None, hotel_keys=None,
                 bearer=None, method=None, secure=False):
        """Record a provisioned lock in one transaction; a previous record of the same lock is excluded."""
        if len(dev_key) != 16 or (hotel_keys is not None and len(hotel_keys) != 12):
            raise ValueError("DevKey is 16 bytes, hotel keys 12")
        with self._db:
            self._remove(lock_id)
            self._db.execute(
                "INSERT INTO nodes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (lock_id, bytes(uuid).hex(), room, floor, address, elements,
                 self._seal(dev_key, _where("dev_key", lock_id)),
                 self._seal(hotel_keys, _where("hotel_keys", lock_id)) if hotel_keys else None,
                 bearer, method, int(secure), _now()))

    def remove_node(self, lock_id):
        with self._db:
            return self._remove(lock_id)

    def _remove(self, lock_id):
        row = self._db.execute("SELECT address, elements FROM nodes WHERE lock_id = ?", (lock_id,)).fetchone()
        if row is None:
            return False
        iv = self._db.execute("SELECT iv_index FROM network").fetchone()[0]
        self._db.executemany("INSERT INTO exclusions VALUES (?, ?)", [(a, iv) for a in range(row[0], sum(row))])
        self._db.execute("DELETE FROM nodes WHERE lock_id = ?", (lock_id,))
        return True

    def nodes(self):
        rows = self._db.execute(
            "SELECT lock_id, uuid, room, floor, address, elements, dev_key, hotel_keys, bearer, method, secure,"
            " provisioned_at FROM nodes ORDER BY address").fetchall()
        out = []
        for r in rows:
            n = dict(zip(("lock_id", "uuid", "room", "floor", "address", "elements", "dev_key", "hotel_keys",
                          "bearer", "method", "secure", "provisioned_at"), r))
            n["uuid"], n["secure"] = bytes.fromhex(n["uuid"]), bool(n["secure"])
            for k in ("dev_key", "hotel_keys"):
                if n[k] is not None:
                    n[k] = self._open(n[k], _where(k, n["lock_id"]))
            out.append(n)
        return out

    def node(self, lock_id):
        return next((n for n in self.nodes() if n["lock_id"] == lock_id), None)

    def exclusions(self):
        """{iv_index: [addresses]} of removed nodes (for the CDB's networkExclusions)."""
        out = {}
        for a, iv in self._db.execute("SELECT address, iv_index FROM exclusions ORDER BY iv_index, address"):
            out.setdefault(iv, []).append(a)
        return out
