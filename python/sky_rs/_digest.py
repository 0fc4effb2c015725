"""``FileDigest``: what ``hash_file`` returns, from either backend.

Its own module so that the native module can build the result without
importing the pure-Python reference; ``sky_rs.fallback.FileDigest`` is the
same class.
"""

from __future__ import annotations

from typing import Any, Tuple


def _type_name(value: object) -> str:
    return type(value).__name__


def _require_int(value: object, name: str) -> int:
    """The exact ``int`` value of an ``int`` (``bool`` and subclasses included)."""
    if not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {_type_name(value)}")
    # int.__int__ copies the value of a subclass without calling its overrides.
    return int.__int__(value)


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
