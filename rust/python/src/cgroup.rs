//! The fixture helpers shared with `sky_rs.fallback`:
//! `_cgroup_cpu_limit(root)` and `_cgroup_memory_limit(root, physical)`.

use pyo3::prelude::*;
use pyo3::types::{PyInt, PyTuple};
use sky_rs_core::{cpu, memory};

use crate::checks::{require_int, type_error, type_name, IntValue};
use crate::guard::{guarded_helper, Answer};
use crate::paths::{require_path, PathOp};

#[pyfunction]
#[pyo3(name = "_cgroup_cpu_limit", signature = (root))]
pub fn cgroup_cpu_limit<'py>(
    py: Python<'py>,
    root: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    guarded_helper(
        py,
        "_cgroup_cpu_limit",
        || {
            let root = require_path(root, "root")?.encode_for(PathOp::Open)?;
            let limit = crate::shutdown::detach(py, || cpu::cgroup_cpu_limit(&root));
            Ok(optional_int(py, limit))
        },
        || PyTuple::new(py, [root]),
    )
}

#[pyfunction]
#[pyo3(name = "_cgroup_memory_limit", signature = (root, physical))]
pub fn cgroup_memory_limit<'py>(
    py: Python<'py>,
    root: &Bound<'py, PyAny>,
    physical: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    guarded_helper(
        py,
        "_cgroup_memory_limit",
        || {
            let root = require_path(root, "root")?.encode_for(PathOp::Open)?;
            let physical = physical_bytes(physical)?;
            let limit =
                crate::shutdown::detach(py, || memory::cgroup_memory_limit(&root, physical));
            Ok(optional_int(py, limit))
        },
        || PyTuple::new(py, [root, physical]),
    )
}

/// `physical`: `None` (unknown) or a byte count.
fn physical_bytes(physical: &Bound<'_, PyAny>) -> Answer<Option<u64>> {
    if physical.is_none() {
        return Ok(None);
    }
    if !physical.is_instance_of::<PyInt>() {
        return Err(type_error(format!(
            "physical must be an int or None, not {}",
            type_name(physical)?
        )));
    }
    // Limits are positive i64s, so a physical size below 0 rejects every v1
    // limit as 0 does, and one beyond 64 bits rejects none, as u64::MAX.
    let bytes = match require_int(physical, "physical")? {
        IntValue::Small(value) => value.max(0) as u64,
        IntValue::HugeNegative => 0,
        IntValue::HugePositive => u64::MAX,
    };
    Ok(Some(bytes))
}

fn optional_int(py: Python<'_>, value: Option<u64>) -> Bound<'_, PyAny> {
    match value {
        Some(value) => PyInt::new(py, value).into_any(),
        None => py.None().into_bound(py),
    }
}
