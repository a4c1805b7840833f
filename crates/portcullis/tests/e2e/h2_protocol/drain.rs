//! Graceful shutdown of an h2c connection (RFC 9113 §6.8): on SIGTERM the gateway sends
//! GOAWAY(NO_ERROR) naming the last stream it took, finishes that stream, ignores streams the
//! client opens after it, and closes the connection. `shutdown.rs` covers the process side
//! (refused connections, `/ready`, the drain timeout).

use std::time::Duration;

use anyhow::{Context as _, bail, ensure};

use super::raw::{Block, RawConnection, code, flag, headers, kind};
use crate::fixture::eventually;
use crate::fixture::manifest::{NS, http_route, rule, service_backend, service_ref};
use crate::fixture::running::{ConfigDir, Echoes};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_gateway_sends_goaway_and_finishes_the_stream_in_flight() -> anyhow::Result<()>
{
    let echoes = Echoes::start(&["slow"]).await?;
    let mut documents = service_backend(NS, "slow", &[echoes.addr("slow")]);
    documents.push(http_route(
        "slow",
        &[],
        vec![rule(vec![], vec![service_ref("slow")])],
    ));
    let config = ConfigDir::new()?;
    config.write_gateway(None)?;
    config.write("config.yaml", &documents)?;
    let mut gateway = config.start(&["--drain-timeout", "20s"]).await?;
    let mut connection = RawConnection::open(gateway.listener()).await?;

    // The answer takes 3 s: GOAWAY must come first.
    connection
        .send(&headers(1, &Block::request("GET", "/slow?delay=3s"), true))
        .await?;
    eventually(Duration::from_secs(10), async || {
        ensure!(
            echoes.server("slow").requests() == 1,
            "the request has not reached the backend"
        );
        Ok(())
    })
    .await?;
    gateway.process.signal_term()?;

    let goaway = loop {
        let frame = connection
            .next_frame()
            .await?
            .context("the gateway closed the connection without GOAWAY")?;
        match (frame.kind, frame.stream) {
            (kind::GOAWAY, _) => break frame,
            (kind::SETTINGS | kind::WINDOW_UPDATE | kind::PING, 0) => {}
            _ => {
                bail!("{frame} before GOAWAY: the stream in flight answered before the drain began")
            }
        }
    };
    // One GOAWAY naming the last stream taken. (h2 sent two, RFC 9113 §6.8's SHOULD: 2^31-1
    // first, then after a PING round trip the last stream. A gateway that goes back to that
    // must read on to the second GOAWAY here.)
    ensure!(
        goaway.error_code() == Some(code::NO_ERROR) && goaway.first_word() == Some(1),
        "a graceful stop sends GOAWAY(NO_ERROR) naming the stream in flight, got {goaway}"
    );

    // A stream opened after GOAWAY is beyond its last stream: not processed (RFC 9113 §6.8).
    connection
        .send(&headers(3, &Block::request("GET", "/after-goaway"), true))
        .await?;
    let response = connection.response(1).await?;
    ensure!(
        response.status == 200,
        "the stream in flight got {}",
        response.status
    );
    ensure!(
        response.echo()?.path == "/slow?delay=3s",
        "the stream in flight got another answer: {:?}",
        response.echo()?.path
    );
    // Once its last stream is done, the gateway closes the connection, without an answer to
    // stream 3 (nor, below, a request to the backend for it).
    while let Some(frame) = connection
        .next_frame()
        .await
        .context("the gateway kept the connection open after its last stream")?
    {
        ensure!(
            frame.stream != 3,
            "the stream opened after GOAWAY was answered: {frame}"
        );
        ensure!(
            !(frame.kind == kind::DATA && frame.has(flag::END_STREAM)),
            "an answer after the stream in flight: {frame}"
        );
    }
    ensure!(
        echoes.server("slow").requests() == 1,
        "the stream opened after GOAWAY reached the backend"
    );
    let status = gateway.process.wait_exit(Duration::from_secs(10)).await?;
    ensure!(status.success(), "the gateway exited with {status}");
    Ok(())
}
