//! The process's memory: what it keeps resident and when it gives memory back.
//!
//! - [`allocator`]: mimalloc as the global allocator, and the upkeep that makes a quiet gateway
//!   return what it freed (idle connections hibernate: `proxy/src/idle.rs`).
//! - [`start_up`]: the code that only loading the config ran leaves the resident set once the
//!   first config is applied; transparent huge pages are turned off.
//!
//! What and why, with the measurements: docs/architecture/performance.md, "Memory".
//!
//! This is the workspace's one crate with `unsafe` code (the global allocator's calls into
//! mimalloc, and two calls without Rust-side preconditions, each with its `SAFETY:` comment
//! and a test): `unsafe_code` is denied here rather than forbidden, and allowed at those
//! places.

pub mod allocator;
pub mod start_up;

pub use allocator::{Allocator, on_thread_park, upkeep};
pub use start_up::{disable_huge_pages, release_control_plane_code};

/// A `/proc/self/status` figure in KiB (`RssAnon`, `RssFile`, ...), for the tests.
#[cfg(test)]
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc is readable");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("/proc/self/status has {field}"))
}
