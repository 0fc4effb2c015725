//! `get_max_workers_for_file_mounts(common_file_mounts, cloud_str=None)` and
//! `estimate_fd_for_directory(path)`.

use pyo3::prelude::*;
use pyo3::types::{PyInt, PyTuple};
use sky_rs_core::fds;

use crate::checks::{require_optional_str, type_error, type_name};
use crate::functions::Function;
use crate::guard::{guarded, Answer};
use crate::parallel::parallel_threads;
use crate::paths::{os_error, require_path, PathArg, PathOp};

#[pyfunction]
#[pyo3(signature = (common_file_mounts, cloud_str = None))]
pub fn get_max_workers_for_file_mounts<'py>(
    py: Python<'py>,
    common_file_mounts: &Bound<'py, PyAny>,
    cloud_str: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    guarded(
        py,
        Function::GetMaxWorkersForFileMounts,
        || max_workers(py, common_file_mounts, cloud_str),
        || {
            let cloud = cloud_str.map_or_else(|| py.None().into_bound(py), Bound::clone);
            PyTuple::new(py, [common_file_mounts.clone(), cloud])
        },
    )
}

fn max_workers<'py>(
    py: Python<'py>,
    common_file_mounts: &Bound<'py, PyAny>,
    cloud_str: Option<&Bound<'py, PyAny>>,
) -> Answer<Bound<'py, PyAny>> {
    if !common_file_mounts.is_instance(crate::interp::mapping_abc(py)?.as_any())? {
        return Err(type_error(format!(
            "common_file_mounts must be a Mapping, not {}",
            type_name(common_file_mounts)?
        )));
    }
    let mut sources: Vec<PathArg<'py>> = Vec::new();
    for source in common_file_mounts.call_method0("values")?.try_iter()? {
        sources.push(require_path(&source?, "common_file_mounts values")?);
    }
    require_optional_str(cloud_str, "cloud_str")?;
    let fd_limit = crate::shutdown::detach(py, fds::fd_soft_limit);
    if fds::is_low_fd_limit(fd_limit) {
        // Stays a Python call: the warning is a `logging` record on the
        // `sky_rs` logger, and "once per process" must hold whichever backend
        // calls, so both share the reference's flag (a Rust-side flag would
        // let each backend warn once).
        crate::interp::fallback_module(py)?
            .getattr("_warn_low_fd_limit")?
            .call1((fd_limit,))?;
    }
    let mut estimates = Vec::with_capacity(sources.len());
    for source in &sources {
        // os.path.isdir(): any error (unencodable, NUL, missing) is False.
        let Some(path) = source.os_path() else {
            continue;
        };
        let listed = crate::shutdown::detach(py, || {
            if fds::is_dir(&path) {
                fds::estimate_fd_for_directory(&path).map(Some)
            } else {
                Ok(None)
            }
        });
        match listed {
            Ok(Some(estimate)) => estimates.push(estimate),
            Ok(None) => {}
            Err(err) => return Err(os_error(py, &err, Some(source.filename()))),
        }
    }
    let threads = parallel_threads(py, cloud_str)?;
    Ok(PyInt::new(py, fds::max_workers(fd_limit, estimates, threads)).into_any())
}

#[pyfunction]
#[pyo3(signature = (path))]
pub fn estimate_fd_for_directory<'py>(
    py: Python<'py>,
    path: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    guarded(
        py,
        Function::EstimateFdForDirectory,
        || estimate(py, path),
        || PyTuple::new(py, [path]),
    )
}

fn estimate<'py>(py: Python<'py>, path: &Bound<'py, PyAny>) -> Answer<Bound<'py, PyAny>> {
    let path = require_path(path, "path")?;
    let os_path = path.encode_for(PathOp::ListDir)?;
    let estimate = crate::shutdown::detach(py, || fds::estimate_fd_for_directory(&os_path))
        .map_err(|err| os_error(py, &err, Some(path.filename())))?;
    Ok(PyInt::new(py, estimate).into_any())
}
