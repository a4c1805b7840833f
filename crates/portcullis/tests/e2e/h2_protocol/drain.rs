//! Graceful shutdown of an h2c connection (RFC 9113 §6.8): on SIGTERM the gateway sends
//! GOAWAY(NO_ERROR) with the largest stream id and a PING, takes the streams the client opened
//! before it acknowledged the PING, then sends GOAWAY(NO_ERROR) naming the last stream it took,
//! finishes its streams, ignores streams opened after it, and closes the connection. `shutdown.rs` covers the process side
//! (refused connections, `/ready`, the drain timeout).

use std::time::Duration;

use anyhow::{Context as _, bail, ensure};

use super::raw::{Block, Frame, RawConnection, code, flag, frame, headers, kind};
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

    // First GOAWAY: the largest stream id (the client stops opening streams), and a PING.
    let first = next_goaway(&mut connection).await?;
    ensure!(
        first.error_code() == Some(code::NO_ERROR) && first.first_word() == Some(0x7fff_ffff),
        "a graceful stop first sends GOAWAY(NO_ERROR) naming the largest stream id, got {first}"
    );
    // A stream the client opened before it saw that GOAWAY (racing it) is still taken.
    connection
        .send(&headers(3, &Block::request("GET", "/raced?delay=1s"), true))
        .await?;
    let ping = loop {
        let frame = connection
            .next_frame()
            .await?
            .context("the gateway closed the connection without its PING")?;
        match (frame.kind, frame.stream) {
            (kind::PING, 0) if !frame.has(flag::ACK) => break frame,
            (kind::SETTINGS | kind::WINDOW_UPDATE | kind::PING, 0) => {}
            _ => bail!("{frame} before the drain's PING"),
        }
    };
    // Acknowledged: every stream the client opened before it is at the gateway, and the
    // second GOAWAY names the last one.
    connection
        .send(&frame(kind::PING, flag::ACK, 0, &ping.payload))
        .await?;
    let second = next_goaway(&mut connection).await?;
    ensure!(
        second.error_code() == Some(code::NO_ERROR) && second.first_word() == Some(3),
        "after the PING's acknowledgement GOAWAY(NO_ERROR) names the last stream taken, got {second}"
    );

    // A stream opened after that GOAWAY is beyond its last stream: not processed (RFC 9113
    // §6.8).
    connection
        .send(&headers(5, &Block::request("GET", "/after-goaway"), true))
        .await?;
    // Stream 3 answers first (1 s against what is left of stream 1's 3 s).
    // Stream 3 answers first (1 s, against what is left of stream 1's 3 s).
    for (stream, path) in [(3, "/raced?delay=1s"), (1, "/slow?delay=3s")] {
        let response = connection.response(stream).await?;
        ensure!(
            response.status == 200,
            "stream {stream} in flight got {}",
            response.status
        );
        ensure!(
            response.echo()?.path == path,
            "stream {stream} got another answer: {:?}",
            response.echo()?.path
        );
    }
    // Once its last stream is done, the gateway closes the connection, without an answer to
    // stream 3 (nor, below, a request to the backend for it).
    while let Some(frame) = connection
        .next_frame()
        .await
        .context("the gateway kept the connection open after its last stream")?
    {
        ensure!(
            frame.stream != 5,
            "the stream opened after GOAWAY was answered: {frame}"
        );
        ensure!(
            !(frame.kind == kind::DATA && frame.has(flag::END_STREAM)),
            "an answer after the stream in flight: {frame}"
        );
    }
    ensure!(
        echoes.server("slow").requests() == 2,
        "the stream opened after the last GOAWAY reached the backend (or the raced one did not)"
    );
    let status = gateway.process.wait_exit(Duration::from_secs(10)).await?;
    ensure!(status.success(), "the gateway exited with {status}");
    Ok(())
}

/// The next GOAWAY, past the connection's control frames; nothing of a stream may come first.
async fn next_goaway(connection: &mut RawConnection) -> anyhow::Result<Frame> {
    loop {
        let frame = connection
            .next_frame()
            .await?
            .context("the gateway closed the connection without GOAWAY")?;
        match (frame.kind, frame.stream) {
            (kind::GOAWAY, _) => return Ok(frame),
            (kind::SETTINGS | kind::WINDOW_UPDATE | kind::PING, 0) => {}
            _ => bail!("{frame} before GOAWAY: a stream in flight answered before the drain began"),
        }
    }
}
