"""sky_rs: SkyPilot's utilities in Rust, with an identical pure-Python fallback.

``sky_rs.<function>`` is the Rust implementation when the native module loads
and Rust is enabled for that function; otherwise it is the Python one from
:mod:`sky_rs.fallback`. Configuration is read from the environment at import
and again by :func:`reload_config`:

- ``SKYPILOT_USE_RUST``: ``0/false/no/off`` disables Rust; ``1/true/yes/on``
  or unset enables it; anything else warns once and keeps the default.
- ``SKYPILOT_RUST_DISABLE=name,name``: Python for just those functions.
- ``SKYPILOT_RUST_ROLLOUT=<0..1>``: route that fraction of calls to Rust.
- ``SKYPILOT_RUST_VERIFY=1``: run both, return Python's answer and record
  every mismatch in :func:`stats`.

On the fast path (Rust enabled, no rollout, no verify) the module attribute
*is* the native builtin: no Python frame, and the native module counts its own
calls. Rebinding happens in this module's namespace, so code that did
``from sky_rs import f`` keeps the binding it got before ``reload_config()``.
"""

from __future__ import annotations

import functools
import random
import threading
import warnings
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Set, Tuple

from . import fallback

__version__ = "0.1.0"

FUNCTIONS: Tuple[str, ...] = (
    "read_last_n_lines",
    "hash_file",
    "find_free_port",
    "base36_encode",
    "format_float",
    "truncate_long_string",
    "get_cpu_count",
    "get_mem_size_gb",
    "get_parallel_threads",
    "is_process_alive",
    "get_max_workers_for_file_mounts",
    "estimate_fd_for_directory",
)

# Bounded so that a long verify-mode run cannot grow without limit.
MAX_RECORDED_MISMATCHES = 1000

_FALSE_WORDS = frozenset({"0", "false", "no", "off"})
_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})

try:
    from . import _native
except Exception as exc:  # ImportError, OSError from the loader, anything at init
    _native = None  # type: ignore[assignment]
    _NATIVE_IMPORT_ERROR: Optional[str] = f"{type(exc).__name__}: {exc}"
else:
    _NATIVE_IMPORT_ERROR = None


class _Config:
    """What the environment asked for, as last read."""

    def __init__(self) -> None:
        self.use_rust = True
        self.disabled: Set[str] = set()
        self.rollout = 1.0
        self.verify = False
        self.reason: Optional[str] = None


_config = _Config()
_warned: Set[str] = set()
_lock = threading.Lock()
_python_calls: Dict[str, int] = dict.fromkeys(FUNCTIONS, 0)
_python_fallbacks: Dict[str, Dict[str, int]] = {name: {} for name in FUNCTIONS}
_mismatches: List[Dict[str, str]] = []


def _warn_once(key: str, message: str) -> None:
    # Check and add under the lock: without a GIL (free-threaded builds) two threads could both
    # find the key missing and warn twice.
    with _lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def _read_config(environ: Any) -> _Config:
    config = _Config()
    raw = environ.get("SKYPILOT_USE_RUST")
    if raw is not None and raw.strip() != "":
        word = raw.strip().lower()
        if word in _FALSE_WORDS:
            config.use_rust = False
            config.reason = f"disabled by SKYPILOT_USE_RUST={raw}"
        elif word not in _TRUE_WORDS:
            _warn_once(
                f"use:{raw}",
                f"sky_rs: ignoring SKYPILOT_USE_RUST={raw!r}; "
                "expected 0/false/no/off or 1/true/yes/on",
            )
    for name in filter(
        None, (p.strip() for p in environ.get("SKYPILOT_RUST_DISABLE", "").split(","))
    ):
        if name in FUNCTIONS:
            config.disabled.add(name)
        else:
            _warn_once(
                f"disable:{name}", f"sky_rs: SKYPILOT_RUST_DISABLE names no function {name!r}"
            )
    raw_rollout = environ.get("SKYPILOT_RUST_ROLLOUT")
    if raw_rollout is not None and raw_rollout.strip() != "":
        try:
            rollout = float(raw_rollout)
        except ValueError:
            rollout = -1.0
        if 0.0 <= rollout <= 1.0:
            config.rollout = rollout
        else:
            _warn_once(
                f"rollout:{raw_rollout}",
                f"sky_rs: ignoring SKYPILOT_RUST_ROLLOUT={raw_rollout!r}; expected 0..1",
            )
    raw_verify = environ.get("SKYPILOT_RUST_VERIFY", "").strip().lower()
    config.verify = raw_verify in _TRUE_WORDS
    if _native is None and config.use_rust:
        if _native_shipped():
            config.reason = f"native module could not be imported: {_NATIVE_IMPORT_ERROR}"
        else:
            config.reason = (
                "the native module is not part of this installation (pure-Python wheel "
                "or unsupported platform); every call runs in Python"
            )
    return config


def _native_shipped() -> bool:
    """Whether this installation has a ``_native`` extension file at all (the
    pure-Python ``py3-none-any`` wheel has none)."""
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    try:
        names = os.listdir(here)
    except OSError:
        return True  # can't tell: report the import error as it is
    return any(name.startswith("_native.") and not name.endswith(".pyi") for name in names)


def _count_python(name: str, reason: Optional[str] = None) -> None:
    with _lock:
        _python_calls[name] += 1
        if reason is not None:
            fallbacks = _python_fallbacks[name]
            fallbacks[reason] = fallbacks.get(reason, 0) + 1


def _python_wrapper(name: str, reason: Optional[str]) -> Callable[..., Any]:
    """Python answers; counted, and as a fallback when Rust was wanted."""
    py_fn = getattr(fallback, name)

    @functools.wraps(py_fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        _count_python(name, reason)
        return py_fn(*args, **kwargs)

    return call


def _rollout_wrapper(name: str, fraction: float) -> Callable[..., Any]:
    py_fn = getattr(fallback, name)
    rust_fn = getattr(_native, name)

    @functools.wraps(py_fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        if random.random() < fraction:
            return rust_fn(*args, **kwargs)
        _count_python(name)
        return py_fn(*args, **kwargs)

    return call


def _outcome(
    fn: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Tuple[bool, Any]:
    try:
        return True, fn(*args, **kwargs)
    except Exception as exc:
        return False, exc


def _same(rust: Tuple[bool, Any], python: Tuple[bool, Any]) -> bool:
    if rust[0] != python[0]:
        return False
    if not python[0]:
        return type(rust[1]) is type(python[1])
    return type(rust[1]) is type(python[1]) and bool(rust[1] == python[1])


def _verify_wrapper(name: str) -> Callable[..., Any]:
    py_fn = getattr(fallback, name)
    rust_fn = getattr(_native, name)

    @functools.wraps(py_fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        rust = _outcome(rust_fn, args, kwargs)
        _count_python(name)
        python = _outcome(py_fn, args, kwargs)
        if not _same(rust, python):
            with _lock:
                if len(_mismatches) < MAX_RECORDED_MISMATCHES:
                    _mismatches.append(
                        {
                            "function": name,
                            "args": repr((args, kwargs)),
                            "rust": repr(rust[1]),
                            "python": repr(python[1]),
                        }
                    )
        if python[0]:
            return python[1]
        raise python[1]

    return call


def _bind(name: str, config: _Config) -> Callable[..., Any]:
    if not config.use_rust or name in config.disabled:
        return _python_wrapper(name, None)
    if _native is None:
        return _python_wrapper(name, "import-error")
    if config.verify:
        return _verify_wrapper(name)
    if config.rollout < 1.0:
        return _rollout_wrapper(name, config.rollout)
    return getattr(_native, name)


def reload_config() -> None:
    """Read the environment again and rebind the twelve functions."""
    import os

    global _config
    config = _read_config(os.environ)
    namespace = globals()
    for name in FUNCTIONS:
        namespace[name] = _bind(name, config)
    _config = config


def backend_info() -> Dict[str, Any]:
    """Which backend answers, and why."""
    rust_active = _native is not None and _config.use_rust
    info: Dict[str, Any] = {
        "backend": "rust" if rust_active else "python",
        "version": __version__,
        "reason": _config.reason,
        "native_import_error": _NATIVE_IMPORT_ERROR,
        "rust_disabled_functions": sorted(_config.disabled),
        "rollout": _config.rollout,
        "verify": _config.verify,
    }
    if _native is not None:
        info["native"] = _native._build_info()
    return info


def stats() -> Dict[str, Any]:
    """Calls per function and backend, fallbacks by reason, verify mismatches."""
    native: Dict[str, Tuple[int, Dict[str, int]]] = _native._stats() if _native is not None else {}
    functions: Dict[str, Dict[str, Any]] = {}
    total_calls = 0
    total_fallbacks = 0
    with _lock:
        for name in FUNCTIONS:
            rust_calls, native_fallbacks = native.get(name, (0, {}))
            fallbacks = dict(_python_fallbacks[name])
            for reason, count in native_fallbacks.items():
                fallbacks[reason] = fallbacks.get(reason, 0) + count
            # A native fallback is answered by Python, so it is a Python call.
            python_calls = _python_calls[name] + sum(native_fallbacks.values())
            functions[name] = {"rust": rust_calls, "python": python_calls, "fallbacks": fallbacks}
            total_calls += rust_calls + python_calls
            total_fallbacks += sum(fallbacks.values())
        mismatches = list(_mismatches)
    return {
        "functions": functions,
        "fallback_rate": total_fallbacks / total_calls if total_calls else 0.0,
        "mismatches": mismatches,
    }


def reset_stats() -> None:
    """Zero every counter and forget recorded mismatches."""
    with _lock:
        for name in FUNCTIONS:
            _python_calls[name] = 0
            _python_fallbacks[name] = {}
        _mismatches.clear()
    if _native is not None:
        _native._reset_stats()


if TYPE_CHECKING:  # the names below are rebound at import; give checkers the signatures
    # One statement (isort would write one per name); `name as name` marks a re-export.
    from .fallback import (  # noqa: I001
        base36_encode as base36_encode,
        estimate_fd_for_directory as estimate_fd_for_directory,
        find_free_port as find_free_port,
        format_float as format_float,
        get_cpu_count as get_cpu_count,
        get_max_workers_for_file_mounts as get_max_workers_for_file_mounts,
        get_mem_size_gb as get_mem_size_gb,
        get_parallel_threads as get_parallel_threads,
        hash_file as hash_file,
        is_process_alive as is_process_alive,
        read_last_n_lines as read_last_n_lines,
        truncate_long_string as truncate_long_string,
    )

reload_config()

__all__ = [
    *FUNCTIONS,
    "__version__",
    "backend_info",
    "fallback",
    "reload_config",
    "reset_stats",
    "stats",
]
