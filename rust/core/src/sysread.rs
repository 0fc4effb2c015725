//! Reading the small files of `/proc`, `/sys/fs/cgroup` (and fixture trees)
//! with as few system calls as the kernel allows.
//!
//! `std::fs::read` asks `statx` for a size hint first, which these files
//! don't have (procfs and kernfs report 0), so it is one system call spent on
//! nothing. Nothing here keeps state between calls: every file is opened and
//! read afresh each time, as the contract requires.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::FromRawFd;
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
    with_small_open_file(File::open(path)?, f)
}

fn with_small_open_file<T>(mut file: File, f: impl FnOnce(&[u8]) -> T) -> io::Result<T> {
    // Not zeroed: the read initializes what it returns, and zeroing 4 KiB
    // cost more than the rest of reading a cgroup value.
    let mut stack = [MaybeUninit::<u8>::uninit(); SMALL];
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

/// [`with_small_file`] of `dir.join(name)`, the path built on the stack
/// (no `PathBuf`, no allocation for paths shorter than [`PATH_ON_STACK`]).
pub fn with_small_file_in<T>(dir: &[u8], name: &[u8], f: impl FnOnce(&[u8]) -> T) -> io::Result<T> {
    with_joined(dir, name, |path| {
        let file = open_cstr(path)?;
        with_small_open_file(file, f)
    })
}

/// [`read_whole`] of `dir.join(name)`, the path built as in [`with_small_file_in`].
pub fn read_whole_in(dir: &[u8], name: &[u8]) -> io::Result<Vec<u8>> {
    with_joined(dir, name, |path| {
        let mut file = open_cstr(path)?;
        let mut content = Vec::new();
        read_rest(&mut file, &mut content)?;
        Ok(content)
    })
}

/// Longest joined path built on the stack; longer ones go to the heap.
pub const PATH_ON_STACK: usize = 512;

/// Call `f` with `dir.join(name)` as a NUL-terminated path, joined as
/// `Path::join` joins a relative name: a `/` in between unless `dir` is
/// empty or already ends with one. A NUL inside either part is the error
/// `File::open` gives for it (`InvalidInput`).
pub fn with_joined<T>(
    dir: &[u8],
    name: &[u8],
    f: impl FnOnce(&CStr) -> io::Result<T>,
) -> io::Result<T> {
    let separator: &[u8] = if dir.last().is_some_and(|&b| b != b'/') {
        b"/"
    } else {
        b""
    };
    let parts = [dir, separator, name, b"\0"];
    let len: usize = parts.iter().map(|part| part.len()).sum();
    if memchr::memchr(0, dir).is_some() || memchr::memchr(0, name).is_some() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "file name contained an unexpected NUL byte",
        ));
    }
    let mut stack = [MaybeUninit::<u8>::uninit(); PATH_ON_STACK];
    let mut heap: Vec<MaybeUninit<u8>> = Vec::new();
    let buffer: &mut [MaybeUninit<u8>] = if len <= PATH_ON_STACK {
        &mut stack[..len]
    } else {
        heap.resize(len, MaybeUninit::uninit());
        &mut heap
    };
    let mut at = 0;
    for part in parts {
        // SAFETY: `&[u8]` and `&[MaybeUninit<u8>]` have the same layout.
        let part: &[MaybeUninit<u8>] = unsafe { &*(part as *const [u8] as *const _) };
        buffer[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    // SAFETY: every byte was written above; the only NUL is the last byte.
    let path = unsafe {
        CStr::from_bytes_with_nul_unchecked(std::slice::from_raw_parts(
            buffer.as_ptr().cast::<u8>(),
            len,
        ))
    };
    f(path)
}

/// `open(path, O_RDONLY | O_CLOEXEC)`, as `File::open` does, retried on `EINTR`.
fn open_cstr(path: &CStr) -> io::Result<File> {
    loop {
        // SAFETY: `path` is NUL-terminated.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd >= 0 {
            // SAFETY: `fd` was just opened and is owned by nothing else.
            return Ok(unsafe { File::from_raw_fd(fd) });
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Whether `path` names a directory (`stat` follows symlinks, as `Path::is_dir`).
pub fn is_dir(path: &[u8]) -> bool {
    Path::new(std::ffi::OsStr::from_bytes(path)).is_dir()
}

/// One `read` into uninitialized memory, retried on `EINTR`; returns how
/// many bytes it initialized.
pub(crate) fn read_uninit(file: &File, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
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

    #[test]
    fn joined_paths_are_joined_as_path_join_does() {
        let joined = |dir: &[u8], name: &[u8]| {
            with_joined(dir, name, |path| Ok(path.to_bytes().to_vec())).unwrap()
        };
        assert_eq!(joined(b"/", b"proc/self/cgroup"), b"/proc/self/cgroup");
        assert_eq!(joined(b"/sys/fs", b"cpu.max"), b"/sys/fs/cpu.max");
        assert_eq!(joined(b"/sys/fs/", b"cpu.max"), b"/sys/fs/cpu.max");
        assert_eq!(joined(b"", b"cpu.max"), b"cpu.max");
        let long = vec![b'd'; PATH_ON_STACK * 2];
        let mut expected = long.clone();
        expected.extend_from_slice(b"/f");
        assert_eq!(joined(&long, b"f"), expected);
        for (dir, name) in [(&b"/a\0b"[..], &b"f"[..]), (b"/a", b"f\0")] {
            let err = with_joined(dir, name, |_| Ok(())).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn files_in_a_directory_read_as_by_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("value"), b"42\n").unwrap();
        let base = dir.path().as_os_str().as_bytes();
        assert_eq!(
            with_small_file_in(base, b"value", <[u8]>::to_vec).unwrap(),
            b"42\n"
        );
        assert_eq!(read_whole_in(base, b"value").unwrap(), b"42\n");
        let missing = with_small_file_in(base, b"missing", |_| ()).unwrap_err();
        assert_eq!(missing.raw_os_error(), Some(libc::ENOENT));
        assert!(is_dir(base));
        assert!(!is_dir(dir.path().join("value").as_os_str().as_bytes()));
    }
}
