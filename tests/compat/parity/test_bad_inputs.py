"""Bad input for every function: the contract's typed exception, identical from both backends."""

from __future__ import annotations

import errno
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Tuple

import pytest

if TYPE_CHECKING:
    from conftest import Parity


class BadPath:
    """An os.PathLike whose __fspath__ returns neither str nor bytes."""

    def __fspath__(self) -> object:
        return 42


class RawPath:
    """An os.PathLike that hands back its string untouched (Path('') would become '.')."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __fspath__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"RawPath({self.path!r})"


class FailingPath:
    def __fspath__(self) -> str:
        raise RuntimeError("no path today")


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("bad")
    (root / "file").write_bytes(b"one\ntwo\n")
    (root / "dir").mkdir()
    os.symlink(root / "loop", root / "loop")
    os.symlink(root / "nowhere", root / "dangling")
    return SimpleNamespace(
        file=str(root / "file"),
        dir=str(root / "dir"),
        missing=str(root / "missing"),
        under_file=str(root / "file" / "child"),
        loop=str(root / "loop"),
        dangling=str(root / "dangling"),
        long=str(root / ("n" * 300)),
        nul=str(root / "fi\x00le"),
        empty="",
    )


Case = Tuple[str, Callable[[SimpleNamespace], Tuple[Any, ...]], type]

PATH_CASES: List[Tuple[str, type]] = [
    ("missing", FileNotFoundError),
    ("under_file", NotADirectoryError),
    ("loop", OSError),  # ELOOP has no subclass
    ("dangling", FileNotFoundError),
    # ENAMETOOLONG on most file systems; fuse-overlayfs (docker here) answers ENOENT.
    # Which one is the file system's choice: the test asks the OS (see os_error_of).
    ("long", OSError),
    ("nul", ValueError),
    ("empty", FileNotFoundError),
]

CASES: List[Case] = []
for attribute, error in PATH_CASES:

    def path_of(p: SimpleNamespace, name: str = attribute) -> str:
        return getattr(p, name)

    CASES += [
        ("read_last_n_lines", lambda p, f=path_of: (f(p), 1), error),
        ("read_last_n_lines", lambda p, f=path_of: (os.fsencode(f(p)), 1), error),
        ("read_last_n_lines", lambda p, f=path_of: (RawPath(f(p)), 0), error),
        ("hash_file", lambda p, f=path_of: (f(p), "sha256"), error),
        ("hash_file", lambda p, f=path_of: (RawPath(f(p)), "no-such-hash"), error),
        ("estimate_fd_for_directory", lambda p, f=path_of: (f(p),), error),
        ("estimate_fd_for_directory", lambda p, f=path_of: (os.fsencode(f(p)),), error),
    ]

CASES += [
    # directories where files are wanted, files where directories are
    ("read_last_n_lines", lambda p: (p.dir, 1), IsADirectoryError),
    ("read_last_n_lines", lambda p: (Path(p.dir), 5, 1), IsADirectoryError),
    ("hash_file", lambda p: (p.dir, "sha256"), IsADirectoryError),
    ("hash_file", lambda p: (os.fsencode(p.dir), "shake_128"), IsADirectoryError),
    ("estimate_fd_for_directory", lambda p: (p.file,), NotADirectoryError),
    # wrong types, in every argument
    ("read_last_n_lines", lambda p: (None, 1), TypeError),
    ("read_last_n_lines", lambda p: (3, 1), TypeError),
    ("read_last_n_lines", lambda p: (True, 1), TypeError),
    ("read_last_n_lines", lambda p: (bytearray(b"/x"), 1), TypeError),
    ("read_last_n_lines", lambda p: (BadPath(), 1), TypeError),
    ("read_last_n_lines", lambda p: (FailingPath(), 1), RuntimeError),
    ("read_last_n_lines", lambda p: (p.file, "1"), TypeError),
    ("read_last_n_lines", lambda p: (p.file, 1.0), TypeError),
    ("read_last_n_lines", lambda p: (p.file, None), TypeError),
    ("read_last_n_lines", lambda p: (p.file, 1, 8192.0), TypeError),
    ("read_last_n_lines", lambda p: (p.file, 1, None), TypeError),
    ("read_last_n_lines", lambda p: (p.file, 1, 8192, b"utf-8"), TypeError),
    ("read_last_n_lines", lambda p: (p.file, 1, 8192, "utf-8", None), TypeError),
    ("read_last_n_lines", lambda p: (p.missing, -1, "x"), TypeError),
    ("hash_file", lambda p: (None, "sha256"), TypeError),
    ("hash_file", lambda p: (7, "sha256"), TypeError),
    ("hash_file", lambda p: (p.file, None), TypeError),
    ("hash_file", lambda p: (p.missing, 256), TypeError),
    ("hash_file", lambda p: (p.file, b"sha256"), TypeError),
    ("find_free_port", lambda p: ("8080",), TypeError),
    ("find_free_port", lambda p: (8080.0,), TypeError),
    ("find_free_port", lambda p: (None,), TypeError),
    ("base36_encode", lambda p: (0xFF,), TypeError),
    ("base36_encode", lambda p: (None,), TypeError),
    ("base36_encode", lambda p: (memoryview(b"ff"),), TypeError),
    ("format_float", lambda p: ("1.5",), TypeError),
    ("format_float", lambda p: (None, 1), TypeError),
    ("format_float", lambda p: (1.5, "1"), TypeError),
    ("format_float", lambda p: (1.5, 1.0), TypeError),
    ("format_float", lambda p: ("x", 1.0), TypeError),
    ("truncate_long_string", lambda p: (None,), TypeError),
    ("truncate_long_string", lambda p: (b"bytes", 3), TypeError),
    ("truncate_long_string", lambda p: ("abc", "3"), TypeError),
    ("truncate_long_string", lambda p: ("abc", None), TypeError),
    ("truncate_long_string", lambda p: (3, -1), TypeError),
    ("get_parallel_threads", lambda p: (3,), TypeError),
    ("get_parallel_threads", lambda p: (b"kubernetes",), TypeError),
    ("is_process_alive", lambda p: ("1",), TypeError),
    ("is_process_alive", lambda p: (1.0,), TypeError),
    ("is_process_alive", lambda p: (None,), TypeError),
    ("get_max_workers_for_file_mounts", lambda p: (None,), TypeError),
    ("get_max_workers_for_file_mounts", lambda p: ([p.dir],), TypeError),
    ("get_max_workers_for_file_mounts", lambda p: ({"a": 1},), TypeError),
    ("get_max_workers_for_file_mounts", lambda p: ({"a": bytearray(b"/")},), TypeError),
    ("get_max_workers_for_file_mounts", lambda p: ({"a": p.dir}, 1), TypeError),
    ("get_max_workers_for_file_mounts", lambda p: ({"a": BadPath()},), TypeError),
    ("estimate_fd_for_directory", lambda p: (None,), TypeError),
    ("estimate_fd_for_directory", lambda p: (0,), TypeError),
    ("estimate_fd_for_directory", lambda p: (False,), TypeError),
    ("estimate_fd_for_directory", lambda p: (BadPath(),), TypeError),
    # out-of-range values
    ("read_last_n_lines", lambda p: (p.file, -1), ValueError),
    ("read_last_n_lines", lambda p: (p.file, -(10**30)), ValueError),
    ("read_last_n_lines", lambda p: (p.file, 1, 0), ValueError),
    ("read_last_n_lines", lambda p: (p.file, 1, -(2**64)), ValueError),
    ("read_last_n_lines", lambda p: (p.missing, -1), ValueError),
    ("read_last_n_lines", lambda p: (p.file, 1, 8192, "no-such-codec"), LookupError),
    ("find_free_port", lambda p: (-1,), ValueError),
    ("find_free_port", lambda p: (65536,), ValueError),
    ("find_free_port", lambda p: (10**30,), ValueError),
    ("find_free_port", lambda p: (-(2**64),), ValueError),
    ("find_free_port", lambda p: (65535,), OSError),
    ("base36_encode", lambda p: ("-1",), ValueError),
    ("base36_encode", lambda p: ("xyz",), ValueError),
    ("base36_encode", lambda p: ("",), ValueError),
    ("format_float", lambda p: (1.5, -1), ValueError),
    ("format_float", lambda p: (1.5, 2**31), ValueError),
    ("format_float", lambda p: (1.5, 10**30), ValueError),
    ("format_float", lambda p: (1, -(10**30)), ValueError),
    # precision is checked first, for every num.
    ("format_float", lambda p: ("x", -1), ValueError),
    ("format_float", lambda p: (None, -3), ValueError),
    ("truncate_long_string", lambda p: ("abc", -1), ValueError),
    ("truncate_long_string", lambda p: ("abc", -(10**30)), ValueError),
    ("is_process_alive", lambda p: (0,), ValueError),
    ("is_process_alive", lambda p: (-1,), ValueError),
    ("is_process_alive", lambda p: (2**31,), ValueError),
    ("is_process_alive", lambda p: (10**30,), ValueError),
    ("is_process_alive", lambda p: (False,), ValueError),
    ("hash_file", lambda p: (p.file, "shake_256"), ValueError),
    ("hash_file", lambda p: (p.file, "nope"), ValueError),
    ("hash_file", lambda p: (p.file, "\ud800"), ValueError),
    ("read_last_n_lines", lambda p: (p.file, 1, 8192, "\ud800"), UnicodeEncodeError),
    ("read_last_n_lines", lambda p: (p.file, 1, 8192, ""), LookupError),
]


@pytest.mark.parametrize(
    ("name", "make_args", "expected"),
    CASES,
    ids=[f"{name}-{index}" for index, (name, _, _) in enumerate(CASES)],
)
def test_bad_input(
    parity: Parity,
    paths: SimpleNamespace,
    name: str,
    make_args: Callable[[SimpleNamespace], Tuple[Any, ...]],
    expected: type,
) -> None:
    args = make_args(paths)
    first = args[0].path if args and isinstance(args[0], RawPath) else args[0] if args else None
    if isinstance(first, (str, bytes)) and first in (paths.long, os.fsencode(paths.long)):
        expected = os_error_of(paths.long)[0]
    parity.raises(expected, name, *args)


def test_names_holding_nul_follow_the_interpreter(parity: Parity, paths: SimpleNamespace) -> None:
    """A codec or hash name with NUL is what the running interpreter makes of it ("as Python's
    codecs do"; "accepted exactly when hashlib.new accepts it"). CPython refuses both
    (ValueError); PyPy's codec lookup takes 'utf-8\\x00' for UTF-8, and its hashlib cuts
    'sha256\\x00' at the NUL and hashes sha256, which the result names canonically."""
    try:
        decoded: object = b"two".decode("utf-8\x00", "replace")
    except (LookupError, ValueError) as exc:
        parity.raises(type(exc), "read_last_n_lines", paths.file, 1, 8192, "utf-8\x00")
    else:
        parity.returns([decoded], "read_last_n_lines", paths.file, 1, 8192, "utf-8\x00")
    try:
        hashlib.new("sha256\x00")
    except (TypeError, ValueError):  # TypeError: older CPython; the contract says ValueError
        parity.raises(ValueError, "hash_file", paths.file, "sha256\x00")
    else:
        digest = parity.same("hash_file", paths.file, "sha256\x00").value
        assert digest.name == "sha256"
        assert digest.digest() == hashlib.sha256(b"one\ntwo\n").digest()


def os_error_of(path: str) -> Tuple[type, int]:
    """The OSError class and errno this file system gives a path (for file-system-defined cases)."""
    try:
        os.stat(path)
    except OSError as exc:
        return type(exc), exc.errno or 0
    raise AssertionError(f"{path} exists")


def test_oserrors_carry_errno_and_filename(parity: Parity, paths: SimpleNamespace) -> None:
    for name, args, code in [
        ("read_last_n_lines", (paths.missing, 1), errno.ENOENT),
        ("read_last_n_lines", (paths.dir, 1), errno.EISDIR),
        ("read_last_n_lines", (paths.long, 1), os_error_of(paths.long)[1]),
        ("read_last_n_lines", (paths.loop, 1), errno.ELOOP),
        ("hash_file", (paths.under_file, "md5"), errno.ENOTDIR),
        ("hash_file", (paths.dir, "md5"), errno.EISDIR),
        ("estimate_fd_for_directory", (paths.file,), errno.ENOTDIR),
        ("estimate_fd_for_directory", (paths.loop,), errno.ELOOP),
    ]:
        for form in (str, os.fsencode, Path):
            argument = form(args[0])
            exc = parity.same(name, argument, *args[1:]).value
            assert isinstance(exc, OSError) and exc.errno == code, (name, argument, exc)
            assert exc.filename == os.fspath(argument), (name, argument, exc.filename)


def test_max_workers_directory_errors_propagate(parity: Parity, paths: SimpleNamespace) -> None:
    """Missing and non-directory sources are ignored; listing is what may fail."""
    parity.same(
        "get_max_workers_for_file_mounts",
        {
            "a": paths.missing,
            "b": paths.file,
            "c": paths.loop,
            "d": paths.under_file,
            "e": paths.nul,
            "f": paths.long,
            "g": paths.empty,
            "h": paths.dangling,
        },
    )


@pytest.mark.parametrize(
    ("name", "args", "code"),
    [
        ("read_last_n_lines", ("/proc/self/status", 2), errno.EINVAL),  # seq files cannot seek
        ("read_last_n_lines", ("/proc/self/mem", 1), errno.EINVAL),
        ("hash_file", ("/proc/self/mem", "md5"), errno.EIO),  # address 0 is not mapped
        ("hash_file", ("/proc/self/clear_refs", "sha256"), errno.EINVAL),  # write-only
    ],
)
def test_read_errors_after_open(parity: Parity, name: str, args: tuple, code: int) -> None:
    """Failures after a successful open carry errno and the path as the filename."""
    if not os.path.exists(args[0]):
        pytest.skip(f"{args[0]} does not exist here")
    try:
        os.close(os.open(args[0], os.O_RDONLY))
    except OSError as exc:
        # Not openable here (clear_refs is 0200: EACCES for a non-root user), so the
        # case is the open's failure: both backends must still give exactly that.
        error = parity.raises(type(exc), name, *args)
        assert error.errno == exc.errno and error.filename == args[0], error
        return
    error = parity.raises(OSError, name, *args)
    assert error.errno == code and error.filename == args[0], (error.errno, error.filename)


def test_no_free_port_message(parity: Parity) -> None:
    error = parity.raises(OSError, "find_free_port", 65535)
    assert error.errno is None and error.args == ("No free ports available.",)


# ------------------------------------------------------------------ unreadable files


def write_only_sysfs_file() -> str:
    """A sysfs attribute without a show method: EACCES on open for reading, even for root."""
    for candidate in sorted(glob.glob("/sys/bus/*/uevent")) + sorted(
        glob.glob("/sys/bus/*/drivers_probe")
    ):
        try:
            with open(candidate, "rb"):
                continue
        except PermissionError:
            return candidate
        except OSError:
            continue
    return ""


def test_unreadable_file_in_process(parity: Parity, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        target = tmp_path / "locked"
        target.write_bytes(b"secret\n")
        target.chmod(0)
        path = str(target)
    else:
        path = write_only_sysfs_file()
        if not path:
            pytest.skip("running as root and no write-only sysfs attribute to read")
    parity.raises(PermissionError, "hash_file", path, "sha256")
    parity.raises(PermissionError, "hash_file", path, "no-such-hash")
    error = parity.raises(PermissionError, "read_last_n_lines", path, 1)
    assert error.errno == errno.EACCES and error.filename == path


UNPRIVILEGED_SCRIPT = r"""
import json, sys
import sky_rs.fallback as python, sky_rs._native as native

def outcome(fn, *args):
    try:
        value = fn(*args)
        return ["ok", repr(value)]
    except BaseException as exc:
        filename = repr(getattr(exc, "filename", None))
        return [type(exc).__name__, getattr(exc, "errno", None), filename]

calls = json.loads(sys.argv[1])
print(json.dumps([[outcome(getattr(python, name), *args), outcome(getattr(native, name), *args)]
                  for name, args in calls]))
"""


def test_unreadable_paths_without_root_privileges(tmp_path: Path) -> None:
    """chmod 000 blocks nobody while we are root: drop the DAC capabilities in a child."""
    locked_file = tmp_path / "locked-file"
    locked_file.write_bytes(b"a\nb\n")
    locked_file.chmod(0)
    locked_dir = tmp_path / "locked-dir"
    locked_dir.mkdir()
    (locked_dir / "entry").write_bytes(b"")
    locked_dir.chmod(0)
    sealed = tmp_path / "sealed"  # searchable for nobody: children unreachable
    sealed.mkdir()
    (sealed / "inner").write_bytes(b"x")
    sealed.chmod(0o600)
    calls = [
        ("read_last_n_lines", [str(locked_file), 1]),
        ("read_last_n_lines", [str(locked_file), 0]),
        ("hash_file", [str(locked_file), "sha256"]),
        ("hash_file", [str(locked_file), "nope"]),
        ("estimate_fd_for_directory", [str(locked_dir)]),
        ("estimate_fd_for_directory", [str(sealed / "inner")]),
        ("read_last_n_lines", [str(sealed / "inner"), 1]),
        ("hash_file", [str(sealed / "inner"), "md5"]),
        ("get_max_workers_for_file_mounts", [{"a": str(locked_dir)}]),
        ("get_max_workers_for_file_mounts", [{"a": str(sealed / "inner")}]),
    ]
    command = [sys.executable, "-c", UNPRIVILEGED_SCRIPT, json.dumps(calls)]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv(1) to drop CAP_DAC_OVERRIDE")
        command = [setpriv, "--bounding-set=-dac_override,-dac_read_search", *command]
    try:
        result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    finally:
        locked_dir.chmod(0o700)
        sealed.chmod(0o700)
    assert result.returncode == 0, result.stderr
    outcomes: Dict[str, Any] = json.loads(result.stdout)
    for (name, args), (python, native) in zip(calls, outcomes):
        assert python == native, (name, args, python, native)
        assert "PanicException" not in (python[0], native[0])
    kinds = [python[0] for python, _ in outcomes]
    assert kinds == [
        "PermissionError",
        "ok",
        "PermissionError",
        "PermissionError",
        "PermissionError",
        "PermissionError",
        "PermissionError",
        "PermissionError",
        "PermissionError",
        "ok",
    ], kinds
