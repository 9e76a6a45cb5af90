# Factory data reader (lib/mesh/factory.py) over the host esp32.NVS stand-in: complete, missing and malformed data.
import sys

sys.path.insert(0, "tools/host")
import esp32  # noqa: E402  (the host stand-in)
from keystore_helpers import Logs  # noqa: E402
from mpunit import h, hx  # noqa: E402

from mesh import factory  # noqa: E402

SECRET = h("00112233445566778899aabbccddeeff0011")
STATIC = h("a1" * 32)
PRIV = h("529aa0670d72cd6497502ed473502b037e8803b5c60829a5a3caa219505530ba")  # §8.17.1 provisioner private key
PUB = h("f465e43ff23d3f1b9dc7dfc04da8758184dbc966204796eccf0d6cf5e16500cc"
        "0201d048bcbbd899eeefc424164e33c201c2b010ca6b4d43a8a155cad8ecb279")


def nvs(**items):
    esp32.use_flash()
    n = esp32.NVS(factory.NAMESPACE)
    for k, v in items.items():
        if isinstance(v, int):
            n.set_i32(k, v)
        else:
            n.set_blob(k, v)
    n.commit()
    return n


def load(**items):
    n = nvs(**items)
    with Logs() as lg:
        fd = factory.load(n)
    return fd, lg


def test_complete_factory_data():
    fd, lg = load(uuid_secret=SECRET, static_oob=STATIC, oob_priv=PRIV, oob_pub=PUB, room=1207, floor=12,
                  elements=2, algorithms=2, oob_required=1, output_size=4, output_actions=0x08, input_size=0,
                  input_actions=0)
    assert lg.errors() == [] and fd.problems == []
    assert fd.uuid_secret == SECRET and fd.static_oob == STATIC and fd.oob_keypair == (PRIV, PUB)
    assert (fd.room, fd.floor) == (1207, 12)
    assert fd.config() == {"static_oob": STATIC, "oob_keypair": (PRIV, PUB), "hotel": {"floor": 12, "room": 1207},
                           "elements": 2, "algorithms": 2, "oob_required": True, "output_size": 4,
                           "output_actions": 8, "input_size": 0, "input_actions": 0}


def test_no_factory_data_gives_defaults_without_errors():
    for fd, lg in (load(), (factory.load(None), None)):
        assert fd.uuid_secret is None and fd.static_oob is None and fd.oob_keypair is None
        assert fd.room is None and fd.capabilities == {} and fd.config() == {} and fd.problems == []
        if lg:
            assert lg.errors() == [] and any("no rolling-UUID secret" in line for line in lg.lines)


def test_each_malformed_item_is_named_logged_and_dropped():
    cases = [
        ({"uuid_secret": SECRET[:15]}, "uuid_secret", "bad length"),
        ({"uuid_secret": bytes(65)}, "uuid_secret", "unreadable"),  # longer than any accepted: INVALID_LENGTH
        ({"static_oob": STATIC[:20]}, "static_oob", "bad length"),
        ({"static_oob": 5}, "static_oob", "unreadable"),  # an i32 where a blob belongs: TYPE_MISMATCH
        ({"oob_priv": PRIV}, "oob_priv/oob_pub", "pair"),
        ({"oob_priv": bytes(32), "oob_pub": PUB}, "oob_priv", "not a P-256 private key"),
        ({"oob_priv": b"\xff" * 32, "oob_pub": PUB}, "oob_priv", "not a P-256 private key"),
        ({"oob_priv": PRIV, "oob_pub": PUB[:63]}, "oob_pub", "bad length"),
        ({"room": 5}, "room/floor", "pair"),
        ({"room": -5, "floor": 1}, "room", "negative"),
        ({"floor": b"1", "room": 1}, "floor", "unreadable"),
        ({"elements": 0}, "elements", "out of range"),
        ({"algorithms": 4}, "algorithms", "out of range"),
        ({"algorithms": 1}, "algorithms", "out of range"),  # §5.4.1.2: a Provisionee shall set the HMAC bit
        ({"oob_required": 2}, "oob_required", "out of range"),
        ({"output_size": 9, "output_actions": 1}, "output_size", "out of range"),
        ({"input_actions": 0x10, "input_size": 1}, "input_actions", "out of range"),
        ({"output_size": 2}, "output_size/output_actions", "disagree"),
        ({"input_size": 0, "input_actions": 1}, "input_size/input_actions", "disagree"),
    ]
    for items, key, why in cases:
        fd, lg = load(**items)
        assert any(p.startswith(key) and why in p for p in fd.problems), (items, fd.problems)
        errors = lg.errors()
        assert errors and all("ignored, using the default" in e for e in errors), errors
        for v in items.values():  # the message names the item, never its value
            if not isinstance(v, int) and len(v) >= 16:
                assert all(hx(v) not in line for line in lg.lines)
        config = fd.config()  # the feature is off / the board's value stays
        first = key.split("/")[0]
        dropped = {"oob_priv": "oob_keypair", "oob_pub": "oob_keypair", "room": "hotel", "floor": "hotel"}
        assert dropped.get(first, first) not in config, (items, config)


def test_good_items_survive_bad_neighbours():
    fd, lg = load(uuid_secret=SECRET, static_oob=STATIC[:3], room=1, floor=2, elements=300, input_size=2,
                  input_actions=4)
    assert fd.uuid_secret == SECRET and fd.static_oob is None and fd.config()["hotel"] == {"floor": 2, "room": 1}
    assert fd.capabilities == {"input_size": 2, "input_actions": 4} and len(fd.problems) == 2


def test_repr_and_log_hold_no_secret():
    fd, lg = load(uuid_secret=SECRET, static_oob=STATIC, oob_priv=PRIV, oob_pub=PUB, room=3, floor=4)
    text = repr(fd) + "\n".join(lg.lines)
    assert fd.secrets_hex() == [hx(SECRET), hx(STATIC), hx(PRIV)]
    for s in fd.secrets_hex():
        assert s not in text.lower()
    assert "uuid_secret:yes" in repr(fd) and "static_oob:32" in repr(fd)


def test_config_is_accepted_by_the_provisionee():
    from mesh.provisionee import Provisionee

    class Store:
        def load(self):
            return None

    fd, _ = load(static_oob=STATIC, oob_priv=PRIV, oob_pub=PUB, room=3, floor=4, output_size=4,
                 output_actions=0x08, oob_required=1)
    p = Provisionee(fd.config(), Store(), keypair=(PRIV, PUB))
    assert p.static_oob == STATIC and p.oob_keypair == (PRIV, PUB) and p.hotel == {"floor": 4, "room": 3}
