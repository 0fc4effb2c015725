//! The native module's own call counters (`_native._stats()`).
//!
//! The dispatcher binds `sky_rs.<fn>` directly to the native builtin, so the
//! fast path has no Python frame to count in; every call is one relaxed
//! atomic increment here.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::functions::Function;

/// Why a native call was answered by `sky_rs.fallback` instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackReason {
    /// A Rust panic was caught.
    Panic,
    /// The Rust path met a condition it cannot answer (not a typed error).
    InternalError,
}

impl FallbackReason {
    pub const ALL: [FallbackReason; 2] = [FallbackReason::Panic, FallbackReason::InternalError];

    pub const fn label(self) -> &'static str {
        match self {
            FallbackReason::Panic => "panic",
            FallbackReason::InternalError => "internal-error",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

const FUNCTIONS: usize = Function::ALL.len();
const REASONS: usize = FallbackReason::ALL.len();

#[allow(clippy::declare_interior_mutable_const)] // only used as an array initializer
const ZERO: AtomicU64 = AtomicU64::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const ZERO_ROW: [AtomicU64; REASONS] = [ZERO; REASONS];

static ANSWERED_BY_RUST: [AtomicU64; FUNCTIONS] = [ZERO; FUNCTIONS];
static FALLBACKS: [[AtomicU64; REASONS]; FUNCTIONS] = [ZERO_ROW; FUNCTIONS];

/// A call answered by Rust (a value or a typed error).
#[inline]
pub fn count_rust(function: Function) {
    ANSWERED_BY_RUST[function.index()].fetch_add(1, Ordering::Relaxed);
}

/// A call handed to `sky_rs.fallback`.
pub fn count_fallback(function: Function, reason: FallbackReason) {
    FALLBACKS[function.index()][reason.index()].fetch_add(1, Ordering::Relaxed);
}

/// One function's counters.
pub struct FunctionStats {
    pub function: Function,
    /// Calls answered by Rust (values and typed errors).
    pub rust: u64,
    /// Calls answered by `sky_rs.fallback`, by reason; zero counts omitted.
    pub fallbacks: Vec<(FallbackReason, u64)>,
}

/// Every function's counters, in the order of the contract.
pub fn snapshot() -> Vec<FunctionStats> {
    Function::ALL
        .into_iter()
        .map(|function| {
            let row = &FALLBACKS[function.index()];
            let fallbacks = FallbackReason::ALL
                .into_iter()
                .map(|reason| (reason, row[reason.index()].load(Ordering::Relaxed)))
                .filter(|&(_, count)| count > 0)
                .collect();
            FunctionStats {
                function,
                rust: ANSWERED_BY_RUST[function.index()].load(Ordering::Relaxed),
                fallbacks,
            }
        })
        .collect()
}

/// Zero every counter.
pub fn reset() {
    for counter in &ANSWERED_BY_RUST {
        counter.store(0, Ordering::Relaxed);
    }
    for row in &FALLBACKS {
        for counter in row {
            counter.store(0, Ordering::Relaxed);
        }
    }
}
