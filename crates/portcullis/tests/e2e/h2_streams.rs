//! The gateway's HTTP/2 server with many streams on one connection: each stream answered as
//! its own, a stream the client resets cancelled up to the backend while the connection keeps
//! serving, and graceful drain finishing the streams in flight.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use bytes::Bytes;
use futures_util::future::join_all;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use testkit::{EchoReply, FaultyUpstream, UpstreamBehaviour};
use tokio::net::TcpStream;

use crate::fixture::eventually;
use crate::fixture::manifest::{NS, http_route, path_match, rule, service_backend, service_ref};
use crate::fixture::running::{Echoes, HOST, TestGateway};

/// Streams sent at once on one connection: most of the default 200 concurrent streams.
const CONCURRENT_STREAMS: usize = 150;

/// An h2c (prior knowledge) connection to `gateway`'s listener; its task ends with the test.
async fn h2c_connection(gateway: &TestGateway) -> anyhow::Result<SendRequest<Empty<Bytes>>> {
    let stream = TcpStream::connect(gateway.listener()).await?;
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .context("HTTP/2 handshake with the gateway")?;
    tokio::spawn(connection);
    Ok(sender)
}

fn get(path: &str) -> anyhow::Result<Request<Empty<Bytes>>> {
    Ok(Request::get(format!("http://{HOST}{path}")).body(Empty::new())?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_streams_on_one_connection_each_get_their_own_answer() -> anyhow::Result<()> {
    let echoes = Echoes::start(&["a"]).await?;
    let mut documents = service_backend(NS, "a", &[echoes.addr("a")]);
    documents.push(http_route(
        "a",
        &[],
        vec![rule(vec![], vec![service_ref("a")])],
    ));
    let gateway = TestGateway::start(&documents).await?;
    let sender = h2c_connection(&gateway).await?;

    let exchanges = (0..CONCURRENT_STREAMS).map(|index| {
        let mut sender = sender.clone();
        async move {
            let response = sender
                .send_request(get(&format!("/stream/{index}"))?)
                .await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            ensure!(status == StatusCode::OK, "stream {index}: {status}");
            let reply: EchoReply = serde_json::from_slice(&body)
                .with_context(|| format!("stream {index}: {body:?}"))?;
            ensure!(
                reply.path == format!("/stream/{index}"),
                "stream {index} got the answer to {}",
                reply.path
            );
            anyhow::Ok(())
        }
    });
    let answered = tokio::time::timeout(Duration::from_secs(30), join_all(exchanges))
        .await
        .context("the streams were not all answered within 30 s")?;
    for outcome in answered {
        outcome?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_reset_by_the_client_cancels_its_upstream_request() -> anyhow::Result<()> {
    let echoes = Echoes::start(&["a"]).await?;
    let hanging = FaultyUpstream::start("hanging", UpstreamBehaviour::Hang).await?;
    let mut documents = service_backend(NS, "a", &[echoes.addr("a")]);
    documents.extend(service_backend(NS, "hanging", &[hanging.addr()]));
    documents.push(http_route(
        "mixed",
        &[],
        vec![
            rule(
                vec![path_match("PathPrefix", "/hang")],
                vec![service_ref("hanging")],
            ),
            rule(vec![path_match("PathPrefix", "/")], vec![service_ref("a")]),
        ],
    ));
    let gateway = TestGateway::start(&documents).await?;
    let mut sender = h2c_connection(&gateway).await?;

    let waiting = tokio::spawn({
        let mut sender = sender.clone();
        let request = get("/hang")?;
        async move { sender.send_request(request).await }
    });
    eventually(Duration::from_secs(10), async || {
        ensure!(
            hanging.in_flight() == 1,
            "the request has not reached the backend"
        );
        Ok(())
    })
    .await?;
    // Dropping the response future resets the stream (RST_STREAM CANCEL).
    waiting.abort();
    eventually(Duration::from_secs(10), async || {
        ensure!(
            hanging.in_flight() == 0,
            "the backend still holds the reset stream's request"
        );
        Ok(())
    })
    .await?;

    // The connection serves on.
    let response = sender.send_request(get("/after")?).await?;
    ensure!(
        response.status() == StatusCode::OK,
        "a stream after the reset: {}",
        response.status()
    );
    Ok(())
}
