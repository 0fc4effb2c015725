"""read_last_n_lines and hash_file over generated files, on both backends."""

from __future__ import annotations

import hashlib
import itertools
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sky_rs._digest import CANONICAL_HASH_NAMES

if TYPE_CHECKING:
    from conftest import Parity

_counter = itertools.count()

LINE_PIECES = [
    b"\n",
    b"\r",
    b"\r\n",
    b"\n\r",
    b"\r\r\n",
    "\u2028".encode(),
    "\u2029".encode(),
    b"\x85",
    b"\xc2\x85",
    b"\x0b",
    b"\x0c",
    b"\x1c",
    b"\x1d",
    b"\x1e",
    b"\xff",
    b"\xfe",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\xf0\x9f\x98",
    b"\xe2\x82\xac",
    b"\x00",
    b"\x80",
    b"\x81",
    b"\x8d",
    b"\x90",
    b"\x9d",
    "é".encode(),
    "€".encode("cp1252"),
    "\U0001f600".encode(),
    b" ",
    b"\t",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"\xfe\xff",
]
ENCODINGS = [
    "utf-8",
    "UTF8",
    "utf_8",
    "latin-1",
    "iso-8859-1",
    "utf-16",
    "utf-16-le",
    "utf-16-be",
    "utf-32",
    "ascii",
    "cp1252",
    "utf-8-sig",
    "cp437",
    "shift_jis",
    "no-such-codec",
    "hex",
    "rot13",
    "utf-8\x00",
    "\ud800",
    "",
]
ERROR_HANDLERS = [
    "strict",
    "replace",
    "ignore",
    "backslashreplace",
    "surrogateescape",
    "surrogatepass",
    "xmlcharrefreplace",
    "namereplace",
    "no-such-handler",
    "",
    "\ud800",
]

contents = st.lists(
    st.one_of(
        st.sampled_from(LINE_PIECES),
        st.binary(max_size=12),
        st.text(max_size=8).map(lambda text: text.encode("utf-8", "surrogatepass")),
        st.sampled_from([b"line", b"longer line of text", b"x" * 40]),
    ),
    max_size=40,
).map(b"".join)
chunk_sizes = st.one_of(st.integers(1, 24), st.sampled_from([64, 8192, 2**31, 2**64, 10**30]))
line_counts = st.one_of(st.integers(0, 12), st.sampled_from([100, 2**63, 10**30]))


def fresh_file(directory: Path, content: bytes) -> str:
    path = directory / f"f{next(_counter)}"
    path.write_bytes(content)
    return str(path)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("io")


@given(content=contents, n=line_counts, chunk_size=chunk_sizes)
def test_read_last_n_lines_utf8(
    parity: Parity, workdir: Path, content: bytes, n: int, chunk_size: int
) -> None:
    path = fresh_file(workdir, content)
    outcome = parity.same("read_last_n_lines", path, n, chunk_size)
    assert outcome.ok, outcome.describe()
    assert outcome.value == reference_lines(content, n, "utf-8", "replace")


@given(
    content=contents,
    n=line_counts,
    chunk_size=chunk_sizes,
    encoding=st.sampled_from(ENCODINGS),
    errors=st.sampled_from(ERROR_HANDLERS),
)
def test_read_last_n_lines_codecs(
    parity: Parity,
    workdir: Path,
    content: bytes,
    n: int,
    chunk_size: int,
    encoding: str,
    errors: str,
) -> None:
    path = fresh_file(workdir, content)
    parity.same("read_last_n_lines", path, n, chunk_size, encoding, errors)
    parity.same(
        "read_last_n_lines", path, n, chunk_size=chunk_size, encoding=encoding, errors=errors
    )


def reference_lines(content: bytes, n: int, encoding: str, errors: str) -> list:
    """The contract's definition, computed from the whole content at once."""
    if n == 0:
        return []
    pieces = content.split(b"\n")
    if pieces[-1] == b"":
        pieces.pop()
    kept = pieces[-n:]
    lines = [piece.decode(encoding, errors).rstrip("\r") + "\n" for piece in kept]
    if lines:
        lines[-1] = lines[-1][:-1]
    return lines


@given(content=st.binary(max_size=2048), alg=st.sampled_from(sorted(hashlib.algorithms_available)))
def test_hash_file_every_algorithm(parity: Parity, workdir: Path, content: bytes, alg: str) -> None:
    path = fresh_file(workdir, content)
    outcome = parity.same("hash_file", path, alg)
    if outcome.ok:
        reference = hashlib.new(alg, content)
        assert outcome.value.hexdigest() == reference.hexdigest()
        name = outcome.value.name
        if sys.implementation.name == "cpython":  # its hash objects carry the canonical name
            assert name == reference.name
        else:  # PyPy's carry the name asked for ('md5_sha1'): the result names the algorithm
            assert name in CANONICAL_HASH_NAMES or name == reference.name
            assert hashlib.new(name, content).hexdigest() == reference.hexdigest()


ALIASES = [
    "SHA256",
    "sha-256",
    "SHA-256",
    "Sha256",
    "sha512-224",
    "SHA512-256",
    "SHA3-256",
    "sha3-512",
    "SHA3_256",
    "BLAKE2B",
    "blake2b512",
    "blake2s256",
    "MD5",
    "SHA1",
    "sha-1",
    "RIPEMD160",
    "md5-sha1",
    "sm3",
    "SHAKE128",
    "shake128",
    "shake_256",
    "whirlpool",
    "md4",
    "sha",
    "",
    "sha256\x00",
    "sha256 ",
    "\u212a",
    "no-such-hash",
]


@given(
    content=st.binary(max_size=256),
    alg=st.one_of(st.sampled_from(ALIASES), st.text(max_size=12)),
)
def test_hash_file_names(parity: Parity, workdir: Path, content: bytes, alg: str) -> None:
    parity.same("hash_file", fresh_file(workdir, content), alg)


def test_hash_file_large(parity: Parity, workdir: Path) -> None:
    """Several buffers' worth: an odd size that no buffer divides."""
    block = hashlib.sha512(b"seed").digest()
    content = block * (3 * 2**20 // len(block)) + b"tail"
    path = fresh_file(workdir, content)
    for alg in ("md5", "sha1", "sha256", "sha512", "sha3_256", "blake2b", "blake2s", "sm3"):
        if alg not in hashlib.algorithms_available:
            continue
        outcome = parity.same("hash_file", path, alg)
        assert outcome.ok and outcome.value.digest() == hashlib.new(alg, content).digest()


class _KeepingHasher:
    """What a replaced ``hashlib.new`` may return: ``update`` keeps every chunk it gets."""

    def __init__(self, name: str, new: Any) -> None:
        self._hasher = new(name)
        self.name = self._hasher.name
        self.digest_size = self._hasher.digest_size
        self.block_size = self._hasher.block_size
        self.kept: list = []

    def update(self, chunk: Any) -> None:
        self.kept.append(chunk)
        self._hasher.update(chunk)

    def digest(self) -> bytes:
        return self._hasher.digest()


def test_hash_file_never_reuses_a_chunk_the_hasher_kept(
    parity: Parity, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The native backend feeds `hashlib` from its reads for the names Rust does not hash; a
    chunk the hash object keeps must stay as it was (a later read must not overwrite it),
    whatever `hashlib.new` returns."""
    block = hashlib.sha256(b"seed").digest()
    content = block * (2 * 2**20 // len(block)) + b"tail"
    path = fresh_file(workdir, content)
    real_new = hashlib.new
    made: list = []

    def keeping_new(name: str, *args: Any, **kwargs: Any) -> _KeepingHasher:
        made.append(_KeepingHasher(name, real_new))
        return made[-1]

    # Names hashed through hashlib (the contract's "any other accepted name").
    through_hashlib = [
        a for a in ("sm3", "ripemd160", "md5-sha1") if a in hashlib.algorithms_available
    ]
    if not through_hashlib:
        pytest.skip("this interpreter's OpenSSL offers no algorithm outside Rust's own set")
    for alg in through_hashlib:
        made.clear()
        monkeypatch.setattr(hashlib, "new", keeping_new)
        native = parity.native.hash_file(path, alg)
        monkeypatch.setattr(hashlib, "new", real_new)
        assert native.digest() == real_new(alg, content).digest()
        assert native == parity.python.hash_file(path, alg)
        assert len(made) == 1 and len(made[0].kept) > 2
        assert b"".join(bytes(chunk) for chunk in made[0].kept) == content


def test_read_last_n_lines_large_file_tail(parity: Parity, workdir: Path) -> None:
    lines = [f"line {i} " + "x" * (i % 97) for i in range(200_000)]
    content = ("\n".join(lines) + "\n").encode()
    path = fresh_file(workdir, content)
    for n in (1, 10, 1000):
        expected = [line + "\n" for line in lines[-n:]]
        expected[-1] = expected[-1][:-1]
        parity.returns(expected, "read_last_n_lines", path, n)
    outcome = parity.same("read_last_n_lines", path, 10**6, 1 << 16)
    assert outcome.ok and len(outcome.value) == len(lines)
