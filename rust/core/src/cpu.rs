//! How many CPUs this process may really use: online CPUs, the affinity mask
//! and the cgroup CPU quota (spec: `get_cpu_count`), and the thread heuristic
//! built on the host's count (spec: `get_parallel_threads`). The
//! `SKYPILOT_POD_CPU_CORE_LIMIT` override is [`crate::overrides`].

use std::path::Path;

use crate::cgroup::{self, Controller, Version};

/// Logical CPUs online, `sysconf(_SC_NPROCESSORS_ONLN)`; `None` if it fails.
pub fn online_cpus() -> Option<u64> {
    // SAFETY: sysconf has no memory-safety preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    u64::try_from(online).ok().filter(|&n| n >= 1)
}

/// `get_cpu_count()` without the override, by this platform's rules: on
/// Linux [`cpu_count`] of the real root; elsewhere (macOS, other Unix: no
/// affinity mask, no cgroups) [`cpu_count_without_cgroups`].
pub fn host_cpu_count() -> u64 {
    #[cfg(target_os = "linux")]
    return cpu_count(Path::new("/"));
    #[cfg(not(target_os = "linux"))]
    return cpu_count_without_cgroups(online_cpus());
}

/// Platforms other than Linux: the online CPUs, at least 1 (also when
/// `sysconf` does not answer).
pub fn cpu_count_without_cgroups(online: Option<u64>) -> u64 {
    online.unwrap_or(1).max(1)
}

/// CPUs in the calling thread's affinity mask, `sched_getaffinity(0)`; any
/// error (e.g. blocked with `EPERM`) is `None`. Linux only: macOS has no
/// affinity mask to read.
#[cfg(target_os = "linux")]
pub fn affinity_cpus() -> Option<u64> {
    let word_bytes = std::mem::size_of::<libc::c_ulong>();
    // Start at glibc's fixed `cpu_set_t` size and grow while the kernel says
    // the mask is too small (hosts with more CPUs), as CPython does.
    let mut bytes = std::mem::size_of::<libc::cpu_set_t>();
    const MAX_MASK_BYTES: usize = 1 << 20;
    loop {
        let mut mask: Vec<libc::c_ulong> = vec![0; bytes.div_ceil(word_bytes)];
        let size = mask.len() * word_bytes;
        // SAFETY: `mask` is a writable buffer of exactly `size` bytes, which is
        // all the kernel writes; `cpu_set_t` is a plain bit array of words.
        let result = unsafe {
            libc::sched_getaffinity(0, size, mask.as_mut_ptr().cast::<libc::cpu_set_t>())
        };
        if result == 0 {
            let count: u64 = mask.iter().map(|word| u64::from(word.count_ones())).sum();
            return Some(count);
        }
        let einval = std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL);
        if !einval || bytes >= MAX_MASK_BYTES {
            return None;
        }
        bytes *= 2;
    }
}

/// The cgroup CPU limit under `root`: `floor(quota / period)` of the smallest
/// limit along the cgroup path (may be 0); `None` when no level limits.
pub fn cgroup_cpu_limit(root: &Path) -> Option<u64> {
    let found = cgroup::limit_dirs(root, Controller::Cpu);
    found
        .dirs()
        .filter_map(|dir| level_limit(found.version, dir))
        .min()
}

/// Linux: `min(online, affinity, cgroup limit under root)` over the sources
/// that answer, never below 1 (also when no source answers).
#[cfg(target_os = "linux")]
pub fn cpu_count(root: &Path) -> u64 {
    [online_cpus(), affinity_cpus(), cgroup_cpu_limit(root)]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(1)
        .max(1)
}

/// `get_parallel_threads`: `max(4, cpus - 1)`, times 4 on Kubernetes, with
/// `cpus` what `os.cpu_count() or 1` gives (`None` and 0 count as 1).
/// `None` only if the answer does not fit 64 bits.
pub fn parallel_threads(cpus: Option<u64>, on_kubernetes: bool) -> Option<u64> {
    let cpus = cpus.filter(|&n| n > 0).unwrap_or(1);
    let multiplier = if on_kubernetes { 4 } else { 1 };
    4u64.max(cpus - 1).checked_mul(multiplier)
}

/// `cloud_str.lower() == 'kubernetes'` for an ASCII `cloud_str`; `None` for
/// any other text, whose lowercasing is Python's full Unicode one (`'\u212a'`,
/// the Kelvin sign, lowers to `'k'`) and is left to the interpreter.
pub fn is_kubernetes_ascii(cloud: &str) -> Option<bool> {
    cloud
        .is_ascii()
        .then(|| cloud.eq_ignore_ascii_case("kubernetes"))
}

/// The whole CPUs one cgroup directory allows, `None` for "no limit here".
fn level_limit(version: Version, dir: &[u8]) -> Option<u64> {
    let (quota, period) = match version {
        Version::V2 => cgroup::with_value_in(dir, b"cpu.max", |content| {
            let mut fields = cgroup::fields(content);
            // At least two fields; a third and more are ignored.
            let (quota, period) = (fields.next()?, fields.next()?);
            if quota == b"max" {
                return None;
            }
            Some((cgroup::parse_number(quota)?, cgroup::parse_number(period)?))
        })?,
        Version::V1 => {
            let quota = cgroup::with_value_in(dir, b"cpu.cfs_quota_us", cgroup::parse_number)?;
            // No quota (-1): the period cannot change the answer, so it is not read.
            if quota <= 0 {
                return None;
            }
            let period = cgroup::with_value_in(dir, b"cpu.cfs_period_us", cgroup::parse_number)?;
            (quota, period)
        }
    };
    if quota <= 0 || period <= 0 {
        return None;
    }
    // Both positive, so this is the floor and fits a u64.
    u64::try_from(quota / period).ok()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    /// Count the CPUs in a kernel CPU list such as `0-3,8,10-11`.
    fn count_cpu_list(list: &str) -> u64 {
        list.trim()
            .split(',')
            .filter(|part| !part.is_empty())
            .map(|part| match part.split_once('-') {
                Some((first, last)) => {
                    last.parse::<u64>().unwrap() - first.parse::<u64>().unwrap() + 1
                }
                None => {
                    part.parse::<u64>().unwrap();
                    1
                }
            })
            .sum()
    }

    #[test]
    fn parallel_threads_follows_the_formula() {
        for (cpus, kubernetes, expected) in [
            (None, false, Some(4)),
            (Some(0), false, Some(4)),
            (Some(1), false, Some(4)),
            (Some(5), false, Some(4)),
            (Some(6), false, Some(5)),
            (Some(64), false, Some(63)),
            (None, true, Some(16)),
            (Some(64), true, Some(252)),
            (Some(u64::MAX), false, Some(u64::MAX - 1)),
            (Some(u64::MAX), true, None),
        ] {
            assert_eq!(
                parallel_threads(cpus, kubernetes),
                expected,
                "{cpus:?} {kubernetes}"
            );
        }
    }

    #[test]
    fn kubernetes_is_matched_without_case_in_ascii_only() {
        for cloud in ["kubernetes", "Kubernetes", "KUBERNETES", "kUbErNeTeS"] {
            assert_eq!(is_kubernetes_ascii(cloud), Some(true), "{cloud}");
        }
        for cloud in ["", "k8s", "kubernetes ", " kubernetes", "aws", "kubernete"] {
            assert_eq!(is_kubernetes_ascii(cloud), Some(false), "{cloud}");
        }
        // The Kelvin sign lowers to 'k' in Python: the interpreter decides.
        assert_eq!(is_kubernetes_ascii("\u{212a}ubernetes"), None);
        assert_eq!(is_kubernetes_ascii("kübernetes"), None);
    }

    #[test]
    fn without_cgroups_the_online_count_is_the_answer() {
        assert_eq!(cpu_count_without_cgroups(Some(8)), 8);
        assert_eq!(cpu_count_without_cgroups(Some(1)), 1);
        assert_eq!(cpu_count_without_cgroups(Some(0)), 1);
        assert_eq!(cpu_count_without_cgroups(None), 1);
    }

    #[test]
    fn host_cpu_count_is_the_linux_rule_here() {
        let (host, root) = std::thread::spawn(|| (host_cpu_count(), cpu_count(Path::new("/"))))
            .join()
            .unwrap();
        assert_eq!(host, root);
    }

    #[test]
    fn online_cpus_matches_sysfs() {
        let list = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
        assert_eq!(online_cpus(), Some(count_cpu_list(&list)));
    }

    #[test]
    fn affinity_cpus_matches_proc_status() {
        // Run on a fresh thread: the mask is per thread and another test
        // narrows its own.
        let counted = std::thread::spawn(affinity_cpus).join().unwrap();
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let list = status
            .lines()
            .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
            .unwrap();
        assert_eq!(counted, Some(count_cpu_list(list)));
    }

    #[test]
    fn affinity_cpus_follows_a_narrowed_mask() {
        let (narrowed, count) = std::thread::spawn(|| {
            let size = std::mem::size_of::<libc::cpu_set_t>();
            // SAFETY: zeroed cpu_set_t values are empty masks of `size` bytes;
            // the kernel and the CPU_* helpers only touch these locals, and
            // this thread only narrows its own mask.
            unsafe {
                let mut current: libc::cpu_set_t = std::mem::zeroed();
                assert_eq!(libc::sched_getaffinity(0, size, &mut current), 0);
                let first_cpu = (0..libc::CPU_SETSIZE as usize)
                    .find(|&cpu| libc::CPU_ISSET(cpu, &current))
                    .unwrap();
                let mut only_first: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(first_cpu, &mut only_first);
                let narrowed = libc::sched_setaffinity(0, size, &only_first) == 0;
                let affinity = affinity_cpus();
                (
                    narrowed,
                    (affinity, cpu_count(Path::new("/nonexistent-root"))),
                )
            }
        })
        .join()
        .unwrap();
        assert!(narrowed);
        assert_eq!(count, (Some(1), 1));
    }

    fn write(root: &Path, relative: &str, content: &str) {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    #[test]
    fn level_limit_reads_v2_cpu_max() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        for (content, expected) in [
            ("200000 100000\n", Some(2)),
            ("150000 100000", Some(1)),
            ("50000 100000", Some(0)),
            ("400000 100000 7\n", Some(4)),
            ("max 100000\n", None),
            ("max", None),
            ("100000", None),
            ("100000 0", None),
            ("0 100000", None),
            ("-1 100000", None),
            ("100000 -5", None),
            ("+100000 100000", None),
            ("9223372036854775807 1", Some(i64::MAX as u64)),
            ("9223372036854775808 1", None),
            ("", None),
        ] {
            write(dir, "cpu.max", content);
            assert_eq!(
                level_limit(Version::V2, dir.as_os_str().as_bytes()),
                expected,
                "{content:?}"
            );
        }
        std::fs::remove_file(dir.join("cpu.max")).unwrap();
        assert_eq!(level_limit(Version::V2, dir.as_os_str().as_bytes()), None);
    }

    #[test]
    fn level_limit_reads_v1_quota_and_period() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        for (quota, period, expected) in [
            ("300000\n", "100000\n", Some(3)),
            ("250000", "100000", Some(2)),
            ("50000", "100000", Some(0)),
            ("-1", "100000", None),
            ("100000", "0", None),
            ("100000", "", None),
            ("max", "100000", None),
        ] {
            write(dir, "cpu.cfs_quota_us", quota);
            write(dir, "cpu.cfs_period_us", period);
            assert_eq!(
                level_limit(Version::V1, dir.as_os_str().as_bytes()),
                expected,
                "{quota:?} {period:?}"
            );
        }
        // v1 levels never read cpu.max.
        write(dir, "cpu.max", "100000 100000");
        std::fs::remove_file(dir.join("cpu.cfs_period_us")).unwrap();
        assert_eq!(level_limit(Version::V1, dir.as_os_str().as_bytes()), None);
    }

    #[test]
    fn cpu_count_applies_the_cgroup_limit_but_never_goes_below_one() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let host = std::thread::spawn(|| cpu_count(Path::new("/nonexistent-root")))
            .join()
            .unwrap();
        assert!(host >= 1);
        write(root, "sys/fs/cgroup/cgroup.controllers", "cpu\n");
        write(root, "sys/fs/cgroup/cpu.max", "50000 100000\n");
        assert_eq!(cgroup_cpu_limit(root), Some(0));
        assert_eq!(cpu_count(root), 1);
        write(root, "sys/fs/cgroup/cpu.max", "100000000 100000\n");
        assert_eq!(cgroup_cpu_limit(root), Some(1000));
        let unlimited = std::thread::spawn({
            let root = root.to_path_buf();
            move || cpu_count(&root)
        })
        .join()
        .unwrap();
        assert_eq!(unlimited, host);
    }
}
