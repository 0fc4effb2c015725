//! Objects of the running interpreter that the binding calls into, so that
//! its answers follow Python's own semantics (codecs, `int()`, `os`).

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyModule, PyType};

static OS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
static MAPPING: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static INT_REPR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static STR_LOWER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The `os` module.
pub fn os(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    OS.get_or_try_init(py, || py.import("os").map(Bound::unbind))
        .map(|module| module.bind(py))
}

/// `sky_rs.fallback`, looked up in `sys.modules` on every use so that a
/// reloaded or patched module is the one called.
pub fn fallback_module(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    py.import("sky_rs.fallback")
}

/// `collections.abc.Mapping`.
pub fn mapping_abc(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    MAPPING.import(py, "collections.abc", "Mapping")
}

/// `int.__repr__`: the decimal text of an int's *value*, whatever its class
/// overrides, under the interpreter's `sys.get_int_max_str_digits()`.
pub fn int_repr(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    INT_REPR
        .get_or_try_init(py, || {
            py.get_type::<pyo3::types::PyInt>()
                .getattr("__repr__")
                .map(Bound::unbind)
        })
        .map(|function| function.bind(py))
}

/// `str.lower`, applied to the value of any `str` (subclasses included).
pub fn str_lower(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    STR_LOWER
        .get_or_try_init(py, || {
            py.get_type::<pyo3::types::PyString>()
                .getattr("lower")
                .map(Bound::unbind)
        })
        .map(|function| function.bind(py))
}

/// `os.environ.get(name)`; `os.environ` is looked up on every call because
/// tests (and programs) may replace it.
pub fn environ_get<'py>(py: Python<'py>, name: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
    let value = os(py)?.getattr("environ")?.call_method1("get", (name,))?;
    Ok((!value.is_none()).then_some(value))
}
