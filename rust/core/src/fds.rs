//! File-descriptor budgeting for rsync workers (spec:
//! `get_max_workers_for_file_mounts`, `estimate_fd_for_directory`).

use std::path::Path;

/// The soft limit used when `RLIMIT_NOFILE` is unlimited.
const UNLIMITED_FDS: u64 = (1 << 31) - 1;
/// The soft limit assumed when `getrlimit` fails (the Linux default).
const DEFAULT_FDS: u64 = 1024;

/// `5 * (number of entries directly inside path)`, counted as
/// `len(os.listdir(path))` does: hidden entries and dangling symlinks
/// included, `.` and `..` excluded, no recursion. Errors keep their errno.
pub fn estimate_fd_for_directory(path: &Path) -> std::io::Result<u64> {
    let mut entries: u64 = 0;
    for entry in std::fs::read_dir(path)? {
        entry?;
        entries = entries.saturating_add(1);
    }
    Ok(entries.saturating_mul(5))
}

/// The soft `RLIMIT_NOFILE`; unlimited counts as `2**31 - 1`, a failing
/// `getrlimit` as 1024.
pub fn fd_soft_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable `struct rlimit`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return DEFAULT_FDS;
    }
    soft_limit_value(limit.rlim_cur)
}

fn soft_limit_value(rlim_cur: libc::rlim_t) -> u64 {
    if rlim_cur == libc::RLIM_INFINITY {
        UNLIMITED_FDS
    } else {
        rlim_cur
    }
}

/// `os.path.isdir`: `stat` following symlinks; any error is `false`.
pub fn is_dir(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|meta| meta.is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn counts_every_entry_like_os_listdir() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        assert_eq!(estimate_fd_for_directory(dir).unwrap(), 0);
        std::fs::write(dir.join("file"), b"x").unwrap();
        std::fs::write(dir.join(".hidden"), b"").unwrap();
        std::fs::create_dir(dir.join("sub")).unwrap();
        // Entries of subdirectories are not counted.
        std::fs::write(dir.join("sub").join("inner"), b"").unwrap();
        symlink(dir.join("missing-target"), dir.join("dangling")).unwrap();
        symlink(dir.join("sub"), dir.join("to-sub")).unwrap();
        assert_eq!(estimate_fd_for_directory(dir).unwrap(), 5 * 5);
        // A symlink to a directory is listed through.
        assert_eq!(estimate_fd_for_directory(&dir.join("to-sub")).unwrap(), 5);
    }

    #[test]
    fn errors_keep_their_errno() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(dir.join("file"), b"x").unwrap();
        symlink(dir.join("missing-target"), dir.join("dangling")).unwrap();
        let errno = |path: &Path| estimate_fd_for_directory(path).unwrap_err().raw_os_error();
        assert_eq!(errno(&dir.join("missing")), Some(libc::ENOENT));
        assert_eq!(errno(&dir.join("file")), Some(libc::ENOTDIR));
        assert_eq!(errno(&dir.join("dangling")), Some(libc::ENOENT));
        assert_eq!(errno(&dir.join("file").join("below")), Some(libc::ENOTDIR));
    }

    #[test]
    fn is_dir_follows_symlinks_and_swallows_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(dir.join("file"), b"x").unwrap();
        symlink(dir, dir.join("to-dir")).unwrap();
        symlink(dir.join("file"), dir.join("to-file")).unwrap();
        symlink(dir.join("missing"), dir.join("dangling")).unwrap();
        assert!(is_dir(dir));
        assert!(is_dir(&dir.join("to-dir")));
        assert!(!is_dir(&dir.join("file")));
        assert!(!is_dir(&dir.join("to-file")));
        assert!(!is_dir(&dir.join("dangling")));
        assert!(!is_dir(&dir.join("missing")));
        assert!(!is_dir(&dir.join("file").join("below")));
    }

    #[test]
    fn unlimited_soft_limit_counts_as_i32_max() {
        assert_eq!(soft_limit_value(libc::RLIM_INFINITY), 2_147_483_647);
        assert_eq!(soft_limit_value(1024), 1024);
        assert_eq!(soft_limit_value(1 << 40), 1 << 40);
    }
}
