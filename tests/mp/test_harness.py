# Proves the harness itself: these run under MicroPython and CPython.
import sys

from mpunit import h, raises, vectors


def test_lib_on_path():
    import mesh  # noqa: F401


def test_raises_helper():
    raises(ValueError, int, "x")
    try:
        raises(ValueError, int, "1")
    except AssertionError:
        return
    raise AssertionError("raises() accepted a call that did not raise")


def test_vectors_readable():
    v = vectors("provisioning.txt")
    assert h(v["DeviceUUID"]) == h("70cf7c9732a345b691494810d2e9cbf4")


def test_implementation_name():
    assert sys.implementation.name in ("micropython", "cpython")
