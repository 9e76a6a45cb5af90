# MicroPython-side drivers for provisionee tests: sessions live in a module-level dict so CPython tests can drive
# them through the `mpy` fixture (mpy.call("prov_helpers.feed", "a", 0, pdu)); portable tests use them directly.
from mesh import log
from mesh import prov_pdu as P
from mesh.provisionee import Provisionee

_sessions = {}
LOG = []  # every log line; under the RPC process stdout is the reply channel, so nothing may be printed
log.sink = LOG.append


def logs():
    out = LOG[:]
    del LOG[:]
    return out


class MemStore:
    """The key store contract in RAM; `fail` makes save() raise OSError as a full or broken NVS would."""

    def __init__(self, fail=False):
        self.record, self.fail, self.saves = None, fail, 0

    def save(self, record):
        self.saves += 1
        if self.fail:
            raise OSError(28)
        self.record = dict(record)

    def load(self):
        return self.record

    def erase(self):
        self.record = None


class App:
    """Records every callback as a list [name, args...]; answers Input OOB at once when `answer` is set."""

    def __init__(self):
        self.events = []
        self.answer = None
        self.prov = None

    def __getattr__(self, name):
        if name not in ("output_number", "output_string", "input", "input_complete", "link_open", "link_close",
                        "complete", "reset", "attention", "failed"):
            raise AttributeError(name)

        def cb(*args):
            self.events.append([name] + list(args))
            if name == "input" and self.answer is not None:
                if isinstance(self.answer, str):
                    self.prov.input_string(self.answer)
                else:
                    self.prov.input_number(self.answer)

        return cb


def fixed(value):
    """A rand callable returning the prefix of `value` repeated to n bytes (spec sample randoms)."""
    return lambda n: bytes((value * (n // len(value) + 1))[:n])


def new(name, config, keypair=None, random=None, fail_save=False):
    """A provisionee session `name`; random: bytes every rand(n) call returns the prefix of (None: os.urandom)."""
    if config.get("oob_keypair"):
        config["oob_keypair"] = tuple(config["oob_keypair"])
    app = App()
    kw = {"rand": fixed(random)} if random is not None else {}
    p = Provisionee(config, MemStore(fail_save), app=app, keypair=tuple(keypair) if keypair else None, **kw)
    app.prov = p
    _sessions[name] = p
    return True


def get(name):
    return _sessions[name]


def finish_crypto(p, now=0, limit=100000):
    """Call poll() while the core asks for it at once (pending ECDH or key generation); returns the slice count."""
    n = 0
    while p.deadline() == 0 and n < limit:
        p.poll(now)
        n += 1
    return n


def status(p):
    return {"out": p.take_outgoing(), "state": p.state, "events": p.app.events if p.app else [],
            "close_reason": p.close_reason, "deadline": p.deadline(), "provisioned": p.is_provisioned}


def open_link(name, now=0, bearer=None):
    return _sessions[name].link_open(now, bearer)


def feed(name, now, pdu, crypto=True):
    """Receive one PDU, finish any crypto it started (unless crypto=False), return the status."""
    p = _sessions[name]
    p.receive(now, pdu)
    if crypto:
        finish_crypto(p, now)
    return status(p)


def poll(name, now):
    p = _sessions[name]
    p.poll(now)
    return status(p)


def run(name, now=0):
    p = _sessions[name]
    finish_crypto(p, now)
    return status(p)


def input_number(name, n):
    _sessions[name].input_number(n)
    return status(_sessions[name])


def input_string(name, s):
    _sessions[name].input_string(s)
    return status(_sessions[name])


def close(name, now, reason):
    _sessions[name].link_closed(now, reason)
    return status(_sessions[name])


def stored(name):
    """The store's record (None if nothing was saved) and how many times save() was called."""
    st = _sessions[name].store
    return [st.record, st.saves]


def secrets_held(name):
    """True if any session secret is still reachable from the provisionee."""
    return _sessions[name]._s is not None


def drop(name):
    _sessions.pop(name, None)
    return True


ERRORS = {"invalid_pdu": P.ERR_INVALID_PDU, "invalid_format": P.ERR_INVALID_FORMAT,
          "unexpected_pdu": P.ERR_UNEXPECTED_PDU, "confirmation_failed": P.ERR_CONFIRMATION_FAILED,
          "decryption_failed": P.ERR_DECRYPTION_FAILED, "unexpected_error": P.ERR_UNEXPECTED_ERROR,
          "invalid_data": P.ERR_INVALID_DATA}


# ---- Mesh Protocol v1.1 §8.17 sample data as provisioner PDUs (portable tests) ----
def sample(vectors_file="provisioning.txt"):
    """The sample set as a dict of hex strings plus 'pdus': the provisioner's PDUs in order, type octet included."""
    from mpunit import h, vectors

    v = vectors(vectors_file)
    v["pdus"] = [bytes((P.INVITE,)) + h(v["ProvisioningInvite"]), bytes((P.START,)) + h(v["ProvisioningStart"]),
                 bytes((P.PUBLIC_KEY,)) + h(v["PublicKeyProvisionerX"] + v["PublicKeyProvisionerY"]),
                 bytes((P.CONFIRMATION,)) + h(v["ConfirmationProvisioner"]),
                 bytes((P.RANDOM,)) + h(v["RandomProvisioner"]),
                 bytes((P.DATA,)) + h(v["EncryptedProvisioningData"] + v["ProvisioningDataMIC"])]
    return v


def sample_device(v, config=None, fail_save=False, name="sample"):
    """A provisionee with the sample's device key pair and RandomDevice injected, link open at t=0."""
    from mpunit import h

    if config is None:
        config = {"algorithms": P.ALGS_CMAC}
    new(name, config, keypair=(h(v["PrivateKeyDevice"]), h(v["PublicKeyDeviceX"] + v["PublicKeyDeviceY"])),
        random=h(v["RandomDevice"]), fail_save=fail_save)
    p = _sessions[name]
    assert p.link_open(0)
    return p


def drive(p, pdus, now=0):
    """Feed PDUs in order (finishing crypto after each); returns everything the device sent."""
    out = []
    for pdu in pdus:
        p.receive(now, pdu)
        finish_crypto(p, now)
        out += p.take_outgoing()
    return out


def fuzz(pdus, vectors_file="provisioning.txt"):
    """Feed `pdus` to a sample device (§8.17 keys and randoms) with time advancing; report what happened.
    Any exception escaping the core is reported (it must never happen)."""
    v = sample(vectors_file)
    cfg = {"static_oob": h_(v["AuthValue"])} if "AuthValue" in v and len(v["AuthValue"]) == 64 else None
    p = sample_device(v, cfg, name="fuzz")
    out, error = [], None
    try:
        for i, pdu in enumerate(pdus):
            p.receive(i * 1000, pdu)
            finish_crypto(p, i * 1000)
            out += p.take_outgoing()
        p.poll(len(pdus) * 1000 + 61000)
    except Exception as e:  # noqa: BLE001 - the test asserts there is none
        error = "%s: %s" % (type(e).__name__, e)
    return {"error": error, "out": out, "state": p.state, "record": p.store.record, "secrets": p._s is not None,
            "close_reason": p.close_reason}


def h_(s):
    from mpunit import h

    return h(s)
