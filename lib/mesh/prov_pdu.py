# Provisioning PDUs (Mesh Protocol v1.1 §5.4.1): type octet, field values, the Failed error codes,
# encoders for what the device sends and strict decoders for what it receives.
# A Provisioning PDU is the type octet (2 padding bits, always 0, and a 6-bit type) followed by parameters.
from mesh import const

# PDU types (§5.4.1, Table 5.16). Types 0x0A-0x0D (certificate records) are not supported by this device.
INVITE = const(0x00)
CAPABILITIES = const(0x01)
START = const(0x02)
PUBLIC_KEY = const(0x03)
INPUT_COMPLETE = const(0x04)
CONFIRMATION = const(0x05)
RANDOM = const(0x06)
DATA = const(0x07)
COMPLETE = const(0x08)
FAILED = const(0x09)
_NUM_TYPES = const(10)

# Provisioning Failed error codes (§5.4.1.10, Table 5.38)
ERR_PROHIBITED = const(0x00)
ERR_INVALID_PDU = const(0x01)
ERR_INVALID_FORMAT = const(0x02)
ERR_UNEXPECTED_PDU = const(0x03)
ERR_CONFIRMATION_FAILED = const(0x04)
ERR_OUT_OF_RESOURCES = const(0x05)
ERR_DECRYPTION_FAILED = const(0x06)
ERR_UNEXPECTED_ERROR = const(0x07)
ERR_CANNOT_ASSIGN_ADDRESSES = const(0x08)
ERR_INVALID_DATA = const(0x09)

# Algorithms: bits of the Capabilities Algorithms field (§5.4.1.2, Table 5.20); the Start PDU carries the bit number.
ALG_CMAC = const(0x00)  # BTM_ECDH_P256_CMAC_AES128_AES_CCM
ALG_HMAC = const(0x01)  # BTM_ECDH_P256_HMAC_SHA256_AES_CCM
ALGS_CMAC = const(0x0001)
ALGS_HMAC = const(0x0002)

# Public Key Type (§5.4.1.2 Table 5.21) and the Start's Public Key field (§5.4.1.3 Table 5.29)
PUBKEY_NO_OOB = const(0x00)
PUBKEY_OOB = const(0x01)

# OOB Type (§5.4.1.2 Table 5.22)
OOB_STATIC_AVAILABLE = const(0x01)
OOB_AUTH_REQUIRED = const(0x02)  # "Only OOB authenticated provisioning supported"

# Authentication Method (§5.4.1.3 Table 5.30)
AUTH_NO_OOB = const(0x00)
AUTH_STATIC = const(0x01)
AUTH_OUTPUT = const(0x02)
AUTH_INPUT = const(0x03)

# Output OOB Action bits (§5.4.1.2 Table 5.24); the Start's Authentication Action is the bit number (Table 5.32)
OUTPUT_BLINK = const(0x0001)
OUTPUT_BEEP = const(0x0002)
OUTPUT_VIBRATE = const(0x0004)
OUTPUT_NUMERIC = const(0x0008)
OUTPUT_ALPHANUMERIC = const(0x0010)
_OUTPUT_ACTIONS = const(5)
# Input OOB Action bits (§5.4.1.2 Table 5.26); the Start's Authentication Action is the bit number (Table 5.33)
INPUT_PUSH = const(0x0001)
INPUT_TWIST = const(0x0002)
INPUT_NUMERIC = const(0x0004)
INPUT_ALPHANUMERIC = const(0x0008)
_INPUT_ACTIONS = const(4)
_OOB_SIZE_MAX = const(8)  # Output/Input OOB Size 0x01-0x08; 0x09-0xFF RFU (Tables 5.23, 5.25)

# Parameter lengths
LEN_INVITE = const(1)
_LEN_CAPABILITIES = const(11)
_LEN_START = const(5)
LEN_PUBLIC_KEY = const(64)
_LEN_DATA_PLAIN = const(25)  # NetKey 16, NetKey Index 2, Flags 1, IV Index 4, Unicast Address 2 (§5.4.2.5)
_LEN_DATA_MIC = const(8)
_LEN_FAILED = const(1)


class ProvError(Exception):
    """A received PDU the protocol must answer with Provisioning Failed; `code` is the error code."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


def split(pdu):
    """(type, params) of a received PDU; ProvError(Invalid PDU) for an empty PDU, set padding bits or an unknown
    type (§5.4.1: the two padding bits shall be 0; 0x0A and above are not implemented here)."""
    if not pdu or pdu[0] >= _NUM_TYPES:
        raise ProvError(ERR_INVALID_PDU)
    return pdu[0], memoryview(pdu)[1:]


def check_len(params, *lengths):
    """ProvError(Invalid Format) unless len(params) is one of `lengths` (exact lengths, §5.4.1)."""
    if len(params) not in lengths:
        raise ProvError(ERR_INVALID_FORMAT)


def pdu(typ, params=b""):
    return bytes((typ,)) + bytes(params)


def failed(code):
    return bytes((FAILED, code))


def capabilities(elements, algorithms, pubkey_type, oob_type, output_size, output_actions, input_size,
                 input_actions):
    """Capabilities PDU (§5.4.1.2), type octet included. Values are checked: a bad configuration is a ValueError."""
    if not (1 <= elements <= 0xFF and 0 < algorithms < 0x0004 and pubkey_type <= PUBKEY_OOB and oob_type < 0x04
            and output_size <= _OOB_SIZE_MAX and input_size <= _OOB_SIZE_MAX
            and output_actions < (1 << _OUTPUT_ACTIONS) and input_actions < (1 << _INPUT_ACTIONS)
            and (output_size == 0) == (output_actions == 0) and (input_size == 0) == (input_actions == 0)):
        raise ValueError("capabilities")
    return bytes((CAPABILITIES, elements, algorithms >> 8, algorithms & 0xFF, pubkey_type, oob_type, output_size,
                  output_actions >> 8, output_actions & 0xFF, input_size, input_actions >> 8, input_actions & 0xFF))


def decode_start(params):
    """(algorithm, public_key, method, action, size) of a Start PDU; ProvError(Invalid Format) for a wrong length or
    a value the spec prohibits or reserves (§5.4.1.3, Tables 5.28-5.34). Whether the values match the Capabilities
    this device sent is the provisionee's check."""
    check_len(params, _LEN_START)
    alg, key, method, action, size = bytes(params)
    if not (alg <= ALG_HMAC and key <= PUBKEY_OOB and method <= AUTH_INPUT
            and (action < (_OUTPUT_ACTIONS if method == AUTH_OUTPUT else _INPUT_ACTIONS) and 0 < size <= _OOB_SIZE_MAX
                 if method >= AUTH_OUTPUT else action == size == 0)):
        raise ProvError(ERR_INVALID_FORMAT)
    return alg, key, method, action, size


def decode_data(plain):
    """(net_key, net_key_index, flags, iv_index, address) of the 25 decrypted Provisioning Data octets (§5.4.2.5);
    ProvError(Invalid Data) for a NetKey Index above 0x0FFF, prohibited Flags bits (§5.4.1.8, Table 5.37) or an
    address that is not unicast (§3.4.2.2). Room for every element is the provisionee's check (it knows how many)."""
    p = bytes(plain)
    index, address = p[16] << 8 | p[17], p[23] << 8 | p[24]
    if index > 0x0FFF or p[18] & 0xFC or not 0 < address < 0x8000:
        raise ProvError(ERR_INVALID_DATA)
    return p[:16], index, p[18], int.from_bytes(p[19:23], "big"), address
