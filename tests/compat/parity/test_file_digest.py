"""The object hash_file returns: hashlib's read-only API, immutable, from both backends."""

from __future__ import annotations

import copy
import hashlib
import importlib
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import Parity


@pytest.mark.parametrize("backend", ["python", "native"])
def test_file_digest_api(parity: Parity, tmp_path: Path, backend: str) -> None:
    path = tmp_path / "data"
    path.write_bytes(b"sky" * 1000)
    # "sha-256" is an OpenSSL alias; the old OpenSSL of some images (bullseye) lacks it.
    name = "sha-256" if _hashlib_accepts("sha-256") else "sha256"
    digest = getattr(parity, backend).hash_file(str(path), name)
    reference = hashlib.sha256(path.read_bytes())

    assert type(digest) is parity.python.FileDigest
    # Its own module, re-exported by the reference where it always was.
    assert type(digest) is importlib.import_module("sky_rs._digest").FileDigest
    assert (digest.name, digest.digest_size, digest.block_size) == ("sha256", 32, 64)
    assert digest.digest() == reference.digest()
    assert digest.hexdigest() == reference.hexdigest()
    assert not hasattr(digest, "update")

    twin = digest.copy()
    assert twin == digest and twin is not digest and hash(twin) == hash(digest)
    assert pickle.loads(pickle.dumps(digest)) == digest
    assert copy.deepcopy(digest) == digest
    other = parity.python.hash_file(str(path), "md5")
    assert other != digest
    assert digest != reference.hexdigest()
    assert reference.hexdigest() in repr(digest) and "sha256" in repr(digest)

    for attribute in ("name", "digest_size", "block_size", "_digest", "extra"):
        with pytest.raises(AttributeError):
            setattr(digest, attribute, None)
        with pytest.raises(AttributeError):
            delattr(digest, attribute)
    assert digest.digest() == reference.digest()


def test_file_digest_constructor_checks(parity: Parity) -> None:
    file_digest = parity.python.FileDigest
    made = file_digest("md5", bytearray(16), 16, 64)
    assert type(made.digest()) is bytes and made.hexdigest() == "00" * 16
    with pytest.raises(ValueError):
        file_digest("md5", b"\x00" * 15, 16, 64)
    with pytest.raises(TypeError):
        file_digest(b"md5", b"\x00" * 16, 16, 64)
    with pytest.raises(TypeError):
        file_digest("md5", "00" * 16, 16, 64)
    with pytest.raises(TypeError):
        file_digest("md5", b"\x00" * 16, 16.0, 64)


def _hashlib_accepts(name: str) -> bool:
    try:
        hashlib.new(name)
    except ValueError:
        return False
    return True


class _Aliased:
    """A hash object as PyPy's hashlib makes one for an alias: the alias, lowercased, is its
    name (CPython's carry the canonical name, so only this exercises the identification)."""

    def __init__(self, hasher: Any, name: str) -> None:
        self._hasher, self.name = hasher, name
        self.digest_size, self.block_size = hasher.digest_size, hasher.block_size

    def copy(self) -> _Aliased:
        return type(self)(self._hasher.copy(), self.name)

    def update(self, data: bytes) -> None:
        self._hasher.update(data)

    def digest(self) -> bytes:
        return self._hasher.digest()


@pytest.mark.parametrize(
    ("algorithm", "alias", "canonical"),
    [
        ("sha256", "sha-256", "sha256"),
        ("sha256", "2.16.840.1.101.3.4.2.1", "sha256"),
        ("sha3_256", "sha3-256", "sha3_256"),
        ("blake2b", "blake2b512", "blake2b"),
        ("sha1", "sha-1", "sha1"),
        ("md5", "md5\x00sha1", "md5"),  # PyPy's hashlib cuts the name at the NUL
        ("shake_128", "shake128", "shake_128"),  # an XOF: told by its block size
        ("shake_256", "shake-256", "shake_256"),
    ],
)
def test_canonical_name_identifies_an_alias(algorithm: str, alias: str, canonical: str) -> None:
    from sky_rs._digest import canonical_name

    hasher = _Aliased(hashlib.new(algorithm), alias)
    assert canonical_name(hasher) == canonical


def test_canonical_name_keeps_a_name_no_canonical_algorithm_matches() -> None:
    from sky_rs._digest import canonical_name

    class Unknown(_Aliased):
        def digest(self) -> bytes:
            return b"\x01" * 16  # md5's size, nobody's digest

    assert canonical_name(Unknown(hashlib.md5(), "md4-ish")) == "md4-ish"
    assert canonical_name(hashlib.new("sha256")) == "sha256"  # canonical already: as given
