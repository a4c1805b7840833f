//! The property checks behind the fuzz targets in `fuzz/`, one function per target.
//!
//! Each function takes the raw bytes libFuzzer (or a corpus file) supplies, runs one parser or
//! matcher of the gateway on them and panics if an invariant does not hold. The cargo-fuzz
//! binaries in `fuzz/fuzz_targets/` only call these functions, so the same checks replay the
//! checked-in corpora on stable Rust under `cargo test` (`tests/corpus.rs`), without libFuzzer
//! or sanitizers. `docs/fuzzing.md` lists what each target checks.
//!
//! This crate owns the checks, the naive reference router and a reader of HTTP/2 frames of its
//! own (the server's output is not read with the server's code); it changes nothing in the
//! crates it tests and is not used by the gateway.

mod client_hello;
mod config_yaml;
mod h2_server;
mod hpack_decode;
mod path_normalize;
mod route_table;

pub use client_hello::client_hello;
pub use config_yaml::config_yaml;
pub use h2_server::h2_server;
pub use hpack_decode::{SEPARATOR as HPACK_SEPARATOR, hpack_decode};
pub use path_normalize::path_normalize;
pub use route_table::route_table;

/// A property check: panics when an invariant does not hold for the input bytes.
pub type Check = fn(&[u8]);

/// Every target by name, as `fuzz/fuzz_targets/` and `fuzz/corpus/` name them.
pub const TARGETS: &[(&str, Check)] = &[
    ("client_hello", client_hello),
    ("path_normalize", path_normalize),
    ("route_table", route_table),
    ("config_yaml", config_yaml),
    ("hpack_decode", hpack_decode),
    ("h2_server", h2_server),
];
