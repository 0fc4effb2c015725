//! The environment overrides of `get_cpu_count` and `get_mem_size_gb`
//! (spec: `SKYPILOT_POD_CPU_CORE_LIMIT`, `SKYPILOT_POD_MEMORY_GB_LIMIT`,
//! `SKYPILOT_POD_MEMORY_BYTES_LIMIT`).
//!
//! The variables are looked up by the caller (the binding reads the running
//! interpreter's `os.environ`, which programs and tests may replace); these
//! functions take the values, so every rule is covered by `cargo test`.
//! Values are parsed with Python's `float()` grammar: [`parse_float`] does
//! the ASCII text every real deployment uses and says
//! [`FloatText::AskInterpreter`] for the rest (Unicode digits and spaces),
//! which the contract lets the interpreter parse.

/// The variable that overrides `get_cpu_count()`.
pub const CPU_CORE_LIMIT: &str = "SKYPILOT_POD_CPU_CORE_LIMIT";
/// The variable that overrides `get_mem_size_gb()`, in GiB; wins over
/// [`MEMORY_BYTES_LIMIT`].
pub const MEMORY_GB_LIMIT: &str = "SKYPILOT_POD_MEMORY_GB_LIMIT";
/// The variable that overrides `get_mem_size_gb()`, in bytes.
pub const MEMORY_BYTES_LIMIT: &str = "SKYPILOT_POD_MEMORY_BYTES_LIMIT";

const GIB: f64 = 1_073_741_824.0;

/// What Python's `float(text)` makes of a text.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FloatText {
    /// The value `float()` returns (possibly `inf` or `nan`).
    Parsed(f64),
    /// `float()` raises `ValueError`.
    Invalid,
    /// Not ASCII: Unicode whitespace or digits may make it valid; only the
    /// interpreter knows its tables.
    AskInterpreter,
}

/// Python's `float(text)` for an ASCII `text`: surrounding whitespace (C's
/// `isspace` set; unlike `str.strip()`, `float()` keeps `\x1c`-`\x1f`), an optional sign,
/// digits with single `_` between two digits, an optional fraction and
/// exponent, or `inf`/`infinity`/`nan` in any case. Rust's `f64` parser is
/// correctly rounded, as CPython's is, and has the same grammar once the
/// underscores are gone.
pub fn parse_float(text: &str) -> FloatText {
    if !text.is_ascii() {
        return FloatText::AskInterpreter;
    }
    let trimmed = text.trim_matches(|c: char| matches!(c, '\t'..='\r' | ' '));
    let bytes = trimmed.as_bytes();
    let mut digits = String::with_capacity(bytes.len());
    for (index, &byte) in bytes.iter().enumerate() {
        if byte == b'_' {
            // Python: an underscore only between two digits.
            let before = index.checked_sub(1).map(|i| bytes[i]);
            let after = bytes.get(index + 1).copied();
            if !(before.is_some_and(|b| b.is_ascii_digit())
                && after.is_some_and(|b| b.is_ascii_digit()))
            {
                return FloatText::Invalid;
            }
            continue;
        }
        digits.push(char::from(byte));
    }
    match digits.parse::<f64>() {
        Ok(value) => FloatText::Parsed(value),
        Err(_) => FloatText::Invalid,
    }
}

/// `get_cpu_count()`'s answer from the override: `max(int(value), 1)` where
/// `value = float(text)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CpuLimit {
    /// The count, when it fits 64 bits.
    Count(u64),
    /// An integral value of 2**64 or more, which the caller turns into a
    /// Python `int` exactly (`int(1e30)` has 31 digits).
    Beyond64Bits(f64),
}

/// `max(int(value), 1)` for `value = float(text)`; `None` where `int()`
/// raises (`nan`: `ValueError`, infinities: `OverflowError`), which the
/// contract turns into `ValueError`.
pub fn cpu_limit(value: f64) -> Option<CpuLimit> {
    if !value.is_finite() {
        return None;
    }
    let whole = value.trunc();
    const TWO_TO_64: f64 = 18_446_744_073_709_551_616.0;
    Some(if whole < 1.0 {
        CpuLimit::Count(1)
    } else if whole < TWO_TO_64 {
        // Integral, positive and below 2**64, so the conversion is exact.
        CpuLimit::Count(whole as u64)
    } else {
        CpuLimit::Beyond64Bits(whole)
    })
}

/// Why a memory override is rejected (both are `ValueError`s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryRejected {
    /// `float(text)` raised.
    NotANumber,
    /// `nan`, infinite, or `<= 0`.
    NotFinitePositive,
}

/// `get_mem_size_gb()`'s answer from one override, in GiB: `value` (the
/// `float()` of the text, `None` when that raised) must be finite and above
/// 0; `in_bytes` says it is `SKYPILOT_POD_MEMORY_BYTES_LIMIT`, divided by
/// 1024**3 (exact: a power of two).
pub fn memory_gib(value: Option<f64>, in_bytes: bool) -> Result<f64, MemoryRejected> {
    let value = value.ok_or(MemoryRejected::NotANumber)?;
    if !value.is_finite() || value <= 0.0 {
        return Err(MemoryRejected::NotFinitePositive);
    }
    Ok(if in_bytes { value / GIB } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_float_is_pythons_grammar_for_ascii() {
        use FloatText::{Invalid, Parsed};
        // Answers as CPython's float() gives them.
        for (text, expected) in [
            ("2", Parsed(2.0)),
            ("  2.5\n", Parsed(2.5)),
            ("\t\n\x0b\x0c\r 7 \r\n", Parsed(7.0)),
            ("\x1c7", Invalid),
            ("7\x1f", Invalid),
            ("+3", Parsed(3.0)),
            ("-0.5", Parsed(-0.5)),
            ("1.", Parsed(1.0)),
            (".5", Parsed(0.5)),
            ("1e3", Parsed(1000.0)),
            ("1E+3", Parsed(1000.0)),
            ("2.5e-1", Parsed(0.25)),
            ("1_000", Parsed(1000.0)),
            ("1_0.2_5e1_0", Parsed(10.25e10)),
            ("0.1", Parsed(0.1)),
            ("1e400", Parsed(f64::INFINITY)),
            ("-1e400", Parsed(f64::NEG_INFINITY)),
            ("1e-400", Parsed(0.0)),
            ("inf", Parsed(f64::INFINITY)),
            ("-Infinity", Parsed(f64::NEG_INFINITY)),
            ("INF", Parsed(f64::INFINITY)),
            ("", Invalid),
            ("   ", Invalid),
            ("abc", Invalid),
            ("1_", Invalid),
            ("_1", Invalid),
            ("1__0", Invalid),
            ("1_.5", Invalid),
            ("1._5", Invalid),
            ("1e_5", Invalid),
            ("1_e5", Invalid),
            ("0x10", Invalid),
            ("1.5.2", Invalid),
            ("e5", Invalid),
            ("1e", Invalid),
            (".", Invalid),
            ("+-1", Invalid),
            ("1 2", Invalid),
            ("infinit", Invalid),
            ("in_f", Invalid),
            ("\x002", Invalid),
        ] {
            assert_eq!(parse_float(text), expected, "{text:?}");
        }
        assert!(matches!(parse_float("nan"), Parsed(x) if x.is_nan()));
        assert!(matches!(parse_float("-NaN"), Parsed(x) if x.is_nan()));
    }

    #[test]
    fn parse_float_leaves_non_ascii_to_the_interpreter() {
        for text in ["\u{663}", "\u{a0}3", "3\u{2003}", "\u{ff13}", "caf\u{e9}"] {
            assert_eq!(parse_float(text), FloatText::AskInterpreter, "{text:?}");
        }
    }

    #[test]
    fn cpu_limit_is_int_of_the_float_and_at_least_one() {
        use CpuLimit::{Beyond64Bits, Count};
        for (value, expected) in [
            (4.0, Some(Count(4))),
            (4.9, Some(Count(4))),
            (1.0, Some(Count(1))),
            (0.5, Some(Count(1))),
            (0.0, Some(Count(1))),
            (-0.0, Some(Count(1))),
            (-3.7, Some(Count(1))),
            (-1e300, Some(Count(1))),
            (
                18_446_744_073_709_549_568.0,
                Some(Count(18_446_744_073_709_549_568)),
            ),
            (
                18_446_744_073_709_551_616.0,
                Some(Beyond64Bits(18_446_744_073_709_551_616.0)),
            ),
            (1e30, Some(Beyond64Bits(1e30))),
            (f64::MAX, Some(Beyond64Bits(f64::MAX))),
            (f64::INFINITY, None),
            (f64::NEG_INFINITY, None),
            (f64::NAN, None),
        ] {
            assert_eq!(cpu_limit(value), expected, "{value:e}");
        }
    }

    #[test]
    fn memory_overrides_must_be_finite_and_positive() {
        use MemoryRejected::{NotANumber, NotFinitePositive};
        assert_eq!(memory_gib(Some(2.5), false), Ok(2.5));
        assert_eq!(memory_gib(Some(1e-300), false), Ok(1e-300));
        assert_eq!(memory_gib(Some(GIB * 3.0), true), Ok(3.0));
        assert_eq!(memory_gib(Some(512.0), true), Ok(512.0 / GIB));
        assert_eq!(memory_gib(None, false), Err(NotANumber));
        assert_eq!(memory_gib(None, true), Err(NotANumber));
        for bad in [0.0, -0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(
                memory_gib(Some(bad), false),
                Err(NotFinitePositive),
                "{bad}"
            );
            assert_eq!(memory_gib(Some(bad), true), Err(NotFinitePositive), "{bad}");
        }
    }
}
