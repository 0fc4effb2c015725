//! File-descriptor budgeting for rsync workers (spec:
//! `get_max_workers_for_file_mounts`, `estimate_fd_for_directory`).

use std::path::Path;

/// The soft limit used when `RLIMIT_NOFILE` is unlimited.
const UNLIMITED_FDS: u64 = (1 << 31) - 1;
/// The soft limit assumed when `getrlimit` fails (the Linux default).
const DEFAULT_FDS: u64 = 1024;
/// Below this soft limit the caller warns, once per process.
pub const LOW_FD_LIMIT: u64 = 1024;
/// Descriptors kept for everything but rsync.
pub const FD_RESERVE: u64 = 100;
/// Descriptors one rsync holds at least, whatever it copies.
pub const MIN_FD_PER_RSYNC: u64 = 5;

/// Whether a soft limit (after [`fd_soft_limit`]'s substitutions) is low
/// enough to warn about. Unlimited counts as `2**31 - 1`, so it never warns.
pub fn is_low_fd_limit(fd_limit: u64) -> bool {
    fd_limit < LOW_FD_LIMIT
}

/// `get_max_workers_for_file_mounts`'s formula:
/// `min(max((fd_limit - 100) // fd_per_rsync, 1), parallel_threads)` with
/// `fd_per_rsync` the largest of 5 and the estimates of the source
/// directories ([`estimate_fd_for_directory`] of each).
pub fn max_workers(
    fd_limit: u64,
    directory_estimates: impl IntoIterator<Item = u64>,
    parallel_threads: u64,
) -> u64 {
    let fd_per_rsync = directory_estimates
        .into_iter()
        .fold(MIN_FD_PER_RSYNC, u64::max);
    // Python floor-divides a negative difference below the reserve; any such
    // quotient is below 1, as 0 is, so saturating here gives the same answer.
    let workers = (fd_limit.saturating_sub(FD_RESERVE) / fd_per_rsync).max(1);
    workers.min(parallel_threads)
}

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
    fn max_workers_follows_the_formula() {
        // (limit, estimates, threads) -> min(max((limit - 100) // per, 1), threads)
        for (limit, estimates, threads, expected) in [
            (1024, vec![], 8, 8),           // (1024-100)//5 = 184, capped by threads
            (1024, vec![], 1000, 184),      // min 5 per rsync
            (1024, vec![0, 3], 1000, 184),  // small directories don't go below 5
            (1024, vec![50], 1000, 18),     // 924 // 50
            (1024, vec![50, 924], 1000, 1), // the largest estimate wins
            (1024, vec![925], 1000, 1),     // a quotient of 0 becomes 1
            (100, vec![], 16, 1),           // exactly the reserve
            (99, vec![], 16, 1),            // below it: Python's negative // gives 1 too
            (0, vec![], 16, 1),
            (2_147_483_647, vec![], 16, 16), // unlimited
            (2_147_483_647, vec![5], 1 << 40, 429_496_709),
            (u64::MAX, vec![u64::MAX], 4, 1),
        ] {
            assert_eq!(
                max_workers(limit, estimates.clone(), threads),
                expected,
                "{limit} {estimates:?} {threads}"
            );
        }
    }

    #[test]
    fn low_limits_warn_and_unlimited_does_not() {
        assert!(is_low_fd_limit(0));
        assert!(is_low_fd_limit(1023));
        assert!(!is_low_fd_limit(1024));
        assert!(!is_low_fd_limit(soft_limit_value(libc::RLIM_INFINITY)));
    }

    #[test]
    fn unlimited_soft_limit_counts_as_i32_max() {
        assert_eq!(soft_limit_value(libc::RLIM_INFINITY), 2_147_483_647);
        assert_eq!(soft_limit_value(1024), 1024);
        assert_eq!(soft_limit_value(1 << 40), 1 << 40);
    }
}
