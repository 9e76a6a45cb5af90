"""Static checks as part of `make test`: ruff on the whole tree, mypy on lib/ and firmware/ against the pinned
MicroPython ESP32 stubs, and the host stand-ins (tools/host) against the same stubs. `make lint` and
`make typecheck` run the same commands with their full output."""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import typecheck  # noqa: E402

PY = sys.executable
RUFF = str(pathlib.Path(PY).with_name("ruff"))


def _run(cmd, **kw):
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, **kw)


def test_ruff_finds_nothing_in_the_tree():
    p = _run([RUFF, "check", "--output-format", "concise", "."])
    assert p.returncode == 0, "ruff (make lint):\n" + p.stdout + p.stderr


def test_lib_and_firmware_type_check_against_the_esp32_stubs_and_stand_ins_do_not_drift():
    p = _run([PY, "tools/typecheck.py"])
    assert p.returncode == 0, "make typecheck:\n" + p.stdout + p.stderr
    assert "no drift" in p.stdout


@pytest.fixture
def probe(tmp_path):
    def check(src):
        f = tmp_path / "probe.py"
        f.write_text(src)
        p = _run([PY, "tools/typecheck.py", "--cache-dir", str(tmp_path / "cache"), str(f)])
        return p.returncode, p.stdout
    return check


def test_the_type_check_is_micropythons_not_cpythons(probe):
    rc, out = probe("import time\nimport bluetooth\n"
                    "t = time.ticks_diff(time.ticks_ms(), 0)\n"
                    "bluetooth.BLE().gap_advertise(100000, b'', connectable=False)\n")
    assert rc == 0, out
    # CPython-only API that MicroPython on the ESP32 does not have, and a misspelt board call.
    rc, out = probe("import time\nimport bluetooth\n"
                    "t = time.perf_counter()\n"
                    "bluetooth.BLE().gap_advertize(100000)\n")
    assert rc != 0
    assert 'Module has no attribute "perf_counter"' in out
    assert '"BLE" has no attribute "gap_advertize"' in out


def test_stub_errata_give_the_boards_bluetooth_signatures(probe):
    # extmod/modbluetooth.c: handles are ints; gatts_notify(conn_handle, value_handle[, data]).
    rc, out = probe("import bluetooth\nb = bluetooth.BLE()\n"
                    "((h,),) = b.gatts_register_services(())\n"
                    "b.gatts_notify(0, h, b'x')\nb.gatts_notify(0, h)\nb.gatts_set_buffer(h, 100, True)\n"
                    "n: int = h\n")
    assert rc == 0, out


def test_the_portable_const_idiom_of_lib_passes(probe):
    rc, out = probe("try:\n    from micropython import const\nexcept ImportError:\n"
                    "    def const(x):\n        return x\n_N = const(3)\n")
    assert rc == 0, out


STUB_BLE = '''
FLAG_NOTIFY: Final[int] = 16
class BLE:
    def __init__(self) -> None: ...
    def gap_scan(self, duration_ms: int, interval_us: int = 1280000, window_us: int = 11250,
                 active: bool = False, /) -> None: ...
    def gap_advertise(self, interval_us, adv_data=None, *, resp_data=None, connectable=True) -> None: ...
    def gatts_notify(self, value_handle, data, /) -> None: ...
'''


def test_stand_in_matching_the_stub_has_no_drift():
    host = '''
FLAG_NOTIFY = const(0x10)
def BLE():
    return _BLE()
class _BLE:
    def gap_scan(self, duration_ms, interval_us=1280000, window_us=11250, active=False): ...
    def gap_advertise(self, interval_us, adv_data=None, *, resp_data=None, connectable=True): ...
    def gatts_notify(self, conn_handle, value_handle, data=None): ...
    def test_hook(self): ...
'''
    notes = []
    assert typecheck.check_module("bluetooth", STUB_BLE, host, notes) == [] and notes == []


@pytest.mark.parametrize("host, problem", [
    ("FLAG_NOTIFY = const(0x11)", "bluetooth.FLAG_NOTIFY = 17 here, 16 on the board"),
    ("class BLE:\n    def gap_scan(self, duration_ms, interval_us, window_us=11250, active=False): ...",
     "bluetooth.BLE.gap_scan() needs 2 positional argument(s), the board needs 1"),
    ("class BLE:\n    def gap_scan(self, duration_ms, interval_us=0): ...",
     "bluetooth.BLE.gap_scan() takes at most 2 positional argument(s), the board takes 4"),
    ("class BLE:\n    def gap_advertise(self, adv_data, interval_us=None, *, resp_data=None, connectable=True): ...",
     "bluetooth.BLE.gap_advertise() positional argument 1 is `adv_data`, on the board `interval_us`"),
    ("class BLE:\n    def gap_advertise(self, interval_us, adv_data=None, *, resp_data=None, connectable=True, "
     "adv_type): ...", "requires keyword argument(s) adv_type the board does not have"),
    ("BLE = 3", "bluetooth.BLE is a class on the board, not a Constant here"),
])
def test_stand_in_drift_is_reported(host, problem):
    assert problem in "\n".join(typecheck.check_module("bluetooth", STUB_BLE, host))


def test_a_missing_optional_keyword_is_a_note_not_an_error():
    notes = []
    host = "class BLE:\n    def gap_advertise(self, interval_us, adv_data=None, *, resp_data=None): ..."
    assert typecheck.check_module("bluetooth", STUB_BLE, host, notes) == []
    assert notes == ["bluetooth.BLE.gap_advertise() lacks the board's optional keyword(s) connectable"]
