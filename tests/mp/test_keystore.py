# Key store (lib/mesh/keystore.py), derived NetKeys (lib/mesh/netkeys.py) and the host esp32.NVS stand-in
# (tools/host/esp32.py) it is tested against.
import sys

sys.path.insert(0, "tools/host")
import esp32  # noqa: E402  (the host stand-in)
from keystore_helpers import Logs  # noqa: E402
from mpunit import h, hx, raises  # noqa: E402

from mesh import keystore  # noqa: E402
from mesh.keystore import KeyStore  # noqa: E402
from mesh.netkeys import NetKeys  # noqa: E402

REC = {"net_key": h("7dd7364cd842ad18c17c2b820c84c3d6"), "net_key_index": 0x567, "flags": 0x01,
       "iv_index": 0x12345678, "address": 0x0B0C, "elements": 3, "dev_key": h("9d6dd0e96eb25dc19a40ed9914f8f03f"),
       "hotel": None}
HOTEL = {"mh_key": h("11223344"), "floor_key": h("55667788"), "room_key": h("99aabbcc")}


def fresh(durable="commit"):
    esp32.use_flash(None, durable)
    return KeyStore(esp32.NVS("mesh"))


# ---- host stand-in: the device's semantics ----
def test_nvs_missing_key_is_oserror_4354():
    esp32.use_flash()
    n = esp32.NVS("t")
    e = raises(OSError, n.get_i32, "nope")
    assert e.args == (-4354, "ESP_ERR_NVS_NOT_FOUND")
    assert raises(OSError, n.get_blob, "nope", bytearray(4)).args[0] == -4354
    assert raises(OSError, n.erase_key, "nope").args[0] == -4354


def test_nvs_key_length_limit_15():
    esp32.use_flash()
    n = esp32.NVS("t")
    n.set_i32("k" * 15, 1)
    assert n.get_i32("k" * 15) == 1
    assert raises(OSError, n.set_i32, "k" * 16, 1).args[0] == -0x1109
    assert raises(OSError, n.set_blob, "k" * 16, b"x").args[0] == -0x1109
    raises(OSError, esp32.NVS, "n" * 16)


def test_nvs_set_i32_is_signed_32_bit():
    esp32.use_flash()
    n = esp32.NVS("t")
    for v in (0, -1, 2 ** 31 - 1, -(2 ** 31)):
        n.set_i32("v", v)
        assert n.get_i32("v") == v
    raises(OverflowError, n.set_i32, "v", 2 ** 31)
    raises(OverflowError, n.set_i32, "v", -(2 ** 31) - 1)
    raises(TypeError, n.set_i32, "v", b"1")


def test_nvs_get_blob_caller_sized_buffer():
    esp32.use_flash()
    n = esp32.NVS("t")
    n.set_blob("b", b"12345")
    buf = bytearray(b"........")
    assert n.get_blob("b", buf) == 5 and buf == bytearray(b"12345...")  # the tail is left alone
    short = bytearray(b"xxxx")
    e = raises(OSError, n.get_blob, "b", short)
    assert e.args == (-4364, "ESP_ERR_NVS_INVALID_LENGTH") and short == bytearray(b"xxxx")
    raises(TypeError, n.get_blob, "b", bytes(8))  # needs a writable buffer
    n.set_blob("s", "text")  # str is written as its bytes, as on the device
    assert n.get_blob("s", bytearray(4)) == 4


def test_nvs_type_mismatch():
    esp32.use_flash()
    n = esp32.NVS("t")
    n.set_blob("b", b"1")
    n.set_i32("i", 1)
    assert raises(OSError, n.get_i32, "b").args[0] == -0x1103
    assert raises(OSError, n.get_blob, "i", bytearray(8)).args[0] == -0x1103
    n.set_i32("b", 7)  # a set replaces value and type
    assert n.get_i32("b") == 7


def test_nvs_uncommitted_writes_lost_on_power_cycle():
    f = esp32.use_flash(None, "commit")
    n = esp32.NVS("t")
    n.set_i32("a", 1)
    n.commit()
    n.set_i32("a", 2)
    n.set_i32("b", 3)
    assert n.get_i32("a") == 2  # reads see pending writes
    f.power_cycle()
    raises(OSError, n.get_i32, "a")  # handles do not survive a reboot
    n = esp32.NVS("t")
    assert n.get_i32("a") == 1
    raises(OSError, n.get_i32, "b")


def test_nvs_write_mode_is_durable_at_once():
    f = esp32.use_flash(None, "write")
    n = esp32.NVS("t")
    n.set_i32("a", 1)
    f.power_cycle()
    assert esp32.NVS("t").get_i32("a") == 1


def test_nvs_file_backed_across_processes():
    path = "/tmp/mesh-test-keystore-%d.json" % id(REC)
    f = esp32.use_flash(path)
    n = esp32.NVS("t")
    n.set_blob("b", b"\x00\xff")
    n.commit()
    n.set_i32("lost", 1)  # never committed
    f2 = esp32.use_flash(path)  # a new process opening the same file
    n2 = esp32.NVS("t")
    assert n2.get_blob("b", bytearray(2)) == 2
    raises(OSError, n2.get_i32, "lost")
    import os

    os.remove(path)
    del f, f2


def test_nvs_crash_after_kth_write_or_commit():
    f = esp32.use_flash(None, "commit")
    n = esp32.NVS("t")
    f.crash_after(2)
    n.set_i32("a", 1)  # write 1
    raises(esp32.PowerLoss, n.commit)  # write 2: the commit happens, then the power fails
    f.power_cycle()
    assert esp32.NVS("t").get_i32("a") == 1
    f.crash_after(1, torn=True)
    raises(esp32.PowerLoss, esp32.NVS("t").set_blob, "b", b"abcd")
    f.power_cycle()
    raises(OSError, esp32.NVS("t").get_blob, "b", bytearray(4))  # committed nothing: gone


def test_nvs_full_partition_not_enough_space():
    esp32.use_flash(None, "commit", size=3 * 4096)  # 2 usable pages of 126 entries
    n = esp32.NVS("t")
    e = None
    for i in range(300):
        try:
            n.set_i32("k%d" % i, i)
        except OSError as x:
            e = x
            break
    assert e is not None and e.args[0] == -0x1105 and 200 < i < 260


# ---- key store ----
def test_empty_store_loads_none_quietly():
    s = fresh()
    with Logs() as lg:
        assert s.load() is None
    assert "[E]" not in lg.text()


def test_roundtrip_plain_and_hotel():
    s = fresh()
    s.save(REC)
    assert s.load() == REC
    rec = dict(REC, hotel=HOTEL, flags=3, address=0x7FFD)
    s.save(rec)
    assert s.load() == rec
    esp32.flash().power_cycle()
    assert KeyStore(esp32.NVS("mesh")).load() == rec


def test_resave_alternates_slots_and_erases_the_old_one():
    s = fresh()
    for i in range(5):
        s.save(dict(REC, iv_index=i))
        keys = esp32.flash().view("mesh")
        assert list(keys) == [keystore.SLOTS[i % 2]]
        assert s.load()["iv_index"] == i


def test_record_layout():
    blob = keystore.encode(REC, 7)
    assert len(blob) == keystore.RECORD_LEN == 68
    assert blob[0] == 1 and blob[1:5] == h("00000007")
    # bytes 5..29: the Provisioning Data plaintext layout (§5.4.1.8)
    assert blob[5:30] == REC["net_key"] + h("0567 01 12345678 0b0c")
    assert blob[30] == 3 and blob[31:47] == REC["dev_key"] and blob[47] == 0


def _put_slot(i, blob):
    n = esp32.NVS("mesh")
    n.set_blob(keystore.SLOTS[i], blob)
    n.commit()


def test_corrupt_records_are_logged_and_ignored():
    good = keystore.encode(REC, 1)
    flipped = bytearray(good)
    flipped[20] ^= 0x04
    bad_range = keystore.encode(REC, 1)[:-8]
    bad_range = bytearray(bad_range)
    bad_range[28:30] = b"\x00\x00"  # address 0 with a valid check
    import hashlib

    bad_range = bytes(bad_range) + hashlib.sha256(bytes(bad_range)).digest()[:8]
    cases = [(bytes(flipped), "integrity"), (good[:40], "length"), (b"\x02" + good[1:], "version"),
             (b"", "version"), (good + b"\x00", "length"), (bytes(200), "longer"), (bad_range, "range")]
    for blob, why in cases:
        s = fresh()
        _put_slot(0, blob)
        with Logs() as lg:
            assert s.load() is None
        assert why in lg.text() and "unprovisioned" in lg.text(), (why, lg.lines)
    s = fresh()
    n = esp32.NVS("mesh")
    n.set_i32(keystore.SLOTS[1], 5)  # a key of the wrong type
    with Logs() as lg:
        assert s.load() is None
    assert "not a blob" in lg.text()


def test_corrupt_newer_slot_falls_back_to_the_older_one():
    s = fresh()
    _put_slot(0, keystore.encode(REC, 4))
    newer = bytearray(keystore.encode(dict(REC, iv_index=9), 5))
    newer[-1] ^= 1
    _put_slot(1, bytes(newer))
    assert s.load() == REC
    s.save(dict(REC, iv_index=10))  # overwrites the corrupt slot, generation 5
    assert s.load()["iv_index"] == 10 and list(esp32.flash().view("mesh")) == [keystore.SLOTS[1]]


def test_newest_generation_wins_and_wraps():
    for g0, g1, winner in ((1, 2, 1), (9, 3, 0), (0xFFFFFFFF, 0, 1), (0, 0xFFFFFFFF, 0)):
        s = fresh()
        _put_slot(0, keystore.encode(dict(REC, iv_index=0), g0))
        _put_slot(1, keystore.encode(dict(REC, iv_index=1), g1))
        assert s.load()["iv_index"] == winner
        s.save(REC)  # into the other slot, one generation on; the loser is erased
        keys = esp32.flash().view("mesh")
        assert list(keys) == [keystore.SLOTS[1 - winner]]
        assert keystore.decode(keys[keystore.SLOTS[1 - winner]][1])[0] == ((g0, g1)[winner] + 1) & 0xFFFFFFFF


def test_invalid_record_rejected_before_any_write():
    bad = [dict(REC, address=0), dict(REC, address=0x8000), dict(REC, address=0x7FFE, elements=3),
           dict(REC, elements=0), dict(REC, flags=4), dict(REC, net_key_index=0x1000), dict(REC, iv_index=-1),
           dict(REC, net_key=bytes(15)), dict(REC, dev_key=bytes(17)),
           dict(REC, hotel={"mh_key": b"123", "floor_key": b"1234", "room_key": b"1234"})]
    for rec in bad:
        s = fresh()
        raises(ValueError, s.save, rec)
        assert esp32.flash().view("mesh") == {} and esp32.flash().writes == 0


def test_save_failure_raises_oserror_and_keeps_the_old_record():
    esp32.use_flash(None, "commit", size=3 * 4096)
    s = KeyStore(esp32.NVS("mesh"))
    s.save(REC)
    filler = esp32.NVS("fill")
    try:
        for i in range(300):
            filler.set_i32("k%d" % i, i)
    except OSError:
        pass
    raises(OSError, s.save, dict(REC, iv_index=1))
    assert s.load() == REC


class FailingCommit:
    """esp32.NVS whose next commit() fails once (e.g. a flash error), to see what save() leaves pending."""

    def __init__(self, nvs):
        self.nvs, self.fail = nvs, 1

    def __getattr__(self, name):
        return getattr(self.nvs, name)

    def commit(self):
        if self.fail:
            self.fail -= 1
            raise OSError(-0x1108, "ESP_ERR_NVS_REMOVE_FAILED")
        self.nvs.commit()


def test_failed_commit_is_rolled_back_so_no_later_commit_publishes_it():
    s = fresh("commit")
    s.save(REC)
    n = esp32.NVS("mesh")
    failing = KeyStore(FailingCommit(n))
    raises(OSError, failing.save, dict(REC, iv_index=99))
    n.set_i32("other", 1)
    n.commit()  # someone else's commit flushes whatever is pending
    esp32.flash().power_cycle()
    assert KeyStore(esp32.NVS("mesh")).load() == REC


def test_node_reset_through_the_provisionee():
    from mesh.provisionee import Provisionee

    class App:
        resets = 0

        def reset(self):
            App.resets += 1

    s = fresh()
    p = Provisionee({}, s, app=App())
    p.provision(dict(REC, elements=1))
    assert p.is_provisioned and s.load() == dict(REC, elements=1)
    p.reset()
    assert not p.is_provisioned and App.resets == 1 and s.load() is None
    assert esp32.flash().view("mesh") == {}
    esp32.flash().power_cycle()
    assert Provisionee({}, KeyStore(esp32.NVS("mesh"))).is_provisioned is False


def test_erase_removes_every_key():
    esp32.use_flash()
    n = esp32.NVS("mesh")
    n.set_i32("seq", 5)
    n.commit()
    s = KeyStore(n, extra_keys=("seq", "never"))
    s.save(REC)
    _put_slot(1 - keystore.SLOTS.index(list(esp32.flash().view("mesh"))[-1]), keystore.encode(REC, 0))
    s.erase()
    assert esp32.flash().view("mesh") == {}
    esp32.flash().power_cycle()
    assert esp32.flash().disk["mesh"] == {}
    s = KeyStore(esp32.NVS("mesh"))
    s.erase()  # nothing stored: still fine
    assert s.load() is None


def test_no_secret_in_logs_reprs_or_summary():
    s = fresh()
    rec = dict(REC, hotel=HOTEL)
    secrets = keystore.secrets_hex(rec)
    assert hx(REC["net_key"]) in secrets and hx(HOTEL["room_key"]) in secrets and len(secrets) == 10
    with Logs() as lg:
        s.save(rec)
        s.load()
        _put_slot(0, b"\x01" + bytes(67))
        s.load()
        s.erase()
        text = lg.text() + repr(s) + keystore.summary(rec) + repr(NetKeys(rec["net_key"])) + repr(esp32.NVS("x"))
    for sec in secrets:
        assert sec not in text.lower(), sec
    assert "fp %s" % keystore.fingerprint(rec["net_key"]) in keystore.summary(rec)
    assert keystore.summary(None) == "unprovisioned"


# ---- derived keys: Mesh Protocol v1.1 §8.2 sample data ----
def _sample_8_2():
    # the §8.2 lines of tests/vectors/crypto.txt are comments: "# 8.2.x name: a=b c=d ..."
    out = {}
    with open("tests/vectors/crypto.txt") as f:
        for line in f:
            if line.startswith("# 8.2.") or line.startswith("#   #"):
                tag = line.split()[1]
                for word in line.split():
                    if "=" in word and not word.startswith("s1("):
                        k, v = word.split("=", 1)
                        out[tag + "." + k] = v.rstrip(",")
    return out


def test_netkeys_match_spec_8_2():
    v = _sample_8_2()
    k = NetKeys(h("7dd7364cd842ad18c17c2b820c84c3d6"))
    assert k.nid == int(v["8.2.2.NID"], 16) == 0x68
    assert hx(k.encryption_key) == v["8.2.2.EncryptionKey"] == "0953fa93e7caac9638f58820220a398e"
    assert hx(k.privacy_key) == v["8.2.2.PrivacyKey"]
    assert hx(k.network_id) == v["8.2.5.NetworkID"] == "3ecaff672f673370"
    assert hx(k.identity_key) == v["8.2.6.IdentityKey"] == "84396c435ac48560b5965385253e210c"
    assert hx(k.beacon_key) == v["8.2.7.BeaconKey"] == "5423d967da639a99cb02231a83f7d254"
    assert hx(NetKeys(h("3bbb6f1fbd53e157417f308ce7aec58f")).private_beacon_key) == v["#1.PrivateBeaconKey"]
    assert hx(NetKeys(h("db662f48d477740621f5e301cdd69611")).private_beacon_key) == v["#2.PrivateBeaconKey"]
    raises(ValueError, NetKeys, bytes(15))
