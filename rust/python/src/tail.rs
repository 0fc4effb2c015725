//! `read_last_n_lines(file_path, n, chunk_size=8192, encoding='utf-8', errors='replace')`.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};
use sky_rs_core::tail;

use crate::checks::{int_text, require_int, require_str, value_error, IntValue};
use crate::functions::Function;
use crate::guard::{guarded, Answer, Arg};
use crate::paths::{os_error, require_path, PathOp};

/// Spellings of the encoding that `bytes.decode` sends straight to CPython's
/// UTF-8 decoder, before any codec lookup (every version 3.8+ normalizes
/// them to `utf_8` / `utf8` in `PyUnicode_Decode`'s fast path).
const UTF8_SPELLINGS: [&str; 6] = ["utf-8", "utf8", "utf_8", "UTF-8", "UTF8", "UTF_8"];

/// The error handlers registered in every interpreter.
const BUILTIN_ERROR_HANDLERS: [&str; 8] = [
    "strict",
    "ignore",
    "replace",
    "xmlcharrefreplace",
    "backslashreplace",
    "namereplace",
    "surrogateescape",
    "surrogatepass",
];

#[pyfunction]
#[pyo3(
    signature = (
        file_path,
        n,
        chunk_size = Arg::Default(8192),
        encoding = Arg::Default("utf-8"),
        errors = Arg::Default("replace"),
    ),
    text_signature = "(file_path, n, chunk_size=8192, encoding='utf-8', errors='replace')"
)]
pub fn read_last_n_lines<'py>(
    py: Python<'py>,
    file_path: &Bound<'py, PyAny>,
    n: &Bound<'py, PyAny>,
    chunk_size: Arg<'py, i64>,
    encoding: Arg<'py, &'static str>,
    errors: Arg<'py, &'static str>,
) -> PyResult<Bound<'py, PyAny>> {
    guarded(
        py,
        Function::ReadLastNLines,
        || {
            let chunk_size = chunk_size.object(py)?;
            let encoding = encoding.object(py)?;
            let errors = errors.object(py)?;
            read(py, file_path, n, &chunk_size, &encoding, &errors)
        },
        || {
            PyTuple::new(
                py,
                [
                    file_path.clone(),
                    n.clone(),
                    chunk_size.object(py)?,
                    encoding.object(py)?,
                    errors.object(py)?,
                ],
            )
        },
    )
}

fn read<'py>(
    py: Python<'py>,
    file_path: &Bound<'py, PyAny>,
    n: &Bound<'py, PyAny>,
    chunk_size: &Bound<'py, PyAny>,
    encoding: &Bound<'py, PyAny>,
    errors: &Bound<'py, PyAny>,
) -> Answer<Bound<'py, PyAny>> {
    let path = require_path(file_path, "file_path")?;
    let n_value = require_int(n, "n")?;
    let chunk_value = require_int(chunk_size, "chunk_size")?;
    require_str(encoding, "encoding")?;
    require_str(errors, "errors")?;
    if n_value.is_negative() {
        return Err(value_error(format!(
            "n must be non-negative, got {}",
            int_text(n, n_value)?
        )));
    }
    if chunk_value.is_negative() || chunk_value == IntValue::Small(0) {
        return Err(value_error(format!(
            "chunk_size must be positive, got {}",
            int_text(chunk_size, chunk_value)?
        )));
    }
    let os_path = path.encode_for(PathOp::Stat)?;
    // Both are positive here; beyond u64 they mean "all lines" / "huge reads".
    let n_lines = n_value.clamp(0, i64::MAX) as u64;
    let chunk = chunk_value.clamp(1, i64::MAX) as u64;
    // Every OSError names the file, read and seek errors included (the
    // reference adds the name Python's `file.read()` leaves out).
    let tail = crate::shutdown::detach(py, || tail::read_last_n_lines(&os_path, n_lines, chunk))
        .map_err(|err| os_error(py, &err, Some(path.filename())))?;
    decode_lines(py, &tail, encoding, errors)
}

/// `[line.decode(encoding, errors).rstrip('\r') + '\n' ...]`, the last line
/// without the `'\n'`, decoded in order (so a lazy `LookupError` or a
/// `UnicodeDecodeError` surfaces at the same line as in Python).
fn decode_lines<'py>(
    py: Python<'py>,
    tail: &tail::Tail,
    encoding: &Bound<'py, PyAny>,
    errors: &Bound<'py, PyAny>,
) -> Answer<Bound<'py, PyAny>> {
    let fast_utf8 = is_plain_utf8(encoding) && is_builtin_handler(errors);
    let count = tail.len();
    let list = new_list(py, count)?;
    for (index, (line, newline)) in tail.lines_with_end().enumerate() {
        let is_last = index + 1 == count;
        let body = if newline {
            &line[..line.len() - 1]
        } else {
            line
        };
        // Valid UTF-8 decodes to the same text under any of these handlers
        // (CPython's UTF-8 decoder uses the handler only on an error). A line
        // with no '\r' to strip is decoded with its '\n' in one step, from
        // where it was read; an invalid one goes to `bytes.decode`.
        let item = if fast_utf8 && body.last() != Some(&b'\r') {
            let text = if is_last { body } else { line };
            match decode_valid_utf8(py, text) {
                Some(item) => item,
                None => decode_in_python(py, body, encoding, errors, is_last)?,
            }
        } else if fast_utf8 {
            match std::str::from_utf8(body) {
                Ok(valid) => {
                    let mut text = String::with_capacity(body.len() + 1);
                    text.push_str(valid.trim_end_matches('\r'));
                    if !is_last {
                        text.push('\n');
                    }
                    PyString::new(py, &text).into_any()
                }
                Err(_) => decode_in_python(py, body, encoding, errors, is_last)?,
            }
        } else {
            decode_in_python(py, body, encoding, errors, is_last)?
        };
        set_item(&list, index, item);
    }
    Ok(list.into_any())
}

/// A list of `count` empty slots, filled by [`set_item`]: no growth and no
/// `append` per line. Dropped before it is full (an exception while
/// decoding), the empty slots are skipped by the list's deallocation.
fn new_list(py: Python<'_>, count: usize) -> PyResult<Bound<'_, PyList>> {
    let len = pyo3::ffi::Py_ssize_t::try_from(count)
        .map_err(|_| pyo3::exceptions::PyOverflowError::new_err("too many lines"))?;
    // SAFETY: the GIL is held; the result is a new list or NULL with an
    // exception set.
    let list = unsafe { Bound::from_owned_ptr_or_err(py, pyo3::ffi::PyList_New(len))? };
    Ok(list.cast_into::<PyList>()?)
}

/// Put `item` in the empty slot `index` (< the list's length) of a list from
/// [`new_list`].
fn set_item(list: &Bound<'_, PyList>, index: usize, item: Bound<'_, PyAny>) {
    // `index` < count, which fit a Py_ssize_t in `new_list`.
    let index = index as pyo3::ffi::Py_ssize_t;
    // SAFETY: the GIL is held; `index` is in range; PyList_SetItem steals the
    // reference `into_ptr` gives up, and the slot held nothing to release.
    let status = unsafe { pyo3::ffi::PyList_SetItem(list.as_ptr(), index, item.into_ptr()) };
    debug_assert_eq!(status, 0);
}

/// `text` as a `str` if it is valid UTF-8, by CPython's own decoder (one
/// pass: it checks and builds); `None` (no exception left set) otherwise.
fn decode_valid_utf8<'py>(py: Python<'py>, text: &[u8]) -> Option<Bound<'py, PyAny>> {
    let len = pyo3::ffi::Py_ssize_t::try_from(text.len()).ok()?;
    // SAFETY: `text` is readable for `len` bytes; the GIL is held; the result
    // is a new reference or NULL with an exception set.
    let decoded = unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            pyo3::ffi::PyUnicode_DecodeUTF8(text.as_ptr().cast(), len, c"strict".as_ptr()),
        )
    };
    // The error (a UnicodeDecodeError, or MemoryError) is dropped: the
    // caller decodes this line again through `bytes.decode`, which raises
    // whatever the contract says.
    decoded.ok()
}

fn decode_in_python<'py>(
    py: Python<'py>,
    line: &[u8],
    encoding: &Bound<'py, PyAny>,
    errors: &Bound<'py, PyAny>,
    is_last: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let decoded = PyBytes::new(py, line).call_method1("decode", (encoding, errors))?;
    let stripped = decoded.call_method1("rstrip", ("\r",))?;
    if is_last {
        Ok(stripped)
    } else {
        stripped.add("\n")
    }
}

/// `encoding` is one of the UTF-8 spellings `bytes.decode` never looks up.
fn is_plain_utf8(encoding: &Bound<'_, PyAny>) -> bool {
    match encoding.cast::<PyString>() {
        Ok(text) => match text.to_cow() {
            Ok(text) => UTF8_SPELLINGS.contains(&text.as_ref()),
            Err(_) => false,
        },
        Err(_) => false,
    }
}

/// `errors` names an error handler Python always has. Any other name must go
/// through `bytes.decode`, even for valid input: in development mode
/// (`-X dev`, Python 3.9+) it looks the handler up before decoding.
fn is_builtin_handler(errors: &Bound<'_, PyAny>) -> bool {
    match errors.cast::<PyString>() {
        Ok(text) => match text.to_cow() {
            Ok(text) => BUILTIN_ERROR_HANDLERS.contains(&text.as_ref()),
            Err(_) => false,
        },
        Err(_) => false,
    }
}
