//! Our HTTP/2 server codec (`proxy::h2_server`, HPACK in `crates/hpack`) end to end: what the
//! `h2` crate used to guarantee on the gateway's client side, pinned down now that the codec is
//! ours.
//!
//! Two kinds of client talk to the real gateway. Well-behaved traffic comes from the `h2`
//! crate's client with the protocol's default windows (65,535 bytes), so every large body
//! waits for WINDOW_UPDATEs ([`h2_client`]). Protocol violations, floods and exact flow-control
//! accounting come from a client that writes frames by hand and reads them back one by one
//! ([`raw`]), so the tests assert the exact frame and error code that comes back (RFC 9113
//! §5.4, §6, §7). Behind the gateway runs [`backend::BodyBackend`], which serves pattern bytes,
//! echoes bodies and records what reached it (heads, whole bodies, trailers); the `h2spec`
//! module runs the h2spec conformance suite against the gateway.
//!
//! What is deliberately not here: HTTP/2 to upstreams (the `upstream` crate's client; see
//! `protocols.rs` and `grpc.rs`), TLS with ALPN (`tls.rs`), and the connection guard's PING,
//! SETTINGS and rapid-reset floods (`edge/floods.rs`).

mod backend;
mod control;
mod drain;
mod flow_control;
mod h2spec;
mod raw;
mod responses;
mod streams;
mod trailers;
mod tunnel;
mod violations;

use std::net::SocketAddr;

use anyhow::Context as _;
use bytes::Bytes;
use http::Request;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::fixture::manifest::{NS, endpoint_slice, http_route, rule, service, service_ref};
use crate::fixture::running::{ConfigDir, HOST, TestGateway};

/// The flow-control window both sides start with (RFC 9113 §6.9.2), and the one the `h2`
/// client of these tests keeps for its streams and its connection.
const DEFAULT_WINDOW: u32 = 65_535;

/// The largest frame either side may send without a SETTINGS_MAX_FRAME_SIZE (RFC 9113 §4.2).
const MAX_FRAME_SIZE: usize = 16_384;

/// A mebibyte: the size of the large bodies.
const MIB: usize = 1024 * 1024;

/// The Service (and route) name of the [`backend::BodyBackend`] behind the gateway.
const BODY_SERVICE: &str = "body";

/// How the gateway speaks to the backend: HTTP/1.1, or h2c (`appProtocol:
/// kubernetes.io/h2c`), which carries trailers both ways.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Upstream {
    Http1,
    H2c,
}

/// The documents of a route sending every path to `backend` as Service [`BODY_SERVICE`].
fn body_route(backend: SocketAddr, upstream: Upstream) -> Vec<Value> {
    let app_protocol = (upstream == Upstream::H2c).then_some("kubernetes.io/h2c");
    vec![
        service(NS, BODY_SERVICE, app_protocol),
        endpoint_slice(NS, BODY_SERVICE, "body-1", backend),
        http_route(
            BODY_SERVICE,
            &[],
            vec![rule(vec![], vec![service_ref(BODY_SERVICE)])],
        ),
    ]
}

/// A gateway whose every path goes to `backend`.
async fn gateway_to(backend: SocketAddr, upstream: Upstream) -> anyhow::Result<TestGateway> {
    TestGateway::start(&body_route(backend, upstream)).await
}

/// A gateway serving `documents` with a ClientTrafficPolicy of `spec` on its Gateway.
async fn gateway_with_client_policy(
    documents: &[Value],
    mut spec: Value,
) -> anyhow::Result<TestGateway> {
    spec["targetRefs"] = json!([{
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "name": crate::fixture::manifest::GATEWAY,
    }]);
    let policy = json!({
        "apiVersion": "portcullis.dev/v1alpha1",
        "kind": "ClientTrafficPolicy",
        "metadata": {"name": "h2-limits", "namespace": NS},
        "spec": spec,
    });
    let config = ConfigDir::new()?;
    config.write_gateway(None)?;
    config.write("config.yaml", documents)?;
    config.write("policy.yaml", &[policy])?;
    config.start(&[]).await
}

/// A connection of the `h2` crate's client to `gateway`, whose stream and connection windows
/// stay at the protocol's default: a body larger than 64 KiB only flows as the client gives
/// its window back. The connection's task ends with the test's runtime.
async fn h2_client(gateway: &TestGateway) -> anyhow::Result<h2::client::SendRequest<Bytes>> {
    let tcp = TcpStream::connect(gateway.listener()).await?;
    let (sender, connection) = h2::client::Builder::new()
        .initial_window_size(DEFAULT_WINDOW)
        .initial_connection_window_size(DEFAULT_WINDOW)
        .handshake::<_, Bytes>(tcp)
        .await
        .context("HTTP/2 handshake of the h2 client with the gateway")?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            // The streams see the same error; this only leaves a trace in the test's output.
            eprintln!("h2 client connection ended: {error}");
        }
    });
    Ok(sender.ready().await?)
}

/// A request head for the `h2` client: `method path` on [`HOST`].
fn request(method: http::Method, path: &str) -> anyhow::Result<Request<()>> {
    Ok(Request::builder()
        .method(method)
        .uri(format!("http://{HOST}{path}"))
        .body(())?)
}

/// Byte `index` of a pattern body: period 251 (prime), so a dropped, repeated or reordered
/// frame changes the bytes wherever it happens. `seed` makes each stream's body its own.
fn pattern_byte(seed: usize, index: usize) -> u8 {
    u8::try_from((index + seed * 31) % 251).unwrap_or_default()
}

/// The first `len` bytes of the pattern of `seed`.
fn pattern(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|index| pattern_byte(seed, index)).collect()
}

/// Where two byte strings first differ, for messages that say more than "not equal".
fn first_difference(received: &[u8], expected: &[u8]) -> String {
    match received.iter().zip(expected).position(|(a, b)| a != b) {
        Some(at) => format!(
            "byte {at} differs ({} instead of {})",
            received[at], expected[at]
        ),
        None => format!(
            "{} bytes received, {} expected",
            received.len(),
            expected.len()
        ),
    }
}
