//! Every native entry point runs through [`guarded`]: typed errors are the
//! answer and are raised; a caught panic or an internal error makes
//! `sky_rs.fallback.<fn>` answer the same call, counted by reason.
//!
//! A foreign unwind is neither: on CPython 3.8–3.13 a thread that takes the
//! GIL back after finalization began calls `pthread_exit`, which unwinds the
//! thread with a forced-unwind exception. Any Python code a native function
//! runs (an import, `hashlib`, `FileDigest`, the eval loop handing the GIL to
//! another thread) can be where that happens, and a `catch_unwind` that
//! catches it aborts the process ("FATAL: exception not rethrown"). Such a
//! thread is parked for ever instead, as PyO3 does around its own
//! `PyEval_RestoreThread` and as CPython 3.14 does itself; the process exits.
//! [`crate::shutdown`]'s gate keeps threads out of such code once exit
//! begins; this is the net below it, for a call the gate gave up waiting for.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use pyo3::BoundObject;

use crate::functions::Function;
use crate::stats::{self, FallbackReason};

/// Why a native call did not produce a value.
#[derive(Debug)]
pub enum Failure {
    /// The answer is this exception (a typed error of the contract, or an
    /// exception raised by Python code we called on the caller's behalf).
    Raise(PyErr),
    /// Rust cannot answer this call; the Python reference will.
    Internal(String),
}

impl From<PyErr> for Failure {
    fn from(err: PyErr) -> Self {
        Failure::Raise(err)
    }
}

/// What a native function body returns.
pub type Answer<T> = Result<T, Failure>;

/// An argument with a default: the caller's object, or the default value
/// (needed as an object only when the fallback is called).
pub enum Arg<'py, D> {
    Given(Bound<'py, PyAny>),
    Default(D),
}

impl<'a, 'py, D> FromPyObject<'a, 'py> for Arg<'py, D> {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        Ok(Arg::Given(obj.to_owned()))
    }
}

impl<'py, D> Arg<'py, D>
where
    D: Copy + IntoPyObject<'py>,
{
    /// The argument as a Python object.
    pub fn object(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self {
            Arg::Given(object) => Ok(object.clone()),
            Arg::Default(value) => value
                .into_pyobject(py)
                .map(|object| object.into_any().into_bound())
                .map_err(Into::into),
        }
    }
}

/// Run `body` for `function`; on a panic or an internal error, call
/// `sky_rs.fallback.<function>(*fallback_args())` instead.
pub fn guarded<'py, B, A>(
    py: Python<'py>,
    function: Function,
    body: B,
    fallback_args: A,
) -> PyResult<Bound<'py, PyAny>>
where
    B: FnOnce() -> Answer<Bound<'py, PyAny>>,
    A: FnOnce() -> PyResult<Bound<'py, PyTuple>>,
{
    let _section = crate::shutdown::Section::enter();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        parked_on_foreign_unwind(|| {
            crate::fault::inject(function)?;
            body()
        })
    }));
    let (reason, detail) = match outcome {
        Ok(Ok(value)) => {
            stats::count_rust(function);
            return Ok(value);
        }
        Ok(Err(Failure::Raise(err))) => {
            stats::count_rust(function);
            return Err(err);
        }
        Ok(Err(Failure::Internal(detail))) => (FallbackReason::InternalError, detail),
        Err(payload) => (FallbackReason::Panic, panic_message(payload.as_ref())),
    };
    stats::count_fallback(function, reason);
    parked_on_foreign_unwind(|| {
        log_fallback(py, function.name(), reason.label(), &detail);
        call_fallback(py, function.name(), fallback_args()?)
    })
}

/// Like [`guarded`] for the private helpers shared with `sky_rs.fallback`,
/// which are not counted.
pub fn guarded_helper<'py, B, A>(
    py: Python<'py>,
    name: &str,
    body: B,
    fallback_args: A,
) -> PyResult<Bound<'py, PyAny>>
where
    B: FnOnce() -> Answer<Bound<'py, PyAny>>,
    A: FnOnce() -> PyResult<Bound<'py, PyTuple>>,
{
    let _section = crate::shutdown::Section::enter();
    let outcome = catch_unwind(AssertUnwindSafe(|| parked_on_foreign_unwind(body)));
    let (reason, detail) = match outcome {
        Ok(Ok(value)) => return Ok(value),
        Ok(Err(Failure::Raise(err))) => return Err(err),
        Ok(Err(Failure::Internal(detail))) => (FallbackReason::InternalError, detail),
        Err(payload) => (FallbackReason::Panic, panic_message(payload.as_ref())),
    };
    parked_on_foreign_unwind(|| {
        log_fallback(py, name, reason.label(), &detail);
        call_fallback(py, name, fallback_args()?)
    })
}

/// Run `f`; if a foreign unwind (CPython's `pthread_exit` at finalization)
/// passes through, park this thread for ever rather than let a
/// `catch_unwind` above catch it. A Rust panic passes through untouched.
fn parked_on_foreign_unwind<T>(f: impl FnOnce() -> T) -> T {
    let park = ParkOnForeignUnwind;
    let value = f();
    std::mem::forget(park);
    value
}

/// Dropped only while unwinding (it is forgotten on the normal path).
struct ParkOnForeignUnwind;

impl Drop for ParkOnForeignUnwind {
    fn drop(&mut self) {
        // `panicking()` is true during a Rust panic's unwind and false during
        // a foreign one: that is the only kind parked.
        if !std::thread::panicking() {
            loop {
                std::thread::park();
            }
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-text payload".to_owned()
    }
}

/// Debug-level record on the `sky_rs` logger of why Python answered; a
/// failure to log must not change the answer, so it is ignored.
fn log_fallback(py: Python<'_>, name: &str, reason: &str, detail: &str) {
    let logged = py
        .import("logging")
        .and_then(|logging| logging.getattr("getLogger")?.call1(("sky_rs",)))
        .and_then(|logger| {
            logger.call_method1(
                "debug",
                (
                    "native %s fell back to sky_rs.fallback (%s): %s",
                    name,
                    reason,
                    detail,
                ),
            )
        });
    if let Err(err) = logged {
        drop(err);
    }
}

fn call_fallback<'py>(
    py: Python<'py>,
    name: &str,
    args: Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    crate::interp::fallback_module(py)?
        .getattr(name)?
        .call1(args)
}
