//! The TCP echo backend over real loopback sockets: echo-basic's line protocol and the byte echo.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{TcpEchoConfig, TcpEchoReport, TcpEchoServer, WELCOME_LINE, identify};

/// How long any single read in these tests may take.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A conformance-mode server for pod `tcp-echo-one-abc-xyz` in `infra`, service `tcp-echo-one`.
async fn conformance_server() -> TcpEchoServer {
    let mut config = TcpEchoConfig::new("tcp-echo-one-abc-xyz", "infra");
    config.service = "tcp-echo-one".to_owned();
    TcpEchoServer::start(config)
        .await
        .expect("the TCP echo server starts")
}

/// Reads one line (newline included) within [`READ_TIMEOUT`].
async fn line(reader: &mut BufReader<TcpStream>) -> String {
    let mut text = String::new();
    tokio::time::timeout(READ_TIMEOUT, reader.read_line(&mut text))
        .await
        .expect("a line arrives in time")
        .expect("the line is read");
    text
}

#[tokio::test]
async fn conformance_mode_speaks_the_suites_line_protocol() {
    let server = conformance_server().await;
    let stream = TcpStream::connect(server.addr()).await.expect("connects");
    let mut reader = BufReader::new(stream);
    assert_eq!(line(&mut reader).await, WELCOME_LINE);

    reader.get_mut().write_all(b"PING\n").await.expect("writes");
    assert_eq!(line(&mut reader).await, "PONG\n");

    reader
        .get_mut()
        .write_all(b"IS_TLS\n")
        .await
        .expect("writes");
    assert_eq!(line(&mut reader).await, "false\n");

    reader.get_mut().write_all(b"TEST\n").await.expect("writes");
    let report: TcpEchoReport =
        serde_json::from_str(&line(&mut reader).await).expect("TEST answers with JSON");
    assert_eq!(report.pod, "tcp-echo-one-abc-xyz");
    assert_eq!(report.namespace, "infra");
    assert_eq!(report.service, "tcp-echo-one");
    assert_eq!(report.tcpport, server.addr().port().to_string());
    assert!(!report.is_tls);
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn unknown_lines_are_ignored_and_carriage_returns_dropped() {
    let server = conformance_server().await;
    let stream = TcpStream::connect(server.addr()).await.expect("connects");
    let mut reader = BufReader::new(stream);
    assert_eq!(line(&mut reader).await, WELCOME_LINE);
    // Nothing answers `HELLO`; the next answer must be the one to `PING` (sent with CRLF).
    reader
        .get_mut()
        .write_all(b"HELLO\nPING\r\n")
        .await
        .expect("writes");
    assert_eq!(line(&mut reader).await, "PONG\n");
}

#[tokio::test]
async fn a_last_line_without_newline_is_still_answered() {
    let server = conformance_server().await;
    let mut stream = TcpStream::connect(server.addr()).await.expect("connects");
    stream.write_all(b"PING").await.expect("writes");
    stream.shutdown().await.expect("half-closes");
    let mut everything = String::new();
    tokio::time::timeout(READ_TIMEOUT, stream.read_to_string(&mut everything))
        .await
        .expect("the server closes in time")
        .expect("reads");
    assert_eq!(everything, format!("{WELCOME_LINE}PONG\n"));
}

#[tokio::test]
async fn identify_reads_the_report_like_the_suite() {
    let server = conformance_server().await;
    let report = identify(server.addr(), READ_TIMEOUT)
        .await
        .expect("identifies");
    assert_eq!(report.pod, "tcp-echo-one-abc-xyz");
}

#[tokio::test]
async fn identify_fails_on_a_server_that_is_not_the_echo() {
    let server = TcpEchoServer::start(TcpEchoConfig::bytes())
        .await
        .expect("starts");
    // The byte echo sends no welcome line: identify must give up rather than accept anything.
    let error = identify(server.addr(), Duration::from_millis(300))
        .await
        .expect_err("a byte echo is not the conformance echo");
    assert!(error.to_string().contains("within"), "{error:#}");
}

#[tokio::test]
async fn byte_mode_returns_every_byte_and_closes_after_the_client() {
    let server = TcpEchoServer::start(TcpEchoConfig::bytes())
        .await
        .expect("starts");
    let stream = TcpStream::connect(server.addr()).await.expect("connects");
    let (mut reader, mut writer) = stream.into_split();
    let payload: Vec<u8> = (0..1_048_576u32).map(|i| (i % 251) as u8).collect();
    let sent = payload.clone();
    let writing = tokio::spawn(async move {
        writer.write_all(&sent).await.expect("writes");
        writer.shutdown().await.expect("half-closes");
    });
    let mut received = Vec::new();
    tokio::time::timeout(READ_TIMEOUT, reader.read_to_end(&mut received))
        .await
        .expect("the echo ends in time")
        .expect("reads");
    writing.await.expect("the writer finishes");
    assert_eq!(received.len(), payload.len());
    assert!(
        received == payload,
        "the echoed bytes differ from the sent ones"
    );
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let server = conformance_server().await;
    let addr = server.addr();
    server.shutdown().await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "{addr} still accepts"
    );
}
