//! `is_process_alive(pid)` and the fixture helper `_is_process_alive_at(root, pid)`
//! (the Linux rule under a fixture root, on every platform).

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyTuple};
use sky_rs_core::process;

use crate::checks::{int_text, require_int, value_error, IntValue};
use crate::functions::Function;
use crate::guard::{guarded, guarded_helper, Answer};
use crate::paths::{require_path, PathOp};

/// The largest `pid_t`.
const PID_MAX: i64 = (1 << 31) - 1;

#[pyfunction]
#[pyo3(signature = (pid))]
pub fn is_process_alive<'py>(
    py: Python<'py>,
    pid: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    guarded(
        py,
        Function::IsProcessAlive,
        || {
            let pid = checked_pid(pid)?;
            let alive = crate::shutdown::detach(py, || process::host_is_process_alive(pid));
            Ok(PyBool::new(py, alive).to_owned().into_any())
        },
        || PyTuple::new(py, [pid]),
    )
}

#[pyfunction]
#[pyo3(name = "_is_process_alive_at", signature = (root, pid))]
pub fn is_process_alive_at<'py>(
    py: Python<'py>,
    root: &Bound<'py, PyAny>,
    pid: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    guarded_helper(
        py,
        "_is_process_alive_at",
        || {
            // The reference checks the pid before it touches the root.
            checked_pid(pid)?;
            let root = require_path(root, "root")?.encode_for(PathOp::Open)?;
            alive_at(py, root, pid)
        },
        || PyTuple::new(py, [root, pid]),
    )
}

fn alive_at<'py>(
    py: Python<'py>,
    root: PathBuf,
    pid: &Bound<'py, PyAny>,
) -> Answer<Bound<'py, PyAny>> {
    let pid = checked_pid(pid)?;
    let alive = crate::shutdown::detach(py, || process::is_process_alive(&root, pid));
    Ok(PyBool::new(py, alive).to_owned().into_any())
}

/// `pid` is an int in `[1, 2**31 - 1]`.
fn checked_pid(pid: &Bound<'_, PyAny>) -> Answer<i32> {
    match require_int(pid, "pid")? {
        IntValue::Small(value @ 1..=PID_MAX) => Ok(value as i32),
        other => Err(value_error(format!(
            "pid must be in [1, {PID_MAX}], got {}",
            int_text(pid, other)?
        ))),
    }
}
