# Every malformed or out-of-order PDU class gets its Provisioning Failed code (as Zephyr sends them), leaves no key
# behind, and nothing more is accepted on that link; timeouts; Start checked against the Capabilities sent.
from mpunit import h, raises
from prov_helpers import drive, finish_crypto, new, get, sample, sample_device

from mesh import crypto
from mesh import prov_pdu as P
from mesh.provisionee import (AUTH, CLOSE_SUCCESS, CLOSE_TIMEOUT, COMPLETE, DATA, FAILED, IDLE, INVITE,
                              PUBKEY, RANDOM, START, Provisionee)

V = sample("provisioning.txt")
PDUS = V["pdus"]
KEYPAIR = (h(V["PrivateKeyDevice"]), h(V["PublicKeyDeviceX"] + V["PublicKeyDeviceY"]))
# the state reached after feeding the first k sample PDUs, and the type that state accepts
STATES = ((0, INVITE, P.INVITE), (1, START, P.START), (2, PUBKEY, P.PUBLIC_KEY), (3, AUTH, P.CONFIRMATION),
          (4, RANDOM, P.RANDOM), (5, DATA, P.DATA))
# a PDU of every type with a length that would be valid for it
ANY_PDU = {P.INVITE: b"\x00\x00", P.CAPABILITIES: b"\x01" + bytes(11), P.START: b"\x02" + bytes(5),
           P.PUBLIC_KEY: PDUS[2], P.INPUT_COMPLETE: b"\x04", P.CONFIRMATION: b"\x05" + bytes(16),
           P.RANDOM: b"\x06" + bytes(16), P.DATA: b"\x07" + bytes(33), P.COMPLETE: b"\x08", P.FAILED: b"\x09\x01"}


def _at(k, config=None, **kw):
    p = sample_device(V, config, **kw)
    drive(p, PDUS[:k])
    return p


def _fails_with(p, pdu, code):
    p.receive(0, pdu)
    finish_crypto(p)
    out = p.take_outgoing()
    assert out == [bytes((P.FAILED, code))], (out, code)
    _is_dead(p)
    assert ["failed", code] in p.app.events


def _is_dead(p):
    assert p.state == FAILED and p._s is None and not p.is_provisioned and p.store.record is None
    for pdu in PDUS + [b"\x0a"]:  # nothing further is accepted or answered on this link
        p.receive(1, pdu)
        finish_crypto(p)
        assert p.take_outgoing() == [] and p.state == FAILED


def test_unknown_types_are_invalid_pdu_in_every_state():
    for k, _, _ in STATES:
        for pdu in (b"", b"\x0a", b"\x0d\x00", b"\x3f", b"\x40\x00", b"\x80", b"\xff" + bytes(16)):
            _fails_with(_at(k), pdu, P.ERR_INVALID_PDU)


def test_every_type_out_of_order_is_unexpected_pdu():
    n = 0
    for k, state, accepted in STATES:
        for typ, pdu in ANY_PDU.items():
            if typ != accepted:
                p = _at(k)
                assert p.state == state
                _fails_with(p, pdu, P.ERR_UNEXPECTED_PDU)
                n += 1
    assert n == 54


def test_wrong_lengths_are_invalid_format():
    bad = {P.INVITE: (b"\x00", b"\x00\x00\x00"), P.START: (PDUS[1][:-1], PDUS[1] + b"\x00"),
           P.PUBLIC_KEY: (PDUS[2][:-1], PDUS[2] + b"\x00"),
           P.CONFIRMATION: (PDUS[3][:-1], PDUS[3] + b"\x00", PDUS[3] + bytes(16)),
           P.RANDOM: (PDUS[4][:-1], PDUS[4] + bytes(16)),
           P.DATA: (PDUS[5][:-1], PDUS[5] + b"\x00", PDUS[5] + bytes(12))}
    for k, _, typ in STATES:
        for pdu in bad[typ]:
            _fails_with(_at(k), pdu, P.ERR_INVALID_FORMAT)


LIMITED = {"algorithms": P.ALGS_CMAC, "static_oob": bytes(range(16)), "output_size": 4,
           "output_actions": P.OUTPUT_NUMERIC | P.OUTPUT_BLINK, "input_size": 2, "input_actions": P.INPUT_PUSH}


def test_start_not_matching_capabilities_is_invalid_format():
    for start in ("0100000000", "0200000000", "ff00000000", "0001000000", "0002000000", "0000040000", "00000001 00",
                  "0000000001", "0000010100", "0000010001", "0000020104", "0000020305", "0000020300", "0000020501",
                  "0000020309", "0000030201", "0000030003", "0000030401", "0000030000"):
        _fails_with(_at(1, LIMITED), b"\x02" + h(start), P.ERR_INVALID_FORMAT)


def test_start_matching_capabilities_is_accepted():
    for start in ("0000000000", "0000010000", "0000020304", "0000020001", "0000030002", "0000030001"):
        p = _at(1, LIMITED)
        p.receive(0, b"\x02" + h(start))
        assert p.state == PUBKEY and p.take_outgoing() == []


def test_static_oob_is_zero_padded_or_trimmed_to_the_authvalue():
    # §5.4.2.4.1, data type Binary: shorter than the AuthValue, "the remaining bits shall be set to 0"; longer,
    # "trimmed by removing octets with indexes higher than needed" (Zephyr pads and trims the same way)
    short, long_ = bytes(range(1, 17)), bytes(range(1, 33))
    for static, start, auth in ((short, "0100010000", short + bytes(16)), (short, "0000010000", short),
                                (long_, "0100010000", long_), (long_, "0000010000", long_[:16])):
        p = _at(1, {"static_oob": static})
        p.receive(0, b"\x02" + h(start))
        assert p.state == PUBKEY and p._s.auth == auth


def test_oob_required_drops_cmac_and_no_oob():
    p = _at(1, {"static_oob": bytes(16), "oob_required": True})  # HMAC only: the 16-byte value is padded
    p.receive(0, h("020100010000"))
    assert p.state == PUBKEY and p._s.auth == bytes(32)
    cfg = {"static_oob": bytes(32), "oob_required": True}
    p = _at(0, cfg)
    out = drive(p, PDUS[:1])
    assert out == [h("01" "01" "0002" "00" "03" "00" "0000" "00" "0000")]
    _fails_with(p, h("020000010000"), P.ERR_INVALID_FORMAT)
    _fails_with(_at(1, cfg), h("020100000000"), P.ERR_INVALID_FORMAT)
    p = _at(1, cfg)
    p.receive(0, h("020100010000"))
    assert p.state == PUBKEY


def test_bad_configurations_are_value_errors():
    for cfg in ({"oob_required": True}, {"static_oob": bytes(20)}, {"output_size": 9, "output_actions": 1},
                {"output_size": 2}, {"elements": 0}, {"elements": 256}, {"algorithms": 0},
                {"input_size": 1, "input_actions": 0x10}, {"oob_keypair": (bytes(32), bytes(32))}):
        raises(ValueError, Provisionee, cfg, None)


def test_invalid_provisioner_public_keys():
    x, y = h(V["PublicKeyProvisionerX"]), h(V["PublicKeyProvisionerY"])
    p_field = b"\xff\xff\xff\xff\x00\x00\x00\x01" + bytes(12) + b"\xff" * 12
    off_curve = (x + (int.from_bytes(y, "big") + 1).to_bytes(32, "big"), bytes(64), p_field + y, x + p_field)
    # §5.4.2.3: "When the Provisionee receives an invalid public key or a public key that is equal to the
    # Provisionee public key, then provisioning shall fail [...] and should indicate the Invalid Format Error Code"
    for key in off_curve:
        _fails_with(_at(2), b"\x03" + key, P.ERR_INVALID_FORMAT)
    # the device's own key reflected back
    _fails_with(_at(2), b"\x03" + h(V["PublicKeyDeviceX"] + V["PublicKeyDeviceY"]), P.ERR_INVALID_FORMAT)


def _failing_steps(exc, after):
    # A cooperative crypto generator that does `after` slices, then raises exc (a full heap, mbedTLS failing).
    def steps(*args):
        for _ in range(after):
            yield
        raise exc

    return steps


def test_ecdh_running_out_of_memory_is_out_of_resources_and_the_next_attempt_works():
    real = crypto.p256_ecdh_steps
    for exc, code in ((MemoryError(), P.ERR_OUT_OF_RESOURCES), (OSError(5), P.ERR_UNEXPECTED_ERROR)):
        for after in (0, 3):  # in the first slice (before our public key goes out) or mid-computation
            p = _at(2)
            crypto.p256_ecdh_steps = _failing_steps(exc, after)
            try:
                p.receive(0, PDUS[2])
                finish_crypto(p)
            finally:
                crypto.p256_ecdh_steps = real
            ours = [bytes((P.PUBLIC_KEY,)) + KEYPAIR[1]] if after else []
            assert p.take_outgoing() == ours + [bytes((P.FAILED, code))]
            _is_dead(p)
            assert ["failed", code] in p.app.events
            p.link_closed(0, 2)  # the provisioner closes the link; the next attempt's key pair is ready
            finish_crypto(p)
            assert p.state == IDLE and p._keypair is not None
            assert (p._keypair == KEYPAIR) == (not after)  # a new pair once ours went on air (§5.4.2.3)
    p = _at(6)  # then the same sample attempt goes through with the real ECDH
    assert p.state == COMPLETE and p.is_provisioned


def test_key_generation_failing_starts_over():
    real = crypto.p256_keypair_steps
    crypto.p256_keypair_steps = _failing_steps(MemoryError(), 2)
    try:
        new("kg", {})
        p = get("kg")
        for _ in range(3):
            p.poll(0)
        assert p.deadline() == 0 and p._keygen is not None and p._keypair is None
    finally:
        crypto.p256_keypair_steps = real
    p._keygen = None
    p.prepare_keypair()  # what the retry does, now with the real generator
    finish_crypto(p)
    assert p._keypair is not None and len(p._keypair[1]) == 64


def test_reflected_own_key_detected_when_key_pair_was_still_being_generated():
    private = bytes(range(1, 33))
    new("refl", {}, random=private)  # key generation will draw this private key
    p = get("refl")
    p.link_open(0)
    for pdu in PDUS[:2]:
        p.receive(0, pdu)
    p.take_outgoing()
    p.receive(0, b"\x03" + crypto.p256_public_key(private))  # before our pair exists
    assert p.take_outgoing() == [] and p.deadline() == 0
    finish_crypto(p)
    assert p.take_outgoing() == [bytes((P.FAILED, P.ERR_INVALID_FORMAT))]
    _is_dead(p)


def test_confirmation_and_random_checks():
    # §5.4.2.4.2 step 2: ConfirmationProvisioner equal to ConfirmationDevice "should indicate the Invalid Format
    # Error Code"; a reflected Random or a Confirmation not matching its Random is Confirmation Failed (step 4)
    _fails_with(_at(3), b"\x05" + h(V["ConfirmationDevice"]), P.ERR_INVALID_FORMAT)  # reflected confirmation
    _fails_with(_at(4), b"\x06" + h(V["RandomDevice"]), P.ERR_CONFIRMATION_FAILED)  # reflected random
    _fails_with(_at(4), b"\x06" + bytes(16), P.ERR_CONFIRMATION_FAILED)  # does not match its confirmation
    bad_conf = bytearray(PDUS[3])
    bad_conf[5] ^= 1
    p = _at(3)
    drive(p, [bytes(bad_conf)])
    _fails_with(p, PDUS[4], P.ERR_CONFIRMATION_FAILED)


def test_tampered_data_is_decryption_failed():
    for i in (1, 20, 26, 33):
        pdu = bytearray(PDUS[5])
        pdu[i] ^= 0x80
        _fails_with(_at(5), bytes(pdu), P.ERR_DECRYPTION_FAILED)


def _data(plain):
    return b"\x07" + crypto.aes_ccm_encrypt(h(V["SessionKey"]), h(V["SessionNonce"]), plain, 8)


def _plain(index=0x0567, flags=0, address=0x0B0C):
    return (h(V["NetworkKey"]) + index.to_bytes(2, "big") + bytes((flags,)) + h(V["IVIndex"])
            + address.to_bytes(2, "big"))


def test_data_sample_reencrypts():
    assert _data(_plain()) == PDUS[5]


def test_rejected_data_is_invalid_data():
    for plain in (_plain(index=0x1000), _plain(index=0xFFFF), _plain(flags=0x04), _plain(flags=0x80),
                  _plain(address=0), _plain(address=0x8000), _plain(address=0xFFFF)):
        _fails_with(_at(5), _data(plain), P.ERR_INVALID_DATA)
    # (the range for several elements changes the Capabilities, hence the sample: tests/test_provisionee_oracle.py)


def test_unicast_range_past_0x7fff_is_cannot_assign_addresses():
    # §5.4.1.10, Table 5.38: 0x08 Cannot Assign Addresses, "the device cannot assign consecutive unicast addresses
    # to all elements" (nRF5 SDK's provisionee answers the same); a primary address that is no unicast address at
    # all stays Invalid Data. The element count only matters to this check, so it is set after the Capabilities.
    for elements, address, code in ((2, 0x7FFF, P.ERR_CANNOT_ASSIGN_ADDRESSES),
                                    (3, 0x7FFE, P.ERR_CANNOT_ASSIGN_ADDRESSES),
                                    (255, 0x7F02, P.ERR_CANNOT_ASSIGN_ADDRESSES),
                                    (3, 0x8000, P.ERR_INVALID_DATA), (3, 0, P.ERR_INVALID_DATA)):
        p = _at(5)
        p.elements = elements
        _fails_with(p, _data(_plain(address=address)), code)
    for elements, address in ((3, 0x7FFD), (255, 0x7F01)):
        p = _at(5)
        p.elements = elements
        assert drive(p, [_data(_plain(address=address))]) == [b"\x08"] and p.store.record["address"] == address


def test_accepted_data_edges():
    for plain in (_plain(index=0x0FFF, flags=3, address=0x7FFF), _plain(address=1)):
        p = _at(5)
        out = drive(p, [_data(plain)])
        assert out == [b"\x08"] and p.state == COMPLETE
        assert p.store.record["flags"] == plain[18] and p.store.record["net_key_index"] == plain[16] << 8 | plain[17]


def test_protocol_timeout_60_s_since_last_pdu():
    p = _at(0)
    p.poll(59999)
    assert p.close_reason is None and p.deadline() == 60000
    p.receive(50000, PDUS[0])  # Invite restarts the timer
    p.poll(60001)
    assert p.close_reason is None and p.deadline() == 110000
    p.poll(110000)
    assert p.close_reason == CLOSE_TIMEOUT and p.state == FAILED and p._s is None
    assert p.take_outgoing() == [p.capabilities]  # no Failed PDU on a timeout (as Zephyr)
    p.link_closed(110001, CLOSE_TIMEOUT)
    assert p.state == IDLE and p.close_reason is None


def test_input_oob_no_answer_within_120_s_fails():
    # §5.4.4: with Output or Input OOB the provisioning timer is at least 120 s, "to allow sufficient time for
    # users to interact" (60 s otherwise); the Start itself already runs the longer timer
    cfg = {"algorithms": P.ALGS_CMAC, "input_size": 4, "input_actions": P.INPUT_NUMERIC}
    p = _at(1, cfg)
    drive(p, [h("020000030204")], now=10)
    assert ["input", P.INPUT_NUMERIC, 4] in p.app.events and p.deadline() == 120010
    drive(p, PDUS[2:3], now=20)  # our Public Key goes out at t=20
    p.poll(120019)
    assert p.close_reason is None
    p.poll(120020)
    assert p.close_reason == CLOSE_TIMEOUT and p._s is None
    raises(ValueError, p.input_number, 1234)


def test_output_oob_timer_is_120_s_and_other_methods_60_s():
    cfg = {"algorithms": P.ALGS_CMAC, "output_size": 2, "output_actions": P.OUTPUT_BLINK, "static_oob": bytes(16)}
    for start, timeout in (("0000020002", 120000), ("0000010000", 60000), ("0000000000", 60000)):
        p = _at(1, cfg)
        drive(p, [h("02" + start), PDUS[2]], now=100)
        assert p.deadline() == 100 + timeout, start
        p.poll(99 + timeout)
        assert p.close_reason is None
        p.poll(100 + timeout)
        assert p.close_reason == CLOSE_TIMEOUT


def test_timer_after_failed_and_after_complete():
    p = _at(0)
    _fails_with(p, b"\x0a", P.ERR_INVALID_PDU)
    p.poll(60000)  # the provisioner never closed after our Failed: §5.4.4, "disconnected with the Timeout reason"
    assert p.close_reason == CLOSE_TIMEOUT
    p = _at(0)
    drive(p, PDUS, now=100)
    assert p.state == COMPLETE and p.deadline() == 60100
    p.poll(60100)
    assert p.close_reason == CLOSE_SUCCESS and p.state == COMPLETE and p.is_provisioned


def test_input_oob_answer_before_key_exchange_sends_input_complete_after_our_key():
    cfg = {"algorithms": P.ALGS_CMAC, "input_size": 4, "input_actions": P.INPUT_NUMERIC | P.INPUT_ALPHANUMERIC}
    p = _at(1, cfg)
    p.app.answer = 1234  # the app answers inside its input() callback
    drive(p, [h("020000030204")])
    assert p.take_outgoing() == []
    # a Confirmation before Input Complete is out of order
    q = _at(1, cfg)
    drive(q, [h("020000030204"), PDUS[2]])
    _fails_with(q, PDUS[3], P.ERR_UNEXPECTED_PDU)
    out = drive(p, PDUS[2:3])
    assert [o[0] for o in out] == [P.PUBLIC_KEY, P.INPUT_COMPLETE]
    assert p._s.auth == (1234).to_bytes(16, "big")


def test_input_value_checks():
    cfg = {"algorithms": P.ALGS_CMAC | P.ALGS_HMAC, "input_size": 3,
           "input_actions": P.INPUT_NUMERIC | P.INPUT_ALPHANUMERIC}
    p = _at(1, cfg)
    raises(ValueError, p.input_number, 1)  # nothing asked yet
    drive(p, [h("020100030203")])
    raises(ValueError, p.input_string, "ABC")  # a number was asked
    raises(ValueError, p.input_number, 1000)
    raises(ValueError, p.input_number, -1)
    p.input_number(999)
    assert p._s.auth == (999).to_bytes(32, "big")
    raises(ValueError, p.input_number, 5)  # answered already
    q = _at(1, cfg)
    drive(q, [h("020000030303")])
    for bad in ("", "ABCD", "A-C", "É"):
        raises(ValueError, q.input_string, bad)
    q.input_string("a9z")
    assert q._s.auth == b"A9Z" + bytes(13)


def test_output_oob_values():
    cfg = {"algorithms": P.ALGS_CMAC | P.ALGS_HMAC, "output_size": 8, "output_actions": 0x1F}
    for random, start, event, auth in (
            (bytes(8), "0000020001", ["output_number", P.OUTPUT_BLINK, 1], (1).to_bytes(16, "big")),  # never 0
            (bytes(8), "0000020203", ["output_number", P.OUTPUT_VIBRATE, 1], (1).to_bytes(16, "big")),
            (bytes(8), "0000020302", ["output_number", P.OUTPUT_NUMERIC, 0], bytes(16)),
            (b"\xff" * 8, "0100020308", ["output_number", P.OUTPUT_NUMERIC, 0xFFFFFFFFFFFFFFFF % 10 ** 8],
             (0xFFFFFFFFFFFFFFFF % 10 ** 8).to_bytes(32, "big")),
            (b"\xff" * 8, "0000020101", ["output_number", P.OUTPUT_BEEP, 1 + 0xFFFFFFFFFFFFFFFF % 9],
             (1 + 0xFFFFFFFFFFFFFFFF % 9).to_bytes(16, "big")),
            (bytes(8), "0100020404", ["output_string", "0000"], b"0000" + bytes(28))):
        new("out", dict(cfg), keypair=KEYPAIR, random=random)
        p = get("out")
        p.link_open(0)
        drive(p, [PDUS[0], b"\x02" + h(start)])
        assert p.app.events[-1] == event, (p.app.events, event)
        assert p._s.auth == auth
    # alphanumeric: upper-case letters and digits, the requested size
    new("alnum", dict(cfg))
    p = get("alnum")
    p.link_open(0)
    drive(p, [PDUS[0], h("020000020408")])
    text = p.app.events[-1][1]
    assert len(text) == 8 and all(c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" for c in text)


def test_input_complete_callback_when_the_provisioner_confirms():
    cfg = {"algorithms": P.ALGS_CMAC, "output_size": 1, "output_actions": P.OUTPUT_BLINK}
    p = _at(1, cfg)
    drive(p, [h("020000020001"), PDUS[2]])
    assert ["input_complete"] not in p.app.events
    drive(p, PDUS[3:4])
    assert ["input_complete"] in p.app.events


def test_app_exceptions_do_not_break_the_protocol():
    class Broken:
        def attention(self, s):
            raise RuntimeError("app bug")

    new("broken", {"algorithms": P.ALGS_CMAC})
    p = get("broken")
    p.app = Broken()
    finish_crypto(p)
    p.link_open(0)
    assert drive(p, PDUS[:1])[0][0] == P.CAPABILITIES


def test_link_loss_mid_attempt_drops_secrets_and_ignores_late_pdus():
    p = _at(4)
    p.link_closed(5, 1)
    assert p.state == IDLE and p._s is None and p.store.record is None
    p.receive(6, PDUS[4])
    assert p.take_outgoing() == []
