"""The wheel under test must not carry the leak canaries (a test-only Cargo feature).

When the suite runs against the canary wheel on purpose (sky_matrix.leaks),
this test fails along with the detectors, as expected there.
"""

from __future__ import annotations

CANARY_FEATURE = "leak-canary"


def test_build_has_no_leak_canary() -> None:
    from sky_rs import _native

    info = _native._build_info()
    assert CANARY_FEATURE not in info["features"], (
        f"this wheel was built with the {CANARY_FEATURE!r} Cargo feature (deliberate leaks "
        f"in base36_encode, hash_file, truncate_long_string): never ship it; {info}"
    )
