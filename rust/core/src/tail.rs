//! The last `n` lines of a file, read backwards from its end.
//!
//! Lines are split on `b'\n'` only and returned as raw bytes (without the
//! `'\n'`); decoding and stripping trailing `'\r'` belong to the binding,
//! because they must follow Python's codecs. The cost depends on the size of
//! the tail, never on the size of the file: reading stops as soon as the
//! newlines that delimit the last `n` lines have been seen (so the first kept
//! line is complete) or the start of the file is reached.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::mem::MaybeUninit;
use std::ops::Range;
use std::path::Path;

/// Upper bound of a single read, whatever `chunk_size` asks for: a huge
/// `chunk_size` must not allocate more than the tail needs.
const MAX_READ: u64 = 1 << 20;

/// The bytes read from the end of a file and where the kept lines lie in them.
///
/// The bytes stay where they were read, at the end of the read buffer
/// (`storage[start..]`): no copy, and the unread front is never zeroed.
#[derive(Default)]
pub struct Tail {
    storage: Vec<MaybeUninit<u8>>,
    start: usize,
    lines: Vec<Range<usize>>,
}

impl std::fmt::Debug for Tail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.lines()).finish()
    }
}

impl Tail {
    /// The bytes read from the end of the file.
    fn bytes(&self) -> &[u8] {
        // SAFETY: `storage[start..]` was written by reads (see FrontBuffer).
        unsafe { assume_init(&self.storage[self.start..]) }
    }

    /// Each kept line followed by the byte after it (its `'\n'`) when there
    /// is one: the last line of a file that does not end in `'\n'` has none.
    pub fn lines_with_end(&self) -> impl ExactSizeIterator<Item = (&[u8], bool)> + '_ {
        let bytes = self.bytes();
        self.lines.iter().map(move |range| {
            let newline = bytes.get(range.end) == Some(&b'\n');
            let end = range.end + usize::from(newline);
            (&bytes[range.start..end], newline)
        })
    }

    /// Number of kept lines.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// True when no line was kept.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The kept lines, oldest first, without their `'\n'`.
    pub fn lines(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        let bytes = self.bytes();
        self.lines.iter().map(move |range| &bytes[range.clone()])
    }

    /// The kept lines as owned byte vectors (convenient in tests).
    pub fn to_vecs(&self) -> Vec<Vec<u8>> {
        self.lines().map(<[u8]>::to_vec).collect()
    }
}

/// The last `n` lines of the file at `path` (`stat` first, `n == 0` gives no
/// lines even for a directory, a directory with `n > 0` is `EISDIR`).
///
/// `chunk_size` is the size of each backward read (clamped to `1..=1 MiB`); it
/// never changes the result.
pub fn read_last_n_lines(path: &Path, n: u64, chunk_size: u64) -> io::Result<Tail> {
    let status = std::fs::metadata(path)?;
    if n == 0 {
        return Ok(Tail::default());
    }
    if status.is_dir() {
        return Err(is_a_directory());
    }
    let file = File::open(path)?;
    // No `fstat` of the open file: the stat above answered "directory?".
    // Only if the path became a directory since then can the size probe or
    // a read fail because of it, so that is checked on the error path alone
    // (Python's `open()` refuses directories with EISDIR the same way).
    read_tail(&mut Positional(&file), n, chunk_size).map_err(|err| {
        if file.metadata().is_ok_and(|status| status.is_dir()) {
            is_a_directory()
        } else {
            err
        }
    })
}

/// What reading a tail needs from a file: its size, and reads at offsets.
pub trait TailSource {
    /// The size, from a seek to the end (as Python's `f.seek(0, 2)`, so a
    /// file that can't seek fails the same way).
    fn end(&mut self) -> io::Result<u64>;
    /// Read up to `buf.len()` bytes at `offset`; the first bytes, as many
    /// as returned, are initialized by the read.
    fn read_at(&mut self, buf: &mut [MaybeUninit<u8>], offset: u64) -> io::Result<usize>;
}

/// Any seekable reader: seek, then read.
impl<R: Read + Seek> TailSource for R {
    fn end(&mut self) -> io::Result<u64> {
        self.seek(SeekFrom::End(0))
    }

    fn read_at(&mut self, buf: &mut [MaybeUninit<u8>], offset: u64) -> io::Result<usize> {
        self.seek(SeekFrom::Start(offset))?;
        buf.fill(MaybeUninit::new(0));
        // SAFETY: every byte was just initialized.
        self.read(unsafe { assume_init_mut(buf) })
    }
}

/// A file read with `pread`: one system call per chunk, no seek before it.
struct Positional<'a>(&'a File);

impl TailSource for Positional<'_> {
    fn end(&mut self) -> io::Result<u64> {
        let mut file = self.0;
        file.seek(SeekFrom::End(0))
    }

    fn read_at(&mut self, buf: &mut [MaybeUninit<u8>], offset: u64) -> io::Result<usize> {
        use std::os::unix::io::AsRawFd;
        let offset = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: `buf` is writable memory of `buf.len()` bytes; `pread`
        // writes at most that many and initializes what it reports.
        let got = unsafe {
            libc::pread(
                self.0.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                offset,
            )
        };
        if got < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(got as usize)
    }
}

/// # Safety
/// Every byte of `bytes` is initialized.
unsafe fn assume_init(bytes: &[MaybeUninit<u8>]) -> &[u8] {
    // SAFETY: same layout; the caller promises initialization.
    unsafe { &*(bytes as *const [MaybeUninit<u8>] as *const [u8]) }
}

/// # Safety
/// Every byte of `bytes` is initialized.
unsafe fn assume_init_mut(bytes: &mut [MaybeUninit<u8>]) -> &mut [u8] {
    // SAFETY: same layout; the caller promises initialization.
    unsafe { &mut *(bytes as *mut [MaybeUninit<u8>] as *mut [u8]) }
}

fn is_a_directory() -> io::Error {
    io::Error::from_raw_os_error(libc::EISDIR)
}

/// The last `n` lines of a seekable reader; see the module documentation.
pub fn read_tail<S: TailSource>(source: &mut S, n: u64, chunk_size: u64) -> io::Result<Tail> {
    if n == 0 {
        return Ok(Tail::default());
    }
    let size = source.end()?;
    let read_size = chunk_size.clamp(1, MAX_READ);
    let mut buffer = FrontBuffer::default();
    // `n` newlines delimit the last `n` lines, plus one when the content
    // ends with '\n' (that newline ends the last line).
    let mut newlines_needed = n;
    // Where the newlines seen lie, as distances from the end of the content
    // (stable while chunks are prepended), newest first: found in one pass
    // from the end, and the lines are cut at them without a second scan.
    let mut newlines: Vec<usize> =
        Vec::with_capacity(usize::try_from(n).unwrap_or(usize::MAX).min(1024) + 1);
    let mut pos = size;
    while pos > 0 && (newlines.len() as u64) < newlines_needed {
        // `want <= MAX_READ`, so it fits in usize.
        let want = read_size.min(pos);
        pos -= want;
        let first_chunk = pos + want == size;
        let older = buffer.len();
        let chunk = buffer.prepend_with(want as usize, |chunk| read_up_to(source, chunk, pos))?;
        if first_chunk && chunk.last() == Some(&b'\n') {
            newlines_needed = newlines_needed.saturating_add(1);
        }
        // Found from the chunk's end, and only as far as still needed.
        let still_needed = newlines_needed - newlines.len() as u64;
        let from_end = older + chunk.len();
        newlines.extend(
            memchr::memrchr_iter(b'\n', chunk)
                .take(usize::try_from(still_needed).unwrap_or(usize::MAX))
                .map(|at| from_end - at),
        );
    }
    let FrontBuffer { storage, start } = buffer;
    // SAFETY: `storage[start..]` holds what the reads wrote.
    let lines = last_lines(unsafe { assume_init(&storage[start..]) }, n, &newlines);
    Ok(Tail {
        storage,
        start,
        lines,
    })
}

/// Fill as much of `buf` as the source gives at `offset` before end of file.
fn read_up_to<S: TailSource>(
    source: &mut S,
    buf: &mut [MaybeUninit<u8>],
    offset: u64,
) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match source.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// Ranges of the last `n` pieces of `bytes` split on `'\n'`, oldest first,
/// where a final empty piece (content ending in `'\n'`, or no content) is
/// not a line. `newlines_from_end` holds the last newlines of `bytes` (as
/// distances from its end, newest first): at least as many as the `n` lines
/// need, or all of them.
fn last_lines(bytes: &[u8], n: u64, newlines_from_end: &[usize]) -> Vec<Range<usize>> {
    let total = bytes.len();
    let (content_end, skip) = match bytes.last() {
        Some(b'\n') => (total - 1, 1),
        Some(_) => (total, 0),
        None => return Vec::new(),
    };
    let wanted = usize::try_from(n).unwrap_or(usize::MAX);
    let mut lines = Vec::with_capacity(wanted.min(newlines_from_end.len() + 1));
    let mut end = content_end;
    for &distance in newlines_from_end.iter().skip(skip) {
        if lines.len() == wanted {
            break;
        }
        let newline = total - distance;
        lines.push(newline + 1..end);
        end = newline;
    }
    if lines.len() < wanted {
        lines.push(0..end);
    }
    lines.reverse();
    lines
}

/// A byte buffer that grows at the front, so reading backwards in chunks
/// costs linear time in the bytes read (prepending to a `Vec` would be
/// quadratic with a small `chunk_size`). `storage[start..]` is the content,
/// written by reads; the front is room for the next reads, never zeroed.
#[derive(Default)]
struct FrontBuffer {
    storage: Vec<MaybeUninit<u8>>,
    start: usize,
}

impl FrontBuffer {
    /// Bytes of content so far.
    fn len(&self) -> usize {
        self.storage.len() - self.start
    }

    /// Let `fill` write up to `k` bytes before the current content and
    /// return how many it wrote; only those become content (a file that
    /// shrank while we read gives fewer bytes, as Python's `f.read(k)` does).
    /// Returns the new bytes.
    fn prepend_with<F>(&mut self, k: usize, fill: F) -> io::Result<&[u8]>
    where
        F: FnOnce(&mut [MaybeUninit<u8>]) -> io::Result<usize>,
    {
        if self.start < k {
            let len = self.storage.len() - self.start;
            let capacity = (len + k).max(2 * len).max(64);
            let mut grown: Vec<MaybeUninit<u8>> = Vec::with_capacity(capacity);
            // SAFETY: `MaybeUninit` needs no initialization.
            unsafe { grown.set_len(capacity) };
            let new_start = capacity - len;
            grown[new_start..].copy_from_slice(&self.storage[self.start..]);
            self.storage = grown;
            self.start = new_start;
        }
        let chunk_start = self.start - k;
        let got = fill(&mut self.storage[chunk_start..self.start])?.min(k);
        // Keep the content contiguous: the `got` bytes must end where the
        // older content begins.
        self.storage
            .copy_within(chunk_start..chunk_start + got, self.start - got);
        self.start -= got;
        // SAFETY: `fill` initialized the `got` bytes now at `start`.
        Ok(unsafe { assume_init(&self.storage[self.start..self.start + got]) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn tail(content: &[u8], n: u64, chunk_size: u64) -> Vec<Vec<u8>> {
        read_tail(&mut Cursor::new(content.to_vec()), n, chunk_size)
            .unwrap()
            .to_vecs()
    }

    fn lines(expected: &[&str]) -> Vec<Vec<u8>> {
        expected
            .iter()
            .map(|line| line.as_bytes().to_vec())
            .collect()
    }

    /// Python's reference: `content.split(b'\n')`, drop a final empty piece,
    /// keep the last `n`.
    fn reference(content: &[u8], n: usize) -> Vec<Vec<u8>> {
        let mut pieces: Vec<Vec<u8>> = content.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
        if pieces.last().is_some_and(Vec::is_empty) {
            pieces.pop();
        }
        let skip = pieces.len().saturating_sub(n);
        pieces.split_off(skip)
    }

    #[test]
    fn empty_file_has_no_lines() {
        assert!(tail(b"", 1, 8192).is_empty());
        assert!(tail(b"", 5, 1).is_empty());
    }

    #[test]
    fn n_zero_has_no_lines() {
        assert!(tail(b"a\nb\n", 0, 8192).is_empty());
    }

    #[test]
    fn only_a_newline_is_one_empty_line() {
        assert_eq!(tail(b"\n", 1, 8192), lines(&[""]));
        assert_eq!(tail(b"\n", 3, 1), lines(&[""]));
        assert_eq!(tail(b"\n\n", 3, 1), lines(&["", ""]));
    }

    #[test]
    fn trailing_newline_does_not_start_a_line() {
        assert_eq!(tail(b"a\nb\n", 2, 8192), lines(&["a", "b"]));
        assert_eq!(tail(b"a\nb", 2, 8192), lines(&["a", "b"]));
        assert_eq!(tail(b"a\nb\n", 1, 1), lines(&["b"]));
        assert_eq!(tail(b"a\nb\n\n", 1, 1), lines(&[""]));
    }

    #[test]
    fn n_larger_than_the_file_gives_every_line() {
        assert_eq!(tail(b"a\nb\nc", 100, 2), lines(&["a", "b", "c"]));
        assert_eq!(tail(b"a\nb\nc\n", u64::MAX, 3), lines(&["a", "b", "c"]));
    }

    #[test]
    fn carriage_returns_are_kept_for_the_binding_to_strip() {
        assert_eq!(tail(b"a\r\nb\r\n", 2, 8192), lines(&["a\r", "b\r"]));
        // A lone '\r' (and other Unicode line breaks) does not end a line.
        assert_eq!(tail(b"a\rb\x0bc\x0cd\n", 5, 1), lines(&["a\rb\x0bc\x0cd"]));
        assert_eq!(
            tail("x\u{2028}y\u{85}z\n".as_bytes(), 5, 2),
            lines(&["x\u{2028}y\u{85}z"])
        );
    }

    #[test]
    fn first_line_is_complete_whatever_the_chunk_size() {
        let content = b"first line\nsecond line is longer\nthird\n";
        for chunk_size in 1..=content.len() as u64 + 3 {
            assert_eq!(
                tail(content, 2, chunk_size),
                lines(&["second line is longer", "third"]),
                "chunk_size={chunk_size}"
            );
            assert_eq!(tail(content, 1, chunk_size), lines(&["third"]));
        }
    }

    #[test]
    fn matches_the_reference_at_every_chunk_boundary() {
        let contents: [&[u8]; 8] = [
            b"a",
            b"a\n",
            b"\n\n\n",
            b"ab\ncd\nef",
            b"ab\ncd\nef\n",
            b"\nleading\n\nblank\n\n",
            b"no newline at all but long enough to span chunks",
            b"x\ny\r\n\r\nz\r",
        ];
        for content in contents {
            for chunk_size in 1..=content.len() as u64 + 2 {
                for n in 0..6u64 {
                    assert_eq!(
                        tail(content, n, chunk_size),
                        reference(content, n as usize),
                        "content={content:?} n={n} chunk_size={chunk_size}"
                    );
                }
            }
        }
    }

    /// A reader that counts the bytes it hands out, to show the cost depends
    /// on the tail only.
    struct CountingReader {
        inner: Cursor<Vec<u8>>,
        bytes_read: usize,
    }

    impl Read for CountingReader {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let k = self.inner.read(buf)?;
            self.bytes_read += k;
            Ok(k)
        }
    }

    impl Seek for CountingReader {
        fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
            self.inner.seek(pos)
        }
    }

    #[test]
    fn reads_only_the_chunks_holding_the_tail() {
        let mut content = vec![b'x'; 1 << 20];
        content.extend_from_slice(b"\nlast-but-one\nlast\n");
        let mut reader = CountingReader {
            inner: Cursor::new(content),
            bytes_read: 0,
        };
        let got = read_tail(&mut reader, 2, 16).unwrap().to_vecs();
        assert_eq!(got, lines(&["last-but-one", "last"]));
        assert!(reader.bytes_read <= 48, "read {} bytes", reader.bytes_read);
    }

    #[test]
    fn huge_chunk_size_is_clamped() {
        assert_eq!(tail(b"a\nb\n", 1, u64::MAX), lines(&["b"]));
    }

    #[test]
    fn a_file_that_shrinks_while_read_keeps_what_was_there() {
        /// Claims a larger size than it can deliver, like a file truncated
        /// between the seek to the end and the read.
        struct Shrunk(Cursor<Vec<u8>>);
        impl Read for Shrunk {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.0.read(buf)
            }
        }
        impl Seek for Shrunk {
            fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
                match pos {
                    SeekFrom::End(0) => Ok(self.0.get_ref().len() as u64 + 4),
                    other => self.0.seek(other),
                }
            }
        }
        let got = read_tail(&mut Shrunk(Cursor::new(b"a\nb\nc".to_vec())), 2, 3).unwrap();
        assert_eq!(got.to_vecs(), lines(&["b", "c"]));
    }

    #[test]
    fn path_errors_keep_their_errno() {
        let dir = std::env::temp_dir().join(format!("sky-rs-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f.txt");
        std::fs::write(&file, b"one\ntwo\n").unwrap();
        let got = read_last_n_lines(&file, 1, 8192).unwrap();
        assert_eq!(got.to_vecs(), lines(&["two"]));
        assert_eq!(got.len(), 1);

        let errno =
            |path: &Path, n: u64| read_last_n_lines(path, n, 8192).unwrap_err().raw_os_error();
        assert_eq!(errno(&dir.join("missing"), 1), Some(libc::ENOENT));
        assert_eq!(errno(&dir.join("missing"), 0), Some(libc::ENOENT));
        assert_eq!(errno(&file.join("below"), 1), Some(libc::ENOTDIR));
        // n == 0 answers after the stat, even for a directory.
        assert!(read_last_n_lines(&dir, 0, 8192).unwrap().is_empty());
        assert_eq!(errno(&dir, 1), Some(libc::EISDIR));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
