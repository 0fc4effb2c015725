//! Finding one byte value in a slice, eight bytes at a time.
//!
//! `core` has no public `memchr`, and the per-byte loops the iterator
//! adapters compile to cost several instructions per byte: this module is
//! what parsing `/proc/self/mountinfo` and finding a tail's newlines use.

const ONES: u64 = 0x0101_0101_0101_0101;
const LOWS: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` that equals `needle`, exactly (no
/// false positives from borrows).
#[inline]
fn matches(word: u64, needle: u8) -> u64 {
    let x = word ^ (ONES * u64::from(needle));
    !(((x & LOWS) + LOWS) | x) & HIGHS
}

/// The position of the first `needle` in `bytes`.
#[inline]
pub fn find(bytes: &[u8], needle: u8) -> Option<usize> {
    let mut start = 0;
    while start + 8 <= bytes.len() {
        let word = u64::from_le_bytes(bytes[start..start + 8].try_into().unwrap());
        let found = matches(word, needle);
        if found != 0 {
            return Some(start + (found.trailing_zeros() / 8) as usize);
        }
        start += 8;
    }
    bytes[start..]
        .iter()
        .position(|&b| b == needle)
        .map(|i| start + i)
}

/// The position of the last `needle` in `bytes`.
#[inline]
pub fn rfind(bytes: &[u8], needle: u8) -> Option<usize> {
    let mut end = bytes.len();
    while end >= 8 {
        let word = u64::from_le_bytes(bytes[end - 8..end].try_into().unwrap());
        let found = matches(word, needle);
        if found != 0 {
            return Some(end - 8 + ((63 - found.leading_zeros()) / 8) as usize);
        }
        end -= 8;
    }
    bytes[..end].iter().rposition(|&b| b == needle)
}

/// `bytes.split(|b| *b == needle)`, found eight bytes at a time.
pub fn split(bytes: &[u8], needle: u8) -> Split<'_> {
    Split {
        rest: Some(bytes),
        needle,
    }
}

pub struct Split<'a> {
    rest: Option<&'a [u8]>,
    needle: u8,
}

impl<'a> Iterator for Split<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        match find(rest, self.needle) {
            Some(i) => {
                self.rest = Some(&rest[i + 1..]);
                Some(&rest[..i])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_the_plain_loops() {
        let mut state = 12345u32;
        for len in 0..80 {
            for _ in 0..40 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                        [b'\n', b' ', b'a', 0, 0x80, 0xff, 0x0b, 0x8a][(state >> 16) as usize % 8]
                    })
                    .collect();
                for needle in [b'\n', b' ', 0, 0x80, 0xff] {
                    assert_eq!(
                        find(&bytes, needle),
                        bytes.iter().position(|&b| b == needle)
                    );
                    assert_eq!(
                        rfind(&bytes, needle),
                        bytes.iter().rposition(|&b| b == needle)
                    );
                    let expected: Vec<&[u8]> = bytes.split(|&b| b == needle).collect();
                    assert_eq!(split(&bytes, needle).collect::<Vec<_>>(), expected);
                }
            }
        }
    }
}
