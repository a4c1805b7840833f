//! An extended CONNECT tunnel (RFC 8441, `proxy::h2_server::tunnel`) carrying more than the
//! windows hold, both ways at once: the client's DATA has its window given back as the tunnel
//! reads it, the tunnel's writes wait for the client's WINDOW_UPDATEs, and each side's end of
//! stream closes the other. `upgrade.rs` covers the handshake with a few small messages.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{DEFAULT_WINDOW, MIB, first_difference};
use crate::fixture::manifest::{NS, backend, backend_ref, http_route, rule};
use crate::fixture::running::{HOST, TestGateway};
use crate::upgrade::upgrading_backend;

/// Byte `index` of what the client sends: lowercase letters with a prime period, which the
/// backend sends back upper-cased.
fn letter(index: usize) -> u8 {
    b'a' + u8::try_from(index % 23).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mebibyte_crosses_an_extended_connect_tunnel_each_way() -> anyhow::Result<()> {
    let (backend_addr, seen) = upgrading_backend().await?;
    let mut websocket = backend(NS, "ws", &[(backend_addr, 1)]);
    websocket["spec"]["appProtocol"] = json!("kubernetes.io/ws");
    let documents = vec![
        websocket,
        http_route("ws", &[], vec![rule(vec![], vec![backend_ref("ws")])]),
    ];
    let gateway = TestGateway::start(&documents).await?;

    // Windows at the protocol's default, not adapted: what the tunnel sends the client waits
    // for its WINDOW_UPDATEs.
    let tcp = TcpStream::connect(gateway.listener()).await?;
    let (mut sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(DEFAULT_WINDOW)
        .initial_connection_window_size(DEFAULT_WINDOW)
        .adaptive_window(false)
        .handshake(TokioIo::new(tcp))
        .await?;
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(Method::CONNECT)
        .uri(format!("http://{HOST}/chat"))
        .header("sec-websocket-version", "13")
        .body(Empty::<Bytes>::new())?;
    request
        .extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    let mut response = sender.send_request(request).await?;
    ensure!(
        response.status() == StatusCode::OK,
        "extended CONNECT: {}",
        response.status()
    );
    let head = tokio::time::timeout(Duration::from_secs(5), seen).await??;
    ensure!(
        head.to_ascii_lowercase().contains("upgrade: websocket"),
        "the backend saw {head}"
    );
    let tunnel = TokioIo::new(hyper::upgrade::on(&mut response).await?);
    let (mut reading, mut writing) = tokio::io::split(tunnel);

    let sent: Vec<u8> = (0..MIB).map(letter).collect();
    let writer = tokio::spawn(async move {
        for chunk in sent.chunks(10_000) {
            writing.write_all(chunk).await?;
        }
        // END_STREAM: the gateway closes the backend's side, which then closes its own.
        writing.shutdown().await?;
        anyhow::Ok(())
    });
    let mut received = Vec::with_capacity(MIB);
    tokio::time::timeout(Duration::from_secs(60), reading.read_to_end(&mut received))
        .await
        .with_context(|| "the tunnel stalled or did not end".to_owned())??;
    writer.await??;
    let expected: Vec<u8> = (0..MIB)
        .map(|index| letter(index).to_ascii_uppercase())
        .collect();
    ensure!(
        received == expected,
        "the tunnel's bytes changed on the way: {}",
        first_difference(&received, &expected)
    );
    Ok(())
}
