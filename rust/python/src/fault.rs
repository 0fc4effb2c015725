//! Test-only fault injection (cargo feature `fault-injection`): makes the
//! next call of a function panic or fail internally, so the tests can watch
//! the fallback path. Without the feature, [`inject`] is a no-op.

use crate::functions::Function;
use crate::guard::Answer;

#[cfg(feature = "fault-injection")]
mod armed {
    use std::sync::atomic::{AtomicU8, Ordering};

    use pyo3::exceptions::PyValueError;
    use pyo3::prelude::*;

    use crate::functions::Function;
    use crate::guard::{Answer, Failure};

    const NONE: u8 = 0;
    const PANIC: u8 = 1;
    const INTERNAL: u8 = 2;

    #[allow(clippy::declare_interior_mutable_const)] // only used as an array initializer
    const UNARMED: AtomicU8 = AtomicU8::new(NONE);
    static ARMED: [AtomicU8; Function::ALL.len()] = [UNARMED; Function::ALL.len()];

    pub fn inject(function: Function) -> Answer<()> {
        match ARMED[function.index()].swap(NONE, Ordering::Relaxed) {
            PANIC => panic!("fault injected into {}", function.name()),
            INTERNAL => Err(Failure::Internal(format!(
                "fault injected into {}",
                function.name()
            ))),
            _ => Ok(()),
        }
    }

    /// `_inject_fault(function, kind)`: the next call of `function` panics
    /// (`kind == "panic"`) or fails internally (`"internal-error"`).
    #[pyfunction]
    #[pyo3(name = "_inject_fault")]
    pub fn inject_fault(function: &str, kind: &str) -> PyResult<()> {
        let function = Function::from_name(function)
            .ok_or_else(|| PyValueError::new_err(format!("no function {function:?}")))?;
        let fault = match kind {
            "panic" => PANIC,
            "internal-error" => INTERNAL,
            _ => return Err(PyValueError::new_err(format!("no fault kind {kind:?}"))),
        };
        ARMED[function.index()].store(fault, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(feature = "fault-injection")]
pub use armed::inject_fault;

#[cfg(feature = "fault-injection")]
pub fn inject(function: Function) -> Answer<()> {
    armed::inject(function)
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn inject(_function: Function) -> Answer<()> {
    Ok(())
}
