# Provisioning protocol, device side (Mesh Protocol v1.1 §5.4.2), sans-I/O and bearer-agnostic.
# A bearer (PB-ADV or PB-GATT) feeds whole Provisioning PDUs and time; the core answers with PDUs, a deadline and,
# when the link must end, a close reason. ECDH and key generation run as cooperative slices in poll().
# Usage and the decisions taken where the spec is silent: docs/provisioning.md.
import os

from mesh import const, crypto, log, prov_pdu as P

_PROTOCOL_TIMEOUT_MS = const(60000)  # §5.4.4: the attempt fails 60 s after the last PDU sent or received,
USER_TIMEOUT_MS = const(120000)  # or 120 s once Start chose Output or Input OOB, time for the user (§5.4.4)
# Link close reasons asked of the bearer (§5.3.1.4.3, Table 5.8, PB-ADV Link Close)
CLOSE_SUCCESS = const(0x00)
CLOSE_TIMEOUT = const(0x01)
CLOSE_FAIL = const(0x02)
# Provisioning bearers, as Zephyr's bt_mesh_prov_bearer_t
BEARER_ADV = const(0x01)
BEARER_GATT = const(0x02)

_ADDR_UNICAST_MAX = const(0x7FFF)  # §3.4.2.2
_LEN_PLAIN = const(25)  # Provisioning Data (§5.4.1.8, §5.4.2.5): 25 encrypted octets, then the 8-octet MIC
_LEN_MIC = const(8)
_LEN_DATA = const(_LEN_PLAIN + _LEN_MIC)
_ALNUM = const("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")  # §5.4.2.4: alphanumeric OOB characters
_TAG = const("prov")

# States. The PDU each one accepts is in _EXPECT (as h11 keeps its state table apart from the code).
IDLE = "idle"  # no link: beaconing
INVITE = "invite"  # link open
START = "start"  # Capabilities sent
PUBKEY = "pubkey"  # Start accepted
AUTH = "auth"  # public keys exchanged: ECDH, OOB input and the provisioner's Confirmation
RANDOM = "random"  # our Confirmation sent
DATA = "data"  # our Random sent
COMPLETE = "complete"  # Complete sent: provisioned, waiting for the link to close
FAILED = "failed"  # Failed sent: nothing more is accepted on this link
_EXPECT = {INVITE: P.INVITE, START: P.START, PUBKEY: P.PUBLIC_KEY, AUTH: P.CONFIRMATION, RANDOM: P.RANDOM,
           DATA: P.DATA}


class _Session:
    # Everything secret about one attempt; dropped whole (Provisionee._s = None) when the attempt ends.
    def __init__(self):
        self.inputs = bytearray()  # ConfirmationInputs (§5.4.2.4.1): Invite||Capabilities||Start||PKprov||PKdev
        self.hmac = False  # Start chose BTM_ECDH_P256_HMAC_SHA256_AES_CCM (else the CMAC algorithm)
        self.method = self.size = 0
        self.auth_size = 16
        self.oob_key = False  # Start chose the OOB public key: the factory key pair is used
        self.priv = self.pub = self.peer = None
        self.ecdh = None  # the running cooperative ECDH, then None
        self.secret = None  # ECDHSecret
        self.auth = None  # AuthValue; None while the user has not entered the input OOB value
        self.waiting = 0  # Input OOB action bit the app was asked for, until input_number/input_string
        self.keys_done = False  # the provisioner's key arrived and ours is sent (or OOB)
        self.input_sent = False  # Input Complete sent
        self.notify = False  # call app.input_complete() when the provisioner's Confirmation arrives
        self.conf_prov = None
        self.rand = self.salt = self.conf_key = None


class Provisionee:
    """Device side of provisioning.

    config: dict, see docs/provisioning.md: elements, algorithms, oob_required, static_oob, oob_keypair,
            output_size, output_actions, input_size, input_actions, hotel.
    store:  save(record) (returns once durable, OSError on failure), load(), erase().
    rand:   n -> bytes. Used, in order, for the Output OOB value (at Start) and our Random (after the
            provisioner's Confirmation), and for key pairs unless one is injected with `keypair`/prepare_keypair().
    app:    any object; the callbacks it has are called (docs/provisioning.md).
    """

    def __init__(self, config, store, rand=os.urandom, app=None, keypair=None):
        self._config(config)
        self.store, self.rand, self.app = store, rand, app
        self.bearers = BEARER_ADV | BEARER_GATT
        self.state = IDLE
        self.close_reason = None
        self.bearer = None
        self._s = None
        self._out = []
        self._timer = None
        self._now = 0
        self._keypair = None  # the next attempt's key pair (private32, public64)
        self._keygen = None  # cooperative key generation while beaconing
        self.record = store.load()
        if not self.is_provisioned:
            self.prepare_keypair(keypair)

    def _config(self, c):
        self.elements = c.get("elements", 1)
        self.static_oob = c.get("static_oob")
        self.oob_keypair = c.get("oob_keypair")
        self.hotel = c.get("hotel")
        algs = c.get("algorithms", P.ALGS_CMAC | P.ALGS_HMAC)
        oob = P.OOB_STATIC_AVAILABLE if self.static_oob else 0
        self.oob_required = c.get("oob_required", False)
        if self.oob_required:  # as Zephyr's CONFIG_BT_MESH_OOB_AUTH_REQUIRED: no CMAC, no No-OOB
            algs &= ~P.ALGS_CMAC
            oob |= P.OOB_AUTH_REQUIRED
        out_size, out_act = c.get("output_size", 0), c.get("output_actions", 0)
        in_size, in_act = c.get("input_size", 0), c.get("input_actions", 0)
        if (self.static_oob is not None and len(self.static_oob) not in (16, 32)
                or self.oob_keypair and (len(self.oob_keypair[0]), len(self.oob_keypair[1])) != (32, 64)
                or self.oob_required and not (self.static_oob or out_size or in_size)):
            raise ValueError("provisioning config")
        self.algorithms, self._output, self._input = algs, (out_size, out_act), (in_size, in_act)
        self.capabilities = P.capabilities(self.elements, algs, P.PUBKEY_OOB if self.oob_keypair else 0, oob,
                                           out_size, out_act, in_size, in_act)

    # ---- key pair (§5.4.2.3): fresh for every attempt, prepared ahead while beaconing ----
    def prepare_keypair(self, keypair=None):
        """Install `keypair` (private32, public64) for the next attempt, or start generating one in poll() slices
        if there is none. Called by the core itself after every attempt whose public key went on air."""
        if keypair is not None:
            self._keypair, self._keygen = (bytes(keypair[0]), bytes(keypair[1])), None
        elif self._keypair is None and self._keygen is None:
            self._keygen = crypto.p256_keypair_steps(self.rand)

    @property
    def is_provisioned(self):
        return self.record is not None

    # ---- bearer interface ----
    def enable(self, bearers):
        self.bearers |= bearers

    def disable(self, bearers):
        self.bearers &= ~bearers

    def link_open(self, now_ms, bearer=None):
        """A bearer opened a link. False (refuse it) if provisioned, busy, or that bearer is disabled."""
        if self.is_provisioned or self.state != IDLE or bearer is not None and not self.bearers & bearer:
            return False
        self._now = now_ms
        self.state, self.bearer, self.close_reason = INVITE, bearer, None
        self._s = _Session()
        self._restart_timer()
        log.info(_TAG, "link open")
        self._call("link_open", bearer)
        return True

    def link_closed(self, now_ms, reason):
        """The bearer's link ended: the attempt is over whatever its state; back to beaconing unless provisioned."""
        if self.state == IDLE:
            return
        self._now = now_ms
        log.info(_TAG, "link closed (%d) in state %s", reason, self.state)
        self._end()
        self.state, self.close_reason, self._timer, self._out = IDLE, None, None, []
        bearer, self.bearer = self.bearer, None
        self._call("link_close", bearer, reason)

    def take_outgoing(self):
        out, self._out = self._out, []
        return out

    def deadline(self):
        if self._keygen is not None or self._s is not None and self._s.ecdh is not None:
            return 0  # crypto pending: poll() again as soon as the radio allows
        return self._timer

    def poll(self, now_ms):
        self._now = now_ms
        if self._timer is not None and now_ms >= self._timer:  # the provisioning timer (§5.4.4) ran out
            self._timer = None
            if self.state == COMPLETE:
                self.close_reason = CLOSE_SUCCESS
            else:
                log.error(_TAG, "provisioning timed out in state %s", self.state)
                self.close_reason = CLOSE_TIMEOUT  # §5.4.4, also when our Failed was never answered by a close
                self._end()
                self.state = FAILED
        s = self._s
        if s is not None and s.ecdh is not None:
            self._ecdh_step(s)
        elif self._keygen is not None:
            try:
                next(self._keygen)
            except StopIteration as e:
                self._keypair, self._keygen = e.value, None
                if s is not None and s.peer is not None and s.priv is None:
                    self._begin_ecdh(s)
            except (MemoryError, OSError) as e:  # start again: a dead generator would stall every attempt
                log.error(_TAG, "key generation failed: %r", e)
                self._keygen = crypto.p256_keypair_steps(self.rand)

    def receive(self, now_ms, pdu):
        """One complete Provisioning PDU from the provisioner."""
        if self.state in (IDLE, COMPLETE, FAILED):
            return  # no link, or the attempt is over: ignore (§5.4.4)
        self._now = now_ms
        s = self._s
        try:
            typ, params = P.split(pdu)
            # AUTH takes the provisioner's Confirmation once, after the public keys (and our Input Complete)
            if typ != _EXPECT.get(self.state) or self.state == AUTH and not (
                    s.keys_done and s.conf_prov is None and (s.method != P.AUTH_INPUT or s.input_sent)):
                raise P.ProvError(P.ERR_UNEXPECTED_PDU)
            if typ == P.INVITE:
                self._on_invite(s, params)
            elif typ == P.START:
                self._on_start(s, params)
            elif typ == P.PUBLIC_KEY:
                self._on_public_key(s, params)
            elif typ == P.CONFIRMATION:
                self._on_confirmation(s, params)
            elif typ == P.RANDOM:
                self._on_random(s, params)
            else:
                self._on_data(s, params)
        except P.ProvError as e:
            self._fail(e.code)
        self._restart_timer()  # after the PDU: a Start choosing Output/Input OOB already gets 120 s

    # ---- application interface (as Zephyr's bt_mesh_input_number / bt_mesh_input_string) ----
    def input_number(self, number):
        s = self._s
        if s is None or not 0 < s.waiting < P.INPUT_ALPHANUMERIC:  # push, twist or numeric
            raise ValueError("no number expected")
        if not 0 <= number < 10 ** s.size:
            raise ValueError("number out of range")
        s.auth = number.to_bytes(s.auth_size, "big")
        self._input_done(s)

    def input_string(self, string):
        s = self._s
        if s is None or s.waiting != P.INPUT_ALPHANUMERIC:
            raise ValueError("no string expected")
        string = string.upper()
        if not 1 <= len(string) <= s.size or any(ch not in _ALNUM for ch in string):
            raise ValueError("1..%d characters 0-9 A-Z" % s.size)
        s.auth = string.encode() + bytes(s.auth_size - len(string))
        self._input_done(s)

    def provision(self, record):
        """Manual provisioning (tests, bring-up), as Zephyr's bt_mesh_provision(): store `record` and become a
        node without the protocol. ValueError if provisioned or a link is open; OSError from the store."""
        if self.is_provisioned or self.state != IDLE:
            raise ValueError("already provisioned or busy")
        self.store.save(record)
        self.record = record
        self._keypair = self._keygen = None
        self._call("complete", record["net_key_index"], record["address"])

    def reset(self):
        """Node reset: erase the stored keys, drop any attempt, back to unprovisioned with a fresh key pair."""
        self.store.erase()
        self.record = None
        if self.state != IDLE:
            self._end()
            self.state, self.close_reason = FAILED, CLOSE_FAIL
        self._keypair, self._keygen = None, None
        self.prepare_keypair()
        self._call("reset")

    # ---- protocol steps ----
    def _on_invite(self, s, params):
        P.check_len(params, P.LEN_INVITE)
        s.inputs += params
        self._send(self.capabilities)
        s.inputs += self.capabilities[1:]
        self.state = START
        self._call("attention", params[0])  # §5.4.1.1 Attention Timer, seconds

    def _on_start(self, s, params):
        alg, key, method, action, size = P.decode_start(params)
        auth_size = 16 << alg  # AuthValue, Random, Confirmation: 128 bits with CMAC, 256 with HMAC (§5.4.2.4.1)
        bit = 1 << action
        if not (self.algorithms >> alg & 1 and (key == P.PUBKEY_NO_OOB or self.oob_keypair)
                and not (method == P.AUTH_NO_OOB and self.oob_required)
                and (method != P.AUTH_STATIC or self.static_oob)
                and (method != P.AUTH_OUTPUT or self._output[1] & bit and size <= self._output[0])
                and (method != P.AUTH_INPUT or self._input[1] & bit and size <= self._input[0])):
            raise P.ProvError(P.ERR_INVALID_FORMAT)  # Start does not match the Capabilities we sent (§5.4.1.3)
        s.inputs += params
        s.hmac, s.auth_size, s.method, s.size = alg == P.ALG_HMAC, auth_size, method, size
        s.oob_key = key == P.PUBKEY_OOB
        self.state = PUBKEY
        self._call("attention", 0)  # §5.4.2.3: Start sets the Attention Timer to 0
        log.info(_TAG, "start: algorithm %d, OOB key %d, auth method %d", alg, key, method)
        if method <= P.AUTH_STATIC:  # No OOB: zeros; Static OOB (data type Binary, §5.4.2.4.1): the value
            s.auth = ((bytes(self.static_oob) if method else b"") + bytes(32))[:auth_size]  # zero-padded/trimmed
        elif method == P.AUTH_OUTPUT:
            s.notify = True
            n = int.from_bytes(self.rand(8), "big")
            if bit == P.OUTPUT_ALPHANUMERIC:
                # base-36 digits of a 64-bit random (as Zephyr): 36^8 < 2^64, the bias is below 2^-22
                text = ""
                for _ in range(size):
                    text += _ALNUM[n % 36]
                    n //= 36
                s.auth = text.encode() + bytes(auth_size - size)
                self._call("output_string", text)
            else:
                # Blink, beep and vibrate (the bits below Output Numeric, Table 5.24) count: never 0 (§5.4.2.4)
                n = 1 + n % (10 ** size - 1) if bit < P.OUTPUT_NUMERIC else n % 10 ** size
                s.auth = n.to_bytes(auth_size, "big")
                self._call("output_number", bit, n)
        else:
            s.waiting = bit
            self._call("input", bit, size)

    def _on_public_key(self, s, params):
        P.check_len(params, P.LEN_PUBLIC_KEY)
        peer = bytes(params)
        own = self.oob_keypair[1] if s.oob_key else self._keypair and self._keypair[1]
        if peer == own:
            raise P.ProvError(P.ERR_INVALID_FORMAT)  # a reflected key (Zephyr: "Public keys are identical")
        s.peer = peer
        s.inputs += peer
        self.state = AUTH
        if s.oob_key:
            s.priv, s.pub = self.oob_keypair
            s.inputs += s.pub
        if s.oob_key or self._keypair is not None:
            self._begin_ecdh(s)
        # else: poll() finishes generating our key pair first

    def _begin_ecdh(self, s):
        if s.priv is None:
            s.priv, s.pub = self._keypair
        s.ecdh = crypto.p256_ecdh_steps(s.priv, s.peer)
        if not self._ecdh_step(s):  # the first slice validates the provisioner's point
            return
        if not s.oob_key:
            if s.peer == s.pub:
                return self._fail(P.ERR_INVALID_FORMAT)
            self._send(P.pdu(P.PUBLIC_KEY, s.pub))
            s.inputs += s.pub
            self._keypair = None  # on air: it lives in this session only, never serves another attempt
        s.keys_done = True
        if s.auth is not None and s.method == P.AUTH_INPUT:
            self._send_input_complete(s)

    def _ecdh_step(self, s):
        try:
            next(s.ecdh)
        except StopIteration as e:
            # §5.4.2.3: once ECDHSecret is computed, the key pair generated for this attempt is deleted
            s.ecdh, s.secret, s.priv = None, e.value, None
            if s.conf_prov is not None:
                self._send_confirmation(s)
        except ValueError:  # not a P-256 point: Invalid Format, as §5.4.2.3 asks (Zephyr: Unexpected Error)
            self._fail(P.ERR_INVALID_FORMAT)
            return False
        except MemoryError:  # a heap too full or fragmented to finish: Out of Resources (§5.4.1.10, Table 5.38)
            self._fail(P.ERR_OUT_OF_RESOURCES)
            return False
        except OSError as e:  # the C module's mbedTLS failed
            log.error(_TAG, "ECDH failed: %r", e)
            self._fail(P.ERR_UNEXPECTED_ERROR)
            return False
        return True

    def _input_done(self, s):
        s.waiting = 0
        if s.keys_done:
            self._send_input_complete(s)

    def _send_input_complete(self, s):
        self._send(P.pdu(P.INPUT_COMPLETE))
        s.input_sent = True

    def _on_confirmation(self, s, params):
        P.check_len(params, s.auth_size)
        s.conf_prov = bytes(params)
        if s.notify:  # the provisioner finished entering our Output OOB value: the app may stop showing it
            s.notify = False
            self._call("input_complete")
        if s.secret is not None:
            self._send_confirmation(s)
        # else: poll() finishes the ECDH first

    def _confirm(self, s, random):
        if s.hmac:  # §5.4.2.4.2
            return crypto.hmac_sha256(s.conf_key, random)
        return crypto.aes_cmac(s.conf_key, random + s.auth)  # §5.4.2.4.1

    def _send_confirmation(self, s):
        if s.hmac:
            s.salt = crypto.s2(s.inputs)
            s.conf_key = crypto.k5(s.secret + s.auth, s.salt, b"prck256")
        else:
            s.salt = crypto.s1(s.inputs)
            s.conf_key = crypto.k1(s.secret, s.salt, b"prck")
        s.rand = bytes(self.rand(s.auth_size))
        conf = self._confirm(s, s.rand)
        if conf == s.conf_prov:  # the provisioner reflected our value: Invalid Format (§5.4.2.4.2 step 2)
            return self._fail(P.ERR_INVALID_FORMAT)
        self._send(P.pdu(P.CONFIRMATION, conf))
        self.state = RANDOM

    def _on_random(self, s, params):
        P.check_len(params, s.auth_size)
        rand_prov = bytes(params)
        if rand_prov == s.rand or self._confirm(s, rand_prov) != s.conf_prov:
            raise P.ProvError(P.ERR_CONFIRMATION_FAILED)
        s.salt = crypto.s1(s.salt + rand_prov + s.rand)  # ProvisioningSalt (§5.4.2.5)
        self._send(P.pdu(P.RANDOM, s.rand))
        self.state = DATA

    def _on_data(self, s, params):
        P.check_len(params, _LEN_DATA, _LEN_DATA + 12 if self.hotel else _LEN_DATA)
        try:
            plain = crypto.aes_ccm_decrypt(crypto.k1(s.secret, s.salt, b"prsk"),
                                           crypto.k1(s.secret, s.salt, b"prsn")[3:], bytes(params), _LEN_MIC)
        except ValueError:
            raise P.ProvError(P.ERR_DECRYPTION_FAILED)
        net_key, index, flags, iv_index, address = P.decode_data(plain)
        if address > _ADDR_UNICAST_MAX + 1 - self.elements:  # §5.4.1.10 Table 5.38: no unicast for every element
            raise P.ProvError(P.ERR_CANNOT_ASSIGN_ADDRESSES)
        record = {"net_key": net_key, "net_key_index": index, "flags": flags, "iv_index": iv_index,
                  "address": address, "elements": self.elements, "dev_key": crypto.k1(s.secret, s.salt, b"prdk"),
                  "hotel": self._hotel(plain[_LEN_PLAIN:])}
        try:
            self.store.save(record)
        except OSError as e:
            log.error(_TAG, "store failed: %s", e)
            raise P.ProvError(P.ERR_UNEXPECTED_ERROR)
        self._send(P.pdu(P.COMPLETE))  # only now: the keys are durable
        self.record, self.state, self._s = record, COMPLETE, None
        self._keypair = self._keygen = None
        log.info(_TAG, "provisioned: address 0x%04x, NetKey Index %d", address, index)
        self._call("complete", index, address)

    def _hotel(self, extra):
        # Hotel extension (docs/provisioning.md): [MHKey 4][FloorKey 4][RoomKey 4] after the standard fields.
        h = self.hotel
        if not extra:
            if h and h.get("required"):
                raise P.ProvError(P.ERR_INVALID_DATA)
            return None
        mh, floor_key, room_key = extra[:4], extra[4:8], extra[8:12]
        if (bytes(a ^ b for a, b in zip(mh, h["floor"].to_bytes(4, "big"))) != floor_key
                or crypto.hmac_sha256(mh, h["room"].to_bytes(4, "big"))[:4] != room_key):
            raise P.ProvError(P.ERR_INVALID_DATA)
        return {"mh_key": mh, "floor_key": floor_key, "room_key": room_key}

    # ---- endings ----
    def _fail(self, code):
        log.error(_TAG, "provisioning failed: error 0x%02x in state %s", code, self.state)
        self._send(P.failed(code))
        self._end()
        self.state = FAILED  # §5.4.4: wait for the provisioner to close the link
        self._call("failed", code)

    def _end(self):
        # Drop every session secret; the next attempt gets a new key pair if ours went on air.
        if self.state == START:  # the Invite's attention may still run: off when the attempt ends (§5.4.2.2)
            self._call("attention", 0)
        self._s = None
        if not self.is_provisioned:
            self.prepare_keypair()

    def _restart_timer(self):
        s = self._s
        self._timer = self._now + (USER_TIMEOUT_MS if s and s.method >= P.AUTH_OUTPUT else _PROTOCOL_TIMEOUT_MS)

    def _send(self, pdu):
        self._out.append(pdu)
        if self.state not in (IDLE, FAILED):
            self._restart_timer()

    def _call(self, name, *args):
        fn = getattr(self.app, name, None)
        if fn is not None:
            try:
                fn(*args)
            except Exception as e:  # an app bug must not break the protocol
                log.error(_TAG, "app.%s raised %s", name, type(e).__name__)
