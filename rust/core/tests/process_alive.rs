//! `is_process_alive` against a fixture `/proc` tree: the state comes from the
//! last `)` of `/proc/<pid>/stat`, and a pid the tree can't answer for is
//! decided by `kill(pid, 0)` on the real system.

use std::path::Path;

use sky_rs_core::process::is_process_alive;

/// A pid no process can have: above Linux's `PID_MAX_LIMIT` (2**22).
const NO_SUCH_PID: i32 = i32::MAX;

fn write_stat(root: &Path, pid: i32, content: &str) {
    let dir = root.join("proc").join(pid.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("stat"), content).unwrap();
}

fn own_pid() -> i32 {
    i32::try_from(std::process::id()).unwrap()
}

#[test]
fn state_comes_from_the_stat_file() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    // Fixture pids that no real process has, so kill() could not answer.
    write_stat(
        root,
        NO_SUCH_PID,
        "2147483647 (sleep) S 1 1 1 0 -1 4194560\n",
    );
    assert!(is_process_alive(root, NO_SUCH_PID));
    write_stat(
        root,
        NO_SUCH_PID,
        "2147483647 (sleep) R 1 1 1 0 -1 4194560\n",
    );
    assert!(is_process_alive(root, NO_SUCH_PID));
    write_stat(
        root,
        NO_SUCH_PID,
        "2147483647 (defunct) Z 1 1 1 0 -1 4194308\n",
    );
    assert!(!is_process_alive(root, NO_SUCH_PID));
    // A command name holding ") Z (" must not be mistaken for the state.
    write_stat(root, NO_SUCH_PID, "2147483647 (evil) Z (x) S 1 1 1 0\n");
    assert!(is_process_alive(root, NO_SUCH_PID));
    write_stat(root, NO_SUCH_PID, "2147483647 (evil) S (x) Z 1 1 1 0\n");
    assert!(!is_process_alive(root, NO_SUCH_PID));
}

#[test]
fn zombie_in_the_tree_wins_over_a_live_real_process() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let pid = own_pid();
    write_stat(root, pid, &format!("{pid} (test) Z 1 1 1 0\n"));
    assert!(!is_process_alive(root, pid));
}

#[test]
fn missing_stat_falls_back_to_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    // Not in the tree: this test process is alive for kill(), the other pid
    // is not.
    assert!(is_process_alive(root, own_pid()));
    assert!(!is_process_alive(root, NO_SUCH_PID));
}

#[test]
fn unreadable_or_stateless_stat_falls_back_to_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let pid = own_pid();
    // A directory where the file should be: reading fails with EISDIR.
    std::fs::create_dir_all(root.join("proc").join(pid.to_string()).join("stat")).unwrap();
    assert!(is_process_alive(root, pid));
    std::fs::create_dir_all(root.join("proc").join(NO_SUCH_PID.to_string()).join("stat")).unwrap();
    assert!(!is_process_alive(root, NO_SUCH_PID));

    // No ')' at all, or nothing after it: the file holds no state.
    let other = tempfile::tempdir().unwrap();
    let root = other.path();
    write_stat(root, pid, &format!("{pid} (truncated"));
    assert!(is_process_alive(root, pid));
    write_stat(root, NO_SUCH_PID, "2147483647 (truncated) \n");
    assert!(!is_process_alive(root, NO_SUCH_PID));
}
