//! `fd_soft_limit` reads the process's soft `RLIMIT_NOFILE`. This is its own
//! test binary (its own process) because it changes that limit.

use sky_rs_core::fds::fd_soft_limit;

fn soft_limit() -> libc::rlim_t {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable `struct rlimit`.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    limit.rlim_cur
}

fn set_soft_limit(soft: libc::rlim_t) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable `struct rlimit`.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    limit.rlim_cur = soft;
    // SAFETY: `limit` is a valid `struct rlimit`; the soft limit stays at or
    // below the unchanged hard limit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
}

#[test]
fn follows_the_soft_limit() {
    let original = soft_limit();
    if original != libc::RLIM_INFINITY {
        assert_eq!(fd_soft_limit(), original);
    }
    set_soft_limit(777);
    assert_eq!(fd_soft_limit(), 777);
    set_soft_limit(300);
    assert_eq!(fd_soft_limit(), 300);
    set_soft_limit(original);
}
