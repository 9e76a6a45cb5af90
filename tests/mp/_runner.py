# Runs one portable test module under MicroPython or CPython and reports every test_* function.
# Usage (from the repository root): micropython tests/mp/_runner.py tests/mp/test_x.py
# Protocol on stdout, read by tests/conftest.py:
#   @@PASS name ms | @@FAIL name ms, then the traceback, then @@END | @@IMPORT-ERROR, traceback, @@END
import sys

sys.path.insert(0, "tests/mp")
sys.path.insert(0, "lib")

try:
    import time

    _ticks = time.ticks_ms
    _diff = time.ticks_diff
except AttributeError:  # CPython
    import time

    def _ticks():
        return int(time.monotonic() * 1000)

    def _diff(a, b):
        return a - b


def _print_exc(e):
    if hasattr(sys, "print_exception"):
        sys.print_exception(e)
    else:
        import traceback

        traceback.print_exception(type(e), e, e.__traceback__)


def main():
    path = sys.argv[1]
    name = path.rsplit("/", 1)[-1][:-3]
    try:
        mod = __import__(name)
    except BaseException as e:  # noqa: BLE001 - reported to pytest, which fails the file
        print("@@IMPORT-ERROR")
        _print_exc(e)
        print("@@END")
        sys.exit(2)
    wanted = sys.argv[2:]
    names = wanted or sorted(n for n in dir(mod) if n.startswith("test_"))
    for n in names:
        fn = getattr(mod, n, None)
        t0 = _ticks()
        try:
            if fn is None:
                raise AttributeError("no test named " + n)
            fn()
        except BaseException as e:  # noqa: BLE001
            print("@@FAIL", n, _diff(_ticks(), t0))
            _print_exc(e)
            print("@@END")
        else:
            print("@@PASS", n, _diff(_ticks(), t0))


main()
