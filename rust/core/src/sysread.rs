//! Reading the small files of `/proc`, `/sys/fs/cgroup` (and fixture trees)
//! with as few system calls as the kernel allows.
//!
//! `std::fs::read` asks `statx` for a size hint first, which these files
//! don't have (procfs and kernfs report 0), so it is one system call spent on
//! nothing. Nothing here keeps state between calls: every file is opened and
//! read afresh each time, as the contract requires.

use std::fs::File;
use std::io::{self, Read};
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
    let mut stack = [0u8; SMALL];
    let first = read_retrying(&mut file, &mut stack)?;
    if first < SMALL {
        return Ok(f(&stack[..first]));
    }
    let mut content = stack.to_vec();
    read_rest(&mut file, &mut content)?;
    Ok(f(&content))
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
fn read_rest(file: &mut File, content: &mut Vec<u8>) -> io::Result<()> {
    loop {
        if content.capacity() - content.len() < SMALL {
            content.reserve(content.capacity().max(4 * SMALL));
        }
        let len = content.len();
        content.resize(content.capacity(), 0);
        match read_retrying(file, &mut content[len..]) {
            Ok(0) => {
                content.truncate(len);
                return Ok(());
            }
            Ok(got) => content.truncate(len + got),
            Err(err) => {
                content.truncate(len);
                return Err(err);
            }
        }
    }
}

fn read_retrying(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match file.read(buf) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
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
