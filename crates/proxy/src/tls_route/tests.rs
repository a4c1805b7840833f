//! Reading a ClientHello off a connection: piecewise arrival, early close, garbage, and the
//! bound on what a client can make the gateway buffer. Routing and forwarding are covered end
//! to end in `crates/portcullis/tests/e2e/tls_route.rs`.

use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::io::AsyncWriteExt;

use super::*;

fn client_hello(name: &str) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("default versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = ServerName::try_from(name.to_owned()).expect("DNS name");
    let mut client = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let mut bytes = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut bytes).expect("write to a Vec");
    }
    bytes
}

#[tokio::test]
async fn client_hello_arriving_in_pieces_is_buffered_whole() {
    let hello = client_hello("pieces.example.com");
    let (mut client, mut gateway) = tokio::io::duplex(64);
    let sent = hello.clone();
    let writer = tokio::spawn(async move {
        for chunk in sent.chunks(10) {
            client.write_all(chunk).await.expect("write");
            tokio::task::yield_now().await;
        }
        client // kept open: the reader must stop on a complete hello, not on EOF
    });
    let (buffered, sni) = read_client_hello(&mut gateway).await.expect("hello");
    assert_eq!(buffered, hello, "every byte read is kept for the replay");
    assert_eq!(sni.as_deref(), Some("pieces.example.com"));
    drop(writer.await.expect("writer"));
}

#[tokio::test]
async fn connection_closed_before_the_hello_is_complete_is_an_error() {
    let hello = client_hello("a.example.com");
    let mut truncated: &[u8] = &hello[..hello.len() / 2];
    let error = read_client_hello(&mut truncated)
        .await
        .expect_err("truncated");
    assert_eq!(error.result(), "invalid_client_hello");
}

#[tokio::test]
async fn garbage_is_refused_without_waiting_for_more() {
    let (mut client, mut gateway) = tokio::io::duplex(64);
    client
        .write_all(b"GET / HTTP/1.1\r\n")
        .await
        .expect("write");
    // The client stays connected: refusing must not depend on EOF.
    let error = read_client_hello(&mut gateway).await.expect_err("garbage");
    assert!(matches!(error, TunnelError::ClientHello(_)), "{error:?}");
    drop(client);
}

#[tokio::test]
async fn endless_fragments_stop_at_the_buffer_bound() {
    // A ClientHello announcing the largest size, then sent one byte per record: its records
    // alone exceed what the gateway buffers.
    let (mut client, mut gateway) = tokio::io::duplex(4096);
    let writer = tokio::spawn(async move {
        let max = u32::try_from(client_hello::MAX_CLIENT_HELLO).expect("small");
        let mut header = vec![1];
        header.extend_from_slice(&max.to_be_bytes()[1..]);
        for byte in header.into_iter().chain(std::iter::repeat(0)) {
            if client.write_all(&[22, 3, 1, 0, 1, byte]).await.is_err() {
                return; // the gateway gave up
            }
        }
    });
    let error = read_client_hello(&mut gateway).await.expect_err("bounded");
    assert!(
        matches!(error, TunnelError::ClientHello("ClientHello too large")),
        "{error:?}"
    );
    drop(gateway);
    writer.await.expect("writer");
}
