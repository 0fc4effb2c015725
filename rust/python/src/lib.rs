//! `sky_rs._native`: the PyO3 binding of `sky-rs-core`.
//!
//! This crate converts arguments with the reference's rules
//! (`sky_rs.fallback`), raises the contract's typed errors, releases the GIL
//! around I/O and system calls, and counts its own calls. Every entry point
//! runs under [`guard::guarded`]: a caught panic or an internal error is
//! answered by `sky_rs.fallback.<fn>` with the same arguments.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

mod base36;
#[cfg(feature = "leak-canary")]
mod canary;
mod cgroup;
mod checks;
mod cpu;
mod fault;
mod fds;
mod float_format;
mod functions;
mod guard;
mod hash;
mod interp;
mod memory;
mod parallel;
mod paths;
mod port;
mod process;
mod shutdown;
mod stats;
mod tail;
mod truncate;

/// Cargo features compiled in, as `_build_info()` reports them.
const FEATURES: &[(&str, bool)] = &[
    ("leak-canary", cfg!(feature = "leak-canary")),
    ("fault-injection", cfg!(feature = "fault-injection")),
    ("bench-floor", cfg!(feature = "bench-floor")),
    ("counts-canary", cfg!(feature = "counts-canary")),
    ("exit-canary", cfg!(feature = "exit-canary")),
];

/// `_noop()` (feature `bench-floor`): the bare cost of calling a PyO3
/// function, the floor of the functions that make no system call.
#[cfg(feature = "bench-floor")]
#[pyfunction]
#[pyo3(name = "_noop")]
fn native_noop() {}

/// `_stats() -> {name: (calls answered by Rust, {fallback reason: count})}`.
#[pyfunction]
#[pyo3(name = "_stats")]
fn native_stats(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let result = PyDict::new(py);
    for counters in stats::snapshot() {
        let reasons = PyDict::new(py);
        for (reason, count) in counters.fallbacks {
            reasons.set_item(reason.label(), count)?;
        }
        let rust = counters.rust.into_pyobject(py)?.into_any();
        let entry = PyTuple::new(py, [rust, reasons.into_any()])?;
        result.set_item(counters.function.name(), entry)?;
    }
    Ok(result)
}

/// `_reset_stats()`: zero the native counters.
#[pyfunction]
#[pyo3(name = "_reset_stats")]
fn native_reset_stats() {
    stats::reset();
}

/// `_build_info() -> {'version', 'profile', 'features'}`.
#[pyfunction]
#[pyo3(name = "_build_info")]
fn native_build_info(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let info = PyDict::new(py);
    info.set_item("version", env!("CARGO_PKG_VERSION"))?;
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    info.set_item("profile", profile)?;
    let features: Vec<&str> = FEATURES
        .iter()
        .filter(|(_, enabled)| *enabled)
        .map(|(name, _)| *name)
        .collect();
    info.set_item("features", PyList::new(py, features)?)?;
    Ok(info)
}

// Declared safe without the GIL (free-threaded CPython): every counter is an
// atomic, every one-time object a `PyOnceLock` made at init, and no call keeps
// a borrow of a mutable Python object across a point where another thread runs.
#[pymodule(gil_used = false)]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    module.add_function(wrap_pyfunction!(tail::read_last_n_lines, module)?)?;
    module.add_function(wrap_pyfunction!(hash::hash_file, module)?)?;
    module.add_function(wrap_pyfunction!(port::find_free_port, module)?)?;
    module.add_function(wrap_pyfunction!(base36::base36_encode, module)?)?;
    module.add_function(wrap_pyfunction!(float_format::format_float, module)?)?;
    module.add_function(wrap_pyfunction!(truncate::truncate_long_string, module)?)?;
    module.add_function(wrap_pyfunction!(cpu::get_cpu_count, module)?)?;
    module.add_function(wrap_pyfunction!(memory::get_mem_size_gb, module)?)?;
    module.add_function(wrap_pyfunction!(parallel::get_parallel_threads, module)?)?;
    module.add_function(wrap_pyfunction!(process::is_process_alive, module)?)?;
    module.add_function(wrap_pyfunction!(
        fds::get_max_workers_for_file_mounts,
        module
    )?)?;
    module.add_function(wrap_pyfunction!(fds::estimate_fd_for_directory, module)?)?;
    module.add_function(wrap_pyfunction!(cgroup::cgroup_cpu_limit, module)?)?;
    module.add_function(wrap_pyfunction!(cgroup::cgroup_memory_limit, module)?)?;
    module.add_function(wrap_pyfunction!(process::is_process_alive_at, module)?)?;
    module.add_function(wrap_pyfunction!(native_stats, module)?)?;
    module.add_function(wrap_pyfunction!(native_reset_stats, module)?)?;
    module.add_function(wrap_pyfunction!(native_build_info, module)?)?;
    module.add_function(wrap_pyfunction!(shutdown::close, module)?)?;
    #[cfg(feature = "fault-injection")]
    module.add_function(wrap_pyfunction!(fault::inject_fault, module)?)?;
    #[cfg(feature = "bench-floor")]
    module.add_function(wrap_pyfunction!(native_noop, module)?)?;
    interp::initialize(module.py())?;
    shutdown::register(module)
}
