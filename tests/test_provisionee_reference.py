"""The reference provisioner (tools/hostprov/protocol.py) against the spec's §8.17.1 and §8.17.2 sample data, so the
oracle of tests/test_provisionee_oracle.py is itself anchored to the specification, and its own checks."""

import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from bench_prov import vectors as _vectors  # noqa: E402
from hostprov import protocol as R  # noqa: E402


def _provisioner(v, **kw):
    return R.Provisioner(v["NetworkKey"], int.from_bytes(v["NetKeyIndex"], "big"),
                         int.from_bytes(v["IVIndex"], "big"), int.from_bytes(v["UnicastAddress"], "big"),
                         flags=v["Flags"][0], private_key=v["PrivateKeyProvisioner"],
                         rand=lambda n: v["RandomProvisioner"][:n], **kw)


def _device_pdus(v):
    return [b"\x01" + v["ProvisioningCapabilities"], b"\x03" + v["PublicKeyDeviceX"] + v["PublicKeyDeviceY"],
            b"\x05" + v["ConfirmationDevice"], b"\x06" + v["RandomDevice"], b"\x08"]


@pytest.mark.parametrize("name,kw", [("provisioning.txt", {}), ("provisioning_hmac.txt", {"static_oob": None})])
def test_sample_exchange(name, kw):
    v = _vectors(name)
    if "static_oob" in kw:
        kw = {"static_oob": v["AuthValue"]}
    p = _provisioner(v, choose=tuple(v["ProvisioningStart"]), **kw)
    p.start()
    sent = p.take_outgoing()
    for pdu in _device_pdus(v):
        p.receive(pdu)
        sent += p.take_outgoing()
    assert sent == [b"\x00" + v["ProvisioningInvite"], b"\x02" + v["ProvisioningStart"],
                    b"\x03" + v["PublicKeyProvisionerX"] + v["PublicKeyProvisionerY"],
                    b"\x05" + v["ConfirmationProvisioner"], b"\x06" + v["RandomProvisioner"],
                    b"\x07" + v["EncryptedProvisioningData"] + v["ProvisioningDataMIC"]]
    assert p.state == "complete" and p.close_reason == R.CLOSE_SUCCESS and p.error is None
    assert p.dev_key == v["DevKey"] and p.result["dev_key"] == v["DevKey"]


def _at_random(v):
    p = _provisioner(v, choose=(0, 0, 0, 0, 0))
    p.start()
    for pdu in _device_pdus(v)[:3]:
        p.receive(pdu)
    p.take_outgoing()
    return p


def test_reference_checks_the_device():
    v = _vectors("provisioning.txt")
    p = _at_random(v)
    p.receive(b"\x06" + bytes(16))  # does not match the device's confirmation
    assert p.state == "failed" and p.close_reason == R.CLOSE_FAIL and "confirmation" in p.error
    p = _at_random(v)
    p.receive(b"\x06" + v["RandomProvisioner"])  # our own random reflected
    assert p.state == "failed" and "reflected" in p.error
    p = _at_random(v)
    p.receive(b"\x09\x04")
    assert p.failed_code == 4 and p.state == "failed" and "Confirmation Failed" in p.error
    p = _provisioner(v, choose=(0, 0, 0, 0, 0))
    p.start()
    p.receive(b"\x01" + v["ProvisioningCapabilities"])
    p.receive(b"\x03" + bytes(64))  # not a curve point
    assert p.state == "failed"
    p = _provisioner(v)
    p.start()
    p.receive(b"\x03" + bytes(64))  # out of order
    assert p.state == "failed" and "unexpected" in p.error


def test_choose_start_prefers_the_strongest():
    caps = R.parse_capabilities(bytes.fromhex("01" "0003" "01" "03" "04" "0018" "03" "000c"))
    assert R.choose_start(caps) == (R.ALG_HMAC, 0, R.AUTH_OUTPUT, R.OUTPUT_NUMERIC, 4)
    assert R.choose_start(caps, static_oob=bytes(32), device_public_key=bytes(64)) == (R.ALG_HMAC, 1, 1, 0, 0)
    # §5.4.2.4.1 (data type Binary): a 16-byte static OOB is zero-padded to HMAC's 32-byte AuthValue
    assert R.choose_start(caps, static_oob=bytes(16)) == (R.ALG_HMAC, 0, R.AUTH_STATIC, 0, 0)
    none = R.parse_capabilities(bytes.fromhex("0100010000000000000000"))
    assert R.choose_start(none) == (R.ALG_CMAC, 0, 0, 0, 0)


def test_hotel_keys_and_auth_values():
    assert R.hotel_keys(bytes.fromhex("01020304"), 0x0A0B0C0D, 1)[:8] == bytes.fromhex("010203040b090f09")
    assert R.auth_value(1234, 16) == (1234).to_bytes(16, "big")
    assert R.auth_value("AB1", 32) == b"AB1" + bytes(29)
