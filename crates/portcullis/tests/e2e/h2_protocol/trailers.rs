//! Trailers both ways (RFC 9113 §8.1): a client's request trailers after a body larger than
//! the gateway's stream window reach an h2c upstream, and an upstream's response trailers
//! reach the client after the whole flow-controlled body. `grpc.rs` covers `grpc-status`
//! trailers of small GRPCRoute answers; these are HTTPRoute bodies that have to wait for
//! WINDOW_UPDATEs before their trailers may go.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::backend::{BodyBackend, fnv};
use super::raw::{Block, RawConnection, headers};
use super::{Upstream, first_difference, gateway_to, h2_client, pattern, request};

/// Larger than both windows on the way (64 KiB).
const BODY_BYTES: usize = 200 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_trailers_after_a_long_body_reach_an_h2c_upstream() -> anyhow::Result<()> {
    let backend = BodyBackend::start().await?;
    let gateway = gateway_to(backend.addr(), Upstream::H2c).await?;
    let mut client = h2_client(&gateway).await?;

    let payload = pattern(9, BODY_BYTES);
    let checksum = format!("{:016x}", fnv(&payload));
    let (response, mut upload) =
        client.send_request(request(Method::POST, "/upload/trailers")?, false)?;
    upload.send_data(Bytes::from(payload.clone()), false)?;
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", HeaderValue::from_str(&checksum)?);
    trailers.insert("x-request-trailer", HeaderValue::from_static("sent last"));
    upload.send_trailers(trailers)?;

    let response = tokio::time::timeout(Duration::from_secs(30), response)
        .await
        .context("no answer to the upload")??;
    ensure!(
        response.status() == StatusCode::OK,
        "the upload was answered {}",
        response.status()
    );
    let arrived = backend.wait_for_outcome("/upload/trailers").await?;
    ensure!(
        arrived.is_complete() && arrived.received == BODY_BYTES && arrived.hash == fnv(&payload),
        "the body before the trailers arrived as {arrived:?}"
    );
    let seen = arrived
        .trailers
        .context("the request's trailers did not reach the upstream")?;
    ensure!(
        seen.get("x-checksum").map(HeaderValue::as_bytes) == Some(checksum.as_bytes())
            && seen.get("x-request-trailer").map(HeaderValue::as_bytes) == Some(&b"sent last"[..]),
        "the upstream saw trailers {seen:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_trailers_follow_the_whole_flow_controlled_body() -> anyhow::Result<()> {
    let backend = BodyBackend::start().await?;
    let gateway = gateway_to(backend.addr(), Upstream::H2c).await?;
    let mut client = h2_client(&gateway).await?;

    let path = format!("/bytes?size={BODY_BYTES}&trailers=1");
    let (response, _) = client.send_request(request(Method::GET, &path)?, true)?;
    let response = tokio::time::timeout(Duration::from_secs(30), response)
        .await
        .context("no response head")??;
    ensure!(
        response.status() == StatusCode::OK,
        "GET {path}: {}",
        response.status()
    );
    let mut body = response.into_body();
    let reading = async {
        let mut received = Vec::with_capacity(BODY_BYTES);
        while let Some(chunk) = body.data().await {
            let chunk = chunk?;
            received.extend_from_slice(&chunk);
            body.flow_control().release_capacity(chunk.len())?;
        }
        // The h2 client takes a HEADERS after DATA as the trailers, and fails the stream on a
        // DATA after them or on a pseudo-header among them (RFC 9113 §8.1).
        let trailers = body.trailers().await?;
        anyhow::Ok((received, trailers))
    };
    let (received, trailers) = tokio::time::timeout(Duration::from_secs(30), reading)
        .await
        .context("the body or its trailers stalled")??;
    let expected = pattern(0, BODY_BYTES);
    ensure!(
        received == expected,
        "the body changed on the way: {}",
        first_difference(&received, &expected)
    );
    let trailers = trailers.context("the upstream's trailers did not reach the client")?;
    let checksum = format!("{:016x}", fnv(&expected));
    ensure!(
        trailers.get("x-checksum").map(HeaderValue::as_bytes) == Some(checksum.as_bytes())
            && trailers.get("x-trailer").map(HeaderValue::as_bytes) == Some(&b"done"[..]),
        "the client got trailers {trailers:?}"
    );

    // On the wire: one HEADERS with END_STREAM after the last DATA, and no pseudo-header field
    // among the trailers (RFC 9113 §8.1).
    let mut connection = RawConnection::open(gateway.listener()).await?;
    connection
        .send(&headers(1, &Block::request("GET", &path), true))
        .await?;
    let response = connection.response(1).await?;
    ensure!(
        response.body == expected,
        "the body before the trailers changed on the way: {}",
        first_difference(&response.body, &expected)
    );
    let fields = response
        .trailers
        .context("no trailers on the wire after the body")?;
    ensure!(
        fields.iter().all(|(name, _)| !name.starts_with(':'))
            && fields
                .iter()
                .any(|(name, value)| name == "x-checksum" && *value == checksum),
        "the trailers on the wire: {fields:?}"
    );
    Ok(())
}
