//! `get_parallel_threads(cloud_str=None)`.

use pyo3::prelude::*;
use pyo3::types::{PyInt, PyString, PyTuple};

use crate::checks::require_optional_str;
use crate::functions::Function;
use crate::guard::{guarded, Answer, Failure};

#[pyfunction]
#[pyo3(signature = (cloud_str = None))]
pub fn get_parallel_threads<'py>(
    py: Python<'py>,
    cloud_str: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    guarded(
        py,
        Function::GetParallelThreads,
        || {
            require_optional_str(cloud_str, "cloud_str")?;
            Ok(PyInt::new(py, parallel_threads(py, cloud_str)?).into_any())
        },
        || {
            PyTuple::new(
                py,
                [cloud_str.map_or_else(|| py.None().into_bound(py), Bound::clone)],
            )
        },
    )
}

/// `max(4, cpus - 1) * (4 if cloud_str.lower() == 'kubernetes' else 1)` with
/// `cpus = os.cpu_count() or 1` from the running interpreter. `cloud_str`
/// has been checked to be `None` or a `str`.
pub fn parallel_threads(py: Python<'_>, cloud_str: Option<&Bound<'_, PyAny>>) -> Answer<i64> {
    let answer = crate::interp::os(py)?.getattr("cpu_count")?.call0()?;
    let cpus: i64 = if answer.is_truthy()? {
        answer.extract().map_err(|err| {
            Failure::Internal(format!("os.cpu_count() gave a value Rust can't use: {err}"))
        })?
    } else {
        1
    };
    let multiplier = match cloud_str {
        Some(text) if !text.is_none() && is_kubernetes(py, text)? => 4,
        _ => 1,
    };
    4i64.max(cpus.saturating_sub(1))
        .checked_mul(multiplier)
        .ok_or_else(|| Failure::Internal("thread count overflows 64 bits".to_owned()))
}

/// `str.lower(text) == 'kubernetes'`: ASCII in Rust, anything else through
/// Python's full Unicode lowercasing (`'\u212a'.lower() == 'k'`).
fn is_kubernetes(py: Python<'_>, text: &Bound<'_, PyAny>) -> PyResult<bool> {
    if let Ok(string) = text.cast::<PyString>() {
        if let Ok(utf8) = string.to_cow() {
            if utf8.is_ascii() {
                return Ok(utf8.eq_ignore_ascii_case("kubernetes"));
            }
        }
    }
    let lowered = crate::interp::str_lower(py)?.call1((text,))?;
    lowered.eq("kubernetes")
}
