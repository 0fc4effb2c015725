//! `get_parallel_threads(cloud_str=None)`.

use pyo3::prelude::*;
use pyo3::types::{PyInt, PyString, PyTuple};
use sky_rs_core::cpu;

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

/// [`cpu::parallel_threads`] with `os.cpu_count()` of the running
/// interpreter (3.13+ honours `PYTHON_CPU_COUNT` and `-X cpu_count`).
/// `cloud_str` has been checked to be `None` or a `str`.
pub fn parallel_threads(py: Python<'_>, cloud_str: Option<&Bound<'_, PyAny>>) -> Answer<u64> {
    let answer = crate::interp::os(py)?.getattr("cpu_count")?.call0()?;
    let cpus: Option<u64> = if answer.is_none() {
        None
    } else {
        Some(answer.extract().map_err(|err| {
            Failure::Internal(format!("os.cpu_count() gave a value Rust can't use: {err}"))
        })?)
    };
    let on_kubernetes = match cloud_str {
        Some(text) if !text.is_none() => is_kubernetes(py, text)?,
        _ => false,
    };
    cpu::parallel_threads(cpus, on_kubernetes)
        .ok_or_else(|| Failure::Internal("thread count overflows 64 bits".to_owned()))
}

/// `str.lower(text) == 'kubernetes'`: ASCII in the core, anything else
/// through Python's full Unicode lowercasing (`'\u212a'.lower() == 'k'`).
fn is_kubernetes(py: Python<'_>, text: &Bound<'_, PyAny>) -> PyResult<bool> {
    if let Ok(string) = text.cast::<PyString>() {
        if let Some(answer) = string
            .to_cow()
            .ok()
            .and_then(|text| cpu::is_kubernetes_ascii(&text))
        {
            return Ok(answer);
        }
    }
    let lowered = crate::interp::str_lower(py)?.call1((text,))?;
    lowered.eq("kubernetes")
}
