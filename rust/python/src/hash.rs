//! `hash_file(path, hash_alg)` -> `sky_rs._digest.FileDigest`.
//!
//! Rust always reads the file (one open, one `fstat`, reads into a buffer
//! sized by the `fstat`, close). Who hashes the bytes depends on the
//! algorithm: RustCrypto where its engine runs at OpenSSL's speed (SHA-1,
//! SHA-224/256, BLAKE2), the interpreter's own `hashlib` object (the one
//! `hashlib.new` returned to resolve the name: OpenSSL in CPython's usual
//! builds) for MD5, the SHA-512 family and SHA-3, where RustCrypto has no
//! backend that reaches OpenSSL's assembly ([`hashed_in_rust`]), and for any
//! name Rust does not know.

use std::fs::File;
use std::io;
use std::mem::MaybeUninit;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView, PySlice, PyString, PyTuple};
use sky_rs_core::hash::HashAlgorithm;

use crate::checks::require_str;
use crate::functions::Function;
use crate::guard::{guarded, Answer, Failure};
use crate::paths::{os_error, require_path, PathOp};

/// Whether RustCrypto hashes `algorithm` (else the interpreter's `hashlib`
/// object does, from Rust's reads). Measured on x86_64 (AMD EPYC, Zen 4),
/// 1 MiB in memory against OpenSSL 3.0: RustCrypto's SHA-512 (`sha2` 0.10
/// and 0.11, AVX2 intrinsics; or `sha2-asm`) runs at 0.63-0.70x, its Keccak
/// (`keccak` 0.1 and 0.2, portable on x86_64) at 0.78-0.80x, MD5 even with
/// `md-5`'s `asm` feature at 0.82x; no feature of these crates changes that
/// on x86_64, and on aarch64 the wheel enables none of their assembly. SHA-1
/// and SHA-224/256 (SHA-NI) run at OpenSSL's speed, BLAKE2 faster. The
/// interpreter's object is what `hashlib` users get, so handing it the bytes
/// is at its speed wherever the wheel runs (`docs/benchmarks.md`).
fn hashed_in_rust(algorithm: HashAlgorithm) -> bool {
    match algorithm {
        HashAlgorithm::Sha1
        | HashAlgorithm::Sha224
        | HashAlgorithm::Sha256
        | HashAlgorithm::Blake2b
        | HashAlgorithm::Blake2s => true,
        HashAlgorithm::Md5
        | HashAlgorithm::Sha384
        | HashAlgorithm::Sha512
        | HashAlgorithm::Sha512_224
        | HashAlgorithm::Sha512_256
        | HashAlgorithm::Sha3_224
        | HashAlgorithm::Sha3_256
        | HashAlgorithm::Sha3_384
        | HashAlgorithm::Sha3_512 => false,
    }
}

#[pyfunction]
#[pyo3(signature = (path, hash_alg))]
pub fn hash_file<'py>(
    py: Python<'py>,
    path: &Bound<'py, PyAny>,
    hash_alg: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    guarded(
        py,
        Function::HashFile,
        || hash(py, path, hash_alg),
        || PyTuple::new(py, [path, hash_alg]),
    )
}

fn hash<'py>(
    py: Python<'py>,
    path: &Bound<'py, PyAny>,
    hash_alg: &Bound<'py, PyAny>,
) -> Answer<Bound<'py, PyAny>> {
    let path = require_path(path, "path")?;
    require_str(hash_alg, "hash_alg")?;
    let os_path = path.encode_for(PathOp::Open)?;
    // Opened before the algorithm name is resolved, as SkyPilot does.
    let (file, size) = crate::shutdown::detach(py, || open_regular(&os_path))
        .map_err(|err| os_error(py, &err, Some(path.filename())))?;
    #[cfg(feature = "leak-canary")]
    crate::canary::leak_file_descriptor(&file);
    let hasher = match py.import("hashlib")?.getattr("new")?.call1((hash_alg,)) {
        Ok(hasher) => hasher,
        // hashlib says TypeError for a str holding NUL or a lone surrogate:
        // a bad value, as the reference words it.
        Err(err) if err.is_instance_of::<PyTypeError>(py) => {
            return Err(Failure::Raise(PyValueError::new_err(format!(
                "unsupported hash type {}",
                hash_alg.repr()?.to_cow()?
            ))))
        }
        Err(err) => return Err(Failure::Raise(err)),
    };
    let name = hasher
        .getattr("name")?
        .cast_into::<PyString>()
        .map_err(PyErr::from)?;
    let name_text = name.to_cow()?.into_owned();
    if name_text.starts_with("shake") {
        return Err(Failure::Raise(PyValueError::new_err(format!(
            "extendable-output hash {} has no fixed digest; not supported",
            name.repr()?.to_cow()?
        ))));
    }
    let digest_size = hasher.getattr("digest_size")?;
    let block_size = hasher.getattr("block_size")?;
    let rust_algorithm = HashAlgorithm::from_canonical_name(&name_text)
        .filter(|&algorithm| hashed_in_rust(algorithm));
    let digest = match rust_algorithm {
        Some(algorithm) => {
            let digest = crate::shutdown::detach(py, || algorithm.digest_file(&file, size))
                // Read errors name the file too (the reference adds the name
                // Python's `file.readinto()` leaves out).
                .map_err(|err| os_error(py, &err, Some(path.filename())))?;
            if digest_size.extract::<usize>().ok() != Some(digest.len()) {
                return Err(Failure::Internal(format!(
                    "hashlib's {name_text} digest size differs from Rust's {}",
                    digest.len()
                )));
            }
            PyBytes::new(py, &digest).into_any()
        }
        None => hash_in_interpreter(py, &hasher, &file, size, path.filename())?,
    };
    let file_digest = crate::interp::file_digest_class(py)?;
    Ok(file_digest.call1((name, digest, digest_size, block_size))?)
}

/// `open(path, 'rb')`: a directory is `EISDIR`, as Python's `open()` says;
/// like `open()`, a failing `fstat` does not fail the open. Also the size
/// that `fstat` saw, if it answered (it sizes the read buffer).
fn open_regular(path: &std::path::Path) -> io::Result<(File, Option<u64>)> {
    let file = File::open(path)?;
    let status = file.metadata().ok();
    if status.as_ref().is_some_and(|status| status.is_dir()) {
        return Err(io::Error::from_raw_os_error(libc::EISDIR));
    }
    Ok((file, status.map(|status| status.len())))
}

/// Feed the file to the `hashlib` object `hasher`, read by Rust as
/// [`HashAlgorithm::digest_file`] reads it (the same buffer size, so the same
/// system calls), and return `hasher.digest()`.
fn hash_in_interpreter<'py>(
    py: Python<'py>,
    hasher: &Bound<'py, PyAny>,
    file: &File,
    size: Option<u64>,
    filename: &Bound<'py, PyAny>,
) -> Answer<Bound<'py, PyAny>> {
    let names = crate::interp::names(py);
    let update = names.update.bind(py);
    let mut chunk = Chunk::new(py, sky_rs_core::hash::file_buffer_size(size))?;
    loop {
        let got = chunk
            .read(py, file)
            .map_err(|err| os_error(py, &err, Some(filename)))?;
        if got == 0 {
            break;
        }
        if got == chunk.capacity {
            hasher.call_method1(update, (chunk.bytes.as_any(),))?;
        } else {
            // A short read (the last one of a file, or all of a small one):
            // a view of what it returned, dropped before the next read.
            let view = PyMemoryView::from(chunk.bytes.as_any())?;
            let part = view.get_item(PySlice::new(py, 0, got as isize, 1))?;
            hasher.call_method1(update, (part,))?;
        }
        chunk.reclaim(py)?;
    }
    Ok(hasher.call_method0(names.digest.bind(py))?)
}

/// The read buffer handed to `hashlib`: a `bytearray` that only this call
/// holds, filled by `read(2)` with the GIL released and passed to `update`
/// whole (no copy, as the Python backend passes its `bytearray`'s view).
///
/// Writing into it while detached is sound only because nothing else can
/// reach it: it is this call's own object with a reference count of 1 (a
/// `bytearray` is not weak-referenceable and not tracked by the garbage
/// collector, so a count of 1 is the only path to it), and no buffer is
/// exported (every view of it is a Python object holding a reference).
/// [`Chunk::reclaim`] checks that after each `update`; if the hasher kept a
/// reference (a `hashlib.new` replaced by Python code may), the next read
/// goes into a new `bytearray`.
struct Chunk<'py> {
    bytes: Bound<'py, PyByteArray>,
    capacity: usize,
}

impl<'py> Chunk<'py> {
    fn new(py: Python<'py>, capacity: usize) -> PyResult<Self> {
        Ok(Chunk {
            bytes: new_uninit_bytearray(py, capacity)?,
            capacity,
        })
    }

    /// One `read` (retried on `EINTR`) into the whole buffer, detached.
    fn read(&mut self, py: Python<'py>, file: &File) -> io::Result<usize> {
        debug_assert_eq!(reference_count(&self.bytes), 1);
        debug_assert_eq!(self.bytes.len(), self.capacity);
        // SAFETY: the `bytearray`'s storage is `capacity` writable bytes
        // (its length, which nothing but this call can change) and only this
        // call can reach it (see the type's comment); `read` writes plain
        // bytes, and the `bytearray` outlives the slice.
        let buffer = unsafe {
            std::slice::from_raw_parts_mut(
                self.bytes.data().cast::<MaybeUninit<u8>>(),
                self.capacity,
            )
        };
        crate::shutdown::detach(py, || sky_rs_core::sysread::read_uninit(file, buffer))
    }

    /// Make sure the next read goes into a `bytearray` only this call holds.
    fn reclaim(&mut self, py: Python<'py>) -> PyResult<()> {
        if reference_count(&self.bytes) != 1 {
            self.bytes = new_uninit_bytearray(py, self.capacity)?;
        }
        Ok(())
    }
}

fn reference_count(object: &Bound<'_, PyByteArray>) -> ffi::Py_ssize_t {
    // SAFETY: `object` is a live object and this thread is attached.
    unsafe { ffi::Py_REFCNT(object.as_ptr()) }
}

/// `bytearray` of `len` bytes whose content is not initialized (the
/// `bytearray(len)` constructor zeroes it, which costs as much as hashing a
/// small file); every byte is written by a read before it is passed on.
fn new_uninit_bytearray(py: Python<'_>, len: usize) -> PyResult<Bound<'_, PyByteArray>> {
    let len = ffi::Py_ssize_t::try_from(len)
        .map_err(|_| PyValueError::new_err("read buffer size exceeds Py_ssize_t"))?;
    // SAFETY: a NULL source with a length makes a `bytearray` of that length
    // whose content is left for the caller to fill (stable ABI).
    unsafe {
        Ok(Bound::from_owned_ptr_or_err(
            py,
            ffi::PyByteArray_FromStringAndSize(std::ptr::null(), len),
        )?
        .cast_into_unchecked::<PyByteArray>())
    }
}
