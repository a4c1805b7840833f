//! The UDP echo backend over real loopback sockets.

use std::time::Duration;

use tokio::net::UdpSocket;

use super::{UdpEchoConfig, UdpEchoServer, exchange, identify};

/// How long any single answer in these tests may take.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn conformance_mode_answers_with_the_envelope() {
    let mut config = UdpEchoConfig::new("udp-backend-v1-abc-xyz", "infra");
    config.service = "udp-backend-v1".to_owned();
    let server = UdpEchoServer::start(config).await.expect("starts");
    let report = identify(
        server.addr(),
        b"gateway-api-conformance-udp-echo",
        ANSWER_TIMEOUT,
    )
    .await
    .expect("answers");
    assert_eq!(report.request, "gateway-api-conformance-udp-echo");
    assert_eq!(report.pod, "udp-backend-v1-abc-xyz");
    assert_eq!(report.namespace, "infra");
    assert_eq!(report.service, "udp-backend-v1");
    assert_eq!(report.ingress, "");
    assert_eq!(server.datagrams(), 1);
}

#[tokio::test]
async fn byte_mode_returns_the_datagram_unchanged() {
    let server = UdpEchoServer::start(UdpEchoConfig::bytes())
        .await
        .expect("starts");
    let payload: Vec<u8> = (0..=255).collect();
    let answer = exchange(server.addr(), &payload, ANSWER_TIMEOUT)
        .await
        .expect("answers");
    assert_eq!(answer, payload);
}

#[tokio::test]
async fn peers_lists_each_client_socket_once() {
    let server = UdpEchoServer::start(UdpEchoConfig::bytes())
        .await
        .expect("starts");
    let first = UdpSocket::bind("127.0.0.1:0").await.expect("binds");
    let second = UdpSocket::bind("127.0.0.1:0").await.expect("binds");
    let mut buffer = [0; 16];
    for socket in [&first, &first, &second] {
        socket.send_to(b"x", server.addr()).await.expect("sends");
        tokio::time::timeout(ANSWER_TIMEOUT, socket.recv_from(&mut buffer))
            .await
            .expect("answers in time")
            .expect("receives");
    }
    let expected = {
        let mut both = vec![
            first.local_addr().expect("bound"),
            second.local_addr().expect("bound"),
        ];
        both.sort();
        both
    };
    assert_eq!(server.peers(), expected);
    assert_eq!(server.datagrams(), 3);
}

#[tokio::test]
async fn exchange_fails_when_nothing_answers() {
    let server = UdpEchoServer::start(UdpEchoConfig::bytes())
        .await
        .expect("starts");
    let addr = server.addr();
    server.shutdown().await;
    let error = exchange(addr, b"x", Duration::from_millis(300))
        .await
        .expect_err("a closed port does not answer");
    assert!(error.to_string().contains(&addr.to_string()), "{error:#}");
}
