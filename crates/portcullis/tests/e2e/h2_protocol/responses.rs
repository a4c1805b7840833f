//! Response heads as the gateway writes them (RFC 9113 §4.3, §6.10, §8.2.2; RFC 9110 §6.6.1,
//! §9.3.2): a head larger than a frame over CONTINUATION frames within the client's
//! SETTINGS_MAX_FRAME_SIZE, a `date` on every response, no connection-specific field even when
//! a filter adds one, and a HEAD response without body bytes.

use anyhow::{Context as _, ensure};
use serde_json::json;

use super::backend::BodyBackend;
use super::raw::{Block, RawConnection, flag, headers, kind, setting, split_block};
use super::{MAX_FRAME_SIZE, Upstream, gateway_to};
use crate::fixture::manifest::{NS, http_route, path_match, rule, service_backend, service_ref};
use crate::fixture::running::{Echoes, TestGateway};

/// A response header value larger than two default frames.
const LARGE_HEAD: usize = 40 * 1024;

/// Reads the rest of a response whose head was read: DATA until END_STREAM.
async fn skip_body(connection: &mut RawConnection, stream: u32) -> anyhow::Result<()> {
    loop {
        let frame = connection.next_on_stream(stream).await?;
        ensure!(
            frame.kind == kind::DATA,
            "{frame} in the body on stream {stream}"
        );
        if frame.has(flag::END_STREAM) {
            return Ok(());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_head_larger_than_a_frame_goes_over_continuation_frames() -> anyhow::Result<()> {
    let echoes = Echoes::start(&["echo"]).await?;
    let mut documents = service_backend(NS, "echo", &[echoes.addr("echo")]);
    documents.push(http_route(
        "echo",
        &[],
        vec![rule(vec![], vec![service_ref("echo")])],
    ));
    let gateway = TestGateway::start(&documents).await?;
    let large = "h".repeat(LARGE_HEAD);
    // The echo backend copies `x-echo-set-header` entries into its response head.
    let request = Block::request("GET", "/large-head")
        .field("x-echo-set-header", &format!("x-large-head:{large}"));

    // The default SETTINGS_MAX_FRAME_SIZE: HEADERS and CONTINUATION frames of at most 16,384
    // bytes, back to back, END_HEADERS on the last only.
    let mut connection = RawConnection::open(gateway.listener()).await?;
    connection
        .send(&split_block(1, request.bytes(), MAX_FRAME_SIZE, true, true))
        .await?;
    let (fields, _, frames) = connection.header_block_frames(1).await?;
    let layout: Vec<String> = frames.iter().map(ToString::to_string).collect();
    let last = frames.len() - 1;
    let well_formed = frames.len() >= 3
        && frames.iter().enumerate().all(|(index, frame)| {
            let kind_ok = (index == 0) == (frame.kind == kind::HEADERS)
                && (index == 0 || frame.kind == kind::CONTINUATION);
            kind_ok
                && frame.length <= MAX_FRAME_SIZE
                && frame.has(flag::END_HEADERS) == (index == last)
        });
    ensure!(
        well_formed,
        "a {LARGE_HEAD}-byte head in frames of at most {MAX_FRAME_SIZE} bytes (RFC 9113 §4.2, \
         §6.10): {layout:?}"
    );
    ensure!(
        fields
            .iter()
            .any(|(name, value)| name == "x-large-head" && *value == large),
        "the large field did not come through whole"
    );
    skip_body(&mut connection, 1).await?;

    // A client that takes 64 KiB frames gets the head in one.
    let mut connection =
        RawConnection::open_with(gateway.listener(), &[(setting::MAX_FRAME_SIZE, 65_536)]).await?;
    // The gateway's own limit stays 16,384: the request still comes in pieces.
    connection
        .send(&split_block(1, request.bytes(), MAX_FRAME_SIZE, true, true))
        .await?;
    let (fields, _, frames) = connection.header_block_frames(1).await?;
    ensure!(
        frames.len() == 1 && frames[0].length > LARGE_HEAD && frames[0].has(flag::END_HEADERS),
        "with SETTINGS_MAX_FRAME_SIZE 65,536 the head fits one HEADERS: {:?}",
        frames.iter().map(ToString::to_string).collect::<Vec<_>>()
    );
    ensure!(
        fields
            .iter()
            .any(|(name, value)| name == "x-large-head" && *value == large),
        "the large field did not come through whole in one frame"
    );
    skip_body(&mut connection, 1).await
}

/// Response fields HTTP/2 forbids (RFC 9113 §8.2.2), and one that `connection` names.
const CONNECTION_SPECIFIC: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "upgrade",
    "transfer-encoding",
    "x-listed",
];

/// An IMF-fixdate (RFC 9110 §5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
fn is_http_date(value: &str) -> bool {
    value.len() == 29 && value.ends_with(" GMT") && value.as_bytes()[3] == b','
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_carry_a_date_and_no_connection_specific_fields() -> anyhow::Result<()> {
    let echoes = Echoes::start(&["echo"]).await?;
    let mut documents = service_backend(NS, "echo", &[echoes.addr("echo")]);
    // A filter can add what the upstream's response lost on the way (`forward` strips
    // hop-by-hop fields): the HTTP/2 server must still leave them out.
    let mut filtered = rule(
        vec![path_match("PathPrefix", "/filtered")],
        vec![service_ref("echo")],
    );
    filtered["filters"] = json!([{
        "type": "ResponseHeaderModifier",
        "responseHeaderModifier": {"add": [
            {"name": "connection", "value": "x-listed"},
            {"name": "x-listed", "value": "1"},
            {"name": "keep-alive", "value": "timeout=5"},
            {"name": "proxy-connection", "value": "keep-alive"},
            {"name": "upgrade", "value": "h2c"},
            {"name": "transfer-encoding", "value": "chunked"},
            {"name": "x-kept", "value": "yes"},
        ]},
    }]);
    documents.push(http_route("echo", &[], vec![filtered]));
    let gateway = TestGateway::start(&documents).await?;
    let mut connection = RawConnection::open(gateway.listener()).await?;

    connection
        .send(&headers(1, &Block::request("GET", "/filtered"), true))
        .await?;
    let response = connection.response(1).await?;
    ensure!(response.status == 200, "GET /filtered: {}", response.status);
    let leaked: Vec<&(String, String)> = response
        .headers
        .iter()
        .filter(|(name, _)| CONNECTION_SPECIFIC.contains(&name.as_str()))
        .collect();
    ensure!(
        leaked.is_empty(),
        "connection-specific fields in an HTTP/2 response (RFC 9113 §8.2.2): {leaked:?}"
    );
    ensure!(
        response.header("x-kept") == Some("yes"),
        "the filter's other field is gone: {:?}",
        response.headers
    );
    ensure!(
        response.header("date").is_some_and(is_http_date),
        "a forwarded response's date: {:?}",
        response.header("date")
    );

    // The gateway's own answer (no rule matches) gets a date too (RFC 9110 §6.6.1).
    connection
        .send(&headers(3, &Block::request("GET", "/unrouted"), true))
        .await?;
    let response = connection.response(3).await?;
    ensure!(response.status == 404, "GET /unrouted: {}", response.status);
    ensure!(
        response.header("date").is_some_and(is_http_date),
        "the gateway's own response has no date: {:?}",
        response.headers
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_response_ends_without_body_bytes_and_keeps_its_length() -> anyhow::Result<()> {
    let backend = BodyBackend::start().await?;
    let gateway = gateway_to(backend.addr(), Upstream::Http1).await?;
    let mut connection = RawConnection::open(gateway.listener()).await?;
    connection
        .send(&headers(
            1,
            &Block::request("HEAD", "/bytes?size=1000"),
            true,
        ))
        .await?;
    let response = connection.response(1).await.context("HEAD /bytes")?;
    ensure!(response.status == 200, "HEAD: {}", response.status);
    ensure!(
        response.body.is_empty(),
        "a HEAD response carried {} body bytes (RFC 9110 §9.3.2)",
        response.body.len()
    );
    ensure!(
        response.header("content-length") == Some("1000"),
        "a HEAD response keeps the length a GET would have: {:?}",
        response.headers
    );
    Ok(())
}
