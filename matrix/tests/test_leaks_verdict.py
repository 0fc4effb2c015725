"""The leak evidence the sign-off reads (leaks-report/verdict.json)."""

from __future__ import annotations

from pathlib import Path

from sky_matrix.core.functions import SKY_RS_FUNCTIONS
from sky_matrix.leaks import expectations, proof
from sky_matrix.leaks.__main__ import verdict_json

INTERP = expectations.Interpreter("3.13", debug=False, memray_unsupported=None)


def _run(results: dict) -> proof.SuiteRun:
    return proof.SuiteRun(
        wheel=Path("w.whl"),
        interpreter=INTERP,
        results=results,
        report={},
        returncode=0,
        seconds=1.0,
        log=Path("log"),
    )


def _outcome(state: str) -> expectations.Outcome:
    return expectations.Outcome(state, "msg", "text")


def test_release_and_canary_runs_become_the_signoff_shape() -> None:
    release = {
        f"test_growth::test_growth[{fn}-{backend}]": _outcome("passed")
        for fn in SKY_RS_FUNCTIONS
        for backend in ("rust", "python")
    }
    canary = {c.case_id(): _outcome("failed") for c in expectations.canaries_for(INTERP)}
    data = verdict_json(
        [proof.Verdict("release", _run(release), []), proof.Verdict("canary", _run(canary), [])]
    )
    assert data["status"] == "pass"
    assert data["functions"]["hash_file"] == {
        "rust": {"status": "pass"},
        "python": {"status": "pass"},
    }
    assert data["canaries"] and all(c["caught"] for c in data["canaries"].values())


def test_a_leaking_function_and_a_missed_canary_fail() -> None:
    release = {"test_growth::test_growth[base36_encode-rust]": _outcome("failed")}
    canary = {c.case_id(): _outcome("passed") for c in expectations.canaries_for(INTERP)}
    data = verdict_json(
        [
            proof.Verdict("release", _run(release), ["leak"]),
            proof.Verdict("canary", _run(canary), ["missed"]),
        ]
    )
    assert data["status"] == "fail"
    assert data["functions"]["base36_encode"]["rust"]["status"] == "fail"
    assert not any(c["caught"] for c in data["canaries"].values())
