# Bluetooth Mesh provisionee: portable, sans-I/O protocol and crypto code.
# Runs unchanged on ESP32 MicroPython, the MicroPython unix port and CPython 3.11.
#
# `const` for every module of the package (`from mesh import const`), written once: MicroPython's parser folds
# `_NAME = const(n)` by the bare name, wherever it was imported from; on CPython it is the identity.
try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x
