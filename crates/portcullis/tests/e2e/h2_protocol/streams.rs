//! Many streams on one connection (RFC 9113 §5.1.2, §8.1): concurrent uploads each answered
//! with their own bytes through shared windows, streams beyond SETTINGS_MAX_CONCURRENT_STREAMS
//! refused without harm to the connection, and a client reset in the middle of an upload
//! cancelling the upstream request.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use bytes::Bytes;
use futures_util::future::join_all;
use http::{Method, StatusCode};
use serde_json::json;
use testkit::{FaultyUpstream, UpstreamBehaviour};

use super::backend::{BodyBackend, fnv};
use super::raw::{Block, RawConnection, code, data, headers, rst_stream, setting};
use super::{
    MIB, Upstream, first_difference, gateway_to, gateway_with_client_policy, h2_client, pattern,
    request,
};
use crate::fixture::eventually;
use crate::fixture::manifest::{NS, http_route, path_match, rule, service_backend, service_ref};

/// Streams open at once in [`a_hundred_concurrent_uploads_each_get_their_own_body_back`].
const CONCURRENT_UPLOADS: usize = 100;

/// Each one's body: 100 of them hold 2.4 MB, through the gateway's 1 MiB connection window one
/// way and the client's 64 KiB one the other.
const UPLOAD_BYTES: usize = 24 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_uploads_each_get_their_own_body_back() -> anyhow::Result<()> {
    let backend = BodyBackend::start().await?;
    let gateway = gateway_to(backend.addr(), Upstream::Http1).await?;
    let client = h2_client(&gateway).await?;

    let exchanges = (0..CONCURRENT_UPLOADS).map(|index| {
        let mut client = client.clone();
        async move {
            let body = pattern(index, UPLOAD_BYTES);
            let (response, mut upload) =
                client.send_request(request(Method::POST, &format!("/echo/{index}"))?, false)?;
            // h2 sends it as the gateway's windows allow.
            upload.send_data(Bytes::from(body.clone()), true)?;
            let response = response.await?;
            ensure!(
                response.status() == StatusCode::OK,
                "stream {index}: {}",
                response.status()
            );
            let mut received = response.into_body();
            let mut echoed = Vec::with_capacity(UPLOAD_BYTES);
            while let Some(chunk) = received.data().await {
                let chunk = chunk?;
                echoed.extend_from_slice(&chunk);
                received.flow_control().release_capacity(chunk.len())?;
            }
            ensure!(
                echoed == body,
                "stream {index} got another body back: {}",
                first_difference(&echoed, &body)
            );
            anyhow::Ok(())
        }
    });
    let outcomes = tokio::time::timeout(Duration::from_secs(60), join_all(exchanges))
        .await
        .context("the uploads were not all answered within 60 s")?;
    let failures: Vec<String> = outcomes
        .into_iter()
        .filter_map(|outcome| outcome.err().map(|error| format!("{error:#}")))
        .collect();
    ensure!(
        failures.is_empty(),
        "{} streams failed: {failures:#?}",
        failures.len()
    );
    Ok(())
}

/// The `maxConcurrentStreams` of [`streams_beyond_the_limit_are_refused_and_the_connection_serves_on`].
const STREAM_LIMIT: u32 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_beyond_the_limit_are_refused_and_the_connection_serves_on() -> anyhow::Result<()> {
    let backend = BodyBackend::start().await?;
    let hanging = FaultyUpstream::start("hanging", UpstreamBehaviour::Hang).await?;
    let mut documents = service_backend(NS, "hanging", &[hanging.addr()]);
    documents.extend(service_backend(NS, "body", &[backend.addr()]));
    documents.push(http_route(
        "streams",
        &[],
        vec![
            rule(
                vec![path_match("PathPrefix", "/hang")],
                vec![service_ref("hanging")],
            ),
            rule(
                vec![path_match("PathPrefix", "/")],
                vec![service_ref("body")],
            ),
        ],
    ));
    let spec = json!({"http2": {"maxConcurrentStreams": STREAM_LIMIT}});
    let gateway = gateway_with_client_policy(&documents, spec).await?;
    let mut connection = RawConnection::open(gateway.listener()).await?;
    ensure!(
        connection.setting(setting::MAX_CONCURRENT_STREAMS) == Some(STREAM_LIMIT),
        "the policy's limit is advertised (RFC 9113 §6.5.2): {:?}",
        connection.setting(setting::MAX_CONCURRENT_STREAMS)
    );

    // Streams 1, 3 and 5 wait on a backend that never answers: the limit is reached.
    for stream in [1, 3, 5] {
        connection
            .send(&headers(stream, &Block::request("GET", "/hang"), true))
            .await?;
    }
    eventually(Duration::from_secs(10), async || {
        ensure!(
            hanging.in_flight() == 3,
            "{} requests at the backend",
            hanging.in_flight()
        );
        Ok(())
    })
    .await?;

    // Stream 7 is one too many; its body, already on its way, must not hurt the connection.
    let mut refused = headers(7, &Block::request("POST", "/hang/refused"), false);
    refused.extend(data(7, b"a body already sent", true));
    connection.send(&refused).await?;
    let answer = connection.next_on_stream(7).await?;
    ensure!(
        answer.is_reset(7, code::REFUSED_STREAM),
        "a stream beyond SETTINGS_MAX_CONCURRENT_STREAMS gets RST_STREAM(REFUSED_STREAM) (RFC 9113 \
         §5.1.2, §8.7), got {answer}"
    );
    connection.ping_pong(*b"refused!").await?;

    // A stream the client resets makes room at once.
    connection.send(&rst_stream(1, code::CANCEL)).await?;
    connection
        .send(&headers(9, &Block::request("GET", "/after"), true))
        .await?;
    let response = connection.response(9).await?;
    ensure!(
        response.status == 200,
        "a stream after the refusal: {}",
        response.status
    );
    ensure!(
        backend.heads("/after") == 1,
        "the stream after the refusal reached the backend"
    );
    ensure!(
        hanging.requests() == 3,
        "the refused stream was not processed (RFC 9113 §8.7), yet the backend saw {} requests",
        hanging.requests()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reset_during_an_upload_cancels_the_upstream_request() -> anyhow::Result<()> {
    let backend = BodyBackend::start().await?;
    let gateway = gateway_to(backend.addr(), Upstream::Http1).await?;
    let mut client = h2_client(&gateway).await?;

    let (response, mut upload) =
        client.send_request(request(Method::POST, "/upload/reset")?, false)?;
    upload.send_data(Bytes::from(pattern(5, 16 * 1024)), false)?;
    backend.wait_for_head("/upload/reset").await?;
    upload.send_reset(h2::Reason::CANCEL);
    let cut = backend.wait_for_outcome("/upload/reset").await?;
    ensure!(
        !cut.is_complete(),
        "the backend read a whole body from a stream the client reset: {cut:?}"
    );
    let error = response
        .await
        .err()
        .context("a reset stream got a response")?;
    ensure!(
        error.reason() == Some(h2::Reason::CANCEL),
        "the reset stream ended with {error}"
    );

    // The connection, its windows included, serves on: an upload larger than the connection's
    // window.
    let payload = pattern(6, MIB);
    let (response, mut upload) =
        client.send_request(request(Method::POST, "/upload/after")?, false)?;
    upload.send_data(Bytes::from(payload.clone()), true)?;
    let response = tokio::time::timeout(Duration::from_secs(30), response)
        .await
        .context("no answer to the upload after the reset")??;
    ensure!(
        response.status() == StatusCode::OK,
        "the upload after the reset: {}",
        response.status()
    );
    let whole = backend.wait_for_outcome("/upload/after").await?;
    ensure!(
        whole.is_complete() && whole.received == MIB && whole.hash == fnv(&payload),
        "the upload after the reset arrived as {whole:?}"
    );
    Ok(())
}
