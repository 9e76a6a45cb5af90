"""The MESH_LOCK board definition: the manifest freezes every module the firmware imports (and never the host
stand-ins), the ADV_NONCONN_IND patch applies to the pinned MicroPython, and the flash layout used by
tools/deploy.py matches MicroPython's ESP32 partition table.

The MicroPython source is needed for the "applies cleanly" and partition-table checks: MICROPY_DIR (a checkout),
else the mirror this project's developers fetch (MICROPY_MIRROR, a git directory). The advertising type on HCI
needs a unix port built with NimBLE from the patched tree (MICROPY_NIMBLE_BIN, or `make check-patch`). CI has
none of these: those tests skip with that reason, and the always-run tests still check the patch's form and
target, and the fake HCI controller against a scripted host."""

import ast
import io
import importlib.metadata as md
import os
import pathlib
import re
import subprocess
import sys
import tarfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BOARD = ROOT / "boards" / "MESH_LOCK"
PATCHES = sorted((ROOT / "boards" / "patches").glob("*.patch"))
sys.path.insert(0, str(ROOT / "tools"))
import deploy  # noqa: E402

MIRROR = pathlib.Path(os.environ.get("MICROPY_MIRROR", "/work/.mirror/micropython+micropython/repo"))
NO_SOURCE = ("MicroPython source not available (set MICROPY_DIR to a %s checkout, or MICROPY_MIRROR to a git "
             "directory holding that tag): not checked here" % deploy.MICROPYTHON_TAG)

# MicroPython modules of the ESP32 port that micropython-esp32-stubs files under micropython-stdlib-stubs
# instead of listing them itself (all built in, or frozen by ports/esp32/boards/manifest.py for asyncio).
ESP32_STDLIB = {"asyncio", "os", "sys", "struct", "io", "json", "re", "collections", "array", "builtins", "ssl"}


# --- what the manifest freezes ----------------------------------------------------------------------------------

def _walk_py(base):
    base = pathlib.Path(base)
    return [str(p.relative_to(base)).replace(os.sep, "/") for p in sorted(base.rglob("*.py"))
            if "__pycache__" not in p.parts]


def evaluate_manifest(path=BOARD / "manifest.py"):
    """Run a manifest with the manifest API's functions recording what they freeze, as tools/manifestfile.py
    does: package/freeze walk the folder for .py files; module names one file. Returns ({frozen file name:
    source path}, [included manifests])."""
    frozen, included = {}, []

    def resolve(p):
        return pathlib.Path(p.replace("$(BOARD_DIR)", str(BOARD))).resolve()

    def include(p, **kw):
        included.append(p)

    def package(name, files=None, base_path=".", opt=None):
        base = resolve(base_path)
        for rel in files or _walk_py(base / name):
            frozen[name + "/" + rel] = base / name / rel

    def module(name, base_path=".", opt=None):
        frozen[name] = resolve(base_path) / name

    def freeze(p, script=None, opt=None):
        base = resolve(p)
        for rel in _walk_py(base) if base.is_dir() else ():
            frozen[rel] = base / rel

    def require(name, **kw):
        included.append("require:" + name)

    api = dict(include=include, package=package, module=module, freeze=freeze, require=require,
               metadata=lambda **kw: None)
    exec(compile(path.read_text(), str(path), "exec"), api)
    return frozen, included


def frozen_modules():
    """Importable names of everything the manifest freezes: mesh, mesh.crypto, main, mesh_board, ..."""
    frozen, _ = evaluate_manifest()
    names = set()
    for rel in frozen:
        mod = rel[:-3].replace("/", ".")
        names.add(mod[: -len(".__init__")] if mod.endswith(".__init__") else mod)
    return names


def board_modules():
    """What stock ESP32_GENERIC firmware provides, per the pinned micropython-esp32-stubs."""
    names = {f.parts[0].removesuffix(".pyi") for f in md.files("micropython-esp32-stubs") or ()
             if not f.parts[0].endswith(".dist-info")}
    return names | ESP32_STDLIB


def test_manifest_freezes_lib_firmware_and_the_board_flag_but_never_host_stand_ins():
    frozen, included = evaluate_manifest()
    assert "$(PORT_DIR)/boards/manifest.py" in included  # everything ESP32_GENERIC freezes (asyncio...)
    for rel in _walk_py(ROOT / "lib"):
        assert rel in frozen and frozen[rel] == ROOT / "lib" / rel
    for rel in _walk_py(ROOT / "firmware"):
        assert rel in frozen and frozen[rel] == ROOT / "firmware" / rel
    assert frozen["mesh_board.py"] == BOARD / "mesh_board.py"
    assert not [p for p in frozen.values() if (ROOT / "tools") in p.parents], "tools/ must never be frozen"
    assert all(p.is_file() for p in frozen.values())


def _imports(path, text=None):
    """(module, line) for each import that must resolve on the board: imports inside a try whose handler
    catches ImportError are optional (the portable CPython fallbacks); relative ones are resolved against
    the package."""
    tree = ast.parse(path.read_text() if text is None else text, str(path))
    optional = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                h.type is None or "ImportError" in ast.dump(h.type) for h in node.handlers):
            for part in node.body + [s for h in node.handlers for s in h.body]:
                optional.update(id(n) for n in ast.walk(part))
    pkg = ".".join(path.relative_to(ROOT / "lib").parts[:-1]) if (ROOT / "lib") in path.parents else ""
    out = []
    for node in ast.walk(tree):
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1])
                mod = base + ("." + node.module if node.module else "")
                out += [(mod + "." + a.name if not node.module else mod, node.lineno) for a in node.names]
            else:
                out.append((node.module, node.lineno))
    return out


def test_every_module_the_firmware_and_lib_import_is_frozen_or_on_the_esp32():
    frozen, board = frozen_modules(), board_modules()
    missing = []
    for path in sorted((ROOT / "firmware").rglob("*.py")) + sorted((ROOT / "lib").rglob("*.py")):
        for mod, line in _imports(path):
            if mod not in frozen and mod.split(".")[0] not in board:
                missing.append("%s:%d imports %s" % (path.relative_to(ROOT), line, mod))
    assert not missing, "not frozen into MESH_LOCK and not on the ESP32:\n" + "\n".join(missing)


def test_import_checker_catches_a_cpython_only_module_a_host_stand_in_and_a_missing_lib_module():
    src = ("import dataclasses\nfrom hostprov import db\nimport mesh.nosuch\nfrom mesh import crypto\n"
           "try:\n    import hmac\nexcept ImportError:\n    hmac = None\n")
    mods = [m for m, _ in _imports(ROOT / "firmware" / "probe.py", src)]
    assert mods == ["dataclasses", "hostprov", "mesh.nosuch", "mesh"]
    frozen, board = frozen_modules(), board_modules()
    assert not {"dataclasses", "hostprov", "mesh.nosuch"} & (frozen | board)
    assert "mesh" in frozen and "mesh.crypto" in frozen and "bluetooth" in board and "asyncio" in board
    rel = [m for m, _ in _imports(ROOT / "lib" / "mesh" / "probe.py", "from . import crypto\nfrom .log import info\n")]
    assert rel == ["mesh.crypto", "mesh.log"]


# --- the board flag and board files ---------------------------------------------------------------------------

def test_board_flag_module_says_nonconn_and_names_the_pinned_micropython():
    ns = {}
    exec((BOARD / "mesh_board.py").read_text(), ns)
    assert ns["ADV_NONCONN"] is True
    assert ns["MICROPYTHON"] == deploy.MICROPYTHON_TAG
    assert ns["BOARD"] == BOARD.name


def test_board_definition_names_its_sdkconfig_fragment_and_manifest():
    cmake = (BOARD / "mpconfigboard.cmake").read_text()
    assert "${MICROPY_BOARD_DIR}/sdkconfig.board" in cmake
    assert "set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)" in cmake
    assert "boards/sdkconfig.ble" in cmake  # BLE on, as ESP32_GENERIC
    for line in (BOARD / "sdkconfig.board").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            assert key.startswith("CONFIG_") and value, line
    assert '#define MICROPY_HW_BOARD_NAME' in (BOARD / "mpconfigboard.h").read_text()


# --- the patch -------------------------------------------------------------------------------------------------

def test_patch_is_well_formed_and_only_changes_nimble_advertising():
    assert [p.name for p in PATCHES] == ["0001-nimble-nonconn-adv.patch"]
    p = subprocess.run(["git", "apply", "--numstat", str(PATCHES[0])], capture_output=True, text=True, cwd="/")
    assert p.returncode == 0, p.stderr
    assert [line.split("\t")[2] for line in p.stdout.splitlines()] == ["extmod/nimble/modbluetooth_nimble.c"]
    text = PATCHES[0].read_text()
    assert "-        .disc_mode = BLE_GAP_DISC_MODE_GEN," in text
    assert "+        .disc_mode = scannable ? BLE_GAP_DISC_MODE_GEN : BLE_GAP_DISC_MODE_NON," in text


def _source_tree(tmp_path):
    """A MicroPython tree at the pinned tag: MICROPY_DIR as is, else extmod/ + ports/esp32 from the mirror."""
    if os.environ.get("MICROPY_DIR"):
        return pathlib.Path(os.environ["MICROPY_DIR"])
    if not (MIRROR / "HEAD").exists() and not (MIRROR / ".git").exists():
        pytest.skip(NO_SOURCE)
    p = subprocess.run(["git", "--git-dir", str(MIRROR if (MIRROR / "HEAD").exists() else MIRROR / ".git"),
                        "archive", deploy.MICROPYTHON_TAG, "extmod/nimble", "ports/esp32/partitions-4MiBplus.csv",
                        "ports/esp32/boards/ESP32_GENERIC"], capture_output=True)
    if p.returncode != 0:
        pytest.skip(NO_SOURCE + " (%s)" % p.stderr.decode().strip())
    tarfile.open(fileobj=io.BytesIO(p.stdout)).extractall(tmp_path)
    return tmp_path


def test_patch_applies_cleanly_to_the_pinned_micropython(tmp_path):
    tree = _source_tree(tmp_path)
    for patch in PATCHES:  # exactly as `make firmware` applies it
        fwd = deploy.git_apply(tree, patch, "--check")
        if fwd.returncode != 0:  # a MICROPY_DIR that `make firmware` already patched
            rev = deploy.git_apply(tree, patch, "--check", "--reverse")
            assert rev.returncode == 0, "%s does not apply to %s:\n%s" % (patch.name, tree, fwd.stderr)
    if not os.environ.get("MICROPY_DIR"):  # the extracted copy: apply for real and look at the result
        assert deploy.git_apply(tree, PATCHES[0]).returncode == 0
        c = (tree / "extmod/nimble/modbluetooth_nimble.c").read_text()
        assert "bool scannable = connectable || sr_data_len > 0;" in c


def test_flash_layout_matches_micropythons_esp32_partition_table(tmp_path):
    tree = _source_tree(tmp_path)
    rows = [line.split(",") for line in (tree / "ports/esp32/partitions-4MiBplus.csv").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    nvs = [r for r in rows if r[0].strip() == "nvs"][0]
    assert int(nvs[3], 16) == deploy.NVS_OFFSET and int(nvs[4], 16) == deploy.NVS_SIZE
    board_json = (tree / "ports/esp32/boards/ESP32_GENERIC/board.json").read_text()
    assert '"flash_offset": "0x%x"' % deploy.FIRMWARE_OFFSET in board_json.lower()


def test_patched_nimble_asks_the_controller_for_adv_nonconn_ind():
    # Needs a MicroPython unix port built with NimBLE from the patched tree (`make check-patch MICROPY_DIR=...`
    # builds ports/unix/build-nimble/micropython); on HCI, the host's choice of PDU type is visible without radio.
    binary = os.environ.get("MICROPY_NIMBLE_BIN") or (
        os.environ.get("MICROPY_DIR") and os.path.join(os.environ["MICROPY_DIR"], "ports/unix/build-nimble/micropython"))
    if not binary or not os.access(binary, os.X_OK):
        pytest.skip("no MicroPython unix port built with NimBLE (MICROPY_NIMBLE_BIN, or `make check-patch "
                    "MICROPY_DIR=...`): the HCI advertising type is not checked here")
    import hci_adv_check
    types, out = hci_adv_check.run(binary)
    assert types == hci_adv_check.PATCHED, out


FAKE_HOST = r'''#!%s
# Stands in for NimBLE's host: sends H4 commands on MICROPYBTUART and needs a Command Complete for each.
import os, sys
fd = os.open(os.environ["MICROPYBTUART"], os.O_RDWR | os.O_NOCTTY)
def command(op, params=b""):
    os.write(fd, bytes([1, op & 0xFF, op >> 8, len(params)]) + params)
    ev = b""
    while len(ev) < 3 or len(ev) < 3 + ev[2]:
        ev += os.read(fd, 64)
    assert ev[:2] == b"\x04\x0e" and ev[4:6] == bytes([op & 0xFF, op >> 8]) and ev[6] == 0, ev.hex()
    return ev[7:]
command(0x0C03)
assert command(0x1009) == bytes([1, 2, 3, 4, 5, 6])
for t in (0, 3, 2, 3):
    command(0x2006, bytes([0xA0, 0, 0xA0, 0, t]) + bytes(10))
print("done")
'''


def test_the_fake_controller_answers_h4_commands_and_records_advertising_types(tmp_path):
    import hci_adv_check
    host = tmp_path / "fake-micropython"
    host.write_text(FAKE_HOST % sys.executable)
    host.chmod(0o755)
    types, out = hci_adv_check.run(str(host), timeout_s=20)
    assert types == hci_adv_check.PATCHED and "done" in out, out


# --- the C module _mesh_p256 (boards/MESH_LOCK/cmodules) ------------------------------------------------------

def test_c_module_is_wired_for_both_build_systems_and_its_stub_matches_its_functions():
    cm = ROOT / "boards" / "MESH_LOCK" / "cmodules"
    assert "mesh_p256/micropython.cmake" in (cm / "micropython.cmake").read_text()
    assert "mesh_p256.c" in (cm / "mesh_p256" / "micropython.cmake").read_text()
    assert "mesh_p256.c" in (cm / "mesh_p256" / "micropython.mk").read_text()
    c = (cm / "mesh_p256" / "mesh_p256.c").read_text()
    assert "MP_REGISTER_MODULE(MP_QSTR__mesh_p256" in c
    exported = set(re.findall(r"MP_ROM_QSTR\(MP_QSTR_(\w+)\), MP_ROM_PTR", c))
    stub = (cm / "mesh_p256" / "_mesh_p256.pyi").read_text()
    assert exported == set(re.findall(r"^def (\w+)\(", stub, re.M)) == {"ecdh", "public_key"}
    # arity in C (MP_DEFINE_CONST_FUN_OBJ_n) = arity in the stub = what lib/mesh/p256.py passes
    for name in exported:
        n = int(re.search(r"MP_DEFINE_CONST_FUN_OBJ_(\d)\(mesh_p256_%s_obj" % name, c).group(1))
        assert len(re.search(r"^def %s\((.*?)\)" % name, stub, re.M).group(1).split(",")) == n, name
    p256 = (ROOT / "lib" / "mesh" / "p256.py").read_text()
    assert "_native.ecdh(private32, peer_public64)" in p256 and "_native.public_key(d)" in p256
    sdk = (ROOT / "boards" / "MESH_LOCK" / "sdkconfig.board").read_text()
    for opt in ("MBEDTLS_ECP_C", "MBEDTLS_ECDH_C", "MBEDTLS_ECP_DP_SECP256R1_ENABLED", "MBEDTLS_ECP_NIST_OPTIM"):
        assert "\nCONFIG_%s=y\n" % opt in sdk, opt
