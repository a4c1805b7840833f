//! Idle HTTP/1.1 keep-alive connections hibernate (`proxy/src/idle.rs`): after a second
//! without a request they leave their task, and the first byte the client sends brings them
//! back, whatever it sends (a whole head, half of one, pipelined requests, or its close). A
//! parked connection still closes at its idle timeout, and is counted in
//! `portcullis_downstream_connections_hibernated` while it waits.

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fixture::eventually;
use crate::fixture::recording::seen_paths;
use crate::fixture::running::{HOST, TestGateway};

use super::limits::{recorded_route, start_with_policy};
use super::timeouts::read_until_closed;

const HIBERNATED: &str = "portcullis_downstream_connections_hibernated";
const ACTIVE: &str = "portcullis_downstream_connections_active";

/// The value of the unlabelled metric `name`.
async fn gauge(gateway: &TestGateway, name: &str) -> anyhow::Result<f64> {
    let metrics = gateway.admin_text("/metrics").await?;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .with_context(|| format!("no {name} in /metrics"))
}

/// The value of `portcullis_downstream_connections_closed_by_gateway{reason}` (0 when absent).
async fn closed_for(gateway: &TestGateway, reason: &str) -> anyhow::Result<f64> {
    let metrics = gateway.admin_text("/metrics").await?;
    let prefix = format!(
        "portcullis_downstream_connections_closed_by_gateway_total{{reason=\"{reason}\"}} "
    );
    Ok(metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix)?.parse().ok())
        .unwrap_or(0.0))
}

/// Waits until `name` reads `value`.
async fn gauge_reaches(gateway: &TestGateway, name: &str, value: f64) -> anyhow::Result<()> {
    eventually(Duration::from_secs(10), async || {
        let now = gauge(gateway, name).await?;
        ensure!(now == value, "{name} is {now}, not {value}");
        Ok(())
    })
    .await
}

/// Reads one response (head and `Content-Length` body) and returns its status code.
async fn read_response(stream: &mut TcpStream, pending: &mut Vec<u8>) -> anyhow::Result<u16> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .with_context(|| format!("no Content-Length in {head:?}"))?;
            if pending.len() >= end + 4 + length {
                pending.drain(..end + 4 + length);
                let code = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|code| code.parse().ok())
                    .with_context(|| format!("not a status line: {head:?}"))?;
                return Ok(code);
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .context("no response within 5 s")??;
        if n == 0 {
            bail!("closed; received {:?}", String::from_utf8_lossy(pending));
        }
        pending.extend_from_slice(&chunk[..n]);
    }
}

/// `GET path` on `stream`, expecting 200.
async fn get_ok(stream: &mut TcpStream, path: &str) -> anyhow::Result<()> {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes())
        .await?;
    let code = read_response(stream, &mut Vec::new()).await?;
    ensure!(code == 200, "GET {path} answered {code}");
    Ok(())
}

/// A gateway with `idleTimeout` and one keep-alive connection past one request and parked;
/// also when its request was answered.
async fn one_parked_connection(
    idle_timeout: &str,
) -> anyhow::Result<(TestGateway, TcpStream, Instant)> {
    let (documents, _seen) = recorded_route().await?;
    let spec = json!({"timeout": {"http": {"idleTimeout": idle_timeout}}});
    let gateway = start_with_policy(&documents, Some(spec), &[]).await?;
    let mut stream = TcpStream::connect(gateway.listener()).await?;
    get_ok(&mut stream, "/").await?;
    let answered = Instant::now();
    gauge_reaches(&gateway, HIBERNATED, 1.0).await?;
    Ok((gateway, stream, answered))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_hibernates_and_is_served_again() -> anyhow::Result<()> {
    let (documents, seen) = recorded_route().await?;
    let spec = json!({"timeout": {"http": {"idleTimeout": "60s"}}});
    let gateway = start_with_policy(&documents, Some(spec), &[]).await?;
    let addr = gateway.listener();
    let mut whole = TcpStream::connect(addr).await?;
    let mut halves = TcpStream::connect(addr).await?;
    let mut pipelined = TcpStream::connect(addr).await?;
    let started = Instant::now();
    for (stream, path) in [
        (&mut whole, "/first-whole"),
        (&mut halves, "/first-halves"),
        (&mut pipelined, "/first-pipelined"),
    ] {
        get_ok(stream, path).await?;
    }
    gauge_reaches(&gateway, HIBERNATED, 3.0).await?;
    ensure!(
        started.elapsed() >= Duration::from_millis(900),
        "hibernated after {:?}, before the one-second delay",
        started.elapsed()
    );
    ensure!(
        gauge(&gateway, ACTIVE).await? == 3.0,
        "three connections are open"
    );

    // A whole head wakes a parked connection.
    get_ok(&mut whole, "/whole").await?;
    // Half a head wakes it; the rest follows later and the head is still read as one.
    halves.write_all(b"GET /halves HTTP/1.1\r\nHo").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    halves
        .write_all(format!("st: {HOST}\r\n\r\n").as_bytes())
        .await?;
    let code = read_response(&mut halves, &mut Vec::new()).await?;
    ensure!(code == 200, "the head sent in halves got {code}");
    // Two requests in one write: both answered, in order.
    pipelined
        .write_all(
            format!(
                "GET /pipelined-1 HTTP/1.1\r\nHost: {HOST}\r\n\r\n\
                 GET /pipelined-2 HTTP/1.1\r\nHost: {HOST}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await?;
    let mut pending = Vec::new();
    for _ in 0..2 {
        let code = read_response(&mut pipelined, &mut pending).await?;
        ensure!(code == 200, "a pipelined request got {code}");
    }
    ensure!(
        gauge(&gateway, HIBERNATED).await? < 3.0,
        "the woken connections left the idle set"
    );
    let paths = seen_paths(&seen);
    for path in ["/whole", "/halves", "/pipelined-1", "/pipelined-2"] {
        ensure!(
            paths.iter().any(|seen| seen == path),
            "the backend did not see {path}: {paths:?}"
        );
    }

    // They hibernate again; a client closing a parked connection closes it here too.
    gauge_reaches(&gateway, HIBERNATED, 3.0).await?;
    drop(whole);
    gauge_reaches(&gateway, HIBERNATED, 2.0).await?;
    gauge_reaches(&gateway, ACTIVE, 2.0).await?;
    get_ok(&mut halves, "/again").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hibernated_connection_closes_at_its_idle_timeout() -> anyhow::Result<()> {
    let (gateway, mut stream, idle_from) = one_parked_connection("3s").await?;
    let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(6)).await?;
    let after = idle_from.elapsed();
    ensure!(answer.is_empty(), "expected a silent close, got {answer:?}");
    ensure!(
        after >= Duration::from_millis(2_800) && after < Duration::from_secs(5),
        "closed {after:?} after the response, with a 3 s idle timeout"
    );
    ensure!(
        gauge(&gateway, HIBERNATED).await? == 0.0,
        "the idle set is empty"
    );
    ensure!(
        closed_for(&gateway, "idle_timeout").await? == 1.0,
        "the close is counted as an idle timeout"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_listener_closes_its_hibernated_connections() -> anyhow::Result<()> {
    let (gateway, mut stream, _) = one_parked_connection("60s").await?;

    // The Gateway's listener moves to another port: the old socket closes, and with it the
    // connection parked there (it has no request to finish).
    let moved = testkit::free_port();
    gateway.config.write(
        "00-gateway.yaml",
        &[
            crate::fixture::manifest::gateway_class(),
            crate::fixture::manifest::gateway(moved, None),
        ],
    )?;
    let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(10)).await?;
    ensure!(answer.is_empty(), "expected a silent close, got {answer:?}");
    gauge_reaches(&gateway, HIBERNATED, 0.0).await?;
    gauge_reaches(&gateway, ACTIVE, 0.0).await?;
    let mut fresh = TcpStream::connect(("127.0.0.1", moved)).await?;
    get_ok(&mut fresh, "/").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_hibernate_and_wake_again_and_again_under_churn() -> anyhow::Result<()> {
    const CONNECTIONS: usize = 100;
    const ROUNDS: usize = 4;
    let (documents, seen) = recorded_route().await?;
    let spec = json!({"timeout": {"http": {"idleTimeout": "60s"}}});
    let gateway = start_with_policy(&documents, Some(spec), &[]).await?;
    let addr = gateway.listener();
    // Each connection sends a request, waits long enough to be parked, and sends the next:
    // parking and waking race with each other across the connections (their pauses differ
    // by a few milliseconds), and with the set's thread.
    let mut clients = Vec::new();
    for index in 0..CONNECTIONS {
        clients.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await?;
            for round in 0..ROUNDS {
                get_ok(&mut stream, &format!("/churn/{index}/{round}")).await?;
                let pause = 1_400 + u64::try_from(index % 10).unwrap_or(0) * 20;
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            anyhow::Ok(stream)
        }));
    }
    // While they run, the most connections parked at once: they do park between requests.
    let mut most_parked = 0.0_f64;
    while !clients.iter().all(tokio::task::JoinHandle::is_finished) {
        most_parked = most_parked.max(gauge(&gateway, HIBERNATED).await?);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut streams = Vec::new();
    for client in clients {
        streams.push(client.await??);
    }
    ensure!(
        most_parked >= (CONNECTIONS / 2) as f64,
        "at most {most_parked} connections were parked at once between their requests"
    );
    let requests = seen_paths(&seen)
        .iter()
        .filter(|path| path.starts_with("/churn/"))
        .count();
    ensure!(
        requests == CONNECTIONS * ROUNDS,
        "the backend saw {requests} of {} requests",
        CONNECTIONS * ROUNDS
    );
    gauge_reaches(&gateway, HIBERNATED, CONNECTIONS as f64).await?;
    ensure!(
        gauge(&gateway, ACTIVE).await? == CONNECTIONS as f64,
        "every connection is still open"
    );
    Ok(())
}
