//! Test support for Portcullis end-to-end tests and the conformance runner.
//!
//! Owns the pieces a test needs around the real gateway binary: an echo backend that speaks the Gateway API
//! conformance echo protocol ([`echo`]), TCP and UDP backends that speak echo-basic's TCP and UDP modes or plainly
//! echo bytes ([`tcp_echo`], [`udp_echo`]), an upstream that fails on purpose ([`faulty_upstream`]), throwaway
//! certificates and the Secrets that carry them ([`pki`]), a real `redis-server` ([`redis`]), a real OpenID
//! provider ([`oidc`]), a real Prometheus server ([`prometheus`]) and the metric names of a PromQL expression
//! ([`promql`]), a harness that spawns and supervises the `portcullis` process ([`gateway`]), small HTTP/1.1 and
//! h2c clients ([`client`]) and loopback port helpers ([`port`]).
//!
//! It deliberately holds no gateway logic and no assertions about gateway behaviour: tests decide what a
//! correct answer is. Nothing here is used by the data plane.

pub mod client;
pub mod echo;
pub mod faulty_upstream;
pub mod gateway;
pub mod oidc;
pub mod otlp;
pub mod pki;
pub mod port;
pub mod prometheus;
pub mod promql;
pub mod redis;
pub mod tcp_echo;
pub mod udp_echo;

pub use client::{HttpClient, TestResponse};
pub use echo::{EchoConfig, EchoMode, EchoReply, EchoServer, reserve_closed_port};
pub use faulty_upstream::{FaultyUpstream, UpstreamBehaviour};
pub use gateway::{GatewayProcess, TempConfigDir};
pub use oidc::{OidcProvider, OidcProviderConfig};
pub use port::{ClosedPort, free_port, wait_for_port};
pub use prometheus::PrometheusServer;
pub use redis::RedisServer;
pub use tcp_echo::{TcpEchoConfig, TcpEchoMode, TcpEchoReport, TcpEchoServer};
pub use udp_echo::{UdpEchoConfig, UdpEchoMode, UdpEchoReport, UdpEchoServer};
