//! Memory this process may use: physical memory and the cgroup memory limit
//! (spec: `get_mem_size_gb`). The `SKYPILOT_POD_MEMORY_*` overrides are
//! [`crate::overrides`].

use std::path::Path;

use crate::cgroup::{self, Controller, Version};

/// `get_mem_size_gb()` without the overrides, in bytes, by this platform's
/// rules: on Linux [`mem_size_bytes`] of the real root; elsewhere (macOS,
/// other Unix: no cgroups, no `/proc`) the physical total
/// ([`physical_bytes_without_proc`]). `None`: the caller raises `OSError`.
pub fn host_mem_size_bytes() -> Option<u64> {
    #[cfg(target_os = "linux")]
    return mem_size_bytes(Path::new("/"));
    #[cfg(not(target_os = "linux"))]
    return physical_bytes_without_proc(sysctl_memsize(), sysconf_physical_memory());
}

/// Platforms other than Linux: `sysctl hw.memsize` when it answers (macOS),
/// else `sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGE_SIZE)`, `(pages,
/// page_size)` as `sysconf` returned them (`-1` or 0: no answer).
pub fn physical_bytes_without_proc(memsize: Option<u64>, sysconf: (i64, i64)) -> Option<u64> {
    if let Some(bytes) = memsize.filter(|&bytes| bytes > 0) {
        return Some(bytes);
    }
    let (pages, page_size) = sysconf;
    let pages = u64::try_from(pages).ok().filter(|&n| n > 0)?;
    let page_size = u64::try_from(page_size).ok().filter(|&n| n > 0)?;
    pages.checked_mul(page_size)
}

/// `sysctl hw.memsize` (macOS): total RAM in bytes; `None` if the call fails.
#[cfg(target_vendor = "apple")]
fn sysctl_memsize() -> Option<u64> {
    let mut bytes: u64 = 0;
    let mut size = std::mem::size_of::<u64>();
    // SAFETY: the name is NUL-terminated; `bytes` is a writable u64 and
    // `size` holds its size, which is what hw.memsize (a uint64) fills in.
    let result = unsafe {
        libc::sysctlbyname(
            c"hw.memsize".as_ptr(),
            std::ptr::addr_of_mut!(bytes).cast(),
            &mut size,
            std::ptr::null_mut(),
            0,
        )
    };
    (result == 0 && size == std::mem::size_of::<u64>()).then_some(bytes)
}

/// Other Unix (not Linux, not Apple): no `hw.memsize`; `sysconf` decides.
#[cfg(not(any(target_os = "linux", target_vendor = "apple")))]
fn sysctl_memsize() -> Option<u64> {
    None
}

/// `(sysconf(_SC_PHYS_PAGES), sysconf(_SC_PAGE_SIZE))`.
#[cfg(not(target_os = "linux"))]
fn sysconf_physical_memory() -> (i64, i64) {
    // SAFETY: sysconf has no memory-safety preconditions.
    let (pages, page_size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    // `c_long`: i64 here, i32 on 32-bit targets.
    #[allow(clippy::useless_conversion)]
    (i64::from(pages), i64::from(page_size))
}

/// Linux: total physical memory in bytes: `sysinfo(2)` `totalram *
/// mem_unit`; if that fails, `MemTotal` from `<root>/proc/meminfo`; `None`
/// if neither answers.
#[cfg(target_os = "linux")]
pub fn total_memory_bytes(root: &Path) -> Option<u64> {
    sysinfo_total_bytes().or_else(|| meminfo_total_bytes(root))
}

/// `sysinfo(2)`'s total RAM; a failed call, an overflow or zero is `None`.
#[cfg(target_os = "linux")]
fn sysinfo_total_bytes() -> Option<u64> {
    // SAFETY: an all-zero `struct sysinfo` is valid; the kernel fills it in.
    let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid, writable `struct sysinfo`.
    if unsafe { libc::sysinfo(&mut info) } != 0 {
        return None;
    }
    // `totalram` is a `c_ulong`: u64 here, u32 on 32-bit targets.
    #[allow(clippy::useless_conversion)]
    let total = u64::try_from(info.totalram)
        .ok()?
        .checked_mul(u64::from(info.mem_unit))?;
    (total > 0).then_some(total)
}

/// `MemTotal` from `<root>/proc/meminfo` (in kB) as bytes; `None` when the
/// file can't be read or the line is missing, malformed or zero.
pub fn meminfo_total_bytes(root: &Path) -> Option<u64> {
    crate::sysread::with_small_file(&root.join("proc").join("meminfo"), |content| {
        let rest = content
            .split(|&b| b == b'\n')
            .find_map(|line| line.strip_prefix(b"MemTotal:"))?;
        let fields = cgroup::split_fields(rest);
        if !matches!(fields.get(1..), Some([]) | Some([b"kB"])) {
            return None;
        }
        let kib = u64::try_from(cgroup::parse_number(fields.first()?)?).ok()?;
        (kib > 0).then(|| kib.checked_mul(1024)).flatten()
    })
    .ok()
    .flatten()
}

/// The cgroup memory limit under `root` in bytes: the smallest limit along
/// the cgroup path; `None` when no level limits. `physical` feeds the v1 rule
/// "a limit above physical memory is no limit" (`None`: the rule is skipped).
pub fn cgroup_memory_limit(root: &Path, physical: Option<u64>) -> Option<u64> {
    let found = cgroup::limit_dirs(root, Controller::Memory);
    found
        .dirs()
        .filter_map(|dir| level_limit(found.version, dir, physical))
        .min()
}

/// Linux: `min(total physical memory, cgroup limit)`; the limit alone when
/// the total is unknown; `None` when neither is known (the binding raises
/// `OSError`).
#[cfg(target_os = "linux")]
pub fn mem_size_bytes(root: &Path) -> Option<u64> {
    let total = total_memory_bytes(root);
    smaller_known(total, cgroup_memory_limit(root, total))
}

/// The smaller of two optional sizes, or whichever one is known.
#[cfg(target_os = "linux")]
fn smaller_known(total: Option<u64>, limit: Option<u64>) -> Option<u64> {
    match (total, limit) {
        (Some(total), Some(limit)) => Some(total.min(limit)),
        (total, limit) => total.or(limit),
    }
}

/// The memory limit of one cgroup directory, `None` for "no limit here".
fn level_limit(version: Version, dir: &[u8], physical: Option<u64>) -> Option<u64> {
    let limit = match version {
        Version::V2 => cgroup::with_value_in(dir, b"memory.max", |content| {
            if content == b"max" {
                return None;
            }
            u64::try_from(cgroup::parse_number(content)?).ok()
        })?,
        Version::V1 => {
            let limit = cgroup::with_value_in(dir, b"memory.limit_in_bytes", |content| {
                u64::try_from(cgroup::parse_number(content)?).ok()
            })?;
            // v1 writes "unlimited" as a huge page-aligned number.
            if physical.is_some_and(|physical| limit > physical) {
                return None;
            }
            limit
        }
    };
    (limit > 0).then_some(limit)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    fn write(root: &Path, relative: &str, content: &str) {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    #[test]
    fn without_proc_hw_memsize_wins_then_sysconf() {
        let gib = 1u64 << 30;
        assert_eq!(
            physical_bytes_without_proc(Some(16 * gib), (1, 4096)),
            Some(16 * gib)
        );
        assert_eq!(
            physical_bytes_without_proc(None, (262_144, 4096)),
            Some(gib)
        );
        assert_eq!(
            physical_bytes_without_proc(Some(0), (262_144, 4096)),
            Some(gib)
        );
        assert_eq!(physical_bytes_without_proc(None, (-1, 4096)), None);
        assert_eq!(physical_bytes_without_proc(None, (262_144, -1)), None);
        assert_eq!(physical_bytes_without_proc(None, (0, 4096)), None);
        assert_eq!(
            physical_bytes_without_proc(None, (i64::MAX, i64::MAX)),
            None
        );
    }

    #[test]
    fn host_size_is_the_linux_rule_here() {
        assert_eq!(host_mem_size_bytes(), mem_size_bytes(Path::new("/")));
    }

    #[test]
    fn sysinfo_total_agrees_with_proc_meminfo() {
        // Both come from the kernel's totalram_pages: MemTotal is the same
        // count in kB.
        let root = Path::new("/");
        assert!(sysinfo_total_bytes().is_some());
        assert_eq!(total_memory_bytes(root), meminfo_total_bytes(root));
    }

    #[test]
    fn meminfo_total_parsing() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        assert_eq!(meminfo_total_bytes(root), None);
        for (content, expected) in [
            (
                "MemTotal:       16318412 kB\nMemFree: 1 kB\n",
                Some(16318412 * 1024),
            ),
            ("MemFree: 1 kB\nMemTotal: 2 kB", Some(2048)),
            ("MemTotal: 2\n", Some(2048)),
            ("MemTotal: 2 MB\n", None),
            ("MemTotal: 0 kB\n", None),
            ("MemTotal: -2 kB\n", None),
            ("MemTotal: x kB\n", None),
            ("MemTotal:\n", None),
            ("MemFree: 2 kB\n", None),
            ("MemTotal: 18014398509481984 kB\n", None),
            ("", None),
        ] {
            write(root, "proc/meminfo", content);
            assert_eq!(meminfo_total_bytes(root), expected, "{content:?}");
        }
    }

    #[test]
    fn v2_level_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        for (content, expected) in [
            ("1073741824\n", Some(1 << 30)),
            ("max\n", None),
            ("", None),
            ("0", None),
            ("-4096", None),
            ("1.5G", None),
            ("9223372036854775807", Some(i64::MAX as u64)),
            ("9223372036854775808", None),
        ] {
            write(dir, "memory.max", content);
            assert_eq!(
                level_limit(Version::V2, dir.as_os_str().as_bytes(), Some(1024)),
                expected,
                "{content:?}"
            );
        }
    }

    #[test]
    fn v1_level_limit_ignores_limits_above_physical() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let sentinel = "9223372036854771712\n";
        for (content, physical, expected) in [
            ("536870912\n", Some(1u64 << 30), Some(1u64 << 29)),
            ("1073741824", Some(1 << 30), Some(1 << 30)),
            ("1073741825", Some(1 << 30), None),
            (sentinel, Some(1 << 34), None),
            (sentinel, None, Some(9223372036854771712)),
            ("max", None, None),
            ("0", None, None),
            ("-1", None, None),
            ("", None, None),
        ] {
            write(dir, "memory.limit_in_bytes", content);
            assert_eq!(
                level_limit(Version::V1, dir.as_os_str().as_bytes(), physical),
                expected,
                "{content:?}"
            );
        }
    }

    #[test]
    fn smaller_known_uses_whichever_size_is_known() {
        assert_eq!(smaller_known(Some(8), Some(3)), Some(3));
        assert_eq!(smaller_known(Some(3), Some(8)), Some(3));
        assert_eq!(smaller_known(Some(8), None), Some(8));
        assert_eq!(smaller_known(None, Some(3)), Some(3));
        assert_eq!(smaller_known(None, None), None);
    }

    #[test]
    fn mem_size_is_the_smaller_of_total_and_limit() {
        let total = total_memory_bytes(Path::new("/nonexistent-root")).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        assert_eq!(mem_size_bytes(root), Some(total));
        write(root, "sys/fs/cgroup/cgroup.controllers", "memory\n");
        write(root, "sys/fs/cgroup/memory.max", "1048576\n");
        assert_eq!(mem_size_bytes(root), Some(1_048_576.min(total)));
        write(root, "sys/fs/cgroup/memory.max", "9223372036854775807\n");
        assert_eq!(mem_size_bytes(root), Some(total));
    }
}
