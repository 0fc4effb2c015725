//! `get_mem_size_gb()`.

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyTuple};
use sky_rs_core::memory;
use sky_rs_core::overrides::{self, MemoryRejected, MEMORY_BYTES_LIMIT, MEMORY_GB_LIMIT};

use crate::functions::Function;
use crate::guard::{guarded, Answer, Failure};

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
    for (name, in_bytes) in [(MEMORY_GB_LIMIT, false), (MEMORY_BYTES_LIMIT, true)] {
        if let Some(value) = crate::interp::environ_get(py, name)? {
            let number = crate::interp::float_of(&value)?;
            return match overrides::memory_gib(number, in_bytes) {
                Ok(gib) => Ok(PyFloat::new(py, gib).into_any()),
                Err(rejected) => {
                    let why = match rejected {
                        MemoryRejected::NotANumber => "is not a number",
                        MemoryRejected::NotFinitePositive => "must be a finite number above 0",
                    };
                    Err(Failure::Raise(PyValueError::new_err(format!(
                        "{name}={} {why}",
                        value.repr()?.to_cow()?
                    ))))
                }
            };
        }
    }
    match crate::shutdown::detach(py, memory::host_mem_size_bytes) {
        // u64 -> f64 rounds to nearest like Python's int / int, and dividing
        // by a power of two is exact, so this equals `bytes / 1024**3`.
        Some(bytes) => Ok(PyFloat::new(py, bytes as f64 / GIB).into_any()),
        None => Err(Failure::Raise(PyOSError::new_err(
            "cannot determine the memory size: no physical total and no cgroup limit",
        ))),
    }
}
