//! Whether a process exists and is not a zombie (spec: `is_process_alive`).

use std::path::Path;

/// True when process `pid` exists and is not a zombie.
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
    match std::fs::read(stat).ok().as_deref().and_then(stat_state) {
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
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
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
