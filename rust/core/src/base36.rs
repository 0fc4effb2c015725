//! Hexadecimal integers of any length written in base 36 (`0-9a-z`, most
//! significant digit first, zero is `"0"`).
//!
//! Only the plain grammar `(0[xX])?[0-9a-fA-F]+` is parsed here: for those
//! strings `int(s, 16)` is simply their value. Anything else (whitespace,
//! signs, `_`, non-ASCII digits, invalid text) is left to Python's `int()` by
//! the binding, which then hands the value back as big-endian bytes.

const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// 36**12, the largest power of 36 below 2**63: each division by it yields
/// twelve base-36 digits.
const BASE36_CHUNK: u64 = 36u64.pow(12);
const DIGITS_PER_CHUNK: usize = 12;

/// Base 36 of `s` when it is in the plain hexadecimal grammar
/// `(0[xX])?[0-9a-fA-F]+`; `None` for anything else.
pub fn encode_plain_hex(s: &[u8]) -> Option<String> {
    let digits = match s {
        [b'0', b'x' | b'X', rest @ ..] => rest,
        _ => s,
    };
    if digits.is_empty() {
        return None;
    }
    let mut limbs = Vec::with_capacity(digits.len().div_ceil(16));
    for group in digits.rchunks(16) {
        let mut limb = 0u64;
        for &digit in group {
            limb = (limb << 4) | u64::from(hex_value(digit)?);
        }
        limbs.push(limb);
    }
    Some(limbs_to_base36(limbs))
}

/// Base 36 of the unsigned big-endian integer in `bytes` (empty is zero).
pub fn encode_be_bytes(bytes: &[u8]) -> String {
    let limbs = bytes
        .rchunks(8)
        .map(|group| group.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
        .collect();
    limbs_to_base36(limbs)
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Base 36 of the little-endian 64-bit limbs, by repeated division by 36**12.
fn limbs_to_base36(mut limbs: Vec<u64>) -> String {
    trim_high_zeros(&mut limbs);
    // Digits come out least significant first.
    let mut reversed = Vec::new();
    while !limbs.is_empty() {
        let mut remainder = 0u64;
        for limb in limbs.iter_mut().rev() {
            let dividend = (u128::from(remainder) << 64) | u128::from(*limb);
            // remainder < BASE36_CHUNK, so the quotient fits in 64 bits.
            *limb = (dividend / u128::from(BASE36_CHUNK)) as u64;
            remainder = (dividend % u128::from(BASE36_CHUNK)) as u64;
        }
        trim_high_zeros(&mut limbs);
        let mut produced = 0;
        while remainder > 0 || (!limbs.is_empty() && produced < DIGITS_PER_CHUNK) {
            reversed.push(ALPHABET[(remainder % 36) as usize]);
            remainder /= 36;
            produced += 1;
        }
    }
    if reversed.is_empty() {
        return "0".to_owned();
    }
    reversed
        .iter()
        .rev()
        .map(|&digit| char::from(digit))
        .collect()
}

fn trim_high_zeros(limbs: &mut Vec<u64>) {
    while limbs.last() == Some(&0) {
        limbs.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples() {
        assert_eq!(encode_plain_hex(b"ff").as_deref(), Some("73"));
        assert_eq!(encode_plain_hex(b"0").as_deref(), Some("0"));
        assert_eq!(encode_plain_hex(b"0000").as_deref(), Some("0"));
        assert_eq!(encode_plain_hex(b"0x0").as_deref(), Some("0"));
    }

    #[test]
    fn prefixes_and_case() {
        assert_eq!(encode_plain_hex(b"0xFF").as_deref(), Some("73"));
        assert_eq!(encode_plain_hex(b"0XfF").as_deref(), Some("73"));
        assert_eq!(encode_plain_hex(b"23").as_deref(), Some("z"));
        assert_eq!(encode_plain_hex(b"24").as_deref(), Some("10"));
    }

    #[test]
    fn anything_unusual_is_left_to_python() {
        let unusual: [&[u8]; 12] = [
            b"",
            b"0x",
            b" ff",
            b"ff ",
            b"+ff",
            b"-ff",
            b"f_f",
            b"0x_ff",
            b"fg",
            b"0o1",
            b"x",
            b"\xd9\xa3",
        ];
        for s in unusual {
            assert_eq!(encode_plain_hex(s), None, "{s:?}");
        }
    }

    #[test]
    fn sha256_digest_has_no_size_limit() {
        // int('e3b0...b855', 16) written in base 36 by Python.
        let digest = b"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            encode_plain_hex(digest).as_deref(),
            Some("5oaq0bjhj6un82wg98mgigso5q7qlhc63je4gw7ivixqqhkd3p")
        );
    }

    #[test]
    fn limb_and_chunk_boundaries() {
        // 16**16 = 2**64 (one past a limb); 36**12 and 36**24 (chunk edges).
        assert_eq!(
            encode_plain_hex(b"ffffffffffffffff").as_deref(),
            Some("3w5e11264sgsf")
        );
        assert_eq!(
            encode_plain_hex(b"10000000000000000").as_deref(),
            Some("3w5e11264sgsg")
        );
        assert_eq!(
            encode_plain_hex(b"41c21cb8e1000000").as_deref(),
            Some("1000000000000")
        );
        assert_eq!(
            encode_plain_hex(b"41c21cb8e0ffffff").as_deref(),
            Some("zzzzzzzzzzzz")
        );
        assert_eq!(
            encode_plain_hex(b"10e425c56daffabc35c1000000000000").as_deref(),
            Some("1000000000000000000000000")
        );
    }

    #[test]
    fn big_endian_bytes() {
        assert_eq!(encode_be_bytes(&[]), "0");
        assert_eq!(encode_be_bytes(&[0, 0]), "0");
        assert_eq!(encode_be_bytes(&[0xff]), "73");
        assert_eq!(
            encode_be_bytes(&[1, 0, 0, 0, 0, 0, 0, 0, 0]),
            "3w5e11264sgsg"
        );
    }

    /// Base 36 by the obvious method on u128, to cross-check the limb
    /// arithmetic on many values.
    fn naive(mut value: u128) -> String {
        if value == 0 {
            return "0".to_owned();
        }
        let mut digits = Vec::new();
        while value > 0 {
            digits.push(ALPHABET[(value % 36) as usize] as char);
            value /= 36;
        }
        digits.iter().rev().collect()
    }

    #[test]
    fn agrees_with_u128_arithmetic() {
        let mut state: u128 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..2000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let shift = (state >> 120) as u32 % 128;
            let value = state >> shift;
            let hex = format!("{value:x}");
            assert_eq!(
                encode_plain_hex(hex.as_bytes()).unwrap(),
                naive(value),
                "{hex}"
            );
            assert_eq!(encode_be_bytes(&value.to_be_bytes()), naive(value));
        }
    }
}
