"""``FileDigest``: what ``hash_file`` returns, from either backend, and the
hashlib object and canonical name it is made from (:func:`new_hasher`).

Its own module so that the native module can build the result without
importing the pure-Python reference; ``sky_rs.fallback.FileDigest`` is the
same class.
"""

from __future__ import annotations

import hashlib
from typing import Any, Tuple

# hashlib's canonical names, as CPython's _hashlib gives them for any alias OpenSSL knows
# ('sha-256', 'SHA2-256' and the OID all say 'sha256'; 'blake2b512' says 'blake2b'; names
# without a special case are OpenSSL's long names: 'md5-sha1', 'ripemd160', 'sm3').
CANONICAL_HASH_NAMES = (
    "md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha512_224", "sha512_256",
    "sha3_224", "sha3_256", "sha3_384", "sha3_512", "shake_128", "shake_256",
    "blake2b", "blake2s", "md5-sha1", "ripemd160", "sm3", "md4", "mdc2", "whirlpool",
)  # fmt: skip
_CANONICAL = frozenset(CANONICAL_HASH_NAMES)
# What a hash object of an unrecognised name is identified by.
_PROBE = b"sky_rs: which algorithm is this?"
_XOF_BY_BLOCK_SIZE = {168: "shake_128", 136: "shake_256"}


def _type_name(value: object) -> str:
    return type(value).__name__


def _require_int(value: object, name: str) -> int:
    """The exact ``int`` value of an ``int`` (``bool`` and subclasses included)."""
    if not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {_type_name(value)}")
    # int.__or__ makes an exact int of the value without calling the subclass's overrides,
    # on every interpreter: PyPy's int.__int__/__index__/__pos__ call a subclass's __int__.
    return int.__or__(value, 0)


def new_hasher(hash_alg: str) -> Tuple[Any, str]:
    """``hashlib.new(hash_alg)`` and its algorithm's canonical name.

    A name is accepted exactly when the running interpreter's hashlib accepts it. ValueError
    for a name it refuses (also where it says TypeError, for NUL or a lone surrogate) and for
    extendable-output algorithms.
    """
    try:
        hasher = hashlib.new(hash_alg)
    except TypeError:
        # hashlib says TypeError for a str holding NUL or a lone surrogate: a bad value.
        raise ValueError(f"unsupported hash type {hash_alg!r}") from None
    name = canonical_name(hasher)
    if name.startswith("shake"):
        raise ValueError(f"extendable-output hash {name!r} has no fixed digest; not supported")
    return hasher, name


def canonical_name(hasher: Any) -> str:
    """The name CPython's hashlib gives ``hasher``'s algorithm, whatever alias made it.

    CPython's hash objects already carry it. PyPy's carry the name they were asked for,
    lowercased ('sha-256', 'sha3-256', 'blake2b512', even 'sha256\\x00', which its OpenSSL
    lookup cut at the NUL): such a name is identified by hashing a probe with each canonical
    algorithm. A name no canonical algorithm matches stays as hashlib gives it.
    """
    name: str = hasher.name
    if name in _CANONICAL:
        return name
    if hasher.digest_size == 0:
        # Extendable output: PyPy's OpenSSL objects for it take no digest length, so it is told
        # by its block size (the two SHAKEs differ in it); it is refused whatever it is called.
        return _XOF_BY_BLOCK_SIZE.get(hasher.block_size, name)
    mine = hasher.copy()
    mine.update(_PROBE)
    expected = mine.digest()
    for candidate in CANONICAL_HASH_NAMES:
        try:
            other = hashlib.new(candidate, _PROBE)
        except ValueError:  # not available in this interpreter's OpenSSL
            continue
        if (other.digest_size, other.block_size) != (hasher.digest_size, hasher.block_size):
            continue
        if other.digest() == expected:
            return candidate
    return name


class FileDigest:
    """The read-only part of a hashlib hash object, for a file's finished digest."""

    __slots__ = ("_block_size", "_digest", "_digest_size", "_name")

    _name: str
    _digest: bytes
    _digest_size: int
    _block_size: int

    def __init__(self, name: str, digest: bytes, digest_size: int, block_size: int) -> None:
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {_type_name(name)}")
        if not isinstance(digest, (bytes, bytearray, memoryview)):
            raise TypeError(f"digest must be bytes, not {_type_name(digest)}")
        digest_bytes = bytes(digest)
        digest_size = _require_int(digest_size, "digest_size")
        block_size = _require_int(block_size, "block_size")
        if digest_size != len(digest_bytes):
            raise ValueError(
                f"digest_size {digest_size} does not match a {len(digest_bytes)}-byte digest"
            )
        object.__setattr__(self, "_name", str.__str__(name))
        object.__setattr__(self, "_digest", digest_bytes)
        object.__setattr__(self, "_digest_size", digest_size)
        object.__setattr__(self, "_block_size", block_size)

    @property
    def name(self) -> str:
        return self._name

    @property
    def digest_size(self) -> int:
        return self._digest_size

    @property
    def block_size(self) -> int:
        return self._block_size

    def digest(self) -> bytes:
        return self._digest

    def hexdigest(self) -> str:
        return self._digest.hex()

    def copy(self) -> FileDigest:
        return FileDigest(self._name, self._digest, self._digest_size, self._block_size)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"FileDigest is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"FileDigest is immutable; cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FileDigest):
            return NotImplemented
        return (self._name, self._digest) == (other._name, other._digest)

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash((self._name, self._digest))

    def __reduce__(self) -> Tuple[Any, Tuple[str, bytes, int, int]]:
        return (FileDigest, (self._name, self._digest, self._digest_size, self._block_size))

    def __repr__(self) -> str:
        return (
            f"FileDigest(name={self._name!r}, hexdigest={self.hexdigest()!r}, "
            f"digest_size={self._digest_size}, block_size={self._block_size})"
        )
