//! `get_mem_size_gb()`.

use std::path::Path;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyTuple};
use sky_rs_core::memory;

use crate::functions::Function;
use crate::guard::{guarded, Answer, Failure};

const GB_VARIABLE: &str = "SKYPILOT_POD_MEMORY_GB_LIMIT";
const BYTES_VARIABLE: &str = "SKYPILOT_POD_MEMORY_BYTES_LIMIT";
const GIB: f64 = 1_073_741_824.0;

#[pyfunction]
pub fn get_mem_size_gb(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    guarded(
        py,
        Function::GetMemSizeGb,
        || mem_size_gb(py),
        || Ok(PyTuple::empty(py)),
    )
}

fn mem_size_gb(py: Python<'_>) -> Answer<Bound<'_, PyAny>> {
    if let Some(value) = crate::interp::environ_get(py, GB_VARIABLE)? {
        let gib = positive_float(py, &value, GB_VARIABLE)?;
        return Ok(PyFloat::new(py, gib).into_any());
    }
    if let Some(value) = crate::interp::environ_get(py, BYTES_VARIABLE)? {
        let bytes = positive_float(py, &value, BYTES_VARIABLE)?;
        return Ok(PyFloat::new(py, bytes / GIB).into_any());
    }
    match crate::shutdown::detach(py, || memory::mem_size_bytes(Path::new("/"))) {
        // u64 -> f64 rounds to nearest like Python's int / int, and dividing
        // by a power of two is exact, so this equals `bytes / 1024**3`.
        Some(bytes) => Ok(PyFloat::new(py, bytes as f64 / GIB).into_any()),
        None => Err(Failure::Raise(PyOSError::new_err(
            "cannot determine the memory size: no physical total and no cgroup limit",
        ))),
    }
}

/// `float(text)` that is finite and above 0 (the reference's `_positive_float`).
fn positive_float(py: Python<'_>, text: &Bound<'_, PyAny>, name: &str) -> Answer<f64> {
    let value = match py.get_type::<PyFloat>().call1((text,)) {
        Ok(value) => value.cast_into::<PyFloat>().map_err(PyErr::from)?.value(),
        Err(err) if err.is_instance_of::<PyValueError>(py) => {
            return Err(Failure::Raise(PyValueError::new_err(format!(
                "{name}={} is not a number",
                text.repr()?.to_cow()?
            ))))
        }
        Err(err) => return Err(Failure::Raise(err)),
    };
    if !value.is_finite() || value <= 0.0 {
        return Err(Failure::Raise(PyValueError::new_err(format!(
            "{name}={} must be a finite number above 0",
            text.repr()?.to_cow()?
        ))));
    }
    Ok(value)
}
