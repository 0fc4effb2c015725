//! Path arguments (`str`, `bytes`, `os.PathLike`) and the `OSError`s that
//! name them, as the reference's `os.stat` / `open` / `os.listdir` do.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use pyo3::exceptions::PyOSError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt, PyString};

use crate::checks::{type_error, type_name};
use crate::guard::{Answer, Failure};

/// A checked path argument: `os.fspath(value)`, not yet encoded.
pub struct PathArg<'py> {
    fspath: Bound<'py, PyAny>,
}

/// `_require_path(value, name)`, keeping `os.fspath(value)`.
pub fn require_path<'py>(value: &Bound<'py, PyAny>, name: &str) -> Answer<PathArg<'py>> {
    if value.is_instance_of::<PyString>() || value.is_instance_of::<PyBytes>() {
        return Ok(PathArg {
            fspath: value.clone(),
        });
    }
    if value.is_instance_of::<PyInt>() || !value.get_type().hasattr("__fspath__")? {
        return Err(type_error(format!(
            "{name} must be a str, bytes or os.PathLike object, not {}",
            type_name(value)?
        )));
    }
    // Its own TypeError when __fspath__ returns neither str nor bytes.
    let fspath = crate::interp::os(value.py())?
        .getattr("fspath")?
        .call1((value,))?;
    Ok(PathArg { fspath })
}

impl<'py> PathArg<'py> {
    /// The name an `OSError` carries: `os.fspath()` of the argument, as
    /// Python's `os.stat`, `open` and `os.listdir` report it.
    pub fn filename(&self) -> &Bound<'py, PyAny> {
        &self.fspath
    }

    /// The path as the OS sees it (`os.fsencode()`), for the reference's
    /// `op` on it. A path the OS can't take (a `str` the file-system codec
    /// can't encode, an embedded NUL) gets the error Python's own `op`
    /// raises for it, message included (they differ between versions).
    pub fn encode_for(&self, op: PathOp) -> Answer<PathBuf> {
        match self.os_path() {
            Some(path) => Ok(path),
            None => Err(self.python_refusal(op)),
        }
    }

    /// `os.fsencode()` without NUL, or `None` where `os.path.isdir` would
    /// swallow the error and answer `False`.
    pub fn os_path(&self) -> Option<PathBuf> {
        let py = self.fspath.py();
        let bytes = if let Ok(text) = self.fspath.cast::<PyString>() {
            // SAFETY: `text` is a valid str; the result is a new reference
            // to bytes or NULL with an exception set.
            let encoded = unsafe {
                Bound::from_owned_ptr_or_err(py, ffi::PyUnicode_EncodeFSDefault(text.as_ptr()))
            };
            encoded.ok()?.cast_into::<PyBytes>().ok()?
        } else {
            self.fspath.cast::<PyBytes>().ok()?.clone()
        };
        let raw = bytes.as_bytes();
        if raw.contains(&0) {
            return None;
        }
        Some(PathBuf::from(OsStr::from_bytes(raw)))
    }

    fn python_refusal(&self, op: PathOp) -> Failure {
        let py = self.fspath.py();
        let outcome = match op {
            PathOp::Stat => {
                crate::interp::os(py).and_then(|os| os.getattr("stat")?.call1((&self.fspath,)))
            }
            PathOp::ListDir => {
                crate::interp::os(py).and_then(|os| os.getattr("listdir")?.call1((&self.fspath,)))
            }
            PathOp::Open => py
                .import("builtins")
                .and_then(|builtins| builtins.getattr("open")?.call1((&self.fspath, "rb")))
                .and_then(|file| file.call_method0("close")),
        };
        match outcome {
            Err(err) => Failure::Raise(err),
            Ok(_) => Failure::Internal(format!(
                "Python accepted a path Rust could not encode: {}",
                self.fspath
                    .repr()
                    .map(|text| text.to_string())
                    .unwrap_or_default()
            )),
        }
    }
}

/// The reference's first operation on a path, whose error a path the OS
/// can't take must reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathOp {
    /// `os.stat(path)`.
    Stat,
    /// `open(path, 'rb')`.
    Open,
    /// `os.listdir(path)`.
    ListDir,
}

/// `OSError(errno, os.strerror(errno), filename)` (Python picks the
/// subclass), or `OSError(errno, strerror)` when `filename` is `None`. An
/// error without an errno is not something the reference could raise: it
/// is an internal error.
pub fn os_error(py: Python<'_>, err: &io::Error, filename: Option<&Bound<'_, PyAny>>) -> Failure {
    let Some(errno) = err.raw_os_error() else {
        return Failure::Internal(format!("I/O error without an errno: {err}"));
    };
    let strerror =
        match crate::interp::os(py).and_then(|os| os.getattr("strerror")?.call1((errno,))) {
            Ok(strerror) => strerror,
            Err(err) => return Failure::Raise(err),
        };
    Failure::Raise(match filename {
        Some(filename) => PyOSError::new_err((errno, strerror.unbind(), filename.clone().unbind())),
        None => PyOSError::new_err((errno, strerror.unbind())),
    })
}
