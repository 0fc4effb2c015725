"""Shared machinery of the compatibility suites: both backends, side by side.

The suites test the *installed* package (a wheel in a venv, run from a
temporary directory); importing ``sky_rs`` from this repository's source tree
is an error, and so is a missing ``sky_rs._native``: both fail every test
instead of skipping it.
"""

from __future__ import annotations

import importlib
import math
import os
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, NamedTuple, Tuple

import pytest
from hypothesis import HealthCheck, settings

# ------------------------------------------------------------------ hypothesis

settings.register_profile(
    "ci",
    max_examples=int(os.environ.get("SKY_RS_PARITY_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "thorough",
    max_examples=int(os.environ.get("SKY_RS_PARITY_EXAMPLES", "5000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Where the package's sources live: next to these tests, or (in a staged copy of tests/) in
# the project named by SKY_RS_PROJECT_ROOT.
SOURCE_TREES = [Path(__file__).resolve().parents[2] / "python"]
if os.environ.get("SKY_RS_PROJECT_ROOT"):
    SOURCE_TREES.append(Path(os.environ["SKY_RS_PROJECT_ROOT"]).resolve() / "python")


# ------------------------------------------------------------------ backends


class Backends(NamedTuple):
    python: ModuleType
    native: ModuleType


def _load_backends() -> Backends:
    try:
        python = importlib.import_module("sky_rs.fallback")
    except Exception as exc:
        pytest.fail(f"cannot import sky_rs.fallback: {type(exc).__name__}: {exc}", pytrace=False)
    package_dir = Path(python.__file__).resolve().parent
    if any(tree in package_dir.parents for tree in SOURCE_TREES):
        pytest.fail(
            f"sky_rs was imported from the source tree ({package_dir}); the compat suites "
            "test the installed wheel: run them from another directory, without python/ "
            "on sys.path",
            pytrace=False,
        )
    try:
        native = importlib.import_module("sky_rs._native")
    except Exception as exc:
        pytest.fail(
            f"cannot import sky_rs._native, so there is nothing to compare the Python "
            f"backend with: {type(exc).__name__}: {exc}",
            pytrace=False,
        )
    if not callable(getattr(native, "_stats", None)):
        pytest.fail("sky_rs._native has no _stats(); docs/internals.md requires it", pytrace=False)
    return Backends(python, native)


@pytest.fixture(scope="session")
def backends() -> Backends:
    return _load_backends()


# ------------------------------------------------------------------ outcomes


class Outcome(NamedTuple):
    """What one call did: ``ok`` and its value, or not ``ok`` and the exception."""

    ok: bool
    value: Any

    def describe(self) -> str:
        if self.ok:
            return f"returned {_short(self.value)}"
        exc = self.value
        extra = ""
        if isinstance(exc, OSError):
            extra = f" errno={exc.errno!r} filename={_short(exc.filename)}"
        return f"raised {type(exc).__module__}.{type(exc).__qualname__}({_short(str(exc))}){extra}"


def _short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def is_panic(exc: BaseException) -> bool:
    """pyo3_runtime.PanicException (a BaseException) or any subclass of it."""
    return any(cls.__name__ == "PanicException" for cls in type(exc).__mro__)


def run(fn: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Outcome:
    try:
        return Outcome(True, fn(*args, **kwargs))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        if is_panic(exc):
            raise AssertionError(
                f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__name__', '?')}"
                f"{_short((args, kwargs))} let a Rust panic escape: {exc!r}"
            ) from exc
        if not isinstance(exc, Exception):
            raise AssertionError(
                f"{fn!r} raised a BaseException that is not an Exception: {exc!r}"
            ) from exc
        return Outcome(False, exc)


def same_value(left: Any, right: Any) -> bool:
    """Equal values of the very same type, all the way down (floats by bits, nan == nan)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, float):
        if math.isnan(left):
            return math.isnan(right)
        return left == right and math.copysign(1.0, left) == math.copysign(1.0, right)
    if isinstance(left, (list, tuple)):
        return len(left) == len(right) and all(map(same_value, left, right))
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(same_value(left[k], right[k]) for k in left)
    if type(left).__name__ == "FileDigest":
        return (
            same_value(left.name, right.name)
            and same_value(left.digest(), right.digest())
            and same_value(left.hexdigest(), right.hexdigest())
            and same_value(left.digest_size, right.digest_size)
            and same_value(left.block_size, right.block_size)
        )
    return bool(left == right)


def same_outcome(python: Outcome, native: Outcome) -> bool:
    if python.ok != native.ok:
        return False
    if python.ok:
        return same_value(python.value, native.value)
    py_exc, rs_exc = python.value, native.value
    if type(py_exc) is not type(rs_exc):
        return False
    if isinstance(py_exc, OSError):
        return (
            py_exc.errno == rs_exc.errno
            and same_value(py_exc.filename, rs_exc.filename)
            and same_value(py_exc.filename2, rs_exc.filename2)
        )
    return True


def _fallback_counts(native: ModuleType) -> Dict[str, Dict[str, int]]:
    return {name: dict(entry[1]) for name, entry in native._stats().items()}


class Parity:
    """Calls a function on both backends and insists on the same outcome."""

    def __init__(self, pair: Backends) -> None:
        self.python = pair.python
        self.native = pair.native

    def same(self, name: str, *args: Any, **kwargs: Any) -> Outcome:
        """Both outcomes, asserted equal; returns the Python one."""
        python, native = self._both(name, args, kwargs)
        if not same_outcome(python, native):
            raise AssertionError(
                f"{name}{_short((args, kwargs))}:\n  python {python.describe()}\n"
                f"  native {native.describe()}"
            )
        return python

    def same_settled(self, name: str, *args: Any, **kwargs: Any) -> Outcome:
        """``same`` for answers about a live system that may change between the two calls
        (another process takes a port, a pid exits): a mismatch must repeat three times."""
        for _ in range(2):
            python, native = self._both(name, args, kwargs)
            if same_outcome(python, native):
                return python
        return self.same(name, *args, **kwargs)

    def _both(
        self, name: str, args: Tuple[Any, ...], kwargs: Dict[str, Any]
    ) -> Tuple[Outcome, Outcome]:
        python = run(getattr(self.python, name), args, kwargs)
        before = _fallback_counts(self.native)
        native = run(getattr(self.native, name), args, kwargs)
        after = _fallback_counts(self.native)
        if before != after:
            raise AssertionError(
                f"sky_rs._native.{name}{_short((args, kwargs))} did not answer in Rust: it fell "
                f"back to Python (fallback counters {before.get(name)} -> {after.get(name)})"
            )
        return python, native

    def returns(self, expected: Any, name: str, *args: Any, **kwargs: Any) -> None:
        """Both return ``expected`` (same type)."""
        outcome = self.same(name, *args, **kwargs)
        assert outcome.ok and same_value(outcome.value, expected), (
            f"{name}{_short((args, kwargs))}: expected {_short(expected)}, both "
            f"{outcome.describe()}"
        )

    def raises(self, expected: type, name: str, *args: Any, **kwargs: Any) -> BaseException:
        """Both raise exactly ``expected``; returns the Python exception."""
        outcome = self.same(name, *args, **kwargs)
        assert not outcome.ok and type(outcome.value) is expected, (
            f"{name}{_short((args, kwargs))}: expected {expected.__name__}, both "
            f"{outcome.describe()}"
        )
        return outcome.value


@pytest.fixture(scope="session")
def parity(backends: Backends) -> Parity:
    return Parity(backends)
