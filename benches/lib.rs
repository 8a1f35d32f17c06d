//! memstore's benchmarks (`cargo bench` in this folder; see BENCHMARKS.md at the crate root).
//! The code lives in the bench targets; this library holds only what several of them read.

/// The allocator the bench binaries' stores use: each binary that takes `--features mimalloc`
/// sets mimalloc as its global allocator.
pub const ALLOCATOR: &str = if cfg!(feature = "mimalloc") {
    "mimalloc"
} else {
    "the system allocator"
};

/// Resident set size of this process, in bytes (`/proc/self/statm`; 0 off Linux).
pub fn rss() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = s
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// The peak resident set size of this process so far, in bytes (`VmHWM` in
/// `/proc/self/status`; 0 off Linux).
pub fn peak_rss() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}
