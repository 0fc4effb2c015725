//! Pure-Rust core of `sky_rs`: SkyPilot's utilities with no Python in them.
//!
//! The PyO3 crate (`sky-rs-py`) only converts arguments, builds Python
//! exceptions and releases the GIL around the calls into this crate. The
//! binding contract is `docs/functions.md`; the points it leaves open
//! are fixed in `docs/internals.md`.

// Strings.
pub mod base36;
pub mod bytescan;
pub mod float_format;
pub mod truncate;

// Files and sockets.
pub mod hash;
pub mod port;
pub mod tail;

// System (cgroup-aware).
pub mod cgroup;
pub mod cpu;
pub mod fds;
pub mod memory;
pub mod overrides;
pub mod process;

// Reading procfs, sysfs and fixture files.
pub mod sysread;
