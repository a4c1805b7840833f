//! The end-to-end tests of Portcullis: one test binary that starts the real `portcullis` binary
//! from YAML fixtures and talks to it over real sockets, with real upstream servers started by
//! the tests.
//!
//! Each module covers one area of behaviour; [`fixture`] holds what they share (config
//! documents, a running gateway, polling with a deadline). Certificates come from
//! `testkit::pki`, misbehaving backends from `testkit::FaultyUpstream`.
//!
//! Tests that put timed load on the gateway (modules `balancing`, `breaker`, `reload`,
//! `resilience` and `weights`) run one at a time: nextest puts them in the `timed-load` test
//! group (`.config/nextest.toml`), and under plain `cargo test`, where every test of this binary
//! shares one process, each of them holds [`fixture::timed_load`] for its whole run.

mod fixture;

mod access;
mod backend_tls;
mod balancing;
mod breaker;
mod check_cli;
mod composition;
mod edge;
mod explain;
mod failures;
mod grpc;
mod h2_protocol;
mod h2_streams;
mod kubernetes;
mod l4_routes;
mod matching;
mod mirror_cors;
mod observability;
mod prometheus;
mod protocols;
mod reference_grant;
mod reload;
mod resilience;
mod service_ports;
mod session;
mod shutdown;
mod smuggling;
mod tls;
mod tls_route;
mod traces;
mod ui;
mod upgrade;
mod weights;
