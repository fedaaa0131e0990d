//! Memory readings of this process, from /proc.

/// A `kB` field of /proc/self/status (VmHWM, VmRSS).
pub(crate) fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Hands freed heap back to the OS, then resets VmHWM to the current RSS
/// (Linux ≥ 4.0): the next peak measures new growth, not the high-water
/// mark of earlier figures, nor memory freed and reused.
pub(crate) fn reset_peak() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: glibc's malloc_trim takes no pointers and is thread-safe.
        unsafe { malloc_trim(0) };
    }
    if std::fs::write("/proc/self/clear_refs", "5").is_err() {
        eprintln!("note: cannot reset the peak RSS; it covers the whole process");
    }
}
