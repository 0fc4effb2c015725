//! Objects of the running interpreter that the binding calls into, so that
//! its answers follow Python's own semantics (codecs, `int()`, `os`).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyFloat, PyModule, PyString, PyType};
use sky_rs_core::overrides::{self, FloatText};

// Every one-time object of the binding is made by `initialize`, at import,
// never on first use: the first `get_or_init` of a `PyOnceLock` (and of
// PyO3's `intern!`) marks the cell "running", then waits for the GIL. A
// thread that forks in that window leaves its child a cell that never
// completes, and the child's first call that needs it hangs for ever (seen:
// 1 of 920 fork exits in the exit-stress test). At import no other thread
// can be inside this module yet.
static OS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
static MAPPING: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static INT_REPR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static STR_LOWER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static NAMES: PyOnceLock<Names> = PyOnceLock::new();

/// Interned `str`s the binding looks attributes up by.
pub struct Names {
    pub environ: Py<PyString>,
    pub get: Py<PyString>,
    pub environ_class: Py<PyString>,
    pub data: Py<PyString>,
    pub ellipsis: Py<PyString>,
}

/// Makes every one-time object now (called by the module's init).
pub fn initialize(py: Python<'_>) -> PyResult<()> {
    os(py)?;
    mapping_abc(py)?;
    int_repr(py)?;
    str_lower(py)?;
    names(py);
    // Makes OVERRIDE_KEYS.
    environ_key(py, overrides::CPU_CORE_LIMIT);
    // PyO3 imports `collections.abc.Mapping` into a cell of its own on the
    // first `PyMapping` type check.
    py.get_type::<pyo3::types::PyMapping>();
    Ok(())
}

/// The interned names (made by `initialize`).
pub fn names(py: Python<'_>) -> &Names {
    NAMES.get_or_init(py, || Names {
        environ: PyString::intern(py, "environ").unbind(),
        get: PyString::intern(py, "get").unbind(),
        environ_class: PyString::intern(py, "_Environ").unbind(),
        data: PyString::intern(py, "_data").unbind(),
        ellipsis: PyString::intern(py, sky_rs_core::truncate::ELLIPSIS).unbind(),
    })
}

/// The `os` module.
pub fn os(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    OS.get_or_try_init(py, || py.import("os").map(Bound::unbind))
        .map(|module| module.bind(py))
}

/// `sky_rs._digest.FileDigest`, the class both backends return from
/// `hash_file`; looked up in `sys.modules` on every use, like the fallback.
pub fn file_digest_class(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    digest_module(py)?.getattr("FileDigest")
}

/// `sky_rs._digest` (`FileDigest`, `new_hasher`), looked up in `sys.modules`
/// on every use, like the fallback.
pub fn digest_module(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    py.import("sky_rs._digest")
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
///
/// The common answer, "not set", is found without running `Mapping.get`'s
/// Python code (and the `KeyError` it raises and catches): when `os.environ`
/// is the interpreter's own `os._Environ` holding a `dict` of bytes, a name
/// absent from that dict is absent from `os.environ` (`name` is ASCII, so its
/// encoded key is its bytes under any file system encoding). A name that is
/// present, or any other `os.environ`, takes the full `os.environ.get(name)`.
pub fn environ_get<'py>(py: Python<'py>, name: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
    debug_assert!(name.is_ascii());
    let os = os(py)?;
    let names = names(py);
    let environ = os.getattr(names.environ.bind(py))?;
    if environ_surely_lacks(os, &environ, name)? {
        return Ok(None);
    }
    let value = environ.call_method1(names.get.bind(py), (name,))?;
    Ok((!value.is_none()).then_some(value))
}

fn environ_surely_lacks(
    os: &Bound<'_, PyModule>,
    environ: &Bound<'_, PyAny>,
    name: &str,
) -> PyResult<bool> {
    let py = os.py();
    let names = names(py);
    let Ok(class) = os.getattr(names.environ_class.bind(py)) else {
        return Ok(false);
    };
    if !environ.get_type().is(&class) {
        return Ok(false);
    }
    let Ok(data) = environ.getattr(names.data.bind(py)) else {
        return Ok(false);
    };
    let Ok(data) = data.cast_exact::<pyo3::types::PyDict>() else {
        return Ok(false);
    };
    Ok(!data.contains(environ_key(py, name))?)
}

/// The `bytes` keys of `os.environ._data` for the override names, made once
/// (by `initialize`, at import, like every one-time object here):
/// constants, not state (the environment itself is looked up on every call),
/// and a `bytes` object keeps its hash, so a lookup hashes nothing anew.
static OVERRIDE_KEYS: PyOnceLock<Vec<(&'static str, Py<PyBytes>)>> = PyOnceLock::new();

fn environ_key<'py>(py: Python<'py>, name: &str) -> Bound<'py, PyBytes> {
    let keys = OVERRIDE_KEYS.get_or_init(py, || {
        [
            overrides::CPU_CORE_LIMIT,
            overrides::MEMORY_GB_LIMIT,
            overrides::MEMORY_BYTES_LIMIT,
        ]
        .into_iter()
        .map(|known| (known, PyBytes::new(py, known.as_bytes()).unbind()))
        .collect()
    });
    match keys.iter().find(|(known, _)| *known == name) {
        Some((_, key)) => key.bind(py).clone(),
        None => PyBytes::new(py, name.as_bytes()),
    }
}

/// `float(value)` by the contract's grammar: an exact `str` of ASCII text is
/// parsed by the core ([`overrides::parse_float`]); anything else (Unicode
/// digits or spaces, a `str` subclass, a non-`str` put into a replaced
/// `os.environ`) by the interpreter's own `float()`. `None` where `float()`
/// raises `ValueError`; any other exception is raised.
pub fn float_of(value: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
    if let Ok(text) = value.cast_exact::<PyString>() {
        if let Ok(text) = text.to_cow() {
            match overrides::parse_float(&text) {
                FloatText::Parsed(number) => return Ok(Some(number)),
                FloatText::Invalid => return Ok(None),
                FloatText::AskInterpreter => {}
            }
        }
    }
    let py = value.py();
    match py.get_type::<PyFloat>().call1((value,)) {
        Ok(number) => Ok(Some(number.cast_into::<PyFloat>()?.value())),
        Err(err) if err.is_instance_of::<PyValueError>(py) => Ok(None),
        Err(err) => Err(err),
    }
}
