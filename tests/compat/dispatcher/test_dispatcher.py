"""The dispatcher: kill switch, per-function disable, rollout, verify, stats.

Runs against the installed wheel. Each test that changes the environment
rebinds with ``reload_config()`` and the fixture restores the default after.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import warnings
from pathlib import Path
from typing import Iterator

import pytest

import sky_rs
from sky_rs import _native, fallback

ENV_VARS = (
    "SKYPILOT_USE_RUST",
    "SKYPILOT_RUST_DISABLE",
    "SKYPILOT_RUST_ROLLOUT",
    "SKYPILOT_RUST_VERIFY",
)


@pytest.fixture(autouse=True)
def clean_dispatcher(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    sky_rs.reload_config()
    sky_rs.reset_stats()
    yield
    monkeypatch.undo()
    sky_rs.reload_config()
    sky_rs.reset_stats()


def configure(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    sky_rs.reload_config()


def test_default_is_rust_with_native_builtins_bound_directly() -> None:
    info = sky_rs.backend_info()
    assert info["backend"] == "rust", info
    assert info["reason"] is None
    assert info["version"] == sky_rs.__version__ == _native.__version__
    for name in sky_rs.FUNCTIONS:
        assert getattr(sky_rs, name) is getattr(_native, name), name
        assert getattr(sky_rs.fallback, name) is getattr(fallback, name)


@pytest.mark.parametrize("value", ["0", "false", "FALSE", "No", "off", "oFf"])
def test_kill_switch_disables_rust(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    configure(monkeypatch, SKYPILOT_USE_RUST=value)
    info = sky_rs.backend_info()
    assert info["backend"] == "python"
    assert "SKYPILOT_USE_RUST" in info["reason"]
    for name in sky_rs.FUNCTIONS:
        assert getattr(sky_rs, name) is not getattr(_native, name), name
    assert sky_rs.base36_encode("ff") == "73"
    counts = sky_rs.stats()["functions"]["base36_encode"]
    assert counts == {"rust": 0, "python": 1, "fallbacks": {}}
    assert sky_rs.stats()["fallback_rate"] == 0.0


@pytest.mark.parametrize("value", ["1", "true", "YES", "on", ""])
def test_enabling_values_keep_rust(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    configure(monkeypatch, SKYPILOT_USE_RUST=value)
    assert sky_rs.backend_info()["backend"] == "rust"
    assert sky_rs.format_float is _native.format_float


def test_unknown_kill_switch_value_warns_once_and_keeps_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SKYPILOT_USE_RUST", "perhaps-later")
    with pytest.warns(RuntimeWarning, match="SKYPILOT_USE_RUST"):
        sky_rs.reload_config()
    assert sky_rs.backend_info()["backend"] == "rust"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sky_rs.reload_config()  # the same value again: no second warning


def test_per_function_disable(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, SKYPILOT_RUST_DISABLE="format_float, hash_file")
    assert sky_rs.format_float is not _native.format_float
    assert sky_rs.hash_file is not _native.hash_file
    assert sky_rs.base36_encode is _native.base36_encode
    assert sky_rs.backend_info()["rust_disabled_functions"] == ["format_float", "hash_file"]
    assert sky_rs.format_float(2.5) == "2.5"
    assert sky_rs.base36_encode("ff") == "73"
    functions = sky_rs.stats()["functions"]
    assert functions["format_float"]["python"] == 1 and functions["format_float"]["rust"] == 0
    assert functions["base36_encode"]["rust"] == 1 and functions["base36_encode"]["python"] == 0


def test_disable_of_unknown_function_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKYPILOT_RUST_DISABLE", "no_such_function")
    with pytest.warns(RuntimeWarning, match="no_such_function"):
        sky_rs.reload_config()


def test_stats_count_every_call_on_both_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(7):
        sky_rs.truncate_long_string("hello world", 5)
    assert sky_rs.stats()["functions"]["truncate_long_string"]["rust"] == 7
    configure(monkeypatch, SKYPILOT_USE_RUST="0")
    for _ in range(3):
        sky_rs.truncate_long_string("hello world", 5)
    result = sky_rs.stats()
    assert result["functions"]["truncate_long_string"] == {
        "rust": 7,
        "python": 3,
        "fallbacks": {},
    }
    assert result["fallback_rate"] == 0.0
    assert set(result["functions"]) == set(sky_rs.FUNCTIONS)
    sky_rs.reset_stats()
    assert sky_rs.stats()["functions"]["truncate_long_string"] == {
        "rust": 0,
        "python": 0,
        "fallbacks": {},
    }


def test_typed_errors_are_answers_not_fallbacks() -> None:
    with pytest.raises(ValueError):
        sky_rs.base36_encode("-1")
    with pytest.raises(TypeError):
        sky_rs.format_float("1.5")
    result = sky_rs.stats()
    assert result["fallback_rate"] == 0.0
    assert all(not f["fallbacks"] for f in result["functions"].values())


@pytest.mark.parametrize(("use_rust", "backend"), [("off", "python"), ("on", "rust")])
def test_counting_is_thread_safe(
    monkeypatch: pytest.MonkeyPatch, use_rust: str, backend: str
) -> None:
    configure(monkeypatch, SKYPILOT_USE_RUST=use_rust)

    def work() -> None:
        for _ in range(2000):
            sky_rs.format_float(1.25, 1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sky_rs.stats()["functions"]["format_float"][backend] == 8000


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5])
def test_rollout_routes_that_fraction_to_rust(
    monkeypatch: pytest.MonkeyPatch, fraction: float
) -> None:
    configure(monkeypatch, SKYPILOT_RUST_ROLLOUT=str(fraction))
    assert sky_rs.backend_info()["rollout"] == fraction
    calls = 4000
    for _ in range(calls):
        assert sky_rs.base36_encode("ff") == "73"
    counts = sky_rs.stats()["functions"]["base36_encode"]
    assert counts["rust"] + counts["python"] == calls
    # Binomial standard deviation is at most 0.008 here: +-0.05 is over 6 sigma.
    assert abs(counts["rust"] / calls - fraction) < 0.05, counts
    assert counts["fallbacks"] == {}


def test_full_rollout_is_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, SKYPILOT_RUST_ROLLOUT="1")
    assert sky_rs.base36_encode is _native.base36_encode


@pytest.mark.parametrize("value", ["1.5", "-0.1", "half"])
def test_bad_rollout_warns_and_is_ignored(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SKYPILOT_RUST_ROLLOUT", value)
    with pytest.warns(RuntimeWarning, match="SKYPILOT_RUST_ROLLOUT"):
        sky_rs.reload_config()
    assert sky_rs.backend_info()["rollout"] == 1.0


def test_verify_mode_agreement_records_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, SKYPILOT_RUST_VERIFY="1")
    assert sky_rs.backend_info()["verify"] is True
    assert sky_rs.format_float(2.55, 1) == "2.5"
    assert sky_rs.truncate_long_string("abcde", 4, True) == "a..."
    with pytest.raises(ValueError):
        sky_rs.base36_encode("xyz")
    result = sky_rs.stats()
    assert result["mismatches"] == []
    assert result["functions"]["format_float"] == {"rust": 1, "python": 1, "fallbacks": {}}


def test_verify_mode_records_a_mismatch_and_returns_python(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fallback, "base36_encode", lambda hex_str: "python-says-this")
    configure(monkeypatch, SKYPILOT_RUST_VERIFY="1")
    assert sky_rs.base36_encode("ff") == "python-says-this"
    (mismatch,) = sky_rs.stats()["mismatches"]
    assert mismatch == {
        "function": "base36_encode",
        "args": repr((("ff",), {})),
        "rust": repr("73"),
        "python": repr("python-says-this"),
    }


def test_verify_mode_records_differing_exception_types(monkeypatch: pytest.MonkeyPatch) -> None:
    def wrong(*args: object, **kwargs: object) -> str:
        raise KeyError("python raised something else")

    monkeypatch.setattr(fallback, "format_float", wrong)
    configure(monkeypatch, SKYPILOT_RUST_VERIFY="true")
    with pytest.raises(KeyError):
        sky_rs.format_float("not a number")
    (mismatch,) = sky_rs.stats()["mismatches"]
    assert mismatch["function"] == "format_float"
    assert "TypeError" in mismatch["rust"] and "KeyError" in mismatch["python"]


BLOCKED_IMPORT = """
import json, sys
sys.modules["sky_rs._native"] = None  # makes `from . import _native` raise ImportError
import sky_rs
assert sky_rs.base36_encode("ff") == "73"
assert sky_rs.format_float(0.25) == "0.2"
print(json.dumps({"info": sky_rs.backend_info(), "stats": sky_rs.stats()}))
"""


def test_unimportable_native_module_means_python_everywhere_with_reason() -> None:
    out = subprocess.run(
        [sys.executable, "-c", BLOCKED_IMPORT], capture_output=True, text=True, check=True
    ).stdout
    data = json.loads(out)
    info = data["info"]
    assert info["backend"] == "python"
    assert "could not be imported" in info["reason"]
    assert "sky_rs._native" in info["native_import_error"]
    functions = data["stats"]["functions"]
    assert functions["base36_encode"] == {
        "rust": 0,
        "python": 1,
        "fallbacks": {"import-error": 1},
    }
    assert data["stats"]["fallback_rate"] == 1.0


def test_kill_switch_at_import_time() -> None:
    code = "import sky_rs, json; print(json.dumps(sky_rs.backend_info()))"
    env = {"SKYPILOT_USE_RUST": "0", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    info = json.loads(out)
    assert info["backend"] == "python"
    assert info["reason"] == "disabled by SKYPILOT_USE_RUST=0"


def test_backend_info_reports_the_native_build() -> None:
    native = sky_rs.backend_info()["native"]
    assert native["version"] == sky_rs.__version__
    assert native["profile"] in {"release", "debug"}
    assert isinstance(native["features"], list)


PURE_PYTHON_IMPORT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import sky_rs
assert sky_rs.__file__.startswith(sys.argv[1]), sky_rs.__file__
assert sky_rs.base36_encode("ff") == "73"
print(json.dumps(sky_rs.backend_info()))
"""


def test_an_installation_without_the_native_module_says_so(tmp_path: Path) -> None:
    # The pure-Python wheel (py3-none-any): the same package without _native.
    installed = Path(sky_rs.__file__).parent
    copy = tmp_path / "sky_rs"
    shutil.copytree(installed, copy, ignore=shutil.ignore_patterns("_native.*.so", "_native.so"))
    assert not [
        name for name in os.listdir(copy) if name.startswith("_native.") and name.endswith(".so")
    ]
    out = subprocess.run(
        [sys.executable, "-c", PURE_PYTHON_IMPORT, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    info = json.loads(out)
    assert info["backend"] == "python"
    assert "not part of this installation" in info["reason"]
