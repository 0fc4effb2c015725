"""base36_encode, format_float and truncate_long_string over generated input."""

from __future__ import annotations

import math
import os
import string
import sys
from typing import TYPE_CHECKING

from hypothesis import given
from hypothesis import strategies as st

if TYPE_CHECKING:
    from conftest import Parity

# ------------------------------------------------------------------ base36_encode

HEX_DIGITS = string.hexdigits
UNICODE_DIGITS = "\u0660\u0663\u0669\u06f5\u0966\u09ea\uff10\uff11\uff19\U0001d7d9\U0001d7ec"
UNICODE_HEX_LOOKALIKES = "\uff21\uff41\u0430\u0410\u216b"  # fullwidth A/a, Cyrillic a/A, Roman XII
WHITESPACE = [
    " ",
    "\t",
    "\n",
    "\r",
    "\x0b",
    "\x0c",
    "\x1c",
    "\x1f",
    "\x85",
    "\xa0",
    "\u1680",
    "\u2003",
    "\u2028",
    "\u2029",
    "\u202f",
    "\u3000",
    "\u200b",
    "\ufeff",
]


@st.composite
def hex_like(draw: st.DrawFn) -> str:
    """Mostly-valid hexadecimal literals with everything int(x, 16) tolerates, and slips."""
    body = draw(
        st.lists(
            st.one_of(
                st.sampled_from(HEX_DIGITS),
                st.sampled_from(UNICODE_DIGITS),
                st.just("_"),
                st.sampled_from(UNICODE_HEX_LOOKALIKES + "gxXz-+ ."),
            ),
            min_size=0,
            max_size=80,
        ).map("".join)
    )
    if draw(st.booleans()):
        body = draw(st.sampled_from(["0x", "0X", "0x_", "0X_", "x", "0b"])) + body
    sign = draw(st.sampled_from(["", "", "", "-", "+", "--", "+-"]))
    lead = draw(st.lists(st.sampled_from(WHITESPACE), max_size=3).map("".join))
    trail = draw(st.lists(st.sampled_from(WHITESPACE), max_size=3).map("".join))
    return lead + sign + body + trail


hex_inputs = st.one_of(
    hex_like(),
    st.integers(min_value=0).map(lambda value: format(value, "x")),
    st.integers(min_value=0, max_value=2**1024).map(lambda value: format(value, "#_X")),
    st.integers().map(lambda value: format(value, "x")),
    st.text(max_size=20),
)


@given(hex_str=hex_inputs)
def test_base36_text(parity: Parity, hex_str: str) -> None:
    outcome = parity.same("base36_encode", hex_str)
    if outcome.ok:
        assert int(outcome.value, 36) == int(hex_str, 16)
        assert outcome.value == "0" or not outcome.value.startswith("0")


@given(hex_str=hex_inputs)
def test_base36_bytes(parity: Parity, hex_str: str) -> None:
    try:
        raw = hex_str.encode("ascii")
    except UnicodeEncodeError:
        raw = hex_str.encode("utf-8", "surrogatepass")
    parity.same("base36_encode", raw)
    parity.same("base36_encode", bytearray(raw))


@given(value=st.integers(min_value=0, max_value=2**4096), width=st.integers(0, 1100))
def test_base36_zero_padded(parity: Parity, value: int, width: int) -> None:
    parity.same("base36_encode", format(value, "x").rjust(width, "0"))


@given(
    hex_str=st.one_of(
        st.integers(),
        st.floats(),
        st.none(),
        st.binary().map(memoryview),
        st.lists(st.text(max_size=2), max_size=2),
        st.booleans(),
    )
)
def test_base36_wrong_types(parity: Parity, hex_str: object) -> None:
    parity.raises(TypeError, "base36_encode", hex_str)


class StrSub(str):
    def __str__(self) -> str:
        return "zz"

    def strip(self, *args: object) -> str:  # type: ignore[override]
        return "zz"


def test_base36_str_subclass(parity: Parity) -> None:
    parity.returns("73", "base36_encode", StrSub("ff"))


def test_base36_giant_inputs(parity: Parity) -> None:
    parity.raises(ValueError, "base36_encode", "f" * 10**6 + "g")
    parity.raises(ValueError, "base36_encode", "-" + "f" * 10**6)
    parity.raises(ValueError, "base36_encode", "1" * 10**6 + "_")
    parity.returns("0", "base36_encode", "0" * 10**6)
    parity.returns("0", "base36_encode", " -0x" + "0" * 10**6 + " ")
    giant = "f" * 10**5
    outcome = parity.same("base36_encode", giant)
    # 16**100000 - 1 has 77371 base-36 digits, the leading one '7' (int(s, 36) is capped).
    assert outcome.ok and len(outcome.value) == 77371 and outcome.value[0] == "7"
    assert outcome.value[-1] == to_base36(int(giant, 16) % 36)
    outcome = parity.same("base36_encode", b"\t0X" + b"a_b" * 30_000 + b"\n")
    assert outcome.ok


def to_base36(value: int) -> str:
    digits = ""
    while value:
        value, digit = divmod(value, 36)
        digits = (string.digits + string.ascii_lowercase)[digit] + digits
    return digits or "0"


# ------------------------------------------------------------------ format_float

subnormals = st.floats(min_value=-2.3e-308, max_value=2.3e-308, allow_subnormal=True)
ties = st.builds(
    lambda numerator, exponent: (2 * numerator + 1) / 2**exponent,
    st.integers(-(2**40), 2**40),
    st.integers(1, 60),
)
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    subnormals,
    ties,
    st.sampled_from(
        [
            0.0,
            -0.0,
            math.nan,
            -math.nan,
            math.inf,
            -math.inf,
            2.5,
            0.125,
            1e16,
            2.0**53,
            2.0**53 + 2,
            1.7976931348623157e308,
            5e-324,
            0.1,
            0.7,
        ]
    ),
)
precisions = st.one_of(st.integers(0, 30), st.sampled_from([60, 330, 1100]), st.booleans())


@given(num=floats, precision=precisions)
def test_format_float_floats(parity: Parity, num: float, precision: int) -> None:
    outcome = parity.same("format_float", num, precision)
    assert outcome.ok, outcome.describe()


@given(
    num=st.one_of(st.integers(), st.booleans(), st.integers(-(2**2000), 2**2000)),
    precision=st.one_of(precisions, st.integers(min_value=0)),
)
def test_format_float_ints(parity: Parity, num: int, precision: int) -> None:
    parity.returns(
        str(int(num)) if not isinstance(num, bool) else str(num), "format_float", num, precision
    )


@given(
    num=st.one_of(floats, st.integers()),
    precision=st.one_of(
        st.integers(max_value=-1),
        st.integers(min_value=2**31, max_value=2**70),
        st.floats(),
        st.none(),
        st.text(max_size=3),
    ),
)
def test_format_float_bad_precision(parity: Parity, num: object, precision: object) -> None:
    parity.same("format_float", num, precision)


@given(
    num=st.one_of(
        st.text(max_size=5),
        st.none(),
        st.complex_numbers(),
        st.binary(max_size=4),
        st.lists(st.floats(), max_size=2),
    ),
    precision=st.one_of(st.integers(0, 3), st.none()),
)
def test_format_float_wrong_num_type(parity: Parity, num: object, precision: object) -> None:
    parity.raises(TypeError, "format_float", num, precision)


@given(
    num=st.one_of(st.text(max_size=5), st.none(), st.complex_numbers(), st.binary(max_size=4)),
    precision=st.integers(max_value=-1),
)
def test_format_float_negative_precision_before_num_type(
    parity: Parity, num: object, precision: int
) -> None:
    # precision is checked first, for every num.
    parity.raises(ValueError, "format_float", num, precision)


class LoudFloat(float):
    def __str__(self) -> str:
        return "loud"

    def __repr__(self) -> str:
        return "LoudFloat()"

    def __format__(self, spec: str) -> str:
        return "formatted"

    def is_integer(self) -> bool:
        return not float(self).is_integer()


class LoudInt(int):
    def __str__(self) -> str:
        return "loud"

    def __repr__(self) -> str:
        return "LoudInt()"

    def __format__(self, spec: str) -> str:
        return "formatted"

    def __index__(self) -> int:
        return 99

    def __int__(self) -> int:
        return 99

    def __lt__(self, other: object) -> bool:
        return True


@given(num=floats, precision=st.integers(0, 20))
def test_format_float_subclasses_are_used_by_value(
    parity: Parity, num: float, precision: int
) -> None:
    expected = parity.same("format_float", num, precision)
    parity.returns(expected.value, "format_float", LoudFloat(num), LoudInt(precision))


@given(num=st.integers(-(10**30), 10**30))
def test_format_float_int_subclass(parity: Parity, num: int) -> None:
    parity.returns(str(num), "format_float", LoudInt(num))


def test_format_float_huge_int_against_interpreter_limit(parity: Parity) -> None:
    limit = getattr(sys, "get_int_max_str_digits", lambda: 0)()
    digits = (limit or 5000) + 1
    parity.same("format_float", 10**digits)
    parity.same("format_float", -(10**digits), 3)


# ------------------------------------------------------------------ truncate_long_string

characters = st.one_of(
    st.sampled_from([" ", " ", " ", "a", "b", "é", "\u2028", "\t", "\U0001f600", "\x00"]),
    st.characters(),
    st.integers(0xD800, 0xDFFF).map(chr),  # lone surrogates
)
texts = st.lists(characters, max_size=60).map("".join)
lengths = st.one_of(st.integers(-3, 70), st.sampled_from([2**31, 2**63, 2**64, 10**30]))


@given(
    s=texts,
    max_length=lengths,
    middle=st.one_of(st.booleans(), st.sampled_from([0, 1, "", "x", None, [], [0], 0.0, -1])),
)
def test_truncate(parity: Parity, s: str, max_length: int, middle: object) -> None:
    outcome = parity.same("truncate_long_string", s, max_length, middle)
    if outcome.ok and not middle:
        assert len(outcome.value) <= max(max_length, len(s)) + 3


@given(s=texts, max_length=st.integers(0, 70))
def test_truncate_defaults_and_keywords(parity: Parity, s: str, max_length: int) -> None:
    parity.same("truncate_long_string", s)
    parity.same("truncate_long_string", s, max_length=max_length)
    parity.same("truncate_long_string", s, max_length, truncate_middle=True)


class Truthy:
    calls = 0

    def __bool__(self) -> bool:
        Truthy.calls += 1
        return True


class Exploding:
    def __bool__(self) -> bool:
        raise RuntimeError("truthiness asked")


def test_truncate_middle_truthiness(parity: Parity) -> None:
    parity.returns("a...h", "truncate_long_string", "abcdefgh", 5, Truthy())
    # Only consulted when the string is too long.
    parity.returns("abc", "truncate_long_string", "abc", 5, Exploding())
    parity.raises(RuntimeError, "truncate_long_string", "abcdefgh", 5, Exploding())


class LoudStr(str):
    def __len__(self) -> int:
        return 0

    def split(self, *args: object) -> list:  # type: ignore[override]
        return ["loud"]


@given(s=texts, max_length=st.integers(0, 40), middle=st.booleans())
def test_truncate_str_subclass(parity: Parity, s: str, max_length: int, middle: bool) -> None:
    plain = parity.same("truncate_long_string", s, max_length, middle)
    sub = parity.same("truncate_long_string", LoudStr(s), LoudInt(max_length), middle)
    assert str(sub.value) == plain.value if sub.ok else not plain.ok


def test_truncate_giant_inputs(parity: Parity) -> None:
    words = ("word " * (2**20 // 5))[: 2**20]
    for max_length in (0, 1, 35, 2**19, 2**20 - 1, 2**20, 10**30):
        parity.same("truncate_long_string", words, max_length)
        parity.same("truncate_long_string", words, max_length, True)
    solid = "\u00e9" * 2**20
    parity.same("truncate_long_string", solid, 2**19)
    parity.raises(ValueError, "truncate_long_string", solid, -(10**30))


@given(
    s=st.one_of(st.binary(max_size=5), st.integers(), st.none(), st.lists(st.text(), max_size=2)),
    max_length=st.integers(-2, 5),
)
def test_truncate_wrong_types(parity: Parity, s: object, max_length: int) -> None:
    parity.raises(TypeError, "truncate_long_string", s, max_length)


@given(max_length=st.one_of(st.floats(), st.text(max_size=3), st.none(), st.binary(max_size=2)))
def test_truncate_wrong_length_type(parity: Parity, max_length: object) -> None:
    parity.raises(TypeError, "truncate_long_string", "abc", max_length)


# ------------------------------------------------------------------ get_parallel_threads

CLOUD_NAMES = [
    "kubernetes",
    "KUBERNETES",
    "Kubernetes",
    "\u212aUBERNETES",
    "\u212aubernetes",
    "kubernetes ",
    " kubernetes",
    "kubernetes\x00",
    "k8s",
    "aws",
    "",
    "\u0130",
    "KUBERNETE\u017f",
    "ｋｕｂｅｒｎｅｔｅｓ",
    "kubern\u0435tes",
]


@given(
    cloud=st.one_of(
        st.none(),
        st.sampled_from(CLOUD_NAMES),
        st.text(max_size=12),
        st.lists(characters, max_size=12).map("".join),
    )
)
def test_parallel_threads_cloud_names(parity: Parity, cloud: object) -> None:
    base = max(4, (os.cpu_count() or 1) - 1)
    on_kubernetes = cloud is not None and cloud.lower() == "kubernetes"
    parity.returns(base * 4 if on_kubernetes else base, "get_parallel_threads", cloud)


class LowerLies(str):
    def lower(self) -> str:
        return "kubernetes"

    def __bool__(self) -> bool:
        return False


def test_parallel_threads_str_subclass(parity: Parity) -> None:
    base = parity.same("get_parallel_threads", "aws").value
    parity.returns(base, "get_parallel_threads", LowerLies("aws"))
    parity.returns(base * 4, "get_parallel_threads", LowerLies("KUBERNETES"))


@given(
    cloud=st.one_of(
        st.integers(),
        st.binary(max_size=10),
        st.floats(),
        st.booleans(),
        st.lists(st.text(max_size=2), max_size=2),
    )
)
def test_parallel_threads_wrong_types(parity: Parity, cloud: object) -> None:
    parity.raises(TypeError, "get_parallel_threads", cloud)
