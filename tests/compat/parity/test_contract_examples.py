"""Every example the contract (functions.md) gives, on both backends."""

from __future__ import annotations

import hashlib
import os
import socket
import string
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Union

import pytest

if TYPE_CHECKING:
    from conftest import Parity

LOWERCASE = string.ascii_lowercase


def write(path: Path, content: bytes) -> str:
    path.write_bytes(content)
    return str(path)


# ------------------------------------------------------------------ read_last_n_lines


@pytest.mark.parametrize(
    ("content", "n", "expected"),
    [
        (b"a\nb\n", 2, ["a\n", "b"]),
        (b"a\nb", 2, ["a\n", "b"]),
        (b"\n", 2, [""]),
        (b"\n", 1, [""]),
        (b"", 3, []),
        (b"a\nb\nc\n", 1, ["c"]),
        (b"a\nb\nc", 2, ["b\n", "c"]),
        (b"a\r\nb\r\r\n", 5, ["a\n", "b"]),
        (
            b"a\rb\x0bc\x0cd\x1ce\x1df\x1eg\xc2\x85h\xe2\x80\xa8i\n",
            5,
            ["a\rb\x0bc\x0cd\x1ce\x1df\x1eg\x85h\u2028i"],
        ),
        (b"x\n\n\ny\n", 3, ["\n", "\n", "y"]),
        (b"one\r", 1, ["one"]),
    ],
)
@pytest.mark.parametrize("chunk_size", [1, 2, 3, 8192])
def test_read_last_n_lines_examples(
    parity: Parity, tmp_path: Path, content: bytes, n: int, expected: list, chunk_size: int
) -> None:
    path = write(tmp_path / "log", content)
    parity.returns(expected, "read_last_n_lines", path, n, chunk_size)


def test_read_last_n_lines_first_line_complete_with_tiny_chunks(
    parity: Parity, tmp_path: Path
) -> None:
    path = write(tmp_path / "log", b"first line is long\nsecond line is longer still\nthird")
    for chunk_size in range(1, 40):
        parity.returns(
            ["second line is longer still\n", "third"], "read_last_n_lines", path, 2, chunk_size
        )


def test_read_last_n_lines_zero_and_directories(parity: Parity, tmp_path: Path) -> None:
    parity.returns([], "read_last_n_lines", str(tmp_path), 0)
    parity.raises(IsADirectoryError, "read_last_n_lines", str(tmp_path), 1)
    parity.raises(FileNotFoundError, "read_last_n_lines", str(tmp_path / "missing"), 0)
    parity.raises(FileNotFoundError, "read_last_n_lines", str(tmp_path / "missing"), 1)


def test_read_last_n_lines_argument_checks_come_first(parity: Parity, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")
    parity.raises(ValueError, "read_last_n_lines", missing, -1)
    parity.raises(ValueError, "read_last_n_lines", missing, 1, 0)
    parity.raises(ValueError, "read_last_n_lines", missing, 1, -5)
    parity.raises(TypeError, "read_last_n_lines", missing, 1, 8192, None)
    parity.raises(TypeError, "read_last_n_lines", missing, 1, 8192, "utf-8", b"strict")
    parity.raises(TypeError, "read_last_n_lines", missing, 1.0)
    parity.raises(TypeError, "read_last_n_lines", missing, -1, 8192, 5)  # types before values


def test_read_last_n_lines_lazy_codec_lookup(parity: Parity, tmp_path: Path) -> None:
    empty = write(tmp_path / "empty", b"")
    text = write(tmp_path / "text", b"ok\n\xff\n")
    parity.returns([], "read_last_n_lines", text, 0, 8192, "no-such-codec")
    parity.returns([], "read_last_n_lines", empty, 3, 8192, "no-such-codec")
    parity.raises(LookupError, "read_last_n_lines", text, 1, 8192, "no-such-codec")
    # An unknown handler matters only when a decoding error happens.
    parity.returns(["ok\n", "\ufffd"], "read_last_n_lines", text, 2)
    ok_file = write(tmp_path / "ok", b"ok\n")
    try:  # debug builds and -X dev check the handler name even when decoding succeeds
        b"ok".decode("utf-8", "x")
    except LookupError:
        parity.raises(LookupError, "read_last_n_lines", ok_file, 1, 1, "utf-8", "x")
    else:
        parity.returns(["ok"], "read_last_n_lines", ok_file, 1, 1, "utf-8", "x")
    parity.raises(LookupError, "read_last_n_lines", text, 1, 8192, "utf-8", "no-such-handler")
    parity.raises(UnicodeDecodeError, "read_last_n_lines", text, 1, 8192, "utf-8", "strict")
    parity.returns(["ok\n", ""], "read_last_n_lines", text, 2, 8192, "utf-8", "ignore")
    parity.returns(
        ["ok\n", "\\xff"], "read_last_n_lines", text, 2, 8192, "utf-8", "backslashreplace"
    )
    parity.returns(
        ["ok\n", "\udcff"], "read_last_n_lines", text, 2, 8192, "utf-8", "surrogateescape"
    )
    # Bytes outside the kept lines are never decoded.
    parity.returns(
        ["ok"], "read_last_n_lines", write(tmp_path / "bad", b"\xff\nok"), 1, 1, "ascii", "strict"
    )


# ------------------------------------------------------------------ hash_file


@pytest.mark.parametrize(
    ("alg", "canonical"),
    [
        ("sha256", "sha256"),
        ("SHA256", "sha256"),
        ("sha-256", "sha256"),
        ("md5", "md5"),
        ("sha3_256", "sha3_256"),
        ("blake2b", "blake2b"),
        ("blake2s", "blake2s"),
        ("sha1", "sha1"),
    ],
)
def test_hash_file_names(parity: Parity, tmp_path: Path, alg: str, canonical: str) -> None:
    path = write(tmp_path / "data", b"hello world\n" * 1000)
    try:  # aliases such as "sha-256" follow the interpreter's OpenSSL, as the contract says
        hashlib.new(alg)
    except ValueError:
        parity.raises(ValueError, "hash_file", path, alg)
        return
    outcome = parity.same("hash_file", path, alg)
    assert outcome.ok, outcome.describe()
    digest = outcome.value
    reference = hashlib.new(alg, (tmp_path / "data").read_bytes())
    assert digest.name == canonical
    # CPython's hashlib names an alias canonically itself; PyPy's keeps the alias, lowercased.
    assert reference.name == canonical or sys.implementation.name != "cpython"
    assert digest.digest() == reference.digest()
    assert digest.hexdigest() == reference.hexdigest()
    assert (digest.digest_size, digest.block_size) == (reference.digest_size, reference.block_size)
    assert digest.copy() == digest


@pytest.mark.parametrize(
    "alg", ["shake_128", "shake_256", "SHAKE128", "shake-128", "no-such-hash", ""]
)
def test_hash_file_rejected_names(parity: Parity, tmp_path: Path, alg: str) -> None:
    path = write(tmp_path / "data", b"x")
    parity.raises(ValueError, "hash_file", path, alg)


@pytest.mark.parametrize(
    ("alg", "canonical"),
    [("SHA3_256", "sha3_256"), ("BLAKE2B", "blake2b"), ("sha3-256", "sha3_256"),
     ("blake2b512", "blake2b"), ("SHA512-224", "sha512_224"), ("RIPEMD-160", "ripemd160")],
)  # fmt: skip
def test_hash_file_takes_a_name_exactly_when_hashlib_does(
    parity: Parity, tmp_path: Path, alg: str, canonical: str
) -> None:
    """No case folding of our own: CPython refuses 'SHA3_256' and 'BLAKE2B' (the contract's
    examples), PyPy's hashlib takes them (its OpenSSL lookup ignores case). Where taken, the
    result carries the canonical name, as for every alias."""
    path = write(tmp_path / "data", b"hello")
    try:
        reference = hashlib.new(alg, b"hello")
    except ValueError:
        parity.raises(ValueError, "hash_file", path, alg)
        return
    digest = parity.same("hash_file", path, alg).value
    assert (digest.name, digest.digest()) == (canonical, reference.digest())


def test_hash_file_opens_before_resolving_the_name(parity: Parity, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")
    parity.raises(FileNotFoundError, "hash_file", missing, "no-such-hash")
    parity.raises(FileNotFoundError, "hash_file", missing, "shake_128")
    parity.raises(IsADirectoryError, "hash_file", str(tmp_path), "no-such-hash")
    parity.raises(TypeError, "hash_file", missing, None)
    parity.raises(TypeError, "hash_file", missing, b"sha256")


# ------------------------------------------------------------------ find_free_port


def test_find_free_port_examples(parity: Parity) -> None:
    parity.returns(0, "find_free_port", 0)
    parity.raises(ValueError, "find_free_port", -1)
    parity.raises(ValueError, "find_free_port", 65536)
    error = parity.raises(OSError, "find_free_port", 65535)
    assert error.args == ("No free ports available.",)
    assert str(error) == "No free ports available."


def test_find_free_port_skips_a_port_in_use(parity: Parity) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("", 0))
        held.listen(1)
        port = held.getsockname()[1]
        if port >= 65534:
            pytest.fail(f"the kernel gave port {port}; cannot probe above it")
        outcome = parity.same_settled("find_free_port", port)
        assert outcome.ok and outcome.value > port, outcome.describe()


# ------------------------------------------------------------------ base36_encode


@pytest.mark.parametrize(
    ("hex_str", "expected"),
    [
        ("ff", "73"),
        ("0", "0"),
        ("-0", "0"),
        ("+ff", "73"),
        ("0xff", "73"),
        ("0XFF", "73"),
        ("  ff\n", "73"),
        ("\u2003ff\u3000", "73"),
        ("f_f", "73"),
        ("0x_f_f", "73"),
        ("\u0663", "3"),
        (b"ff", "73"),
        (bytearray(b"FF"), "73"),
        ("24", "10"),
        ("a" * 64, None),
    ],
)
def test_base36_examples(
    parity: Parity, hex_str: Union[str, bytes, bytearray], expected: str | None
) -> None:
    if expected is None:
        expected = to_base36(int(hex_str, 16))
    parity.returns(expected, "base36_encode", hex_str)


def to_base36(value: int) -> str:
    digits = ""
    while value:
        value, digit = divmod(value, 36)
        digits = (string.digits + LOWERCASE)[digit] + digits
    return digits or "0"


def test_base36_sha256_digest(parity: Parity) -> None:
    digest = hashlib.sha256(b"sky").hexdigest()
    parity.returns(to_base36(int(digest, 16)), "base36_encode", digest)


@pytest.mark.parametrize("bad", ["", "g", "-1", "-ff", "0x", "f__f", "_ff", "ff_", "1 2", "0o7"])
def test_base36_bad_values(parity: Parity, bad: str) -> None:
    parity.raises(ValueError, "base36_encode", bad)


@pytest.mark.parametrize("bad", [255, 1.5, None, memoryview(b"ff"), ["ff"], True])
def test_base36_bad_types(parity: Parity, bad: object) -> None:
    parity.raises(TypeError, "base36_encode", bad)


# ------------------------------------------------------------------ format_float


@pytest.mark.parametrize(
    ("num", "precision", "expected"),
    [
        (2.0, 1, "2"),
        (-0.0, 1, "-0"),
        (1e20, 1, "100000000000000000000"),
        (2.55, 1, "2.5"),
        (0.25, 1, "0.2"),
        (0.35, 1, "0.3"),
        (1.25, 1, "1.2"),
        (1.5, 0, "2"),
        (2.5, 0, "2"),
        (float("nan"), 3, "nan"),
        (-float("nan"), 3, "nan"),
        (float("inf"), 1, "inf"),
        (float("-inf"), 1, "-inf"),
        (True, 1, "True"),
        (False, 1, "False"),
        (7, 1, "7"),
        (-7, 5, "-7"),
        (10**30, 1, str(10**30)),
        (5e-324, 1, "0.0"),
        (-5e-324, 1, "-0.0"),
        (1.23456, 3, "1.235"),
        (5, 2**31, "5"),
        (2.0, 2**31, "2"),
        (2.0, 10**30, "2"),
    ],
)
def test_format_float_examples(
    parity: Parity, num: Union[int, float], precision: int, expected: str
) -> None:
    parity.returns(expected, "format_float", num, precision)
    if precision == 1:
        parity.returns(expected, "format_float", num)


def test_format_float_nan_at_the_largest_precision_is_what_python_says(parity: Parity) -> None:
    """'nan' for nan, unless this interpreter's formatter refuses the precision itself.

    CPython 3.13.x after 3.13.0 (and 3.14) raise ValueError('precision too big') for
    nan with precision 2**31 - 1, earlier ones answer 'nan'; the contract follows Python.
    PyPy refuses it with a MemoryError (nan needs no memory: it answers 'nan' for
    2**31 - 4096 under any memory limit); a refusal is a ValueError by the contract.
    """
    try:
        python_says: object = format(float("nan"), f".{2**31 - 1}f")
    except (ValueError, MemoryError):
        parity.raises(ValueError, "format_float", float("nan"), 2**31 - 1)
        parity.raises(ValueError, "format_float", float("-inf"), 2**31 - 1)
    else:
        assert python_says == "nan"
        parity.returns("nan", "format_float", float("nan"), 2**31 - 1)


def test_format_float_large_precisions_the_formatter_takes(parity: Parity) -> None:
    """Beyond the native formatter's 4096 digits, below any interpreter's refusal: the answer
    is Python's, non-finite values included (PyPy's limit for them is 2**31 - 4096)."""
    for precision in (4097, 10**5, 2**30, 2**31 - 5000):
        parity.returns("nan", "format_float", float("nan"), precision)
        parity.returns("-inf", "format_float", float("-inf"), precision)
    parity.returns(format(0.1, ".5000f"), "format_float", 0.1, 5000)
    parity.returns(format(2.5e-300, ".100000f"), "format_float", 2.5e-300, 10**5)


def test_format_float_errors(parity: Parity) -> None:
    # precision is checked first, for every num (type, then value), num's type after it.
    parity.raises(ValueError, "format_float", "x", -1)
    parity.raises(ValueError, "format_float", None, -3)
    parity.raises(ValueError, "format_float", 1 + 2j, -(2**70))
    parity.raises(TypeError, "format_float", "x", 1.0)
    parity.raises(TypeError, "format_float", "x", 1)
    parity.raises(TypeError, "format_float", 1.5, 1.0)
    parity.raises(TypeError, "format_float", 1.5, None)
    parity.raises(ValueError, "format_float", 1.5, -1)
    parity.raises(ValueError, "format_float", 7, -1)
    # Above 2**31 - 1: ValueError on every interpreter (PyPy's formatter says MemoryError).
    parity.raises(ValueError, "format_float", 2.5, 2**31)
    parity.raises(ValueError, "format_float", float("nan"), 2**31)
    parity.raises(ValueError, "format_float", 2.5, 2**40)
    parity.raises(ValueError, "format_float", 2.5, 10**30)
    # The integral branch formats without the precision, so any precision goes there.
    parity.returns("2", "format_float", 2.0, 2**40)
    parity.raises(TypeError, "format_float", None)
    parity.raises(TypeError, "format_float", "1.5")
    parity.raises(TypeError, "format_float", 1 + 2j)


def test_format_float_int_max_str_digits(parity: Parity) -> None:
    limit = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 0
    if limit:
        parity.raises(ValueError, "format_float", 10 ** (limit + 10))
        parity.returns(str(10 ** (limit - 1)), "format_float", 10 ** (limit - 1))
    else:
        parity.returns(str(10**5000), "format_float", 10**5000)


# ------------------------------------------------------------------ truncate_long_string


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("abcde", 4, True), "a..."),
        ((LOWERCASE, 10, True), "abcd...xyz"),
        ((LOWERCASE, 11, True), "abcd...wxyz"),
        (("a b c d e f", 10), "a b c d e ..."),
        (("ab cd ef gh", 10), "ab cd ef g..."),
        (("short", 35), "short"),
        (("exact", 5), "exact"),
        (("abcdef", 3, True), "..."),
        (("abcdef", 0, True), "..."),
        (("abcdef", 0), "..."),
        (("abcdef", 2), "ab..."),
        (("abcdefgh", 5, 1), "a...h"),
        (("abcdefgh", 5, ""), "abcde..."),
        (("αβγδεζηθ", 6, True), "αβ...θ"),
        (("\U0001f600" * 10, 4), "\U0001f600" * 4 + "..."),
    ],
)
def test_truncate_examples(parity: Parity, args: tuple, expected: str) -> None:
    parity.returns(expected, "truncate_long_string", *args)


def test_truncate_errors(parity: Parity) -> None:
    parity.raises(ValueError, "truncate_long_string", "abc", -1)
    parity.raises(ValueError, "truncate_long_string", "", -1)
    parity.raises(TypeError, "truncate_long_string", b"abc", 2)
    parity.raises(TypeError, "truncate_long_string", None)
    parity.raises(TypeError, "truncate_long_string", "abc", 2.0)
    parity.raises(TypeError, "truncate_long_string", 5, -1)


# ------------------------------------------------------------------ env-driven system values


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("4", 4),
        ("2.9", 2),
        ("0.5", 1),
        ("0", 1),
        ("-3", 1),
        (" 4 ", 4),
        ("1_6", 16),
        ("\u0663", 3),
        ("1e3", 1000),
        ("1e30", int(float("1e30"))),
    ],
)
def test_cpu_count_override(
    parity: Parity, monkeypatch: pytest.MonkeyPatch, value: str, expected: int
) -> None:
    monkeypatch.setenv("SKYPILOT_POD_CPU_CORE_LIMIT", value)
    parity.returns(expected, "get_cpu_count")


@pytest.mark.parametrize("value", ["abc", "nan", "inf", "-inf", "1e400", "", "0x10", "4 cpus"])
def test_cpu_count_bad_override(
    parity: Parity, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SKYPILOT_POD_CPU_CORE_LIMIT", value)
    parity.raises(ValueError, "get_cpu_count")


def test_mem_size_overrides(parity: Parity, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SKYPILOT_POD_MEMORY_GB_LIMIT", raising=False)
    monkeypatch.setenv("SKYPILOT_POD_MEMORY_BYTES_LIMIT", "1073741824")
    parity.returns(1.0, "get_mem_size_gb")
    monkeypatch.setenv("SKYPILOT_POD_MEMORY_GB_LIMIT", "2.5")
    parity.returns(2.5, "get_mem_size_gb")  # GB wins over bytes
    for bad in ["nan", "inf", "0", "-1", "x", "", "1e400"]:
        monkeypatch.setenv("SKYPILOT_POD_MEMORY_GB_LIMIT", bad)
        parity.raises(ValueError, "get_mem_size_gb")
    monkeypatch.delenv("SKYPILOT_POD_MEMORY_GB_LIMIT")
    for bad in ["nan", "-inf", "0", "-1", "x", "1e400"]:
        monkeypatch.setenv("SKYPILOT_POD_MEMORY_BYTES_LIMIT", bad)
        parity.raises(ValueError, "get_mem_size_gb")


def test_system_values_without_overrides(parity: Parity, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "SKYPILOT_POD_CPU_CORE_LIMIT",
        "SKYPILOT_POD_MEMORY_GB_LIMIT",
        "SKYPILOT_POD_MEMORY_BYTES_LIMIT",
    ):
        monkeypatch.delenv(name, raising=False)
    cpus = parity.same("get_cpu_count")
    assert cpus.ok and 1 <= cpus.value <= (os.cpu_count() or 1), cpus.describe()
    memory = parity.same("get_mem_size_gb")
    assert memory.ok and memory.value > 0, memory.describe()
    parity.same("_cgroup_cpu_limit", "/")
    parity.same("_cgroup_memory_limit", "/", None)


# ------------------------------------------------------------------ processes


def test_parallel_threads_examples(parity: Parity) -> None:
    base = max(4, (os.cpu_count() or 1) - 1)
    parity.returns(base, "get_parallel_threads")
    parity.returns(base, "get_parallel_threads", None)
    parity.returns(base, "get_parallel_threads", "aws")
    parity.returns(base, "get_parallel_threads", "")
    for name in ("kubernetes", "KUBERNETES", "Kubernetes", "\u212aUBERNETES"):
        parity.returns(base * 4, "get_parallel_threads", name)
    parity.returns(base, "get_parallel_threads", "kubernetes ")
    parity.raises(TypeError, "get_parallel_threads", 5)
    parity.raises(TypeError, "get_parallel_threads", b"kubernetes")


def test_is_process_alive_examples(parity: Parity) -> None:
    parity.returns(True, "is_process_alive", os.getpid())
    parity.returns(True, "is_process_alive", 1)
    parity.returns(True, "is_process_alive", True)  # bool is an int: pid 1
    parity.returns(False, "is_process_alive", 2**31 - 1)
    for bad in (0, -1, 2**31, 2**63, -(2**63), False):
        parity.raises(ValueError, "is_process_alive", bad)
    for bad in (None, 1.0, "1", b"1"):
        parity.raises(TypeError, "is_process_alive", bad)


def test_estimate_fd_examples(parity: Parity, tmp_path: Path) -> None:
    parity.returns(0, "estimate_fd_for_directory", str(tmp_path))
    (tmp_path / ".hidden").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deeper").write_bytes(b"")
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    parity.returns(15, "estimate_fd_for_directory", str(tmp_path))
    parity.returns(15, "estimate_fd_for_directory", tmp_path)
    parity.returns(15, "estimate_fd_for_directory", os.fsencode(tmp_path))
    parity.raises(NotADirectoryError, "estimate_fd_for_directory", str(tmp_path / ".hidden"))
    parity.raises(FileNotFoundError, "estimate_fd_for_directory", str(tmp_path / "missing"))
    parity.raises(TypeError, "estimate_fd_for_directory", None)
    parity.raises(TypeError, "estimate_fd_for_directory", 3)


def test_max_workers_examples(parity: Parity, tmp_path: Path) -> None:
    import resource

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    fd_limit = 2**31 - 1 if soft == resource.RLIM_INFINITY else soft
    threads = max(4, (os.cpu_count() or 1) - 1)
    big = tmp_path / "big"
    big.mkdir()
    for i in range(300):
        (big / f"f{i}").write_bytes(b"")
    mounts = {"~/a": str(big), "~/b": "gs://bucket/x", "~/c": str(tmp_path / "missing")}
    expected = min(max((fd_limit - 100) // 1500, 1), threads)
    parity.returns(expected, "get_max_workers_for_file_mounts", mounts)
    parity.returns(
        min(max((fd_limit - 100) // 5, 1), threads * 4),
        "get_max_workers_for_file_mounts",
        {},
        "kubernetes",
    )
    parity.raises(TypeError, "get_max_workers_for_file_mounts", [str(big)])
    parity.raises(TypeError, "get_max_workers_for_file_mounts", {"a": 5})
    parity.raises(TypeError, "get_max_workers_for_file_mounts", {"a": None})
    parity.raises(TypeError, "get_max_workers_for_file_mounts", {}, 5)
    parity.raises(TypeError, "get_max_workers_for_file_mounts", None)
