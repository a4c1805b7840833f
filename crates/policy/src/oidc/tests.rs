//! Unit tests of the request-side rules; the flows against a real provider are in
//! `crates/policy/tests/oidc_provider.rs`.
