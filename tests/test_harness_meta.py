"""The harness must fail loudly: a failing portable test fails pytest with the MicroPython traceback."""

import subprocess
import sys

from mpy import ROOT


def _pytest_on(tmp_path, source):
    f = ROOT / "tests" / "mp" / "test_zz_meta_tmp.py"
    f.write_text(source)
    try:
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(f)],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
    finally:
        f.unlink()


def test_failing_assert_fails_with_micropython_traceback(tmp_path):
    r = _pytest_on(tmp_path, "def test_bad():\n    assert 1 == 2, 'boom'\n\ndef test_ok():\n    pass\n")
    assert r.returncode == 1
    assert "2 failed, 2 passed" in r.stdout
    assert "micropython traceback" in r.stdout and "boom" in r.stdout


def test_unimportable_file_fails_every_item(tmp_path):
    r = _pytest_on(tmp_path, "import no_such_module_here\n\ndef test_a():\n    pass\n")
    assert r.returncode == 1
    assert "2 failed" in r.stdout and "could not import" in r.stdout


def test_rpc_roundtrip_and_exceptions(mpy):
    import pytest

    assert mpy.call("mpunit.h", "00ff") == b"\x00\xff"
    with pytest.raises(ValueError) as e:
        mpy.call("mpunit.h", "zz")  # binascii rejects non-hex inside MicroPython
    assert "MicroPython traceback" in str(e.value) and "mpunit.py" in str(e.value)
