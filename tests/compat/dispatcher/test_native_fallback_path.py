"""The native-fallback path: a panic or an internal error in Rust, answered by Python.

Runs only on a wheel built with the test-only ``fault-injection`` Cargo
feature (``_native._inject_fault``); the release wheel has no way in, so
there the module skips saying so, and `matrix/tests/test_fault_injection.py`
builds that wheel and runs this module against it inside ``nox -s tests``.
For each function and fault kind: the answer equals the fallback's, the
fallback is counted under its reason, as a Python call, in
``fallback_rate``, and the next call is Rust's again.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Tuple

import pytest

import sky_rs
from sky_rs import _native, fallback

if not hasattr(_native, "_inject_fault"):
    pytest.skip(
        "needs a wheel built with the fault-injection feature "
        "(matrix/tests/test_fault_injection.py builds one)",
        allow_module_level=True,
    )

FAULT_KINDS = ("panic", "internal-error")


@pytest.fixture
def inputs(tmp_path: Path) -> Dict[str, Any]:
    log = tmp_path / "app.log"
    log.write_text("".join(f"line {n}\n" for n in range(50)))
    return {"log": str(log), "dir": str(tmp_path)}


def _calls(inputs: Dict[str, Any]) -> Dict[str, Tuple[Tuple[Any, ...], Callable[[Any], Any]]]:
    """Each function's call and what of its answer must equal the fallback's."""
    same: Callable[[Any], Any] = lambda value: value  # noqa: E731
    return {
        "read_last_n_lines": ((inputs["log"], 5), same),
        "hash_file": ((inputs["log"], "sha256"), lambda digest: digest.hexdigest()),
        "find_free_port": ((20000,), lambda port: isinstance(port, int) and port >= 20000),
        "base36_encode": (("ff",), same),
        "format_float": ((3.14159, 2), same),
        "truncate_long_string": (("a long string of words", 10), same),
        "get_cpu_count": ((), same),
        "get_mem_size_gb": ((), same),
        "get_parallel_threads": ((None,), same),
        "is_process_alive": ((os.getpid(),), same),
        "get_max_workers_for_file_mounts": (({"/a": "/b"},), same),
        "estimate_fd_for_directory": ((inputs["dir"],), same),
    }


@pytest.fixture(autouse=True)
def rust_everywhere(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("SKYPILOT_USE_RUST", "SKYPILOT_RUST_DISABLE", "SKYPILOT_RUST_ROLLOUT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SKYPILOT_RUST_VERIFY", raising=False)
    sky_rs.reload_config()
    sky_rs.reset_stats()
    yield
    sky_rs.reset_stats()


@pytest.mark.parametrize("kind", FAULT_KINDS)
@pytest.mark.parametrize("name", sky_rs.FUNCTIONS)
def test_fault_is_answered_by_python_and_counted(
    name: str, kind: str, inputs: Dict[str, Any]
) -> None:
    args, key = _calls(inputs)[name]
    expected = key(getattr(fallback, name)(*args))
    assert getattr(sky_rs, name) is getattr(_native, name), "not the native fast path"

    _native._inject_fault(name, kind)
    assert key(getattr(sky_rs, name)(*args)) == expected

    counts = sky_rs.stats()
    assert counts["functions"][name] == {"rust": 0, "python": 1, "fallbacks": {kind: 1}}
    assert counts["fallback_rate"] == 1.0
    others = {n: c for n, c in counts["functions"].items() if n != name}
    assert all(c == {"rust": 0, "python": 0, "fallbacks": {}} for c in others.values())

    # One fault, one fallback: the next call is Rust's.
    assert key(getattr(sky_rs, name)(*args)) == expected
    counts = sky_rs.stats()
    assert counts["functions"][name] == {"rust": 1, "python": 1, "fallbacks": {kind: 1}}
    assert counts["fallback_rate"] == 0.5


def test_unknown_fault_kind_is_refused() -> None:
    with pytest.raises(ValueError):
        _native._inject_fault("format_float", "explode")
    with pytest.raises(ValueError):
        _native._inject_fault("no_such_function", "panic")
