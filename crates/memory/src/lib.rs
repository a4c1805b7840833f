//! The process's memory: what it keeps resident and when it gives memory back.
//!
//! - [`allocator`]: mimalloc as the global allocator, and the upkeep that makes a quiet gateway
//!   return what it freed (idle connections hibernate: `proxy/src/idle.rs`).
//! - [`start_up`]: the code that only loading the config ran leaves the resident set once the
//!   first config is applied; transparent huge pages are turned off.
//!
//! What and why, with the measurements: docs/architecture/performance.md, "Memory".
//!
//! This is the workspace's one crate with `unsafe` code (two calls without Rust-side
//! preconditions, each with its `SAFETY:` comment and a test): `unsafe_code` is denied here
//! rather than forbidden, and allowed at those two places.

pub mod allocator;
pub mod start_up;

pub use allocator::{Allocator, on_thread_park, upkeep};
pub use start_up::{disable_huge_pages, release_start_up_code};
