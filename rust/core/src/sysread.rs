//! Reading the small files of `/proc`, `/sys/fs/cgroup` (and fixture trees)
//! with as few system calls as the kernel allows.
//!
//! `std::fs::read` asks `statx` for a size hint first, which these files
//! don't have (procfs and kernfs report 0), so it is one system call spent on
//! nothing. Nothing here keeps state between calls: every file is opened and
//! read afresh each time, as the contract requires.

use std::fs::File;
use std::io;
use std::path::Path;

/// Room for any value file (a cgroup limit, `/proc/<pid>/stat`,
/// `/proc/self/cgroup` on real hosts) in one read.
const SMALL: usize = 4096;

/// Call `f` with the whole content of a small file, read with one `read`
/// into a stack buffer in the common case.
///
/// A read that does not fill the buffer has returned the whole file: for a
/// regular file a short read means end of file, and the procfs/kernfs files
/// read this way (`single_open` ones and cgroup attributes) produce their
/// whole content in the first read. A full buffer goes on reading to end of
/// file, so longer content is still read whole.
pub fn with_small_file<T>(path: &Path, f: impl FnOnce(&[u8]) -> T) -> io::Result<T> {
    let mut file = File::open(path)?;
    // Not zeroed: the read initializes what it returns, and zeroing 4 KiB
    // cost more than the rest of reading a cgroup value.
    let mut stack = [std::mem::MaybeUninit::<u8>::uninit(); SMALL];
    let first = read_uninit(&file, &mut stack)?;
    // SAFETY: `read` initialized the first `first` bytes.
    let read = unsafe { std::slice::from_raw_parts(stack.as_ptr().cast::<u8>(), first) };
    if first < SMALL {
        return Ok(f(read));
    }
    let mut content = read.to_vec();
    read_rest(&mut file, &mut content)?;
    Ok(f(&content))
}

/// One `read` into uninitialized memory, retried on `EINTR`; returns how
/// many bytes it initialized.
fn read_uninit(file: &File, buf: &mut [std::mem::MaybeUninit<u8>]) -> io::Result<usize> {
    use std::os::unix::io::AsRawFd;
    loop {
        // SAFETY: `buf` is writable memory of `buf.len()` bytes.
        let got = unsafe { libc::read(file.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if got >= 0 {
            return Ok(got as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// The whole content of a file read to end of file (for files whose reads
/// come in pieces, such as `/proc/self/mountinfo`), with no size probe.
pub fn read_whole(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    let mut content = Vec::new();
    read_rest(&mut file, &mut content)?;
    Ok(content)
}

/// Append everything up to end of file to `content`, growing it as needed.
///
/// Reads go straight into the vector's spare capacity: nothing is zeroed
/// first (zeroing 16 KiB per call cost more than parsing what was read).
fn read_rest(file: &mut File, content: &mut Vec<u8>) -> io::Result<()> {
    loop {
        if content.capacity() - content.len() < SMALL {
            content.reserve(content.capacity().max(4 * SMALL));
        }
        match read_uninit(file, content.spare_capacity_mut())? {
            0 => return Ok(()),
            // SAFETY: the read initialized the first `got` spare bytes.
            got => unsafe { content.set_len(content.len() + got) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_long_files_are_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        for size in [0, 1, 41, SMALL - 1, SMALL, SMALL + 1, 5 * SMALL + 7, 70_000] {
            let content: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let path = dir.path().join(format!("f{size}"));
            std::fs::write(&path, &content).unwrap();
            assert_eq!(with_small_file(&path, <[u8]>::to_vec).unwrap(), content);
            assert_eq!(read_whole(&path).unwrap(), content, "{size}");
        }
    }

    #[test]
    fn errors_keep_their_errno() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let errno = |err: io::Error| err.raw_os_error();
        assert_eq!(
            errno(with_small_file(&missing, |_| ()).unwrap_err()),
            Some(libc::ENOENT)
        );
        assert_eq!(errno(read_whole(&missing).unwrap_err()), Some(libc::ENOENT));
        // A directory opens, and its read fails.
        assert_eq!(
            errno(with_small_file(dir.path(), |_| ()).unwrap_err()),
            Some(libc::EISDIR)
        );
        assert_eq!(
            errno(read_whole(dir.path()).unwrap_err()),
            Some(libc::EISDIR)
        );
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn procfs_files_match_std() {
        // Files whose reads come in pieces, and files made in one piece.
        for path in ["/proc/self/mountinfo", "/proc/meminfo", "/proc/self/cgroup"] {
            let path = Path::new(path);
            let whole = read_whole(path).unwrap();
            assert!(!whole.is_empty());
            // Lines are whole (mountinfo changes only if mounts change).
            assert_eq!(whole.last(), Some(&b'\n'));
            assert_eq!(
                whole.iter().filter(|&&b| b == b'\n').count(),
                std::fs::read(path)
                    .unwrap()
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count(),
                "{path:?}"
            );
        }
        let status = with_small_file(Path::new("/proc/self/stat"), <[u8]>::to_vec).unwrap();
        assert!(status.ends_with(b"\n") && status.contains(&b')'));
    }
}
