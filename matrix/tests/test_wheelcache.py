"""The host wheel cache: its key, reuse, and a build that fails."""

from __future__ import annotations

import stat
import sys
from pathlib import Path
from typing import List

import pytest

from sky_matrix.build import host_wheel

FAKE_MATURIN = """\
import pathlib, sys
args = sys.argv[1:]
out = pathlib.Path(args[args.index("--out") + 1])
out.mkdir(parents=True, exist_ok=True)
calls = pathlib.Path(__file__).with_suffix(".calls")
calls.write_text(calls.read_text() + "x" if calls.exists() else "x")
(out / "skypilot_rust-0.1.0-cp38-abi3-linux_x86_64.whl").write_bytes(b"wheel")
"""

FAILING_MATURIN = """\
import sys
print("   Compiling sky-rs-core v0.1.0")
print("error[E0425]: cannot find value `x` in this scope")
print("error: could not compile `sky-rs-core`")
sys.exit(1)
"""


def _tree(root: Path) -> Path:
    (root / "rust" / "core" / "src").mkdir(parents=True)
    (root / "rust" / "core" / "src" / "lib.rs").write_text("pub fn f() {}\n")
    (root / "python" / "sky_rs").mkdir(parents=True)
    (root / "python" / "sky_rs" / "__init__.py").write_text("")
    (root / "pyproject.toml").write_text('[project]\nname = "skypilot-rust"\n')
    (root / "README.md").write_text("readme\n")
    return root


def _script(path: Path, source: str) -> List[str]:
    path.write_text(source)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return [sys.executable, str(path)]


def test_key_follows_sources_not_build_outputs(tmp_path: Path) -> None:
    root = _tree(tmp_path / "p")
    key = host_wheel.source_key(root)
    (root / "rust" / "target" / "release").mkdir(parents=True)
    (root / "rust" / "target" / "release" / "libx.rlib").write_text("object")
    (root / "python" / "sky_rs" / "__pycache__").mkdir()
    (root / "python" / "sky_rs" / "__pycache__" / "a.pyc").write_text("bytecode")
    (root / "python" / "sky_rs" / "_native.abi3.so").write_text("develop build")
    assert host_wheel.source_key(root) == key
    (root / "rust" / "core" / "src" / "lib.rs").write_text("pub fn g() {}\n")
    changed = host_wheel.source_key(root)
    assert changed != key
    (root / "README.md").write_text("readme, edited\n")
    assert host_wheel.source_key(root) != changed
    (root / "rust" / "core" / "src" / "lib.rs").rename(root / "rust" / "core" / "src" / "m.rs")
    assert host_wheel.source_key(root) not in (key, changed)


def test_built_once_then_reused(tmp_path: Path) -> None:
    root = _tree(tmp_path / "p")
    maturin = _script(tmp_path / "maturin.py", FAKE_MATURIN)
    wheel, cached, _ = host_wheel.build_wheel(root, maturin=maturin, log=lambda _m: None)
    assert not cached and wheel.is_file()
    assert wheel.parent == host_wheel.wheel_dir(root, host_wheel.source_key(root))
    again, cached, _ = host_wheel.build_wheel(root, maturin=maturin, log=lambda _m: None)
    assert cached and again == wheel
    assert (tmp_path / "maturin.calls").read_text() == "x"
    assert host_wheel.cached_wheel(root) == wheel
    (root / "python" / "sky_rs" / "__init__.py").write_text("# changed\n")
    assert host_wheel.cached_wheel(root) is None
    rebuilt, cached, _ = host_wheel.build_wheel(root, maturin=maturin, log=lambda _m: None)
    assert not cached and rebuilt != wheel


def test_failed_build_names_the_error_and_the_log(tmp_path: Path) -> None:
    root = _tree(tmp_path / "p")
    maturin = _script(tmp_path / "maturin.py", FAILING_MATURIN)
    with pytest.raises(host_wheel.BuildError) as caught:
        host_wheel.build_wheel(root, maturin=maturin, log=lambda _m: None)
    message = str(caught.value)
    assert message.startswith(
        "the wheel does not build (maturin exit 1): error[E0425]: cannot find value `x`"
    )
    assert "full log: " in message and "pass --wheel PATH" in message
    assert host_wheel.cached_wheel(root) is None
    assert not list((root / ".build-cache" / "wheels").glob(".building-*"))


def test_install_needs_a_built_wheel(tmp_path: Path) -> None:
    root = _tree(tmp_path / "p")
    with pytest.raises(host_wheel.BuildError, match="run `tox -e build` or `nox -s build`"):
        host_wheel.install_cached(root)
