//! Interpreter exit with native calls in flight.
//!
//! On CPython 3.8–3.13 a thread that takes the GIL after finalization began
//! calls `pthread_exit`, a forced unwind. When that happens inside Python code
//! a native function called (an import, `hashlib.new`, `FileDigest`, the
//! fallback, or the eval loop handing the GIL to another thread), the unwind
//! meets Rust frames whose calls into the C API cannot unwind, and the process
//! aborts at exit. PyO3 parks a thread whose own `PyEval_RestoreThread` does
//! this; the calls back into Python are ours to make safe.
//!
//! The gate does it. At `atexit` time, while every thread still runs and
//! before finalization starts, [`close`] shuts it and waits until no other
//! thread is attached inside a native call. From then on a thread that
//! enters a native call parks for ever with the GIL released, and one that
//! comes back from a detached section (I/O, hashing) parks before it attaches
//! again: what CPython 3.14 does to every thread that wants the GIL back
//! during finalization, only a little earlier. (Parking in `pthread_exit`'s
//! unwind is not enough: on Debian's 3.9 and 3.11 builds a thread attaching
//! late in the exit crashed the process every time.)
//! CPython 3.14 and newer need no gate, so it is never shut there.
//!
//! Counters are sequentially consistent atomics, and every thread announces
//! itself before it looks at the gate while `close` shuts the gate before it
//! counts: with or without a GIL (free-threaded builds), a thread either sees
//! the gate shut or is counted by `close`.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// How long [`close`] waits for threads still inside Python code that a
/// native call made (a stuck `__fspath__`, say): past it, exit goes on.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

static CLOSED: AtomicBool = AtomicBool::new(false);
/// Threads inside a native call and attached to the interpreter.
static ATTACHED: AtomicUsize = AtomicUsize::new(0);
/// Threads between the end of a detached section and being attached again.
static LEAVING: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Native calls this thread is inside (a call back into Python may enter another).
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    /// True on the thread that shut the gate: it runs the rest of the exit.
    static CLOSER: Cell<bool> = const { Cell::new(false) };
}

/// Held for the whole of a native call; parks the thread if the gate is shut.
pub struct Section(());

impl Section {
    pub fn enter() -> Self {
        // Count this thread in before looking at the gate; `close` shuts the
        // gate before reading the count: one of the two sees the other. (With
        // a GIL the order would not matter; free-threaded builds run `close`
        // beside this.)
        if DEPTH.with(|depth| depth.replace(depth.get() + 1)) == 0 {
            ATTACHED.fetch_add(1, Ordering::SeqCst);
        }
        let section = Section(());
        park_if_closed();
        section
    }
}

impl Drop for Section {
    fn drop(&mut self) {
        if DEPTH.with(|depth| depth.replace(depth.get() - 1)) == 1 {
            ATTACHED.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// `py.detach(f)` for native calls: while detached this thread does not hold
/// the exit up. If the gate was shut while it was detached it never attaches
/// again (after the exit began the interpreter may already be gone: CPython
/// 3.8–3.13 clear the finalizing flag at the end, and a thread taking the GIL
/// after that touches freed state); if it was shut just as it attached, it
/// parks at once.
pub fn detach<T, F>(py: Python<'_>, f: F) -> T
where
    F: Send + FnOnce() -> T,
    T: Send,
{
    let counted = DEPTH.with(Cell::get) > 0;
    if counted {
        ATTACHED.fetch_sub(1, Ordering::SeqCst);
    }
    let value = py.detach(|| {
        let value = f();
        // Announce the attach before looking at the gate; `close` shuts the
        // gate before looking at LEAVING: one of the two sees the other.
        LEAVING.fetch_add(1, Ordering::SeqCst);
        if CLOSED.load(Ordering::SeqCst) && !CLOSER.with(Cell::get) {
            LEAVING.fetch_sub(1, Ordering::SeqCst);
            park_forever();
        }
        value
    });
    if counted {
        ATTACHED.fetch_add(1, Ordering::SeqCst);
    }
    LEAVING.fetch_sub(1, Ordering::SeqCst);
    if counted {
        park_if_closed();
    }
    value
}

fn park_if_closed() {
    if !CLOSED.load(Ordering::SeqCst) || CLOSER.with(Cell::get) {
        return;
    }
    if DEPTH.with(Cell::get) > 0 {
        ATTACHED.fetch_sub(1, Ordering::SeqCst);
    }
    // SAFETY: this thread is attached (every caller holds the GIL) and never
    // touches the interpreter again.
    unsafe { pyo3::ffi::PyEval_SaveThread() };
    park_forever();
}

/// Where a thread that met the exit stops. In the exit canary (a test-only
/// build) it aborts the process instead, as Debian's 3.9 and 3.11 did when such
/// a thread attached: each exit that a native call meets is then an abnormal
/// end, which the exit stress must see.
fn park_forever() -> ! {
    if cfg!(feature = "exit-canary") {
        std::process::abort();
    }
    loop {
        std::thread::park();
    }
}

/// `_close_for_shutdown()`, registered with `atexit` at import: shut the gate
/// and wait (with the GIL released) until no other thread is attached inside
/// a native call or on its way back from a detached section.
#[pyfunction]
#[pyo3(name = "_close_for_shutdown")]
pub fn close(py: Python<'_>) {
    CLOSER.with(|closer| closer.set(true));
    CLOSED.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    while (ATTACHED.load(Ordering::SeqCst) > DEPTH.with(Cell::get).min(1)
        || LEAVING.load(Ordering::SeqCst) > 0)
        && Instant::now() < deadline
    {
        py.detach(|| std::thread::sleep(Duration::from_micros(200)));
    }
}

/// In a fork child only the forking thread lives on: the parent's other
/// threads must not hold the child's exit up.
extern "C" fn forget_other_threads() {
    let own = usize::from(DEPTH.with(Cell::get) > 0);
    ATTACHED.store(own, Ordering::SeqCst);
    LEAVING.store(0, Ordering::SeqCst);
}

/// Register [`close`] with `atexit` where the interpreter needs it (< 3.14).
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    let version = py.version_info();
    if (version.major, version.minor) >= (3, 14) {
        return Ok(());
    }
    // SAFETY: the handler only stores to an atomic and reads a thread-local.
    let status = unsafe { libc::pthread_atfork(None, None, Some(forget_other_threads)) };
    if status != 0 {
        return Err(std::io::Error::from_raw_os_error(status).into());
    }
    py.import("atexit")?
        .call_method1("register", (module.getattr("_close_for_shutdown")?,))?;
    Ok(())
}
