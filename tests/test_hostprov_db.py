"""The host provisioner's database: encryption at rest, file mode, wrong passphrase, address assignment."""

import os
import pathlib
import sqlite3
import stat
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from hostprov import db as provdb

FAST = 2**10  # scrypt cost for tests; the default (2**17) is exercised once below
NET_KEY = bytes.fromhex("efb2255e6422d330088e09bb015ed707")
DEV_KEY = bytes.fromhex("0520adad5e0142aa3e325087b4ec16d8")
HOTEL = bytes.fromhex("a1b2c3d4a1b2c3d5 0badf00d".replace(" ", ""))


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "hotel.db")


def _make(path, **kw):
    return provdb.ProvDB.create(path, "correct horse", kdf_n=FAST, net_key=NET_KEY, **kw)


def test_the_file_is_owner_only_and_holds_no_key_in_clear(path):
    with _make(path, mh_key=b"\xa1\xb2\xc3\xd4") as d:
        d.add_node("L101", uuid=bytes(16), address=2, elements=1, dev_key=DEV_KEY, room=101, floor=1,
                   hotel_keys=HOTEL)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    raw = pathlib.Path(path).read_bytes()
    for secret in (NET_KEY, DEV_KEY, HOTEL, b"\xa1\xb2\xc3\xd4"):
        assert secret not in raw and secret.hex().encode() not in raw
    assert not [p for p in os.listdir(os.path.dirname(path)) if p != "hotel.db"]  # no journal left behind


def test_keys_come_back_with_the_right_passphrase(path):
    _make(path, iv_index=0x01020304, net_key_index=0x567, mh_key=b"\xa1\xb2\xc3\xd4").add_node(
        "L101", uuid=b"\x70" * 16, address=2, elements=2, dev_key=DEV_KEY, room=101, floor=1, hotel_keys=HOTEL,
        bearer="PB-ADV", method="static", secure=True)
    with provdb.ProvDB.open(path, "correct horse") as d:
        net = d.network()
        assert (net["net_key"], net["iv_index"], net["net_key_index"]) == (NET_KEY, 0x01020304, 0x567)
        assert net["mh_key"] == b"\xa1\xb2\xc3\xd4" and len(net["provisioner_dev_key"]) == 16
        n = d.node("L101")
        assert (n["dev_key"], n["hotel_keys"], n["uuid"], n["address"], n["elements"]) == (
            DEV_KEY, HOTEL, b"\x70" * 16, 2, 2)
        assert (n["room"], n["floor"], n["bearer"], n["method"], n["secure"]) == (101, 1, "PB-ADV", "static", True)
        assert "correct" not in repr(d) and NET_KEY.hex() not in repr(d)


def test_a_wrong_passphrase_is_a_clear_error(path):
    _make(path).close()
    with pytest.raises(provdb.WrongPassphrase, match="wrong passphrase"):
        provdb.ProvDB.open(path, "Correct horse")


def test_the_default_kdf_cost_is_stored_and_used(path):
    provdb.ProvDB.create(path, "pw").close()
    assert sqlite3.connect(path).execute("SELECT n, r, p FROM kdf").fetchone() == (2**17, 8, 1)
    with pytest.raises(provdb.WrongPassphrase):
        provdb.ProvDB.open(path, "pw!")


def test_a_sealed_value_cannot_be_moved_to_another_row(path):
    with _make(path) as d:
        d.add_node("A", uuid=bytes(16), address=2, elements=1, dev_key=DEV_KEY)
        d.add_node("B", uuid=bytes(16), address=3, elements=1, dev_key=bytes(16))
    c = sqlite3.connect(path)
    with c:
        blob = c.execute("SELECT dev_key FROM nodes WHERE lock_id = 'A'").fetchone()[0]
        c.execute("UPDATE nodes SET dev_key = ? WHERE lock_id = 'B'", (blob,))
    with provdb.ProvDB.open(path, "correct horse") as d, pytest.raises(ValueError, match="nodes:dev_key:B"):
        d.node("B")


def test_refuses_to_overwrite_and_tightens_a_widened_mode(path):
    _make(path).close()
    with pytest.raises(FileExistsError):
        _make(path)
    os.chmod(path, 0o644)
    provdb.ProvDB.open(path, "correct horse").close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.mark.parametrize("kw", [{"net_key": bytes(15)}, {"mh_key": bytes(5)}, {"net_key_index": 0x1000},
                                {"iv_index": 1 << 32}, {"flags": 4}])
def test_bad_network_parameters_are_refused_and_leave_no_file(path, kw):
    with pytest.raises(ValueError):
        provdb.ProvDB.create(path, "pw", kdf_n=FAST, **kw)
    assert not os.path.exists(path)


def test_not_a_database_is_a_clear_error(tmp_path):
    p = tmp_path / "x.db"
    p.write_bytes(b"hello" * 100)
    with pytest.raises(ValueError, match="not a provisioning database"):
        provdb.ProvDB.open(str(p), "pw")


def test_addresses_are_first_fit_and_respect_element_counts(path):
    with _make(path) as d:
        assert d.allocate_address(1) == 0x0002  # 0x0001 is the provisioner
        d.add_node("A", uuid=bytes(16), address=0x0002, elements=3, dev_key=DEV_KEY)
        assert d.allocate_address(2) == 0x0005
        d.add_node("B", uuid=bytes(16), address=0x0005, elements=2, dev_key=DEV_KEY)
        d.add_node("C", uuid=bytes(16), address=0x0010, elements=1, dev_key=DEV_KEY)
        assert d.allocate_address(9) == 0x0007  # 0x0007..0x000F fits in front of C
        assert d.allocate_address(10) == 0x0011
        assert d.allocate_address(1, reserved=[(0x0007, 2)]) == 0x0009  # promised to a running attempt
        with pytest.raises(ValueError):
            d.allocate_address(0)
        with pytest.raises(sqlite3.IntegrityError):
            d.add_node("D", uuid=bytes(16), address=0x0005, elements=1, dev_key=DEV_KEY)
        assert [n["lock_id"] for n in d.nodes()] == ["A", "B", "C"]


def test_a_reprovisioned_lock_gets_new_addresses_and_the_old_ones_are_excluded(path):
    with _make(path, iv_index=7) as d:
        d.add_node("A", uuid=bytes(16), address=0x0002, elements=2, dev_key=DEV_KEY)
        new = d.allocate_address(2)
        assert new == 0x0004
        d.add_node("A", uuid=b"\x01" * 16, address=new, elements=2, dev_key=bytes(16))
        assert d.exclusions() == {7: [2, 3]}
        assert d.allocate_address(1) == 0x0006  # excluded addresses are not reused ...
        d.set_iv_index(9)
        assert d.allocate_address(1) == 0x0002  # ... until the IV Index moved on by two
        assert len(d.nodes()) == 1


def test_the_unicast_range_runs_out_cleanly(path):
    with _make(path) as d:
        d.add_node("big", uuid=bytes(16), address=0x0002, elements=1, dev_key=DEV_KEY)
        with sqlite3.connect(path) as c:  # stretch it over the rest of the range (no API does this)
            c.execute("UPDATE nodes SET elements = ?", (provdb.UNICAST_RANGE[1] - 1,))
        with pytest.raises(ValueError, match="free unicast"):
            d.allocate_address(1)
