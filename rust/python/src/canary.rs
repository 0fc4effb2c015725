//! Test-only leak canaries (cargo feature `leak-canary`, never in a release
//! wheel): deliberate leaks that the leak suite (`tests/leaks/`) must catch
//! and attribute to the function that leaks. Each is called by one line at the
//! top of one binding function:
//!
//! - `base36_encode` leaks [`LEAKED_BYTES_PER_CALL`] bytes of Rust heap;
//! - `hash_file` leaks one file descriptor (a duplicate of the hashed file);
//! - `truncate_long_string` leaks one reference to its `s` argument;
//! - `format_float` leaks [`SLOW_LEAK_BYTES`] bytes every
//!   [`SLOW_LEAK_EVERY`] calls: a slow leak, below what the short detectors
//!   can tell from noise, for the long run (`tests/leaks/test_long_run.py`).

use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};

use pyo3::prelude::*;

/// Bytes of Rust heap that `base36_encode` never frees, per call.
pub const LEAKED_BYTES_PER_CALL: usize = 64;

/// Allocate [`LEAKED_BYTES_PER_CALL`] bytes and never free them.
pub fn leak_bytes() {
    let block: &'static mut [u8; LEAKED_BYTES_PER_CALL] =
        Box::leak(Box::new([0xA5; LEAKED_BYTES_PER_CALL]));
    // Without this the optimizer may drop an allocation nobody reads.
    std::hint::black_box(block);
}

/// Duplicate `file`'s descriptor and never close the duplicate.
pub fn leak_file_descriptor(file: &File) {
    if let Ok(duplicate) = file.try_clone() {
        std::mem::forget(duplicate);
    }
}

/// Take a strong reference to `object` and never release it.
pub fn leak_reference(object: &Bound<'_, PyAny>) {
    std::mem::forget(object.clone().unbind());
}

/// Bytes `format_float` never frees, once every [`SLOW_LEAK_EVERY`] calls.
pub const SLOW_LEAK_BYTES: usize = 32;
pub const SLOW_LEAK_EVERY: u64 = 2_000;

static SLOW_LEAK_CALLS: AtomicU64 = AtomicU64::new(0);

/// Every [`SLOW_LEAK_EVERY`]th call, allocate [`SLOW_LEAK_BYTES`] and never free them.
pub fn leak_slowly() {
    if SLOW_LEAK_CALLS.fetch_add(1, Ordering::Relaxed) % SLOW_LEAK_EVERY == SLOW_LEAK_EVERY - 1 {
        let block: &'static mut [u8; SLOW_LEAK_BYTES] =
            Box::leak(Box::new([0x5A; SLOW_LEAK_BYTES]));
        std::hint::black_box(block);
    }
}
