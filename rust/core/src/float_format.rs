//! `format_float` for a float value: Python's `f'{x:.{p}f}'`, with integral
//! values written with no decimals.
//!
//! Rust's `{:.*}` formatting is exact (correctly rounded from the binary
//! value, ties to even, the sign of zero kept), which is what CPython's
//! `'f'` format does; only the spelling of nan and the infinities differs,
//! so those are written here. The unit tests pin tie cases to Python's
//! output.

/// Python's `f'{x:.{precision}f}'` (`'nan'` whatever the sign bit, `'inf'`,
/// `'-inf'`).
pub fn format_fixed(x: f64, precision: usize) -> String {
    if x.is_nan() {
        return "nan".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    format!("{x:.precision$}")
}

/// Python's `float.is_integer()`.
pub fn is_integer(x: f64) -> bool {
    x.is_finite() && x.trunc() == x
}

/// `'{:.0f}'.format(x)` for an integral `x` (`2.0` → `"2"`, `-0.0` → `"-0"`).
///
/// Integral values below 2**63 in magnitude are written as integers, which
/// is exact and much cheaper than the float formatter's exact mode.
pub fn format_integral(x: f64) -> String {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2**63
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    if x.abs() < LIMIT {
        // Integral and in range, so the conversion is exact.
        return (x as i64).to_string();
    }
    format_fixed(x, 0)
}

/// `format_float(x, precision)` for a float `x`: `'{:.0f}'` when `x` is
/// integral (`2.0` → `"2"`, `-0.0` → `"-0"`), else `f'{x:.{precision}f}'`.
pub fn format_float(x: f64, precision: usize) -> String {
    if is_integer(x) {
        format_integral(x)
    } else {
        format_fixed(x, precision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(x, precision, f'{x:.{precision}f}')` as CPython prints them.
    const FIXED: [(f64, usize, &str); 30] = [
        (0.125, 2, "0.12"),
        (0.375, 2, "0.38"),
        (0.25, 1, "0.2"),
        (0.35, 1, "0.3"),
        (2.55, 1, "2.5"),
        (2.675, 2, "2.67"),
        (0.5, 0, "0"),
        (1.5, 0, "2"),
        (2.5, 0, "2"),
        (-2.5, 0, "-2"),
        (-0.5, 0, "-0"),
        (-0.01, 1, "-0.0"),
        (-0.0, 1, "-0.0"),
        (0.0, 3, "0.000"),
        (1e22, 1, "10000000000000000000000.0"),
        (1e23, 0, "99999999999999991611392"),
        (5e-324, 1, "0.0"),
        (-5e-324, 2, "-0.00"),
        (
            5e-324,
            330,
            "0.000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000004940656",
        ),
        (0.1, 20, "0.10000000000000000555"),
        (1.0000000000000002, 16, "1.0000000000000002"),
        (9.995, 2, "9.99"),
        (0.045, 2, "0.04"),
        (1.25, 1, "1.2"),
        (1.35, 1, "1.4"),
        (123456789.125, 2, "123456789.12"),
        (0.0625, 3, "0.062"),
        (f64::NAN, 1, "nan"),
        (f64::INFINITY, 3, "inf"),
        (f64::NEG_INFINITY, 0, "-inf"),
    ];

    #[test]
    fn fixed_matches_python() {
        for (x, precision, expected) in FIXED {
            assert_eq!(format_fixed(x, precision), expected, "{x:e} .{precision}f");
        }
    }

    #[test]
    fn nan_is_nan_whatever_its_sign() {
        assert_eq!(format_fixed(-f64::NAN, 2), "nan");
        assert_eq!(
            format_float(f64::from_bits(0xfff8_0000_0000_0001), 1),
            "nan"
        );
    }

    #[test]
    fn integral_floats_have_no_decimals() {
        assert_eq!(format_float(2.0, 3), "2");
        assert_eq!(format_float(-0.0, 1), "-0");
        assert_eq!(format_float(1e20, 1), "100000000000000000000");
        assert_eq!(
            format_float(f64::MAX, 1),
            "179769313486231570814527423731704356798070567525844996598917476803157260780028538760589558632766878171540458953514382464234321326889464182768467546703537516986049910576551282076245490090389328944075868508455133942304583236903222948165808559332123348274797826204144723168738177180919299881250404026184124858368"
        );
        assert_eq!(format_float(f64::INFINITY, 1), "inf");
    }

    #[test]
    fn integral_shortcut_agrees_with_the_formatter() {
        let edges = [
            1.0,
            -1.0,
            9_007_199_254_740_993.0,
            9_223_372_036_854_774_784.0,  // largest double below 2**63
            -9_223_372_036_854_775_808.0, // -2**63: formatter path
            9_223_372_036_854_775_808.0,  // 2**63: formatter path
            1e300,
            -123_456_789.0,
        ];
        for x in edges {
            assert_eq!(format_integral(x), format_fixed(x, 0), "{x:e}");
        }
        let mut bits: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            bits ^= bits << 13;
            bits ^= bits >> 7;
            bits ^= bits << 17;
            let x = f64::from_bits(bits).trunc();
            if x.is_finite() {
                assert_eq!(format_integral(x), format_fixed(x, 0), "{x:e}");
            }
        }
    }

    #[test]
    fn other_floats_use_the_precision() {
        assert_eq!(format_float(2.55, 1), "2.5");
        assert_eq!(format_float(0.25, 1), "0.2");
        assert_eq!(format_float(1.23456, 3), "1.235");
        assert_eq!(format_float(-1.5, 0), "-2");
    }

    #[test]
    fn is_integer_is_pythons() {
        assert!(is_integer(0.0) && is_integer(-0.0) && is_integer(1e300));
        assert!(!is_integer(0.5) && !is_integer(f64::NAN) && !is_integer(f64::INFINITY));
    }
}
