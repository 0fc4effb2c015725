//! Test-only leak canaries (cargo feature `leak-canary`, never in a release
//! wheel): deliberate leaks that the leak suite (`tests/leaks/`) must catch
//! and attribute to the function that leaks. Each is called by one line at the
//! top of one binding function:
//!
//! - `base36_encode` leaks [`LEAKED_BYTES_PER_CALL`] bytes of Rust heap;
//! - `hash_file` leaks one file descriptor (a duplicate of the hashed file);
//! - `truncate_long_string` leaks one reference to its `s` argument.

use std::fs::File;

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
