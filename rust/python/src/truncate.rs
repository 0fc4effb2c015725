//! `truncate_long_string(s, max_length=35, truncate_middle=False)`.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use sky_rs_core::truncate::{self, Truncation};

use crate::checks::{int_text, require_int, require_str, value_error, IntValue};
use crate::functions::Function;
use crate::guard::{guarded, Answer, Arg, Failure};

#[pyfunction]
#[pyo3(
    signature = (s, max_length = Arg::Default(35), truncate_middle = Arg::Default(false)),
    text_signature = "(s, max_length=35, truncate_middle=False)"
)]
pub fn truncate_long_string<'py>(
    py: Python<'py>,
    s: &Bound<'py, PyAny>,
    max_length: Arg<'py, i64>,
    truncate_middle: Arg<'py, bool>,
) -> PyResult<Bound<'py, PyAny>> {
    #[cfg(feature = "leak-canary")]
    crate::canary::leak_reference(s);
    guarded(
        py,
        Function::TruncateLongString,
        || truncate(py, s, &max_length, &truncate_middle),
        || {
            PyTuple::new(
                py,
                [
                    s.clone(),
                    max_length.object(py)?,
                    truncate_middle.object(py)?,
                ],
            )
        },
    )
}

fn truncate<'py>(
    py: Python<'py>,
    s: &Bound<'py, PyAny>,
    max_length: &Arg<'py, i64>,
    truncate_middle: &Arg<'py, bool>,
) -> Answer<Bound<'py, PyAny>> {
    require_str(s, "s")?;
    let max_length = match max_length {
        Arg::Default(value) => *value,
        Arg::Given(object) => match require_int(object, "max_length")? {
            value if value.is_negative() => {
                return Err(value_error(format!(
                    "max_length must be non-negative, got {}",
                    int_text(object, value)?
                )))
            }
            IntValue::Small(value) => value,
            // Longer than any string.
            IntValue::HugePositive | IntValue::HugeNegative => i64::MAX,
        },
    };
    let len = string_length(s)?;
    if len <= max_length as u64 {
        return Ok(s.clone());
    }
    // Evaluated only for a string that is too long, as in SkyPilot.
    let middle = match truncate_middle {
        Arg::Default(value) => *value,
        Arg::Given(object) => object.is_truthy()?,
    };
    // len > max_length, so max_length < len <= isize::MAX.
    let (len, max_length) = (len as usize, max_length as usize);
    let mut spaces = SpacePositions {
        text: s,
        next: 0,
        len,
        failed: None,
    };
    let plan = truncate::plan(len, max_length, middle, &mut spaces);
    if let Some(err) = spaces.failed {
        return Err(Failure::Raise(err));
    }
    let ellipsis = crate::interp::names(py).ellipsis.bind(py).as_any();
    let result = match plan {
        Truncation::Unchanged => s.clone(),
        Truncation::Prefix(0) => ellipsis.clone(),
        Truncation::Prefix(keep) => concat(&substring(s, 0, keep)?, ellipsis)?,
        Truncation::Middle { head, tail } => concat(
            &concat(&substring(s, 0, head)?, ellipsis)?,
            &substring(s, len - tail, len)?,
        )?,
    };
    Ok(result)
}

/// `left + right` for two str objects.
fn concat<'py>(left: &Bound<'py, PyAny>, right: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: both are str objects; the result is a new reference or NULL
    // with an exception set.
    unsafe {
        Bound::from_owned_ptr_or_err(
            left.py(),
            ffi::PyUnicode_Concat(left.as_ptr(), right.as_ptr()),
        )
    }
}

fn string_length(s: &Bound<'_, PyAny>) -> PyResult<u64> {
    // SAFETY: `s` is a str (checked by the caller).
    let len = unsafe { ffi::PyUnicode_GetLength(s.as_ptr()) };
    if len < 0 {
        return Err(PyErr::fetch(s.py()));
    }
    Ok(len as u64)
}

/// `s[start:end]` (code points).
fn substring<'py>(s: &Bound<'py, PyAny>, start: usize, end: usize) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: `s` is a str and `start <= end <= len(s)`; the result is a new
    // reference or NULL with an exception set.
    unsafe {
        Bound::from_owned_ptr_or_err(
            s.py(),
            ffi::PyUnicode_Substring(s.as_ptr(), start as ffi::Py_ssize_t, end as ffi::Py_ssize_t),
        )
    }
}

/// Indices of `' '` in a Python str, found one at a time by
/// `PyUnicode_FindChar` (no copy of the string).
struct SpacePositions<'a, 'py> {
    text: &'a Bound<'py, PyAny>,
    next: usize,
    len: usize,
    failed: Option<PyErr>,
}

impl Iterator for SpacePositions<'_, '_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.next >= self.len {
            return None;
        }
        // SAFETY: `text` is a str and `next < len(text)`.
        let found = unsafe {
            ffi::PyUnicode_FindChar(
                self.text.as_ptr(),
                ' ' as ffi::Py_UCS4,
                self.next as ffi::Py_ssize_t,
                self.len as ffi::Py_ssize_t,
                1,
            )
        };
        match found {
            -1 => {
                self.next = self.len;
                None
            }
            index if index < 0 => {
                self.failed = Some(PyErr::fetch(self.text.py()));
                self.next = self.len;
                None
            }
            index => {
                self.next = index as usize + 1;
                Some(index as usize)
            }
        }
    }
}
