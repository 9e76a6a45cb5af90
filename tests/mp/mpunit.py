# The few helpers portable tests need; MicroPython's unix port has no unittest.
import binascii


def h(s):
    """Hex string (spaces allowed) to bytes."""
    return binascii.unhexlify(s.replace(" ", ""))


def hx(b):
    return binascii.hexlify(b).decode()


def raises(exc, fn, *args, **kw):
    """Assert fn(*args) raises exc; returns the exception."""
    try:
        fn(*args, **kw)
    except exc as e:
        return e
    raise AssertionError("%s not raised by %s" % (exc.__name__, getattr(fn, "__name__", fn)))


def vectors(name):
    """Parse tests/vectors/<name>: `Key = hexvalue  # comment` lines into a dict (later keys win)."""
    out = {}
    with open("tests/vectors/" + name) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if "=" not in line:
                continue
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out
