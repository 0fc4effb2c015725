//! Whether a process exists and is not a zombie (spec: `is_process_alive`).

use std::path::Path;

/// `is_process_alive(pid)` by this platform's rules: on Linux
/// [`is_process_alive`] under the real root; elsewhere (no `/proc`) only
/// `kill(pid, 0)`, so a zombie counts as alive there.
pub fn host_is_process_alive(pid: i32) -> bool {
    #[cfg(target_os = "linux")]
    return is_process_alive(Path::new("/"), pid);
    #[cfg(not(target_os = "linux"))]
    return pid > 0 && signal_zero_says_alive(pid);
}

/// True when process `pid` exists and is not a zombie (the Linux rule, under
/// `root`; fixture trees give their own `proc/`).
///
/// Reads `<root>/proc/<pid>/stat`: the state is the first non-whitespace
/// byte after the **last** `)` (the command name in parentheses may itself
/// contain `)`); `Z` is dead, anything else alive. When the file can't be
/// read or holds no state, `kill(pid, 0)` decides on the real system:
/// success or `EPERM` alive, `ESRCH` dead, any other error alive (not proven
/// dead). A `pid <= 0` is never signalled (it would address a process group)
/// and is reported dead; the binding rejects it before calling.
pub fn is_process_alive(root: &Path, pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    let stat = root.join("proc").join(pid.to_string()).join("stat");
    match crate::sysread::with_small_file(&stat, stat_state)
        .ok()
        .flatten()
    {
        Some(state) => state != b'Z',
        None => signal_zero_says_alive(pid),
    }
}

/// The state byte of a `/proc/<pid>/stat` line.
fn stat_state(stat: &[u8]) -> Option<u8> {
    let after_name = &stat[stat.iter().rposition(|&b| b == b')')? + 1..];
    after_name
        .iter()
        .copied()
        .find(|b| !b" \t\n\r\x0b\x0c".contains(b))
}

/// `kill(pid, 0)`: only `ESRCH` proves the process is gone.
fn signal_zero_says_alive(pid: i32) -> bool {
    // SAFETY: signal 0 performs only the existence and permission checks;
    // `pid > 0` addresses a single process.
    let result = if unsafe { libc::kill(pid, 0) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error())
    };
    alive_after_signal_zero(result)
}

/// What `kill(pid, 0)` proves: success or `EPERM` (it exists), or any other
/// error (not proven dead) → alive; `ESRCH` → dead.
pub fn alive_after_signal_zero(result: Result<(), Option<i32>>) -> bool {
    result.err().flatten() != Some(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_state_is_after_the_last_parenthesis() {
        assert_eq!(stat_state(b"42 (sleep) S 1 42 42 0"), Some(b'S'));
        assert_eq!(stat_state(b"42 (a) Z (b) R 1"), Some(b'R'));
        assert_eq!(stat_state(b"42 (a) R (b) Z 1"), Some(b'Z'));
        assert_eq!(stat_state(b"42 (x)\t\nZ"), Some(b'Z'));
        assert_eq!(stat_state(b"42 (sleep"), None);
        assert_eq!(stat_state(b"42 (sleep)   "), None);
        assert_eq!(stat_state(b""), None);
    }

    #[test]
    fn only_esrch_proves_death() {
        assert!(alive_after_signal_zero(Ok(())));
        assert!(alive_after_signal_zero(Err(Some(libc::EPERM))));
        assert!(alive_after_signal_zero(Err(Some(libc::EINVAL))));
        assert!(alive_after_signal_zero(Err(None)));
        assert!(!alive_after_signal_zero(Err(Some(libc::ESRCH))));
    }

    #[test]
    fn host_rule_follows_the_real_process_table() {
        let pid = i32::try_from(std::process::id()).unwrap();
        assert!(host_is_process_alive(pid));
        assert!(!host_is_process_alive(0));
        assert!(!host_is_process_alive(-1));
    }

    #[test]
    fn own_process_is_alive_on_the_real_proc() {
        let pid = i32::try_from(std::process::id()).unwrap();
        assert!(is_process_alive(Path::new("/"), pid));
    }

    #[test]
    fn reaped_child_is_dead_on_the_real_proc() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        child.wait().unwrap();
        // Unless the pid was reused within these microseconds.
        assert!(!is_process_alive(Path::new("/"), pid));
    }

    #[test]
    fn nonpositive_pids_are_never_signalled() {
        assert!(!is_process_alive(Path::new("/"), 0));
        assert!(!is_process_alive(Path::new("/"), -1));
        assert!(!is_process_alive(Path::new("/"), i32::MIN));
    }
}
