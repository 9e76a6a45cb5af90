"""The provisioning protocol, provisioner side (Mesh Protocol v1.1 §5.4), sans-I/O, in CPython on pyca/cryptography.

Written from the specification, independently of lib/mesh (it never imports `mesh`): it is the oracle the device's
provisionee is tested against, and the core of the host provisioner (CLI, database and bearer clients sit on top).

    p = Provisioner(net_key, net_key_index, iv_index, address)   # what the device will be given
    p.start()                          # queue the Invite
    p.receive(pdu)                     # one Provisioning PDU from the device (type octet + parameters)
    p.take_outgoing() -> [pdu, ...]    # Provisioning PDUs to send, in order
    p.state                            # "capabilities", "pubkey", "auth", "confirmation", "random", "data",
                                       # then "complete" or "failed"
    p.close_reason                     # set when the link should be closed (CLOSE_SUCCESS / CLOSE_FAIL)
    p.error / p.failed_code            # why it failed: our own reason, or the device's Provisioning Failed code
    p.result                           # after Complete: the data sent, the device's element count and the DevKey

Authentication is chosen from the device's Capabilities by `choose` (default `choose_start`, strongest first) or
given as a Start tuple (algorithm, public_key, method, action, size). Output OOB (the device shows a value, the
user reads it): `on_request(action_bit, size)` returns the value (int or str), or None and the caller later calls
`p.auth_value(value)`. Input OOB (the user enters on the device what we show): `on_display(action_bit, value)`.
Injection for spec sample data: `private_key=` (32 bytes) and `rand=` (n -> bytes, used for the Random and for
Input OOB values). The caller applies the protocol timeout since the last PDU: `p.timeout_ms`, 60 s, or 120 s once
the Start chose Output or Input OOB (§5.4.4).
"""

import os

from cryptography.hazmat.primitives import cmac, hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

PROTOCOL_TIMEOUT_MS = 60_000  # §5.4.4: the provisioning timer, at least 60 s
USER_TIMEOUT_MS = 120_000  # §5.4.4: at least 120 s once Start chose Output or Input OOB, time for the user

# §5.4.1 PDU types
INVITE, CAPABILITIES, START, PUBLIC_KEY, INPUT_COMPLETE = 0x00, 0x01, 0x02, 0x03, 0x04
CONFIRMATION, RANDOM, DATA, COMPLETE, FAILED = 0x05, 0x06, 0x07, 0x08, 0x09
# §5.4.1.10 Provisioning Failed error codes
ERROR_NAMES = {0x01: "Invalid PDU", 0x02: "Invalid Format", 0x03: "Unexpected PDU", 0x04: "Confirmation Failed",
               0x05: "Out of Resources", 0x06: "Decryption Failed", 0x07: "Unexpected Error",
               0x08: "Cannot Assign Addresses", 0x09: "Invalid Data"}
# §5.4.1.3 Start fields
ALG_CMAC, ALG_HMAC = 0x00, 0x01
PUBKEY_NO_OOB, PUBKEY_OOB = 0x00, 0x01
AUTH_NO_OOB, AUTH_STATIC, AUTH_OUTPUT, AUTH_INPUT = 0x00, 0x01, 0x02, 0x03
OUTPUT_BLINK, OUTPUT_BEEP, OUTPUT_VIBRATE, OUTPUT_NUMERIC, OUTPUT_ALPHANUMERIC = 0, 1, 2, 3, 4  # action = bit number
INPUT_PUSH, INPUT_TWIST, INPUT_NUMERIC, INPUT_ALPHANUMERIC = 0, 1, 2, 3
# §5.3.1.4.3 Link Close reasons
CLOSE_SUCCESS, CLOSE_TIMEOUT, CLOSE_FAIL = 0x00, 0x01, 0x02

ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # §5.4.2.4: alphanumeric OOB uses digits and upper-case letters


# ---- security functions (§3.9.2), on cryptography ----

def aes_cmac(key, msg):
    c = cmac.CMAC(algorithms.AES(key))
    c.update(msg)
    return c.finalize()


def hmac_sha256(key, msg):
    h = hmac.HMAC(key, hashes.SHA256())
    h.update(msg)
    return h.finalize()


def s1(m):
    return aes_cmac(bytes(16), m)


def k1(n, salt, p):
    return aes_cmac(aes_cmac(salt, n), p)


def s2(m):
    return hmac_sha256(bytes(32), m)


def k5(n, salt, p):
    return hmac_sha256(hmac_sha256(salt, n), p)


def public_key_bytes(private_key):
    """X||Y (64 bytes) of a cryptography EC private key."""
    pub = private_key.public_key().public_numbers()
    return pub.x.to_bytes(32, "big") + pub.y.to_bytes(32, "big")


def ecdh(private_key, peer64):
    """Shared X coordinate; ValueError for a point not on P-256."""
    peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + bytes(peer64))
    return private_key.exchange(ec.ECDH(), peer)


def hotel_keys(mh_key, floor, room):
    """The 12 plaintext bytes of the hotel extension: MHKey || MHKey XOR be32(floor) || HMAC(MHKey, be32(room))[:4]."""
    floor_key = bytes(a ^ b for a, b in zip(mh_key, floor.to_bytes(4, "big")))
    return bytes(mh_key) + floor_key + hmac_sha256(mh_key, room.to_bytes(4, "big"))[:4]


def auth_value(value, size):
    """AuthValue (§5.4.2.4) of an OOB value: a number big-endian, a string ASCII then zero padding."""
    if isinstance(value, str):
        raw = value.encode("ascii")
        return raw + bytes(size - len(raw))
    return int(value).to_bytes(size, "big")


def parse_capabilities(params):
    if len(params) != 11:
        raise ValueError("Capabilities length %d" % len(params))
    p = params
    return {"elements": p[0], "algorithms": int.from_bytes(p[1:3], "big"), "pubkey_type": p[3], "oob_type": p[4],
            "output_size": p[5], "output_actions": int.from_bytes(p[6:8], "big"), "input_size": p[8],
            "input_actions": int.from_bytes(p[9:11], "big")}


def choose_start(caps, static_oob=None, device_public_key=None):
    """The strongest Start the device allows: HMAC over CMAC, OOB public key when we know it, then static OOB,
    output (numeric, alphanumeric, then counted actions, largest size), input, and No OOB last."""
    alg = ALG_HMAC if caps["algorithms"] & 2 else ALG_CMAC
    key = PUBKEY_OOB if caps["pubkey_type"] & 1 and device_public_key else PUBKEY_NO_OOB
    if caps["oob_type"] & 1 and static_oob:  # any length serves both algorithms: trimmed or zero-padded (§5.4.2.4.1)
        return alg, key, AUTH_STATIC, 0, 0
    for method, actions, size, order in ((AUTH_OUTPUT, caps["output_actions"], caps["output_size"], (3, 4, 0, 1, 2)),
                                         (AUTH_INPUT, caps["input_actions"], caps["input_size"], (2, 3, 0, 1))):
        for action in order:
            if actions >> action & 1 and size:
                return alg, key, method, action, size
    return alg, key, AUTH_NO_OOB, 0, 0


class Provisioner:
    def __init__(self, net_key, net_key_index, iv_index, address, *, flags=0, attention=0, choose=None,
                 static_oob=None, device_public_key=None, private_key=None, rand=os.urandom, on_request=None,
                 on_display=None, hotel=None):
        self.net_key, self.net_key_index, self.iv_index = bytes(net_key), net_key_index, iv_index
        self.address, self.flags, self.attention = address, flags, attention
        self.choose, self.static_oob, self.device_public_key = choose, static_oob, device_public_key
        self.rand, self.on_request, self.on_display, self.hotel = rand, on_request, on_display, hotel
        self._priv = (ec.derive_private_key(int.from_bytes(private_key, "big"), ec.SECP256R1())
                      if private_key else ec.generate_private_key(ec.SECP256R1()))
        self.public_key = public_key_bytes(self._priv)
        self.state = "idle"
        self.close_reason = None
        self.error = None  # our reason for giving up (text), or None
        self.failed_code = None  # the device's Provisioning Failed error code, or None
        self.capabilities = None
        self.start_params = None
        self.result = None
        self._out = []
        self._inputs = b""  # ConfirmationInputs (§5.4.2.4): Invite || Capabilities || Start || PKprov || PKdev
        self._auth = None
        self._secret = None
        self._input_complete = False

    # ---- API ----
    def start(self):
        self._send(INVITE, bytes((self.attention,)))
        self.state = "capabilities"

    def take_outgoing(self):
        out, self._out = self._out, []
        return out

    @property
    def needs_value(self):
        """True while we wait for the Output OOB value the device shows (give it with auth_value())."""
        return self.state == "auth" and self._auth is None

    @property
    def timeout_ms(self):
        """The provisioning timer's initial value (§5.4.4): longer when a person reads or enters the value."""
        if self.start_params and self.start_params[2] in (AUTH_OUTPUT, AUTH_INPUT):
            return USER_TIMEOUT_MS
        return PROTOCOL_TIMEOUT_MS

    def auth_value(self, value):
        """The Output OOB value the user read from the device (deferred answer to on_request)."""
        if self.state != "auth" or self._auth is not None:
            raise ValueError("no OOB value expected now")
        self._auth = auth_value(value, self._size)
        self._maybe_confirm()

    def receive(self, pdu):
        if self.state in ("idle", "complete", "failed") or not pdu:
            return
        typ, params = pdu[0], bytes(pdu[1:])
        if typ == FAILED:
            self.failed_code = params[0] if len(params) == 1 else None
            return self._abort("device sent Provisioning Failed: %s" % ERROR_NAMES.get(self.failed_code, "?"))
        handler = {"capabilities": (CAPABILITIES, self._on_capabilities),
                   "pubkey": (PUBLIC_KEY, self._on_public_key),
                   "auth": (INPUT_COMPLETE, self._on_input_complete),
                   "confirmation": (CONFIRMATION, self._on_confirmation),
                   "random": (RANDOM, self._on_random),
                   "data": (COMPLETE, self._on_complete)}.get(self.state)
        if handler is None or handler[0] != typ:
            return self._abort("unexpected PDU type 0x%02x in state %s" % (typ, self.state))
        try:
            handler[1](params)
        except ValueError as e:
            self._abort(str(e))

    # ---- internals ----
    def _send(self, typ, params=b""):
        self._out.append(bytes((typ,)) + params)

    def _abort(self, why):
        # §5.4.4: on an error the provisioner closes the link (it does not send Provisioning Failed).
        self.error, self.state, self.close_reason = why, "failed", CLOSE_FAIL
        self._secret = self._auth = None

    @property
    def _size(self):
        return 32 if self.start_params[0] == ALG_HMAC else 16

    def _on_capabilities(self, params):
        caps = self.capabilities = parse_capabilities(params)
        if caps["elements"] == 0 or caps["algorithms"] & 3 == 0:
            raise ValueError("Capabilities with prohibited values")
        start = self.choose(caps) if callable(self.choose) else self.choose
        if start is None:
            start = choose_start(caps, self.static_oob, self.device_public_key)
        self.start_params = alg, key, method, action, size = tuple(start)
        self._inputs = bytes((self.attention,)) + params + bytes(start)
        self._send(START, bytes(start))
        if method == AUTH_NO_OOB:
            self._auth = bytes(self._size)
        elif method == AUTH_STATIC:
            self._auth = (bytes(self.static_oob) + bytes(32))[:self._size]  # data type Binary (§5.4.2.4.1)
        elif method == AUTH_INPUT:  # we choose the value, the user enters it on the device
            value = self._random_value(action, size)
            self._auth = auth_value(value, self._size)
            if self.on_display:
                self.on_display(1 << action, value)
        self._send(PUBLIC_KEY, self.public_key)
        self._inputs += self.public_key
        if key == PUBKEY_OOB:
            self._device_key(bytes(self.device_public_key))
        else:
            self.state = "pubkey"

    def _random_value(self, action, size):
        if action == INPUT_ALPHANUMERIC:  # base-36 digits of a 128-bit random: no visible bias
            n = int.from_bytes(self.rand(16), "big")
            return "".join(ALNUM[n // 36 ** i % 36] for i in range(size))
        n = int.from_bytes(self.rand(8), "big")
        if action in (INPUT_PUSH, INPUT_TWIST):  # a count of actions: 1 .. 10^size - 1
            return 1 + n % (10 ** size - 1)
        return n % 10 ** size

    def _on_public_key(self, params):
        if len(params) != 64:
            raise ValueError("Public Key length %d" % len(params))
        self._device_key(params)

    def _device_key(self, pub):
        if pub == self.public_key:
            raise ValueError("device public key equals ours")
        self._secret = ecdh(self._priv, pub)  # ValueError for an invalid point
        self._inputs += pub
        self.device_key = pub
        self.state = "auth"
        _, _, method, action, size = self.start_params
        if method == AUTH_OUTPUT and self._auth is None and self.on_request:
            v = self.on_request(1 << action, size)
            if v is not None:
                self._auth = auth_value(v, self._size)
        self._maybe_confirm()

    def _on_input_complete(self, params):
        if params or self.start_params[2] != AUTH_INPUT:
            raise ValueError("unexpected Input Complete")
        self._input_complete = True
        self._maybe_confirm()

    def _maybe_confirm(self):
        if self.state != "auth" or self._auth is None:
            return
        if self.start_params[2] == AUTH_INPUT and not self._input_complete:
            return
        if self.start_params[0] == ALG_HMAC:
            self._salt = s2(self._inputs)
            self._conf_key = k5(self._secret + self._auth, self._salt, b"prck256")
        else:
            self._salt = s1(self._inputs)
            self._conf_key = k1(self._secret, self._salt, b"prck")
        self._random = bytes(self.rand(self._size))
        self.confirmation = self._confirm(self._random)
        self._send(CONFIRMATION, self.confirmation)
        self.state = "confirmation"

    def _confirm(self, random):
        if self.start_params[0] == ALG_HMAC:
            return hmac_sha256(self._conf_key, random)
        return aes_cmac(self._conf_key, random + self._auth)

    def _on_confirmation(self, params):
        if len(params) != self._size:
            raise ValueError("Confirmation length %d" % len(params))
        if params == self.confirmation:
            raise ValueError("device reflected our confirmation")
        self._device_confirmation = params
        self._send(RANDOM, self._random)
        self.state = "random"

    def _on_random(self, params):
        if len(params) != self._size:
            raise ValueError("Random length %d" % len(params))
        if params == self._random:
            raise ValueError("device reflected our random")
        if self._confirm(params) != self._device_confirmation:
            raise ValueError("device confirmation does not match its random")
        salt = s1(self._salt + self._random + params)
        session_key = k1(self._secret, salt, b"prsk")
        nonce = k1(self._secret, salt, b"prsn")[3:]
        self.dev_key = k1(self._secret, salt, b"prdk")
        plain = (self.net_key + self.net_key_index.to_bytes(2, "big") + bytes((self.flags,))
                 + self.iv_index.to_bytes(4, "big") + self.address.to_bytes(2, "big") + bytes(self.hotel or b""))
        self._send(DATA, AESCCM(session_key, tag_length=8).encrypt(nonce, plain, None))
        self.state = "data"

    def _on_complete(self, params):
        if params:
            raise ValueError("Complete length %d" % len(params))
        h = self.hotel
        self.result = {"net_key": self.net_key, "net_key_index": self.net_key_index, "flags": self.flags,
                       "iv_index": self.iv_index, "address": self.address,
                       "elements": self.capabilities["elements"], "dev_key": self.dev_key,
                       "hotel": {"mh_key": h[:4], "floor_key": h[4:8], "room_key": h[8:12]} if h else None}
        self.state, self.close_reason = "complete", CLOSE_SUCCESS
        self._secret = self._auth = None
