//! `find_free_port(start_port)`.

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyTuple};
use sky_rs_core::port;

use crate::checks::{int_text, require_int, value_error, IntValue};
use crate::functions::Function;
use crate::guard::{guarded, Answer, Failure};
use crate::paths::os_error;

#[pyfunction]
#[pyo3(signature = (start_port))]
pub fn find_free_port<'py>(
    py: Python<'py>,
    start_port: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    guarded(
        py,
        Function::FindFreePort,
        || find(py, start_port),
        || PyTuple::new(py, [start_port]),
    )
}

fn find<'py>(py: Python<'py>, start_port: &Bound<'py, PyAny>) -> Answer<Bound<'py, PyAny>> {
    let start = match require_int(start_port, "start_port")? {
        IntValue::Small(value @ 0..=65535) => value as u32,
        other => {
            return Err(value_error(format!(
                "start_port must be in [0, 65535], got {}",
                int_text(start_port, other)?
            )))
        }
    };
    match crate::shutdown::detach(py, || port::find_free_port(start)) {
        Ok(Some(port)) => Ok(PyInt::new(py, port).into_any()),
        Ok(None) => Err(Failure::Raise(PyOSError::new_err(
            "No free ports available.",
        ))),
        // Creating the socket failed (EMFILE, ...): Python's socket() error.
        Err(err) => Err(os_error(py, &err, None)),
    }
}
