//! `get_cpu_count()`.

use std::path::Path;

use pyo3::exceptions::{PyOverflowError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyInt, PyTuple};
use sky_rs_core::cpu;

use crate::functions::Function;
use crate::guard::{guarded, Answer, Failure};

const CPU_LIMIT_VARIABLE: &str = "SKYPILOT_POD_CPU_CORE_LIMIT";

#[pyfunction]
pub fn get_cpu_count(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    guarded(
        py,
        Function::GetCpuCount,
        || cpu_count(py),
        || Ok(PyTuple::empty(py)),
    )
}

fn cpu_count(py: Python<'_>) -> Answer<Bound<'_, PyAny>> {
    if let Some(value) = crate::interp::environ_get(py, CPU_LIMIT_VARIABLE)? {
        return cpus_from_override(py, &value);
    }
    let count = crate::shutdown::detach(py, || cpu::cpu_count(Path::new("/")));
    Ok(PyInt::new(py, count).into_any())
}

/// `max(int(float(value)), 1)` with Python's own `float()` and `int()`.
fn cpus_from_override<'py>(
    py: Python<'py>,
    value: &Bound<'py, PyAny>,
) -> Answer<Bound<'py, PyAny>> {
    let parsed = py
        .get_type::<PyFloat>()
        .call1((value,))
        .and_then(|number| py.get_type::<PyInt>().call1((number,)));
    match parsed {
        Ok(cpus) => {
            if cpus.lt(1)? {
                Ok(PyInt::new(py, 1).into_any())
            } else {
                Ok(cpus)
            }
        }
        Err(err)
            if err.is_instance_of::<PyValueError>(py)
                || err.is_instance_of::<PyOverflowError>(py) =>
        {
            Err(Failure::Raise(PyValueError::new_err(format!(
                "{CPU_LIMIT_VARIABLE}={} is not a finite number",
                value.repr()?.to_cow()?
            ))))
        }
        Err(err) => Err(Failure::Raise(err)),
    }
}
