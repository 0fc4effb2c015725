//! `get_cpu_count()`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyTuple};
use sky_rs_core::cpu;
use sky_rs_core::overrides::{self, CpuLimit, CPU_CORE_LIMIT};

use crate::functions::Function;
use crate::guard::{guarded, Answer, Failure};

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
    if let Some(value) = crate::interp::environ_get(py, CPU_CORE_LIMIT)? {
        let limit = crate::interp::float_of(&value)?.and_then(overrides::cpu_limit);
        return match limit {
            Some(CpuLimit::Count(cpus)) => Ok(PyInt::new(py, cpus).into_any()),
            Some(CpuLimit::Beyond64Bits(whole)) => Ok(int_of_float(py, whole)?),
            None => Err(Failure::Raise(PyValueError::new_err(format!(
                "{CPU_CORE_LIMIT}={} is not a finite number",
                value.repr()?.to_cow()?
            )))),
        };
    }
    // Deliberate extra system calls (feature `counts-canary`), for the counts check to catch.
    #[cfg(feature = "counts-canary")]
    let _ = std::hint::black_box(std::fs::read("/proc/self/cgroup"));
    let count = crate::shutdown::detach(py, cpu::host_cpu_count);
    Ok(PyInt::new(py, count).into_any())
}

/// The exact Python `int` of an integral, finite float (`int(1e30)`).
fn int_of_float(py: Python<'_>, whole: f64) -> PyResult<Bound<'_, PyAny>> {
    // SAFETY: the GIL is held; PyLong_FromDouble returns a new reference or
    // NULL with an exception set, which `from_owned_ptr_or_err` turns into Err.
    unsafe { Bound::from_owned_ptr_or_err(py, pyo3::ffi::PyLong_FromDouble(whole)) }
}
