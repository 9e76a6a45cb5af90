"""Factory data: a CSV of locks -> one NVS partition image per lock (docs/keystore.md, "Factory data").

    python tools/factory.py locks.csv --out build/factory [--size 0x6000] [--completed locks-full.csv]
                                      [--secrets uuid-table.csv]

locks.csv has a header row; every column but lock_id is optional and an empty cell means "absent":
    lock_id          name of the lock (file names: <lock_id>.bin, <lock_id>.csv)
    uuid_secret      hex, 16..64 bytes: the rolling-UUID secret (lib/mesh/rolling_uuid.py)
    static_oob       hex, 16 or 32 bytes (32 serves both algorithms)
    oob_private      hex, 32 bytes: the OOB key pair's private key; oob_public (hex X||Y, 64 bytes) is derived
    oob_public       when empty, and checked against the private key when given
    room, floor      hotel extension: both or neither, 0..2**31-1
    elements, algorithms, oob_required, output_size, output_actions, input_size, input_actions
                     capability overrides (Provisioning Capabilities, §5.4.1.2), integers ("0x" allowed)
A secret cell may say `random`: the tool draws it (uuid_secret 16 bytes, static_oob 32 bytes, oob_private a fresh
P-256 key pair) and --completed writes the CSV with the values drawn, which the hotel must keep.
--secrets writes `lock_id,secret_hex` lines for tools/uuid_resolver.py.

Each image is made by ESP-IDF's own generator (PyPI esp-idf-nvs-partition-gen, format version 2) from the NVS
CSV written next to it, so `python -m esp_idf_nvs_partition_gen generate <lock>.csv <lock>.bin 0x6000` gives the
same bytes. Flash it over the whole NVS partition -- MicroPython's default ESP32 table (partitions-4MiBplus.csv)
has nvs at 0x9000, size 0x6000:
    esptool.py --chip esp32 -p PORT write_flash 0x9000 build/factory/<lock_id>.bin
(the OTA tables, partitions-4MiB-ota.csv and partitions-8MiBplus-ota.csv, have nvs at 0x9000 with size 0x4000:
pass --size 0x4000). Flashing replaces everything in NVS, the key store included: the lock starts unprovisioned.
The host stand-in reads the same image: tools/host/esp32.py Flash.load_image().
"""

import argparse
import csv
import os
import pathlib
import sys

from cryptography.hazmat.primitives.asymmetric import ec
from esp_idf_nvs_partition_gen import nvs_partition_gen as gen

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "lib"))
from mesh import factory  # noqa: E402  (the names, lengths and ranges the lock accepts: one source of truth)

NVS_OFFSET = 0x9000
NVS_SIZE = 0x6000
_COLUMN_KEY = {"uuid_secret": "uuid_secret", "static_oob": "static_oob", "oob_private": "oob_priv",
               "oob_public": "oob_pub"}
_RANDOM_LEN = {"uuid_secret": 16, "static_oob": 32}
INT_COLUMNS = ("room", "floor") + tuple(c[0] for c in factory.CAPS)
COLUMNS = ("lock_id",) + tuple(_COLUMN_KEY) + INT_COLUMNS


class FactoryError(ValueError):
    pass


def _public_of(private):
    key = ec.derive_private_key(int.from_bytes(private, "big"), ec.SECP256R1())
    n = key.public_key().public_numbers()
    return n.x.to_bytes(32, "big") + n.y.to_bytes(32, "big")


def complete(row, rand=os.urandom):
    """Validate one CSV row (dict) and draw its `random` secrets. -> the completed row (all strings)."""
    out = {c: (row.get(c) or "").strip() for c in COLUMNS}
    lock = out["lock_id"]
    if not lock or any(ch in lock for ch in "/\\ ") or lock.startswith("."):
        raise FactoryError("lock_id %r: needs a plain non-empty name" % lock)
    for col, n in _RANDOM_LEN.items():
        if out[col].lower() == "random":
            out[col] = rand(n).hex()
    if out["oob_private"].lower() == "random":
        while True:
            d = rand(32)
            if 0 < int.from_bytes(d, "big") < factory.P256_N:
                break
        out["oob_private"], out["oob_public"] = d.hex(), ""
    lengths = dict(factory.BLOBS)
    values = {}
    for col, key in _COLUMN_KEY.items():
        if out[col]:
            try:
                values[col] = bytes.fromhex(out[col])
            except ValueError:
                raise FactoryError("%s: %s is not hex" % (lock, col)) from None
            if len(values[col]) not in lengths[key]:
                raise FactoryError("%s: %s has %d bytes" % (lock, col, len(values[col])))
    if "oob_private" in values:
        d = int.from_bytes(values["oob_private"], "big")
        if not 0 < d < factory.P256_N:
            raise FactoryError("%s: oob_private is not a P-256 private key" % lock)
        public = _public_of(values["oob_private"])
        if "oob_public" in values and values["oob_public"] != public:
            raise FactoryError("%s: oob_public does not belong to oob_private" % lock)
        out["oob_public"] = public.hex()
    elif "oob_public" in values:
        raise FactoryError("%s: oob_public without oob_private" % lock)
    ranges = {c[0]: (c[1], c[2]) for c in factory.CAPS}
    ranges.update(room=(0, 0x7FFFFFFF), floor=(0, 0x7FFFFFFF))
    for col in INT_COLUMNS:
        if out[col]:
            try:
                v = int(out[col], 0)
            except ValueError:
                raise FactoryError("%s: %s is not an integer" % (lock, col)) from None
            lo, hi = ranges[col]
            if not lo <= v <= hi:
                raise FactoryError("%s: %s=%d outside %d..%d" % (lock, col, v, lo, hi))
            out[col] = str(v)
    if bool(out["room"]) != bool(out["floor"]):
        raise FactoryError("%s: room and floor come together" % lock)
    for size, actions in (("output_size", "output_actions"), ("input_size", "input_actions")):
        if (out[size] or out[actions]) and (int(out[size] or 0) > 0) != (int(out[actions] or 0) > 0):
            raise FactoryError("%s: %s and %s disagree" % (lock, size, actions))
    return out


def nvs_rows(row):
    """The generator's CSV rows (key, type, encoding, value) for one completed lock row."""
    rows = [(factory.NAMESPACE, "namespace", "", "")]
    for col, key in _COLUMN_KEY.items():
        if row[col]:
            rows.append((key, "data", "hex2bin", row[col]))
    for col in INT_COLUMNS:
        if row[col]:
            rows.append((col, "data", "i32", row[col]))  # esp32.NVS reads integers with get_i32 only
    return rows


def write_image(row, out_dir, size=NVS_SIZE):
    """<lock_id>.csv (the generator's input) and <lock_id>.bin (its output) in out_dir. -> path of the .bin"""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = nvs_rows(row)
    csv_path, bin_path = out_dir / (row["lock_id"] + ".csv"), out_dir / (row["lock_id"] + ".bin")
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("key", "type", "encoding", "value"))
        w.writerows(rows)
    if size % 4096 or size < 0x3000:
        raise FactoryError("NVS partition size must be a multiple of 4096 and at least 0x3000")
    with open(bin_path, "wb") as f:
        nvs = gen.nvs_open(f, size - 4096, gen.Page.VERSION2)  # as the generator's CLI: one page kept for GC
        for key, typ, enc, value in rows:
            gen.write_entry(nvs, key, typ, enc, value)
        gen.nvs_close(nvs)
    return bin_path


def build(locks_csv, out_dir, size=NVS_SIZE, completed=None, secrets=None, rand=os.urandom):
    with open(locks_csv, newline="") as f:
        rows = [complete(r, rand) for r in csv.DictReader(f)]
    seen = set()
    for r in rows:
        if r["lock_id"] in seen:
            raise FactoryError("lock_id %s appears twice" % r["lock_id"])
        seen.add(r["lock_id"])
    paths = [write_image(r, out_dir, size) for r in rows]
    if completed:
        with open(completed, "w", newline="") as f:
            w = csv.DictWriter(f, COLUMNS)
            w.writeheader()
            w.writerows(rows)
    if secrets:
        with open(secrets, "w") as f:
            f.writelines("%s,%s\n" % (r["lock_id"], r["uuid_secret"]) for r in rows if r["uuid_secret"])
    return paths


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("locks_csv")
    ap.add_argument("--out", default="build/factory")
    ap.add_argument("--size", default=hex(NVS_SIZE), help="NVS partition size (default 0x6000)")
    ap.add_argument("--completed", help="write the CSV with `random` cells filled in")
    ap.add_argument("--secrets", help="write lock_id,secret_hex for tools/uuid_resolver.py")
    a = ap.parse_args(argv)
    try:
        paths = build(a.locks_csv, a.out, int(a.size, 0), a.completed, a.secrets)
    except (FactoryError, OSError) as e:
        print("factory: %s" % e, file=sys.stderr)
        return 1
    for p in paths:
        print("%s  (flash at 0x%x)" % (p, NVS_OFFSET))
    return 0


if __name__ == "__main__":
    sys.exit(main())
