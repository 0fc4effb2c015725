//! The twelve public functions, as the native counters know them.

/// One of the twelve functions of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    ReadLastNLines,
    HashFile,
    FindFreePort,
    Base36Encode,
    FormatFloat,
    TruncateLongString,
    GetCpuCount,
    GetMemSizeGb,
    GetParallelThreads,
    IsProcessAlive,
    GetMaxWorkersForFileMounts,
    EstimateFdForDirectory,
}

impl Function {
    /// Every function, in the order of the contract.
    pub const ALL: [Function; 12] = [
        Function::ReadLastNLines,
        Function::HashFile,
        Function::FindFreePort,
        Function::Base36Encode,
        Function::FormatFloat,
        Function::TruncateLongString,
        Function::GetCpuCount,
        Function::GetMemSizeGb,
        Function::GetParallelThreads,
        Function::IsProcessAlive,
        Function::GetMaxWorkersForFileMounts,
        Function::EstimateFdForDirectory,
    ];

    /// Its Python name (also its name in `sky_rs.fallback`).
    pub const fn name(self) -> &'static str {
        match self {
            Function::ReadLastNLines => "read_last_n_lines",
            Function::HashFile => "hash_file",
            Function::FindFreePort => "find_free_port",
            Function::Base36Encode => "base36_encode",
            Function::FormatFloat => "format_float",
            Function::TruncateLongString => "truncate_long_string",
            Function::GetCpuCount => "get_cpu_count",
            Function::GetMemSizeGb => "get_mem_size_gb",
            Function::GetParallelThreads => "get_parallel_threads",
            Function::IsProcessAlive => "is_process_alive",
            Function::GetMaxWorkersForFileMounts => "get_max_workers_for_file_mounts",
            Function::EstimateFdForDirectory => "estimate_fd_for_directory",
        }
    }

    /// Position in [`Function::ALL`], for counter arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The function called `name` (used to arm test faults).
    #[cfg(feature = "fault-injection")]
    pub fn from_name(name: &str) -> Option<Function> {
        Function::ALL
            .into_iter()
            .find(|function| function.name() == name)
    }
}
