//! Request smuggling and malformed HTTP/1.1 framing over raw sockets (reliability.md A1/A2):
//! each case is a request with ambiguous or invalid framing followed, on the same connection,
//! by a pipelined `GET /smuggled`. The gateway must answer the expected status, once, and close
//! the connection: the backend (a real hyper server that records every request it parses) must
//! never see `/smuggled`. Whatever the gateway forwards is re-serialized, and a connection whose
//! framing is in doubt is not read further.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fixture::manifest::{NS, http_route, rule, service_backend, service_ref};
use crate::fixture::recording::recording_backend;
use crate::fixture::running::{HOST, TestGateway};

const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: app.example.com\r\n\r\n";

/// `(name, raw request, expected status of the first response)`.
fn cases() -> Vec<(&'static str, String, u16)> {
    let h = HOST;
    vec![
        // CL.TE: Transfer-Encoding wins (RFC 9112 §6.3), the connection is closed after the
        // response, so the bytes Content-Length would have covered are never a request.
        (
            "CL.TE",
            format!(
                "POST / HTTP/1.1\r\nHost: {h}\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{SMUGGLED}"
            ),
            200,
        ),
        (
            "TE.CL",
            format!(
                "POST / HTTP/1.1\r\nHost: {h}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{SMUGGLED}\r\n0\r\n\r\n",
                SMUGGLED.len()
            ),
            200,
        ),
        (
            "TE not chunked (xchunked)",
            format!(
                "POST / HTTP/1.1\r\nHost: {h}\r\nContent-Length: 5\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"
            ),
            400,
        ),
        (
            "TE chunked, identity",
            format!(
                "POST / HTTP/1.1\r\nHost: {h}\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"
            ),
            400,
        ),
        (
            "space before colon in TE",
            format!(
                "POST / HTTP/1.1\r\nHost: {h}\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"
            ),
            400,
        ),
        (
            "duplicate Content-Length, differing",
            format!(
                "POST / HTTP/1.1\r\nHost: {h}\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"
            ),
            400,
        ),
        (
            "Content-Length with +",
            format!("POST / HTTP/1.1\r\nHost: {h}\r\nContent-Length: +1\r\n\r\na"),
            400,
        ),
        (
            "negative Content-Length",
            format!("POST / HTTP/1.1\r\nHost: {h}\r\nContent-Length: -1\r\n\r\n"),
            400,
        ),
        (
            "hex Content-Length",
            format!("POST / HTTP/1.1\r\nHost: {h}\r\nContent-Length: 0x10\r\n\r\n"),
            400,
        ),
        (
            "obs-fold",
            format!("GET / HTTP/1.1\r\nHost: {h}\r\nX-A: b\r\n c\r\n\r\n"),
            400,
        ),
        (
            "obs-fold on Transfer-Encoding",
            format!(
                "POST / HTTP/1.1\r\nHost: {h}\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"
            ),
            400,
        ),
        (
            "NUL in a header value",
            format!("GET / HTTP/1.1\r\nHost: {h}\r\nX-A: b\0c\r\n\r\n"),
            400,
        ),
        (
            "LF inside a chunk line",
            format!(
                "POST / HTTP/1.1\r\nHost: {h}\r\nTransfer-Encoding: chunked\r\n\r\n1;ext\nb\r\nx\r\n0\r\n\r\n"
            ),
            400,
        ),
        (
            "chunk size overflow",
            format!(
                "POST / HTTP/1.1\r\nHost: {h}\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nx\r\n0\r\n\r\n"
            ),
            400,
        ),
        (
            "HTTP/1.0 with Transfer-Encoding",
            format!("POST / HTTP/1.0\r\nHost: {h}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            400,
        ),
        (
            "duplicate Host",
            format!("GET / HTTP/1.1\r\nHost: {h}\r\nHost: other.example.com\r\n\r\n"),
            400,
        ),
        ("no Host", "GET / HTTP/1.1\r\n\r\n".to_owned(), 400),
    ]
}

/// Sends `raw` then the pipelined [`SMUGGLED`] request; returns everything the gateway sent
/// until it closed the connection (or 3 s passed).
async fn exchange(gateway: SocketAddr, raw: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(gateway).await?;
    stream.write_all(raw.as_bytes()).await?;
    // The gateway may already have closed: a failed pipelined write is fine.
    let _ = stream.write_all(SMUGGLED.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut answer)).await;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_framing_never_smuggles_a_request() -> anyhow::Result<()> {
    let (backend, seen) = recording_backend().await?;
    let mut documents = service_backend(NS, "recording", &[backend]);
    documents.push(http_route(
        "all",
        &[],
        vec![rule(vec![], vec![service_ref("recording")])],
    ));
    let gateway = TestGateway::start(&documents).await?;

    let mut failures = Vec::new();
    for (name, raw, expected) in cases() {
        seen.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let answer = exchange(gateway.listener(), &raw)
            .await
            .with_context(|| name.to_owned())?;
        let status = answer
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse::<u16>().ok());
        if status != Some(expected) {
            failures.push(format!(
                "{name}: expected {expected}, got {:?}",
                answer.lines().next()
            ));
        }
        // Nothing after a request whose framing is in doubt is read as a request: the
        // connection closes after the one response.
        let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if seen.iter().any(|path| path == "/smuggled") {
            failures.push(format!("{name}: the backend received /smuggled ({seen:?})"));
        }
        let responses = answer.matches("HTTP/1.1 ").count();
        if responses != 1 {
            failures.push(format!("{name}: {responses} responses on the connection"));
        }
    }
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    // The gateway is still up and serving.
    let response = gateway.get(HOST, "/after", &[]).await?;
    ensure!(
        response.status == 200,
        "after the corpus: {}",
        response.status
    );
    Ok(())
}
