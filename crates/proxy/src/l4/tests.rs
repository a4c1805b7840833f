//! The relay (byte counts, half-close, idle timeout, drain) over real loopback sockets, and
//! the PROXY protocol headers read back by the parser our listeners use.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::*;

/// A connected pair of loopback sockets.
async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let (connected, accepted) = tokio::join!(TcpStream::connect(address), listener.accept());
    (connected.expect("connect"), accepted.expect("accept").0)
}

/// A client and a backend socket with a relay running between them (with an `idle` timeout,
/// never asked to stop): the relay's task gives its result once both sides are closed.
async fn relaying(
    idle: Option<Duration>,
) -> (TcpStream, TcpStream, tokio::task::JoinHandle<Relayed>) {
    let (client, mut client_side) = pair().await;
    let (mut upstream_side, backend) = pair().await;
    let task = tokio::spawn(async move {
        let (_stop, stopped) = watch::channel(false);
        relay(&mut client_side, &mut upstream_side, idle, stopped).await
    });
    (client, backend, task)
}

#[tokio::test]
async fn relay_counts_both_ways_and_passes_half_close_on() {
    let (mut client, mut backend, relaying) = relaying(None).await;
    client
        .write_all(b"hello backend")
        .await
        .expect("socket I/O");
    client.shutdown().await.expect("socket I/O");
    let mut received = Vec::new();
    // The client's end of stream reaches the backend as one.
    backend
        .read_to_end(&mut received)
        .await
        .expect("socket I/O");
    assert_eq!(received, b"hello backend");
    // The other direction still works after the half-close.
    backend.write_all(b"bye").await.expect("socket I/O");
    backend.shutdown().await.expect("socket I/O");
    let mut answer = Vec::new();
    client.read_to_end(&mut answer).await.expect("socket I/O");
    assert_eq!(answer, b"bye");
    let relayed = relaying.await.expect("socket I/O");
    assert_eq!(relayed.to_backend, 13);
    assert_eq!(relayed.to_client, 3);
    assert!(!relayed.idle);
}

#[tokio::test]
async fn idle_connections_are_closed_and_busy_ones_are_not() {
    let (mut client, mut backend, relaying) = relaying(Some(Duration::from_millis(200))).await;
    // Traffic every 100 ms for 600 ms keeps it open past the idle time.
    let mut echoed = [0u8; 1];
    for _ in 0..6 {
        client.write_all(b"x").await.expect("socket I/O");
        backend.read_exact(&mut echoed).await.expect("socket I/O");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!relaying.is_finished(), "closed while traffic flowed");
    // Then quiet: closed within 1.25 × idle (plus scheduling slack).
    let relayed = tokio::time::timeout(Duration::from_secs(2), relaying)
        .await
        .expect("the idle timeout closes the relay")
        .expect("relay task");
    assert!(relayed.idle);
    assert_eq!(relayed.to_backend, 6);
    let mut rest = Vec::new();
    assert_eq!(client.read_to_end(&mut rest).await.expect("read"), 0);
}

#[test]
fn proxy_headers_parse_back_to_the_client_address() {
    let client: SocketAddr = "192.0.2.7:40001".parse().expect("address");
    let local: SocketAddr = "127.0.0.1:9000".parse().expect("address");
    for version in [ProxyProtocolVersion::V1, ProxyProtocolVersion::V2] {
        let header = proxy_header(version, client, local);
        let parsed = ppp::HeaderResult::parse(&header);
        let source = match parsed {
            ppp::HeaderResult::V1(Ok(h)) => match h.addresses {
                ppp::v1::Addresses::Tcp4(a) => SocketAddr::from((a.source_address, a.source_port)),
                other => panic!("unexpected v1 addresses {other:?}"),
            },
            ppp::HeaderResult::V2(Ok(h)) => match h.addresses {
                ppp::v2::Addresses::IPv4(a) => SocketAddr::from((a.source_address, a.source_port)),
                other => panic!("unexpected v2 addresses {other:?}"),
            },
            other => panic!("{version:?} header does not parse: {other:?}"),
        };
        assert_eq!(source, client, "{version:?}");
    }
}

#[test]
fn mixed_families_are_sent_as_mapped_ipv6() {
    let client: SocketAddr = "192.0.2.7:40001".parse().expect("address");
    let local: SocketAddr = "[::1]:9000".parse().expect("address");
    let header = proxy_header(ProxyProtocolVersion::V2, client, local);
    match ppp::HeaderResult::parse(&header) {
        ppp::HeaderResult::V2(Ok(h)) => match h.addresses {
            ppp::v2::Addresses::IPv6(a) => {
                assert_eq!(
                    a.source_address.to_ipv4_mapped(),
                    Some([192, 0, 2, 7].into())
                );
                assert_eq!(a.source_port, 40001);
            }
            other => panic!("unexpected addresses {other:?}"),
        },
        other => panic!("does not parse: {other:?}"),
    }
}

#[tokio::test]
async fn a_bulk_transfer_arrives_whole_as_the_buffer_grows_and_shrinks() {
    let (mut client, mut backend, relaying) = relaying(None).await;
    // 8 MiB of a pattern (the buffer doubles to its maximum), then a few small writes (it
    // goes back to its start size), then the end of stream.
    let bulk: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
    let sending = async {
        client.write_all(&bulk).await.expect("bulk");
        for _ in 0..8 {
            client.write_all(b"tail").await.expect("tail");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        client.shutdown().await.expect("half-close");
    };
    let mut received = Vec::new();
    let receiving = backend.read_to_end(&mut received);
    let ((), read) = tokio::join!(sending, receiving);
    read.expect("read");
    assert_eq!(received.len(), bulk.len() + 32);
    assert!(
        received[..bulk.len()] == bulk[..],
        "bytes changed on the way"
    );
    assert!(received.ends_with(b"tail"));
    backend.shutdown().await.expect("close");
    let relayed = relaying.await.expect("relay task");
    assert_eq!(relayed.to_backend, (8 << 20) + 32);
}
