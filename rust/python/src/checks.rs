//! Argument checks with the reference's rules and messages
//! (`sky_rs.fallback._require_*`).

use std::os::raw::c_int;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyString};

use crate::guard::{Answer, Failure};

/// `type(value).__name__`.
pub fn type_name(value: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(value.get_type().name()?.to_cow()?.into_owned())
}

/// The value of an `int` (`bool` and subclasses included), never read
/// through the class's overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntValue {
    /// Fits in 64 bits.
    Small(i64),
    /// Below `i64::MIN`.
    HugeNegative,
    /// Above `i64::MAX`.
    HugePositive,
}

impl IntValue {
    /// The value clamped into `[lo, hi]`.
    pub fn clamp(self, lo: i64, hi: i64) -> i64 {
        match self {
            IntValue::Small(value) => value.clamp(lo, hi),
            IntValue::HugeNegative => lo,
            IntValue::HugePositive => hi,
        }
    }

    pub fn is_negative(self) -> bool {
        match self {
            IntValue::Small(value) => value < 0,
            IntValue::HugeNegative => true,
            IntValue::HugePositive => false,
        }
    }
}

/// `_require_int(value, name)`: `TypeError` unless `isinstance(value, int)`.
pub fn require_int(value: &Bound<'_, PyAny>, name: &str) -> Answer<IntValue> {
    if !value.is_instance_of::<PyInt>() {
        return Err(type_error(format!(
            "{name} must be an int, not {}",
            type_name(value)?
        )));
    }
    let mut overflow: c_int = 0;
    // SAFETY: `value` is an int (checked above), so no `__index__` runs and
    // the only possible failure is the overflow reported in `overflow`.
    let small = unsafe { ffi::PyLong_AsLongLongAndOverflow(value.as_ptr(), &mut overflow) };
    match overflow {
        0 if small == -1 => match PyErr::take(value.py()) {
            Some(err) => Err(Failure::Raise(err)),
            None => Ok(IntValue::Small(-1)),
        },
        0 => Ok(IntValue::Small(small)),
        sign if sign < 0 => Ok(IntValue::HugeNegative),
        _ => Ok(IntValue::HugePositive),
    }
}

/// `str(int.__int__(value))` for an int `value`: the text Python's
/// f-strings show for the reference's `{n}`.
pub fn int_text(value: &Bound<'_, PyAny>, int: IntValue) -> Answer<String> {
    match int {
        IntValue::Small(small) => Ok(small.to_string()),
        IntValue::HugeNegative | IntValue::HugePositive => {
            let text = crate::interp::int_repr(value.py())?.call1((value,))?;
            Ok(text
                .cast_into::<PyString>()
                .map_err(PyErr::from)?
                .to_cow()?
                .into_owned())
        }
    }
}

/// `_require_str(value, name)`.
pub fn require_str(value: &Bound<'_, PyAny>, name: &str) -> Answer<()> {
    if value.is_instance_of::<PyString>() {
        return Ok(());
    }
    Err(type_error(format!(
        "{name} must be a str, not {}",
        type_name(value)?
    )))
}

/// `_require_optional_str(value, name)`.
pub fn require_optional_str(value: Option<&Bound<'_, PyAny>>, name: &str) -> Answer<()> {
    match value {
        Some(value) if !value.is_none() && !value.is_instance_of::<PyString>() => Err(type_error(
            format!("{name} must be a str or None, not {}", type_name(value)?),
        )),
        _ => Ok(()),
    }
}

pub fn type_error(message: String) -> Failure {
    Failure::Raise(PyTypeError::new_err(message))
}

pub fn value_error(message: String) -> Failure {
    Failure::Raise(PyValueError::new_err(message))
}
