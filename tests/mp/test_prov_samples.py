# The provisionee against the Mesh Protocol v1.1 §8.17.1 (CMAC, No OOB) and §8.17.2 (HMAC, static OOB) samples,
# end to end with the sample key pairs and randoms injected; plus the cooperative-crypto and key-pair flows.
from crypto_helpers import use_native
from mpunit import h, hx
from prov_helpers import drive, finish_crypto, sample, sample_device

from mesh import crypto
from mesh import prov_pdu as P
from mesh.provisionee import AUTH, COMPLETE, IDLE, PUBKEY, RANDOM

CMAC = sample("provisioning.txt")
HMAC = sample("provisioning_hmac.txt")


def _expected_device_pdus(v):
    return [bytes((P.CAPABILITIES,)) + h(v["ProvisioningCapabilities"]),
            bytes((P.PUBLIC_KEY,)) + h(v["PublicKeyDeviceX"] + v["PublicKeyDeviceY"]),
            bytes((P.CONFIRMATION,)) + h(v["ConfirmationDevice"]), bytes((P.RANDOM,)) + h(v["RandomDevice"]),
            bytes((P.COMPLETE,))]


def _check_record(p, v):
    r = p.store.record
    assert r == p.record
    assert hx(r["dev_key"]) == v["DevKey"]
    assert hx(r["net_key"]) == v["NetworkKey"]
    assert r["net_key_index"] == int(v["NetKeyIndex"], 16) and r["flags"] == int(v["Flags"], 16)
    assert r["iv_index"] == int(v["IVIndex"], 16) and r["address"] == int(v["UnicastAddress"], 16)
    assert r["elements"] == 1 and r["hotel"] is None


def test_8_17_1_cmac_no_oob_end_to_end():
    p = sample_device(CMAC)
    out = drive(p, CMAC["pdus"])
    assert out == _expected_device_pdus(CMAC)
    assert p.state == COMPLETE and p.is_provisioned
    _check_record(p, CMAC)
    assert p.store.saves == 1
    assert p._s is None  # session secrets dropped once complete
    assert ["complete", 0x0567, 0x0B0C] in p.app.events


def test_8_17_2_hmac_static_oob_end_to_end():
    p = sample_device(HMAC, {"static_oob": h(HMAC["AuthValue"])})
    out = drive(p, HMAC["pdus"])
    assert out == _expected_device_pdus(HMAC)
    assert p.state == COMPLETE
    _check_record(p, HMAC)


def test_capabilities_of_a_default_config_offer_both_algorithms():
    p = sample_device(CMAC, {})
    out = drive(p, CMAC["pdus"][:1])
    assert out == [h("01" + "01" + "0003" + "00" + "00" + "00" + "0000" + "00" + "0000")]


def test_attention_duration_is_reported():
    p = sample_device(CMAC)
    drive(p, [b"\x00\x05"])
    assert ["attention", 5] in p.app.events


def _attention(p):
    return [e for e in p.app.events if e[0] == "attention"]


def test_attention_timer_is_set_to_0_at_start_and_when_the_link_drops():
    # §5.4.2.3: "Upon receiving the Provisioning Start PDU [...] the Provisionee shall set the Attention Timers
    # present on the device to 0x00"; §5.4.2.2: the same "if the provisioning bearer is dropped"
    p = sample_device(CMAC, {"algorithms": P.ALGS_CMAC, "output_size": 1, "output_actions": P.OUTPUT_BLINK})
    drive(p, [b"\x00\x05"])
    assert _attention(p) == [["attention", 5]]
    drive(p, [h("020000020001")])  # Start, Output OOB blink: the attention stops before the count is shown
    assert _attention(p) == [["attention", 5], ["attention", 0]]
    assert p.app.events[-1][0] == "output_number"
    p = sample_device(CMAC)
    drive(p, [b"\x00\x05"])
    p.link_closed(10, 1)
    assert _attention(p) == [["attention", 5], ["attention", 0]]
    p = sample_device(CMAC)
    drive(p, [b"\x00\x05", b"\x02" + bytes(4) + b"\x01"])  # a refused Start: the attention stops too
    assert _attention(p)[-1] == ["attention", 0] and p.state == "failed"


def test_confirmation_arriving_during_ecdh_is_answered_when_ecdh_ends():
    p = sample_device(CMAC)
    drive(p, CMAC["pdus"][:2])
    p.receive(0, CMAC["pdus"][2])  # the provisioner's public key: ECDH starts, ours goes out at once
    assert p.take_outgoing() == [bytes((P.PUBLIC_KEY,)) + h(CMAC["PublicKeyDeviceX"] + CMAC["PublicKeyDeviceY"])]
    assert p.deadline() == 0 and p.state == AUTH
    p.receive(1, CMAC["pdus"][3])  # Confirmation before the ECDH finished
    assert p.take_outgoing() == []
    slices = finish_crypto(p, 2)
    assert slices > (0 if use_native(True) else 10)  # really cooperative: many bounded slices (C module: one)
    assert p.take_outgoing() == [bytes((P.CONFIRMATION,)) + h(CMAC["ConfirmationDevice"])]
    assert p.state == RANDOM
    drive(p, CMAC["pdus"][4:])
    _check_record(p, CMAC)


def test_key_pair_generated_while_beaconing_then_fresh_after_each_attempt():
    import prov_helpers

    prov_helpers.new("gen", {})
    p = prov_helpers.get("gen")
    assert p.deadline() == 0  # a key pair is being prepared before any link
    finish_crypto(p)
    first = p._keypair
    assert first is not None and p.deadline() is None
    p.link_open(0)
    drive(p, CMAC["pdus"][:3])  # our public key is sent
    p.link_closed(10, 2)
    assert p.state == IDLE and p._keypair is None and p.deadline() == 0
    finish_crypto(p)
    assert p._keypair is not None and p._keypair != first
    # an attempt that ended before our key went on air keeps the prepared pair
    second = p._keypair
    p.link_open(20)
    drive(p, CMAC["pdus"][:2])
    p.link_closed(30, 2)
    assert p._keypair == second and p.deadline() is None


def test_key_pair_deleted_once_the_ecdh_secret_is_computed():
    # §5.4.2.3: "After the ECDHSecret is computed, the Provisioner and the Provisionee shall delete its
    # private-public key pair that was generated in this step" (the factory OOB key pair is not generated here)
    p = sample_device(CMAC)
    p.receive(0, CMAC["pdus"][0])
    p.receive(0, CMAC["pdus"][1])
    p.receive(0, CMAC["pdus"][2])
    # our Public Key is on air: the pair now lives in the session only, its private half until the ECDH ends
    assert p._keypair is None and p._s.priv == h(CMAC["PrivateKeyDevice"]) and p._s.secret is None
    while p._s.secret is None:
        p.poll(0)
    assert p._s.priv is None and p._s.secret == h(CMAC["ECDHSecret"])
    drive(p, CMAC["pdus"][3:])
    _check_record(p, CMAC)


def test_public_key_arriving_before_key_generation_finishes_waits_for_it():
    import prov_helpers

    prov_helpers.new("late", {})
    p = prov_helpers.get("late")
    p.link_open(0)
    for pdu in CMAC["pdus"][:3]:  # key generation has not run yet
        p.receive(0, pdu)
    assert len(p.take_outgoing()) == 1 and p.state == AUTH and p.deadline() == 0  # Capabilities only
    finish_crypto(p)
    out = p.take_outgoing()
    assert len(out) == 1 and out[0][0] == P.PUBLIC_KEY and out[0][1:] == p._s.pub
    assert p._s.secret is not None and p._keypair is None  # the generated pair is gone once used (§5.4.2.3)
    assert crypto.p256_ecdh(h(CMAC["PrivateKeyProvisioner"]), p._s.pub) == p._s.secret  # the provisioner's view


def test_injected_key_pair_replaces_generation():
    import prov_helpers

    prov_helpers.new("inj", {})
    p = prov_helpers.get("inj")
    pair = (h(CMAC["PrivateKeyDevice"]), h(CMAC["PublicKeyDeviceX"] + CMAC["PublicKeyDeviceY"]))
    p.prepare_keypair(pair)
    assert p.deadline() is None and p._keypair == pair


def test_oob_public_key_uses_factory_key_pair_and_sends_none():
    pair = (h(CMAC["PrivateKeyDevice"]), h(CMAC["PublicKeyDeviceX"] + CMAC["PublicKeyDeviceY"]))
    p = sample_device(CMAC, {"algorithms": P.ALGS_CMAC, "oob_keypair": pair})
    p.prepare_keypair((h("11" * 32), h("22" * 64)))  # the ephemeral pair must not be used
    pdus = list(CMAC["pdus"])
    pdus[1] = h("020001000000")  # Start: OOB public key
    out = drive(p, pdus[:3])
    assert out[0][4] == P.PUBKEY_OOB and len(out) == 1  # Capabilities only: no Public Key PDU
    assert p.state == AUTH and p._s.secret == h(CMAC["ECDHSecret"])


def test_complete_is_sent_only_after_the_record_is_stored():
    p = sample_device(CMAC, fail_save=True)
    out = drive(p, CMAC["pdus"])
    assert out[-1] == bytes((P.FAILED, P.ERR_UNEXPECTED_ERROR))
    assert bytes((P.COMPLETE,)) not in out
    assert not p.is_provisioned and p.store.saves == 1 and p._s is None


def test_provisioned_device_refuses_links_until_reset():
    p = sample_device(CMAC)
    drive(p, CMAC["pdus"])
    p.link_closed(5, 0)
    assert p.state == IDLE and p.is_provisioned and not p.link_open(6)
    assert p.deadline() is None  # no key pair generation for a node
    p.reset()
    assert not p.is_provisioned and p.store.record is None and ["reset"] in p.app.events
    assert p.deadline() == 0 and p.link_open(7)


def test_link_refused_while_busy_or_on_a_disabled_bearer():
    from mesh.provisionee import BEARER_ADV, BEARER_GATT

    p = sample_device(CMAC)
    assert not p.link_open(1)
    p.link_closed(2, 0)
    p.disable(BEARER_GATT)
    assert not p.link_open(3, BEARER_GATT)
    assert p.link_open(3, BEARER_ADV)
    assert ["link_open", BEARER_ADV] in p.app.events
    p.link_closed(4, 1)
    assert ["link_close", BEARER_ADV, 1] in p.app.events


def test_manual_provisioning():
    import prov_helpers

    prov_helpers.new("manual", {})
    p = prov_helpers.get("manual")
    rec = {"net_key": bytes(16), "net_key_index": 0, "flags": 0, "iv_index": 0, "address": 5, "elements": 1,
           "dev_key": bytes(16), "hotel": None}
    p.provision(rec)
    assert p.is_provisioned and p.store.record == rec and ["complete", 0, 5] in p.app.events
    assert not p.link_open(0)


def test_state_after_start_is_pubkey():
    p = sample_device(CMAC)
    drive(p, CMAC["pdus"][:2])
    assert p.state == PUBKEY
