"""tools/factory.py: locks CSV -> per-lock NVS partition images made with ESP-IDF's generator, read back by the
lock's own code (lib/mesh/factory.py, inside MicroPython) through the host NVS stand-in, which parses the very
bytes that would be flashed at 0x9000 on a board."""

import csv
import pathlib
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tools" / "host"))
import esp32  # noqa: E402  (host stand-in, here under CPython)
import factory as tool  # noqa: E402

PRIV = ec.generate_private_key(ec.SECP256R1())
D = PRIV.private_numbers().private_value.to_bytes(32, "big")
PUB = PRIV.public_key().public_numbers()
Q = PUB.x.to_bytes(32, "big") + PUB.y.to_bytes(32, "big")
FULL = {"lock_id": "room-0101", "uuid_secret": "a5" * 20, "static_oob": "5a" * 32, "oob_private": D.hex(),
        "oob_public": Q.hex(), "room": "101", "floor": "1", "elements": "2", "algorithms": "0x2",
        "oob_required": "1", "output_size": "4", "output_actions": "0x18", "input_size": "0",
        "input_actions": "0"}


def _csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, tool.COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture
def built(tmp_path):
    rows = [FULL, {"lock_id": "bare"}, {"lock_id": "drawn", "uuid_secret": "random", "static_oob": "RANDOM",
                                        "oob_private": "random", "room": "7", "floor": "0"}]
    paths = tool.build(_csv(tmp_path / "locks.csv", rows), tmp_path / "out", completed=tmp_path / "full.csv",
                       secrets=tmp_path / "table.csv")
    return tmp_path, paths


def test_one_image_per_lock_sized_for_micropythons_nvs_partition(built):
    tmp, paths = built
    assert [p.name for p in paths] == ["room-0101.bin", "bare.bin", "drawn.bin"]
    assert all(p.stat().st_size == 0x6000 for p in paths)
    assert (tool.NVS_OFFSET, tool.NVS_SIZE) == (0x9000, 0x6000)


def test_images_are_what_espidfs_generator_cli_makes_from_the_per_lock_csv(built):
    tmp, paths = built
    r = subprocess.run([sys.executable, "-m", "esp_idf_nvs_partition_gen", "generate", str(tmp / "out" /
                        "room-0101.csv"), "cli.bin", "0x6000", "--outdir", str(tmp)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp / "cli.bin").read_bytes() == paths[0].read_bytes()


def test_simulated_lock_reads_what_the_csv_says(built, mpy):
    tmp, paths = built
    got = mpy.call("factory_helpers.read_image", str(paths[0]))
    assert got["problems"] == [] and not any("[E]" in line for line in got["log"])
    assert got["uuid_secret"] == bytes.fromhex(FULL["uuid_secret"])
    assert got["static_oob"] == bytes.fromhex(FULL["static_oob"])
    assert got["oob_keypair"] == [D, Q]
    assert (got["room"], got["floor"]) == (101, 1)
    assert got["capabilities"] == {"elements": 2, "algorithms": 2, "oob_required": 1, "output_size": 4,
                                   "output_actions": 0x18, "input_size": 0, "input_actions": 0}
    for line in got["log"]:  # the boot log names what is there, never a value
        for secret in (FULL["uuid_secret"], FULL["static_oob"], D.hex()):
            assert secret not in line.lower()
    bare = mpy.call("factory_helpers.read_image", str(paths[1]))
    assert bare["problems"] == [] and bare["uuid_secret"] is None and bare["oob_keypair"] is None
    assert bare["capabilities"] == {} and bare["room"] is None


def test_random_cells_are_drawn_recorded_and_consistent(built, mpy):
    tmp, paths = built
    rows = {r["lock_id"]: r for r in csv.DictReader(open(tmp / "full.csv"))}
    drawn = rows["drawn"]
    assert len(bytes.fromhex(drawn["uuid_secret"])) == 16 and len(bytes.fromhex(drawn["static_oob"])) == 32
    d = int(drawn["oob_private"], 16)
    n = ec.derive_private_key(d, ec.SECP256R1()).public_key().public_numbers()
    assert drawn["oob_public"] == (n.x.to_bytes(32, "big") + n.y.to_bytes(32, "big")).hex()
    got = mpy.call("factory_helpers.read_image", str(paths[2]))
    assert got["uuid_secret"].hex() == drawn["uuid_secret"] and got["oob_keypair"][1].hex() == drawn["oob_public"]
    assert (got["room"], got["floor"]) == (7, 0)
    table = (tmp / "table.csv").read_text().splitlines()
    assert table == ["room-0101,%s" % FULL["uuid_secret"], "drawn,%s" % drawn["uuid_secret"]]
    assert rows["room-0101"]["algorithms"] == "2"  # integers normalised


@pytest.mark.parametrize("change,message", [
    ({"uuid_secret": "a5" * 15}, "uuid_secret has 15 bytes"),
    ({"static_oob": "zz" * 16}, "not hex"),
    ({"static_oob": "11" * 24}, "static_oob has 24 bytes"),
    ({"oob_public": "00" * 64}, "does not belong"),
    ({"oob_private": "", "oob_public": "00" * 64}, "without oob_private"),
    ({"oob_private": "00" * 32, "oob_public": ""}, "not a P-256 private key"),
    ({"floor": ""}, "room and floor"),
    ({"room": "-1"}, "outside"),
    ({"elements": "0"}, "outside"),
    ({"algorithms": "4"}, "outside"),
    ({"algorithms": "1"}, "outside"),  # CMAC only: §5.4.1.2 requires the HMAC bit of a Provisionee
    ({"output_size": "9"}, "outside"),
    ({"output_actions": "0"}, "disagree"),
    ({"input_actions": "1"}, "disagree"),
    ({"room": "1e3"}, "not an integer"),
    ({"lock_id": "../x"}, "plain"),
])
def test_bad_rows_are_refused_with_a_clear_message(tmp_path, change, message):
    path = _csv(tmp_path / "l.csv", [dict(FULL, **change)])
    with pytest.raises(tool.FactoryError, match=message):
        tool.build(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-made


def test_cli_reports_errors_and_duplicates(tmp_path, capsys):
    path = _csv(tmp_path / "l.csv", [FULL, FULL])
    assert tool.main([str(path), "--out", str(tmp_path / "o")]) == 1
    assert "appears twice" in capsys.readouterr().err
    path = _csv(tmp_path / "m.csv", [{"lock_id": "a"}])
    assert tool.main([str(path), "--out", str(tmp_path / "o"), "--size", "0x4000"]) == 0
    assert (tmp_path / "o" / "a.bin").stat().st_size == 0x4000


def test_stand_in_parser_reads_espidf_images_beyond_factory_data(tmp_path):
    # multi-page blobs, every integer type, strings, two namespaces, and an entry with a broken CRC
    rows = [("key", "type", "encoding", "value"), ("one", "namespace", "", ""),
            ("big", "data", "hex2bin", "".join("%02x" % (i % 251) for i in range(6000))),
            ("u8", "data", "u8", "200"), ("i16", "data", "i16", "-300"), ("u32", "data", "u32", "4000000000"),
            ("i32", "data", "i32", "-5"), ("s", "data", "string", "hello"),
            ("two", "namespace", "", ""), ("i32", "data", "i32", "7")]
    with open(tmp_path / "n.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    subprocess.run([sys.executable, "-m", "esp_idf_nvs_partition_gen", "generate", str(tmp_path / "n.csv"),
                    "n.bin", "0x5000", "--outdir", str(tmp_path)], check=True, capture_output=True)
    image = bytearray((tmp_path / "n.bin").read_bytes())
    got = esp32.parse_image(bytes(image))
    assert got["one"]["big"] == ["blob", bytes(i % 251 for i in range(6000))]
    assert got["one"]["u8"] == ["u8", 200] and got["one"]["i16"] == ["i16", -300]
    assert got["one"]["u32"] == ["u32", 4000000000] and got["one"]["i32"] == ["i32", -5]
    assert got["one"]["s"] == ["str", "hello"] and got["two"] == {"i32": ["i32", 7]}
    f = esp32.use_flash(None)
    f.load_image(bytes(image))
    n = esp32.NVS("one")
    assert n.get_i32("i32") == -5
    with pytest.raises(OSError) as e:
        n.get_i32("u8")  # esp32.NVS reads i32 and blobs only: another type is a mismatch, as on the device
    assert e.value.args[0] == -0x1103
    # break the CRC of namespace "two"'s i32 entry: NVS skips it
    i = bytes(image).index(b"i32\x00", bytes(image).index(b"two\x00") + 4) - 8
    image[i + 24] ^= 1
    assert "i32" not in esp32.parse_image(bytes(image)).get("two", {})
