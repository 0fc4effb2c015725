//! `hash_file(path, hash_alg)` -> `sky_rs._digest.FileDigest`.

use std::fs::File;
use std::io::{self, Read};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyTuple};
use sky_rs_core::hash::HashAlgorithm;

use crate::checks::require_str;
use crate::functions::Function;
use crate::guard::{guarded, Answer, Failure};
use crate::paths::{os_error, require_path, PathOp};

/// Size of each read when `hashlib` itself hashes (names Rust doesn't know).
const PYTHON_READ_SIZE: usize = 1 << 18;

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
    let (mut file, size) = crate::shutdown::detach(py, || open_regular(&os_path))
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
    let mut name = hasher
        .getattr("name")?
        .cast_into::<PyString>()
        .map_err(PyErr::from)?;
    let mut name_text = name.to_cow()?.into_owned();
    if HashAlgorithm::from_canonical_name(&name_text).is_none() {
        // Not a name Rust hashes: hashlib may have kept an alias (PyPy's
        // 'sha-256', 'shake128'); the reference's `canonical_name` says
        // which algorithm it is, as `new_hasher` does for the fallback.
        name = crate::interp::digest_module(py)?
            .getattr("canonical_name")?
            .call1((&hasher,))?
            .cast_into::<PyString>()
            .map_err(PyErr::from)?;
        name_text = name.to_cow()?.into_owned();
    }
    if name_text.starts_with("shake") {
        return Err(Failure::Raise(PyValueError::new_err(format!(
            "extendable-output hash {} has no fixed digest; not supported",
            name.repr()?.to_cow()?
        ))));
    }
    let digest_size = hasher.getattr("digest_size")?;
    let block_size = hasher.getattr("block_size")?;
    let digest = match HashAlgorithm::from_canonical_name(&name_text) {
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
        None => hash_in_python(py, &hasher, &mut file, path.filename())?,
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

/// Feed the file to the `hashlib` object (names Rust does not hash).
fn hash_in_python<'py>(
    py: Python<'py>,
    hasher: &Bound<'py, PyAny>,
    file: &mut File,
    filename: &Bound<'py, PyAny>,
) -> Answer<Bound<'py, PyAny>> {
    let mut buffer = vec![0u8; PYTHON_READ_SIZE];
    loop {
        let size = crate::shutdown::detach(py, || read_retrying(file, &mut buffer))
            .map_err(|err| os_error(py, &err, Some(filename)))?;
        if size == 0 {
            break;
        }
        hasher.call_method1("update", (PyBytes::new(py, &buffer[..size]),))?;
    }
    Ok(hasher.call_method0("digest")?)
}

fn read_retrying(file: &mut File, buffer: &mut [u8]) -> io::Result<usize> {
    loop {
        match file.read(buffer) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}
