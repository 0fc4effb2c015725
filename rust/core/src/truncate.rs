//! SkyPilot's `truncate_long_string`, on code points.
//!
//! The result is always a prefix of the string, or a prefix and a suffix,
//! around `"..."`; [`plan`] computes those lengths from the string's length
//! and the positions of its spaces only, so the binding can cut a Python
//! `str` of any content (lone surrogates included) without copying it, and
//! [`truncate_long_string`] applies the plan to a Rust `&str`.

/// How to cut a string longer than `max_length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    /// Return the string unchanged (it is not longer than `max_length`).
    Unchanged,
    /// `s[:len] + "..."`.
    Prefix(usize),
    /// `s[:head] + "..." + s[len(s) - tail:]` (`tail > 0`).
    Middle { head: usize, tail: usize },
}

pub const ELLIPSIS: &str = "...";

/// The plan for a string of `len` code points whose `' '` (U+0020 only)
/// are at the ascending indices `spaces`. `spaces` is consumed only as far
/// as the end mode needs it.
pub fn plan<I>(len: usize, max_length: usize, truncate_middle: bool, spaces: I) -> Truncation
where
    I: IntoIterator<Item = usize>,
{
    if len <= max_length {
        return Truncation::Unchanged;
    }
    if truncate_middle {
        plan_middle(max_length)
    } else {
        plan_end(len, max_length, spaces)
    }
}

fn plan_middle(max_length: usize) -> Truncation {
    if max_length <= ELLIPSIS.len() {
        return Truncation::Prefix(0);
    }
    let half = (max_length - ELLIPSIS.len()) / 2;
    let rem = (max_length - ELLIPSIS.len()) % 2;
    if half == 0 {
        Truncation::Prefix(rem)
    } else {
        Truncation::Middle {
            head: half + rem,
            tail: half,
        }
    }
}

/// End mode, as SkyPilot words it: `words = s.split(' ')`; the first word
/// longer than `max_length` is cut; otherwise the prefix is
/// `' '.join(words[:i])` where word `i` is the first at which the running
/// sum of word lengths reaches `max_length` (else the last word), extended
/// with `s[len(prefix):max_length]` when shorter than `max_length`.
///
/// `' '.join(words[:i])` is the prefix of `s` that ends right before the
/// space preceding word `i` (empty for `i == 0`), so only lengths matter.
fn plan_end<I>(len: usize, max_length: usize, spaces: I) -> Truncation
where
    I: IntoIterator<Item = usize>,
{
    let mut word_start = 0;
    let mut word_sum = 0;
    for space in spaces {
        if let Some(plan) = end_word(max_length, word_start, space, &mut word_sum) {
            return plan;
        }
        word_start = space + 1;
    }
    // The last word is `i` whether or not the sum reaches `max_length`.
    end_word(max_length, word_start, len, &mut word_sum).unwrap_or(Truncation::Prefix(
        joined_len_before(word_start).max(max_length),
    ))
}

/// Account for the word `[word_start, word_end)`; the plan when it decides.
fn end_word(
    max_length: usize,
    word_start: usize,
    word_end: usize,
    word_sum: &mut usize,
) -> Option<Truncation> {
    let word_len = word_end - word_start;
    if word_start == 0 && word_len > max_length {
        // words[0] is longer than max_length: words[0][:max_length].
        return Some(Truncation::Prefix(max_length));
    }
    *word_sum += word_len;
    if *word_sum >= max_length {
        return Some(Truncation::Prefix(
            joined_len_before(word_start).max(max_length),
        ));
    }
    None
}

/// `len(' '.join(words[:i]))` for the word `i` starting at `word_start`.
fn joined_len_before(word_start: usize) -> usize {
    word_start.saturating_sub(1)
}

/// `truncate_long_string(s, max_length, truncate_middle)` for a Rust string.
pub fn truncate_long_string(s: &str, max_length: usize, truncate_middle: bool) -> String {
    let len = s.chars().count();
    let spaces = s
        .chars()
        .enumerate()
        .filter(|&(_, c)| c == ' ')
        .map(|(index, _)| index);
    let plan = plan(len, max_length, truncate_middle, spaces);
    match plan {
        Truncation::Unchanged => s.to_owned(),
        Truncation::Prefix(keep) => {
            let mut out: String = s.chars().take(keep).collect();
            out.push_str(ELLIPSIS);
            out
        }
        Truncation::Middle { head, tail } => {
            let mut out: String = s.chars().take(head).collect();
            out.push_str(ELLIPSIS);
            out.extend(s.chars().skip(len - tail));
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALPHABET: &str = "abcdefghijklmnopqrstuvwxyz";

    #[test]
    fn short_strings_are_unchanged() {
        assert_eq!(truncate_long_string("abc", 3, false), "abc");
        assert_eq!(truncate_long_string("", 0, true), "");
        assert_eq!(plan(5, 5, true, std::iter::empty()), Truncation::Unchanged);
    }

    #[test]
    fn spec_middle_examples() {
        assert_eq!(truncate_long_string("abcde", 4, true), "a...");
        assert_eq!(truncate_long_string(ALPHABET, 10, true), "abcd...xyz");
        assert_eq!(truncate_long_string(ALPHABET, 11, true), "abcd...wxyz");
        assert_eq!(truncate_long_string(ALPHABET, 3, true), "...");
        assert_eq!(truncate_long_string(ALPHABET, 0, true), "...");
        assert_eq!(truncate_long_string(ALPHABET, 5, true), "a...z");
    }

    #[test]
    fn spec_end_examples() {
        assert_eq!(
            truncate_long_string("a b c d e f", 10, false),
            "a b c d e ..."
        );
        assert_eq!(
            truncate_long_string("ab cd ef gh", 10, false),
            "ab cd ef g..."
        );
    }

    #[test]
    fn first_word_longer_than_max_length_is_cut() {
        assert_eq!(truncate_long_string("abcdefgh ij", 5, false), "abcde...");
        assert_eq!(truncate_long_string(ALPHABET, 0, false), "...");
        assert_eq!(truncate_long_string(" abc", 0, false), "...");
    }

    #[test]
    fn word_reaching_max_length_is_not_included() {
        // Sums 3, 6 (>= 5 at word 1): prefix "abc", extended to s[:5].
        assert_eq!(truncate_long_string("abc def ghi", 5, false), "abc d...");
        // Sums 2, 4, 6 (>= 6 at word 2): prefix "ab cd" (5), extended to 6.
        assert_eq!(truncate_long_string("ab cd ef gh", 6, false), "ab cd ...");
        // Spaces are not counted: the result may exceed max_length + 3.
        assert_eq!(
            truncate_long_string("a b c d e f g h", 5, false),
            "a b c d..."
        );
    }

    #[test]
    fn runs_of_spaces_make_empty_words() {
        assert_eq!(truncate_long_string("a    b", 2, false), "a   ...");
        assert_eq!(truncate_long_string("     ", 2, false), "    ...");
    }

    #[test]
    fn lengths_count_code_points() {
        assert_eq!(truncate_long_string("ééééé", 4, true), "é...");
        assert_eq!(
            truncate_long_string("日本語 テキスト です", 4, false),
            "日本語 ..."
        );
        assert_eq!(truncate_long_string("🙂🙂🙂🙂🙂🙂", 5, true), "🙂...🙂");
    }

    /// Python's algorithm, literally, on Vec<char>.
    fn reference(s: &str, max_length: usize, middle: bool) -> String {
        let chars: Vec<char> = s.chars().collect();
        if chars.len() <= max_length {
            return s.to_owned();
        }
        let take = |k: usize| chars[..k.min(chars.len())].iter().collect::<String>();
        if middle {
            if max_length <= 3 {
                return "...".to_owned();
            }
            let (half, rem) = ((max_length - 3) / 2, (max_length - 3) % 2);
            if half == 0 {
                return take(rem) + "...";
            }
            let tail: String = chars[chars.len() - half..].iter().collect();
            return take(half + rem) + "..." + &tail;
        }
        let words: Vec<Vec<char>> = s.split(' ').map(|w| w.chars().collect()).collect();
        if words[0].len() > max_length {
            return take(max_length) + "...";
        }
        let mut index = 0;
        let mut total = 0;
        for (i, word) in words.iter().enumerate() {
            index = i;
            total += word.len();
            if total >= max_length {
                break;
            }
        }
        let mut prefix: Vec<char> = Vec::new();
        for (i, word) in words[..index].iter().enumerate() {
            if i > 0 {
                prefix.push(' ');
            }
            prefix.extend(word);
        }
        if prefix.len() < max_length {
            prefix.extend(&chars[prefix.len()..max_length]);
        }
        prefix.iter().collect::<String>() + "..."
    }

    #[test]
    fn agrees_with_the_literal_algorithm() {
        let samples = [
            "a b c d e f",
            "ab cd ef gh",
            "  leading spaces and trailing  ",
            "one-long-word then short",
            "x",
            " ",
            "a  b   c    d",
            "héllo wörld ünïcode text here",
            "the quick brown fox jumps over the lazy dog",
        ];
        for s in samples {
            for max_length in 0..s.chars().count() + 2 {
                for middle in [false, true] {
                    assert_eq!(
                        truncate_long_string(s, max_length, middle),
                        reference(s, max_length, middle),
                        "{s:?} {max_length} {middle}"
                    );
                }
            }
        }
    }
}
