"""Board steps without a board: each `make` target says what it will do, and a missing PORT, file or tool is
one clear `error:` line (exit 2) before anything touches a serial port. Commands are checked in --dry-run."""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import deploy  # noqa: E402


def run(capsys, *argv):
    rc = deploy.main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("step", ["flash", "deploy", "config", "repl", "factory"])
def test_every_board_step_refuses_to_start_without_a_port(capsys, step):
    rc, out, err = run(capsys, step)
    assert rc == 2
    assert "error: PORT is not set" in err and "make %s PORT=/dev/ttyUSB0" % step in err
    assert "$ " not in out  # nothing was run


def test_a_missing_tool_says_make_venv(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(deploy.sys, "executable", str(tmp_path / "python"))  # no venv next to it
    monkeypatch.setenv("PATH", str(tmp_path))  # and none on PATH
    fw = tmp_path / "fw.bin"
    fw.write_bytes(b"\xe9")
    rc, out, err = run(capsys, "flash", "--port", "/dev/ttyUSB0", "--firmware", str(fw), "--dry-run")
    assert rc == 2 and "error: esptool not found: run `make venv`" in err and "$ " not in out
    rc, _, err = run(capsys, "repl", "--port", "/dev/ttyUSB0", "--dry-run")
    assert rc == 2 and "error: mpremote not found" in err


def test_a_port_that_does_not_exist_is_named(capsys, tmp_path):
    rc, _, err = run(capsys, "repl", "--port", str(tmp_path / "ttyUSB7"))
    assert rc == 2 and "ttyUSB7 does not exist: is the board plugged in" in err


def test_flash_erases_then_writes_at_0x1000_with_esptool5_commands(capsys, tmp_path):
    fw = tmp_path / "ESP32_GENERIC.bin"
    fw.write_bytes(b"\xe9" + bytes(100))
    rc, out, _ = run(capsys, "flash", "--port", "/dev/ttyUSB0", "--firmware", str(fw), "--dry-run")
    assert rc == 0
    cmds = [line for line in out.splitlines() if line.startswith("$ ")]
    assert cmds[0].endswith("--chip esp32 --port /dev/ttyUSB0 --baud 460800 erase-flash")
    assert cmds[1].endswith("write-flash 0x1000 " + str(fw))
    assert "erasing ALL flash" in out


def test_flash_with_erase_0_keeps_nvs(capsys, tmp_path):
    fw = tmp_path / "fw.bin"
    fw.write_bytes(b"\xe9")
    rc, out, _ = run(capsys, "flash", "--port", "/dev/ttyUSB0", "--firmware", str(fw), "--erase", "0", "--dry-run")
    assert rc == 0 and "erase-flash" not in out and "write-flash 0x1000" in out and "are kept" in out


def test_flash_refuses_a_file_that_is_not_an_esp32_image(tmp_path):
    elf = tmp_path / "firmware.elf"
    elf.write_bytes(b"\x7fELF")
    with pytest.raises(deploy.Fail, match="not an ESP32 firmware image"):
        deploy.check_image(elf, "FIRMWARE")
    with pytest.raises(deploy.Fail, match="does not exist"):
        deploy.check_image(tmp_path / "nope.bin", "FIRMWARE")


def test_flash_without_firmware_says_how_to_get_one(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(deploy, "FIRMWARE_OUT", deploy.ROOT / "build" / "firmware" / "never-built.bin")
    rc, _, err = run(capsys, "flash", "--port", "/dev/ttyUSB0", "--dry-run")
    assert rc == 2 and "make firmware" in err and "ESP32_GENERIC" in err


def test_deploy_copies_the_build_tree_with_mpremote_and_cleans_stale_modules(capsys, monkeypatch, tmp_path):
    dev = tmp_path / "device"
    (dev / "lib" / "mesh").mkdir(parents=True)
    for name in ("__init__.mpy", "crypto.mpy"):
        (dev / "lib" / "mesh" / name).write_bytes(b"M\x06")
    (dev / "main.py").write_text("import app\n")
    monkeypatch.setattr(deploy, "DEVICE", dev)
    rc, out, _ = run(capsys, "deploy", "--port", "/dev/ttyUSB0", "--dry-run")
    assert rc == 0
    cmd = [line for line in out.splitlines() if line.startswith("$ ")][0]
    assert "mpremote connect /dev/ttyUSB0 run %s + fs cp -r %s : + fs cp %s :main.py" % (
        tmp_path / "deploy_cleanup.py", dev / "lib", dev / "main.py") in cmd
    assert "skips files whose SHA-256 is unchanged" in out
    cleanup = (tmp_path / "deploy_cleanup.py").read_text()
    assert "keep = ['__init__.mpy', 'crypto.mpy']" in cleanup


def test_deploy_cleanup_removes_only_what_the_build_does_not_ship(tmp_path):
    # Run the board-side snippet under the MicroPython unix port against a fake board filesystem.
    (tmp_path / "lib" / "mesh").mkdir(parents=True)
    for name in ("crypto.mpy", "crypto.py", "old.mpy"):
        (tmp_path / "lib" / "mesh" / name).write_text("x")
    (tmp_path / "clean.py").write_text(deploy.cleanup_snippet(["lib/mesh/crypto.mpy", "main.py"]))
    mp = pathlib.Path(sys.executable).with_name("micropython")
    p = subprocess.run([str(mp), "clean.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert sorted(x.name for x in (tmp_path / "lib" / "mesh").iterdir()) == ["crypto.mpy"]
    assert "removed stale lib/mesh/crypto.py" in p.stdout and "WARNING" not in p.stdout


def test_deploy_without_a_build_says_make_build(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(deploy, "DEVICE", tmp_path / "device")
    rc, _, err = run(capsys, "deploy", "--port", "/dev/ttyUSB0", "--dry-run")
    assert rc == 2 and "make build" in err


def test_config_copies_only_board_json(capsys, monkeypatch, tmp_path):
    dev = tmp_path / "device"
    dev.mkdir()
    monkeypatch.setattr(deploy, "DEVICE", dev)
    rc, _, err = run(capsys, "config", "--port", "/dev/ttyUSB0", "--dry-run")
    assert rc == 2 and "board.json is missing" in err
    (dev / "board.json").write_text("{}")
    rc, out, _ = run(capsys, "config", "--port", "/dev/ttyUSB0", "--dry-run")
    assert rc == 0 and out.splitlines()[-1].endswith("fs cp %s :board.json" % (dev / "board.json"))


def test_repl_is_mpremote_repl(capsys):
    rc, out, _ = run(capsys, "repl", "--port", "/dev/ttyACM0", "--dry-run")
    assert rc == 0 and out.splitlines()[-1].endswith("mpremote connect /dev/ttyACM0 repl")


def test_factory_lists_everything_missing_at_once(capsys):
    rc, _, err = run(capsys, "factory")
    assert rc == 2
    assert "PORT is not set" in err and "CSV is not set" in err and "LOCK is not set" in err


def test_factory_writes_the_lock_image_at_the_nvs_partition_offset(capsys, tmp_path):
    csv = tmp_path / "locks.csv"
    csv.write_text("lock_id,static_oob\n101,%s\n102,\n" % ("ab" * 16))
    rc, out, _ = run(capsys, "factory", "--port", "/dev/ttyUSB0", "--csv", str(csv), "--lock", "101", "--dry-run")
    assert rc == 0
    cmds = [line for line in out.splitlines() if line.startswith("$ ")]
    assert "tools/factory.py %s --out %s --size 0x6000" % (csv, deploy.ROOT / "build" / "factory") in cmds[0]
    assert cmds[1].endswith("--chip esp32 --port /dev/ttyUSB0 --baud 460800 write-flash 0x9000 %s"
                            % (deploy.ROOT / "build" / "factory" / "101.bin"))


def test_factory_refuses_an_unknown_lock_and_secrets_nobody_kept(capsys, tmp_path):
    csv = tmp_path / "locks.csv"
    csv.write_text("lock_id,uuid_secret\n101,random\n")
    rc, _, err = run(capsys, "factory", "--port", "/dev/ttyUSB0", "--csv", str(csv), "--lock", "999", "--dry-run")
    assert rc == 2 and "LOCK=999 is not a lock_id" in err
    rc, _, err = run(capsys, "factory", "--port", "/dev/ttyUSB0", "--csv", str(csv), "--lock", "101", "--dry-run")
    assert rc == 2 and "`random` cells (uuid_secret)" in err and "--completed" in err


def test_factory_generates_a_real_image_of_exactly_the_nvs_size(tmp_path):
    # The generator of the key-store issue, as `make factory` runs it: the image it gives is what gets flashed.
    if not (deploy.ROOT / "tools" / "factory.py").exists():
        pytest.skip("tools/factory.py (key-store issue) is not in this tree")
    csv = tmp_path / "locks.csv"
    csv.write_text("lock_id,static_oob\n101,%s\n" % ("cd" * 16))
    p = subprocess.run([sys.executable, str(deploy.ROOT / "tools" / "factory.py"), str(csv), "--out",
                        str(tmp_path / "out"), "--size", "0x%X" % deploy.NVS_SIZE], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "out" / "101.bin").stat().st_size == deploy.NVS_SIZE


def test_firmware_without_idf_says_esp_idf_is_not_installed(capsys):
    rc, out, err = run(capsys, "firmware")
    assert rc == 2
    assert "IDF_PATH is not set: ESP-IDF is not installed here" in err
    assert "MICROPY_DIR is not set" in err and deploy.MICROPYTHON_TAG in err
    assert "$ " not in out


def fake_micropython(tmp_path, port):
    """An empty MicroPython tree that check_micropy_dir accepts for `port` (ports/<port>/Makefile only)."""
    mp = tmp_path / "micropython"
    (mp / "ports" / port).mkdir(parents=True)
    (mp / "ports" / port / "Makefile").write_text("")
    return mp


def fake_idf(tmp_path):
    """An ESP-IDF directory that cmd_firmware accepts (export.sh only)."""
    idf = tmp_path / "esp-idf"
    idf.mkdir()
    (idf / "export.sh").write_text("")
    return idf


def test_firmware_with_a_fake_idf_patches_and_builds_the_board_dir(capsys, tmp_path):
    mp, idf = fake_micropython(tmp_path, "esp32"), fake_idf(tmp_path)
    rc, out, err = run(capsys, "firmware", "--micropy-dir", str(mp), "--idf-path", str(idf), "--dry-run")
    # An empty tree lacks the file the patch changes: refused with the tag to check out.
    assert rc == 2 and "does not apply" in err and deploy.MICROPYTHON_TAG in err


def test_make_targets_reach_the_tool_and_its_message():
    # The Makefile wiring itself: `make flash` with no PORT ends in the tool's error, not a make error.
    p = subprocess.run(["make", "-s", "flash", "PORT="], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "error: PORT is not set" in p.stderr
    p = subprocess.run(["make", "-n", "factory", "PORT=/dev/ttyUSB0", "CSV=a.csv", "LOCK=7"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert 'tools/deploy.py factory --port "/dev/ttyUSB0" --csv "a.csv" --lock "7"' in p.stdout


def test_check_cmodule_builds_the_unix_port_with_the_c_module_then_runs_the_suite_on_it(capsys, tmp_path):
    rc, out, err = run(capsys, "check-cmodule")
    assert rc == 2 and "MICROPY_DIR is not set" in err
    mp = fake_micropython(tmp_path, "unix")
    rc, out, err = run(capsys, "check-cmodule", "--micropy-dir", str(mp), "--dry-run")
    assert rc == 0, err
    build = [line for line in out.splitlines() if line.startswith("$ make -C %s/ports/unix -j2" % mp)]
    assert len(build) == 1
    assert "USER_C_MODULES=%s" % deploy.CMODULES in build[0] and "-DMBEDTLS_ECP_NIST_OPTIM" in build[0]
    assert "FROZEN_MANIFEST=%s" % (deploy.CMODULES / "unix_manifest.py") in build[0]
    assert "-c 'import _mesh_p256'" in out  # a build without the module is refused before the suite runs
    assert out.index("import _mesh_p256") < out.index("-m pytest -q") < out.index("tools/bench_crypto.py")


def test_firmware_build_passes_the_c_modules(capsys, tmp_path, monkeypatch):
    mp, idf = fake_micropython(tmp_path, "esp32"), fake_idf(tmp_path)
    monkeypatch.setattr(deploy, "apply_patches", lambda mp, dry_run: None)
    rc, out, err = run(capsys, "firmware", "--micropy-dir", str(mp), "--idf-path", str(idf), "--dry-run")
    assert rc == 0, err
    assert "USER_C_MODULES=%s" % (deploy.CMODULES / "micropython.cmake") in out


def test_check_cmodule_refuses_a_build_without_the_module(capsys, tmp_path, monkeypatch):
    mp = fake_micropython(tmp_path, "unix")
    calls = []

    def fake_run(cmd, dry_run, check=True, **kw):
        calls.append([str(c) for c in cmd])
        return 1 if cmd[-1] == "import _mesh_p256" else 0  # the build "works", the module is missing

    monkeypatch.setattr(deploy, "run", fake_run)
    rc, out, err = run(capsys, "check-cmodule", "--micropy-dir", str(mp))
    assert rc == 2 and "built without _mesh_p256" in err and "USER_C_MODULES" in err
    assert not any("-m" in c and "pytest" in c for c in calls)  # the suite never ran on the Python code alone
