//! `format_float(num, precision=1)`.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyString, PyTuple};
use sky_rs_core::float_format;

use crate::checks::{int_text, require_int, type_error, type_name, value_error, IntValue};
use crate::functions::Function;
use crate::guard::{guarded, Answer, Arg};

/// Precisions above this are formatted by the reference's `_format_fixed`
/// (Python's own `format()`): the output is huge anyway, and the running
/// interpreter's formatter decides where it stops accepting them (a refusal
/// is a `ValueError` on every interpreter; above `2**31 - 1` always).
const MAX_NATIVE_PRECISION: i64 = 4096;

/// The largest precision the contract lets the formatter decide on.
const MAX_PRECISION: i64 = (1 << 31) - 1;

#[pyfunction]
#[pyo3(
    signature = (num, precision = Arg::Default(1)),
    text_signature = "(num, precision=1)"
)]
pub fn format_float<'py>(
    py: Python<'py>,
    num: &Bound<'py, PyAny>,
    precision: Arg<'py, i64>,
) -> PyResult<Bound<'py, PyAny>> {
    #[cfg(feature = "leak-canary")]
    crate::canary::leak_slowly();
    guarded(
        py,
        Function::FormatFloat,
        || format(py, num, &precision),
        || PyTuple::new(py, [num.clone(), precision.object(py)?]),
    )
}

fn format<'py>(
    py: Python<'py>,
    num: &Bound<'py, PyAny>,
    precision: &Arg<'py, i64>,
) -> Answer<Bound<'py, PyAny>> {
    // The contract checks `precision` first, for every `num`: its type, then
    // its value, and only then the type of `num` (`format_float('x', -1)` is
    // a ValueError).
    let precision_value = match precision {
        Arg::Default(value) => IntValue::Small(*value),
        Arg::Given(object) => {
            let value = require_int(object, "precision")?;
            if value.is_negative() {
                return Err(value_error(format!(
                    "precision must be non-negative, got {}",
                    int_text(object, value)?
                )));
            }
            value
        }
    };
    let is_float = num.is_instance_of::<PyFloat>();
    if !is_float && !num.is_instance_of::<PyInt>() {
        return Err(type_error(format!(
            "num must be an int or a float, not {}",
            type_name(num)?
        )));
    }
    if let Ok(flag) = num.cast::<PyBool>() {
        let text = if flag.is_true() { "True" } else { "False" };
        return Ok(PyString::new(py, text).into_any());
    }
    if !is_float {
        return Ok(PyString::new(py, &int_text(num, require_int(num, "num")?)?).into_any());
    }
    // The value of a float (subclass) without calling its overrides.
    let value = num.cast::<PyFloat>().map_err(PyErr::from)?.value();
    if float_format::is_integer(value) {
        return Ok(PyString::new(py, &float_format::format_integral(value)).into_any());
    }
    match precision_value {
        IntValue::Small(digits @ 0..=MAX_NATIVE_PRECISION) => {
            let text = float_format::format_fixed(value, digits as usize);
            Ok(PyString::new(py, &text).into_any())
        }
        IntValue::Small(digits @ 0..=MAX_PRECISION) => Ok(crate::interp::fallback_module(py)?
            .getattr("_format_fixed")?
            .call1((PyFloat::new(py, value), digits))?),
        _ => Err(value_error("precision too big".to_owned())),
    }
}
