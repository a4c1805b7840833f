//! Client timeouts (reliability A7, issue 9 defects 2 and 5): a stalled head gets 408, a
//! connection that sends nothing or goes idle is closed, HTTP/2 with GOAWAY, and a slow body
//! gets 408. Each is checked to happen within twice its timeout.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fixture::running::{HOST, TestGateway};

use super::floods::{H2Reader, client_preface};
use super::limits::{recorded_route, start_with_policy};

/// Reads until the gateway closes; returns what it sent and when it closed.
pub(crate) async fn read_until_closed(
    stream: &mut TcpStream,
    limit: Duration,
) -> anyhow::Result<(String, Duration)> {
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + limit).into(), stream.read(&mut chunk)).await {
            Err(_) => anyhow::bail!(
                "still open after {limit:?}; received {:?}",
                String::from_utf8_lossy(&answer)
            ),
            Ok(Ok(0) | Err(_)) => {
                return Ok((
                    String::from_utf8_lossy(&answer).into_owned(),
                    started.elapsed(),
                ));
            }
            Ok(Ok(n)) => answer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Sends `bytes[..at_once]` at once, then the rest a byte every 100 ms, while reading the
/// answer until the gateway closes (at most 5 s); returns the answer and when the trickle began.
async fn trickle(
    addr: std::net::SocketAddr,
    bytes: Vec<u8>,
    at_once: usize,
) -> anyhow::Result<(String, Duration)> {
    let stream = TcpStream::connect(addr).await?;
    let (mut read, mut write) = stream.into_split();
    write.write_all(&bytes[..at_once]).await?;
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        for byte in &bytes[at_once..] {
            if write.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        write
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), read.read_to_end(&mut answer)).await;
    let after = started.elapsed();
    writer.abort();
    Ok((String::from_utf8_lossy(&answer).into_owned(), after))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_head_gets_408_after_the_default_ten_seconds() -> anyhow::Result<()> {
    let (documents, _seen) = recorded_route().await?;
    let gateway = TestGateway::start(&documents).await?;
    let mut stream = TcpStream::connect(gateway.listener()).await?;
    stream
        .write_all(format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n").as_bytes())
        .await?;
    let (answer, after) = read_until_closed(&mut stream, Duration::from_secs(20)).await?;
    ensure!(answer.starts_with("HTTP/1.1 408 "), "answer {answer:?}");
    ensure!(
        after >= Duration::from_secs(9),
        "closed too early: {after:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_timeouts_close_connections_within_twice_their_time() -> anyhow::Result<()> {
    let (documents, seen) = recorded_route().await?;
    let spec = json!({"timeout": {"http": {
        "requestHeaderTimeout": "1s", "requestBodyTimeout": "1s", "idleTimeout": "1s"
    }}});
    let gateway = start_with_policy(&documents, Some(spec), &[]).await?;
    let addr = gateway.listener();
    let window = Duration::from_secs(2);

    // Nothing sent at all: closed without a word.
    let mut silent = TcpStream::connect(addr).await?;
    let (answer, after) = read_until_closed(&mut silent, window)
        .await
        .context("silent connection")?;
    ensure!(answer.is_empty(), "a silent connection got {answer:?}");
    ensure!(
        after >= Duration::from_millis(900),
        "closed after {after:?}"
    );

    // Half a head: 408.
    let mut stalled = TcpStream::connect(addr).await?;
    stalled.write_all(b"GET / HTTP/1.1\r\nHost: a").await?;
    let (answer, _) = read_until_closed(&mut stalled, window)
        .await
        .context("stalled head")?;
    ensure!(
        answer.starts_with("HTTP/1.1 408 "),
        "stalled head got {answer:?}"
    );

    // A head sent a byte at a time, slower than the timeout allows in total: 408.
    let (answer, after) = trickle(
        addr,
        format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n").into_bytes(),
        0,
    )
    .await
    .context("trickled head")?;
    ensure!(
        answer.starts_with("HTTP/1.1 408 "),
        "trickled head got {answer:?}"
    );
    ensure!(after < window, "the trickled head was cut after {after:?}");

    // Keep-alive after a response: closed once idle.
    let mut keep_alive = TcpStream::connect(addr).await?;
    keep_alive
        .write_all(format!("GET /one HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes())
        .await?;
    let mut first = [0u8; 512];
    let n = keep_alive.read(&mut first).await?;
    ensure!(
        first[..n].starts_with(b"HTTP/1.1 200 "),
        "{:?}",
        String::from_utf8_lossy(&first[..n])
    );
    let (answer, after) = read_until_closed(&mut keep_alive, window)
        .await
        .context("idle keep-alive")?;
    ensure!(
        answer.is_empty() && after >= Duration::from_millis(800),
        "idle: {answer:?} after {after:?}"
    );

    // A slow body: 408 once the body timeout runs out (the head arrived at once).
    let head = format!("POST /slow HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 100\r\n\r\n");
    let mut request = head.clone().into_bytes();
    request.extend_from_slice(&[b'x'; 100]);
    let (answer, after) = trickle(addr, request, head.len())
        .await
        .context("slow body")?;
    ensure!(
        answer.starts_with("HTTP/1.1 408 "),
        "slow body got {answer:?}"
    );
    ensure!(
        after < window + Duration::from_millis(500),
        "the slow body was cut after {after:?}"
    );
    let paths = crate::fixture::recording::seen_paths(&seen);
    ensure!(
        paths.first().map(String::as_str) == Some("/one"),
        "the backend saw {paths:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http2_connection_gets_goaway() -> anyhow::Result<()> {
    let (documents, _seen) = recorded_route().await?;
    let spec = json!({"timeout": {"http": {"idleTimeout": "1s"}}});
    let gateway = start_with_policy(&documents, Some(spec), &[]).await?;
    let stream = TcpStream::connect(gateway.listener()).await?;
    let (read, mut write) = stream.into_split();
    write.write_all(&client_preface()).await?;
    let started = Instant::now();
    let mut reader = H2Reader::new(read);
    let goaway = reader.goaway_within(Duration::from_secs(3)).await?;
    ensure!(
        goaway == Some(0),
        "expected GOAWAY(NO_ERROR), got {goaway:?}"
    );
    let after = started.elapsed();
    ensure!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(2),
        "GOAWAY after {after:?}"
    );
    Ok(())
}

/// A backend that answers every request with `size` bytes.
async fn large_body_backend(size: usize) -> anyhow::Result<std::net::SocketAddr> {
    use http_body_util::Full;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let body = bytes::Bytes::from(vec![b'x'; size]);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_request| {
                    let body = body.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(body)))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_cut_off_after_the_idle_timeout() -> anyhow::Result<()> {
    use crate::fixture::manifest::{NS, http_route, rule, service_backend, service_ref};
    let backend = large_body_backend(64 * 1024 * 1024).await?;
    let mut documents = service_backend(NS, "large", &[backend]);
    documents.push(http_route(
        "all",
        &[],
        vec![rule(vec![], vec![service_ref("large")])],
    ));
    let spec = json!({"timeout": {"http": {"idleTimeout": "1s"}}});
    let gateway = start_with_policy(&documents, Some(spec), &[]).await?;
    // Ask for 64 MiB and read none of it.
    let mut reader = TcpStream::connect(gateway.listener()).await?;
    reader
        .write_all(format!("GET /large HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes())
        .await?;
    crate::fixture::eventually(Duration::from_secs(15), async || {
        let metrics = gateway.admin_text("/metrics").await?;
        ensure!(
            metrics.contains("portcullis_downstream_connections_closed_by_gateway_total{reason=\"write_stall\"} 1"),
            "no write stall counted yet"
        );
        Ok(())
    })
    .await?;
    // What the gateway managed to send is far from the whole body, and then the connection ends.
    let mut received = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), reader.read_to_end(&mut received)).await;
    ensure!(
        received.len() < 64 * 1024 * 1024,
        "the whole body arrived ({} bytes)",
        received.len()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_websocket_over_http2_outlives_the_idle_timeout() -> anyhow::Result<()> {
    use crate::fixture::manifest::{NS, http_route, rule, service_backend, service_ref};
    use hyper_util::rt::TokioIo;

    let (backend, _seen) = crate::upgrade::upgrading_backend().await?;
    let mut documents = service_backend(NS, "ws", &[backend]);
    documents.push(http_route(
        "all",
        &[],
        vec![rule(vec![], vec![service_ref("ws")])],
    ));
    let spec = json!({"timeout": {"http": {"idleTimeout": "1s"}}});
    let gateway = start_with_policy(&documents, Some(spec), &[]).await?;
    let uri = format!("http://{HOST}/chat");
    let mut response = crate::upgrade::websocket_over_h2(gateway.listener(), &uri).await?;
    ensure!(
        response.status() == 200,
        "extended CONNECT got {}",
        response.status()
    );
    let mut tunnel = TokioIo::new(hyper::upgrade::on(&mut response).await?);
    // Quiet for twice the idle timeout, then the tunnel still carries bytes.
    for (message, pause) in [("first", 0), ("after a pause", 2_500)] {
        tokio::time::sleep(Duration::from_millis(pause)).await;
        tunnel.write_all(message.as_bytes()).await?;
        let mut reply = vec![0u8; message.len()];
        tokio::time::timeout(Duration::from_secs(5), tunnel.read_exact(&mut reply))
            .await
            .with_context(|| format!("no echo of {message:?}"))??;
        ensure!(
            reply == message.to_ascii_uppercase().as_bytes(),
            "echo {reply:?}"
        );
    }
    Ok(())
}
