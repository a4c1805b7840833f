//! The L4 client side against real echo servers on loopback (no gateway in between): what passes, and that
//! a wrong backend, an answer where none is wanted, or silence where an answer is wanted fails.

use std::net::{Ipv4Addr, SocketAddr};

use serde_json::{Value, json};
use testkit::{TcpEchoConfig, TcpEchoServer, UdpEchoConfig, UdpEchoServer};

use super::{expect_closed, expect_dns_reply, expect_silence, expect_tcp_echo, expect_udp_echo};
use crate::cases::CaseSpec;
use crate::coredns::CorednsServer;

/// A case from its `cases.json` form.
fn case(value: Value) -> CaseSpec {
    serde_json::from_value(value).expect("a valid case")
}

/// A TCP echo for pod `<backend>-abc-xyz` in `infra`.
async fn tcp_backend(backend: &str) -> TcpEchoServer {
    TcpEchoServer::start(TcpEchoConfig::new(format!("{backend}-abc-xyz"), "infra"))
        .await
        .expect("starts")
}

/// A UDP echo for pod `<backend>-abc-xyz` in `infra`, service `<backend>`.
async fn udp_backend(backend: &str) -> UdpEchoServer {
    let mut config = UdpEchoConfig::new(format!("{backend}-abc-xyz"), "infra");
    config.service = backend.to_owned();
    UdpEchoServer::start(config).await.expect("starts")
}

/// A loopback port nothing listens on (TCP and, almost surely, UDP).
fn closed_port() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, testkit::free_port()))
}

#[tokio::test]
async fn a_tcp_case_passes_for_its_backend_and_samples() {
    let server = tcp_backend("tcp-echo-one").await;
    let spec = case(
        json!({"exchange": "tcp", "backend": "tcp-echo-one", "namespace": "infra", "samples": 5}),
    );
    assert_eq!(expect_tcp_echo(&spec, server.addr()).await, Ok(()));
    assert_eq!(server.connections(), 6, "one exchange and five samples");
}

#[tokio::test]
async fn a_tcp_case_fails_on_another_backend_or_namespace() {
    let server = tcp_backend("tcp-echo-two").await;
    let other_backend =
        case(json!({"exchange": "tcp", "backend": "tcp-echo-one", "namespace": "infra"}));
    let failure = expect_tcp_echo(&other_backend, server.addr())
        .await
        .expect_err("tcp-echo-two is not tcp-echo-one");
    assert!(
        failure.contains("does not start with tcp-echo-one-"),
        "{failure}"
    );
    let other_namespace =
        case(json!({"exchange": "tcp", "backend": "tcp-echo-two", "namespace": "web"}));
    assert!(
        expect_tcp_echo(&other_namespace, server.addr())
            .await
            .is_err()
    );
    // A backend name that is only a prefix of the pod's deployment does not match either: the suite checks
    // `<backend>-`.
    let prefix = case(json!({"exchange": "tcp", "backend": "tcp-echo", "namespace": "infra"}));
    assert_eq!(
        expect_tcp_echo(&prefix, server.addr()).await,
        Ok(()),
        "tcp-echo-two-... starts with tcp-echo-"
    );
}

#[tokio::test]
async fn closed_passes_for_a_refused_connection_and_fails_for_an_answer() {
    assert_eq!(expect_closed(closed_port()).await, Ok(()));
    let server = tcp_backend("tcp-echo-one").await;
    let failure = expect_closed(server.addr())
        .await
        .expect_err("the echo answers");
    assert!(failure.contains("answered"), "{failure}");
}

#[tokio::test]
async fn a_udp_case_checks_service_namespace_and_samples() {
    let server = udp_backend("udp-echo-by-port").await;
    let good = case(
        json!({"exchange": "udp", "service": "udp-echo-by-port", "namespace": "infra",
                           "backend": "udp-echo-by-port", "samples": 3}),
    );
    assert_eq!(expect_udp_echo(&good, server.addr()).await, Ok(()));
    let wrong_backend =
        case(json!({"exchange": "udp", "backend": "udp-attach-backend-1", "samples": 3}));
    let failure = expect_udp_echo(&wrong_backend, server.addr())
        .await
        .expect_err("another backend answers");
    assert!(failure.contains("unexpected backend"), "{failure}");
}

#[tokio::test]
async fn silence_passes_for_a_closed_port_and_fails_for_an_echo() {
    assert_eq!(expect_silence(closed_port(), b"x").await, Ok(()));
    let server = udp_backend("udp-backend-v1").await;
    assert!(expect_silence(server.addr(), b"x").await.is_err());
}

#[tokio::test]
async fn a_dns_case_passes_against_the_emulated_coredns() {
    let server = CorednsServer::start(Ipv4Addr::LOCALHOST)
        .await
        .expect("starts");
    let spec = case(json!({"exchange": "dns", "payload": "foo.bar.com."}));
    assert_eq!(expect_dns_reply(&spec, server.addr()).await, Ok(()));
}
