//! Request head limits (reliability A8) and connection limits (A7, T16), and the
//! ClientTrafficPolicy that sets them.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde_json::{Value, json};
use testkit::HttpClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fixture::manifest::{GATEWAY, NS, http_route, rule, service_backend, service_ref};
use crate::fixture::recording::recording_backend;
use crate::fixture::running::{ConfigDir, HOST, TestGateway};

/// The file the policy of [`start_with_policy`] is written to.
pub(crate) const POLICY_FILE: &str = "policy.yaml";

/// A ClientTrafficPolicy for the whole test Gateway with `spec` (plus its targetRefs).
pub(crate) fn client_policy(mut spec: Value) -> Value {
    spec["targetRefs"] =
        json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": GATEWAY}]);
    json!({
        "apiVersion": "portcullis.dev/v1alpha1",
        "kind": "ClientTrafficPolicy",
        "metadata": {"name": "edge", "namespace": NS},
        "spec": spec,
    })
}

/// Starts a gateway with `documents`, a ClientTrafficPolicy with `spec` in [`POLICY_FILE`] (if
/// any), and `args`.
pub(crate) async fn start_with_policy(
    documents: &[Value],
    spec: Option<Value>,
    args: &[&str],
) -> anyhow::Result<TestGateway> {
    let config = ConfigDir::new()?;
    config.write_gateway(None)?;
    config.write("config.yaml", documents)?;
    if let Some(spec) = spec {
        config.write(POLICY_FILE, &[client_policy(spec)])?;
    }
    config.start(args).await
}

/// A route `/` to a recording backend.
pub(crate) async fn recorded_route() -> anyhow::Result<(Vec<Value>, crate::fixture::recording::Seen)>
{
    let (backend, seen) = recording_backend().await?;
    let mut documents = service_backend(NS, "recording", &[backend]);
    documents.push(http_route(
        "all",
        &[],
        vec![rule(vec![], vec![service_ref("recording")])],
    ));
    Ok((documents, seen))
}

/// Writes `raw` on a new connection and returns the status line's code of the answer.
pub(crate) async fn raw_status(gateway: SocketAddr, raw: &[u8]) -> anyhow::Result<u16> {
    let mut stream = TcpStream::connect(gateway).await?;
    // The gateway may answer and close before reading everything.
    let _ = stream.write_all(raw).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| {
            format!(
                "not an HTTP response: {:?}",
                answer.chars().take(200).collect::<String>()
            )
        })
}

fn request_with_headers(path: &str, headers: &[(String, String)]) -> Vec<u8> {
    let mut raw = format!("GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    raw.into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_get_431_and_long_uris_414_from_the_gateway() -> anyhow::Result<()> {
    let (documents, seen) = recorded_route().await?;
    let gateway = TestGateway::start(&documents).await?;
    let addr = gateway.listener();

    // Defaults: a 60 KiB head, 100 header fields, an 8 KiB request target.
    let big = vec![("x-big".to_owned(), "a".repeat(61 * 1024))];
    ensure!(
        raw_status(addr, &request_with_headers("/", &big)).await? == 431,
        "61 KiB head"
    );
    let fine = vec![("x-big".to_owned(), "a".repeat(50 * 1024))];
    ensure!(
        raw_status(addr, &request_with_headers("/", &fine)).await? == 200,
        "50 KiB head"
    );
    let many: Vec<_> = (0..101)
        .map(|i| (format!("x-h{i}"), "v".to_owned()))
        .collect();
    ensure!(
        raw_status(addr, &request_with_headers("/", &many)).await? == 431,
        "101 headers"
    );
    let long = format!("/{}", "u".repeat(9 * 1024));
    ensure!(
        raw_status(addr, &request_with_headers(&long, &[])).await? == 414,
        "9 KiB URI"
    );
    let fits = format!("/{}", "u".repeat(8 * 1024 - 100));
    ensure!(
        raw_status(addr, &request_with_headers(&fits, &[])).await? == 200,
        "8 KiB URI"
    );

    // HTTP/2: the same limits, from the gateway (not from the client library).
    let h2c = HttpClient::h2c();
    let response = h2c.get(addr, HOST, &long, &[]).await?;
    ensure!(response.status == 414, "h2c 9 KiB URI: {}", response.status);
    let names: Vec<String> = (0..101).map(|i| format!("x-h{i}")).collect();
    let headers: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    let response = h2c.get(addr, HOST, "/", &headers).await?;
    ensure!(
        response.status == 431,
        "h2c 101 headers: {}",
        response.status
    );

    let forwarded = crate::fixture::recording::seen_paths(&seen);
    ensure!(
        forwarded.len() == 2,
        "only the two requests within limits are forwarded: {forwarded:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_limits_replace_the_defaults() -> anyhow::Result<()> {
    let (documents, _seen) = recorded_route().await?;
    let spec = json!({"headers": {"maxRequestHeadersKiB": 16, "maxHeadersCount": 20, "maxUriBytes": 1024}});
    let gateway = start_with_policy(&documents, Some(spec), &[]).await?;
    let addr = gateway.listener();
    let big = vec![("x-big".to_owned(), "a".repeat(17 * 1024))];
    ensure!(
        raw_status(addr, &request_with_headers("/", &big)).await? == 431,
        "17 KiB head"
    );
    let many: Vec<_> = (0..21)
        .map(|i| (format!("x-h{i}"), "v".to_owned()))
        .collect();
    ensure!(
        raw_status(addr, &request_with_headers("/", &many)).await? == 431,
        "21 headers"
    );
    let long = format!("/{}", "u".repeat(1100));
    ensure!(
        raw_status(addr, &request_with_headers(&long, &[])).await? == 414,
        "1.1 KiB URI"
    );
    ensure!(
        raw_status(addr, &request_with_headers("/ok", &[])).await? == 200,
        "small request"
    );
    Ok(())
}

/// Opens `count` connections that send nothing.
async fn idle_connections(addr: SocketAddr, count: usize) -> anyhow::Result<Vec<TcpStream>> {
    let mut connections = Vec::with_capacity(count);
    for _ in 0..count {
        connections.push(TcpStream::connect(addr).await?);
    }
    Ok(connections)
}

/// Whether the gateway closes `stream` within `within` (reads EOF or a reset).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(within, stream.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limits_are_refused_at_once() -> anyhow::Result<()> {
    let (documents, _seen) = recorded_route().await?;
    // Process-wide 30, this listener 20.
    let spec = json!({"connection": {"maxConnections": 20}});
    let gateway = start_with_policy(&documents, Some(spec), &["--max-connections", "30"]).await?;
    let addr = gateway.listener();
    let mut held = idle_connections(addr, 20).await?;
    // Give the gateway time to accept them all.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut extra = TcpStream::connect(addr).await?;
    let started = Instant::now();
    ensure!(
        closed_within(&mut extra, Duration::from_secs(1)).await,
        "the 21st connection stayed open"
    );
    let refused_after = started.elapsed();
    // The held ones are still served.
    ensure!(
        !closed_within(&mut held[0], Duration::from_millis(100)).await,
        "a held connection was closed"
    );
    // The admin server answers, and the refusal is counted.
    let metrics = gateway.admin_text("/metrics").await?;
    ensure!(
        metrics.contains(
            "portcullis_downstream_connections_refused_total{reason=\"listener_limit\"} 1"
        ),
        "refusal not counted:\n{}",
        metrics
            .lines()
            .filter(|l| l.contains("refused"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Closing one makes room for a request.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let status = raw_status(addr, &request_with_headers("/room", &[])).await?;
    ensure!(status == 200, "after one closed: {status}");
    eprintln!("refused in {refused_after:?}");
    Ok(())
}

/// Descriptors the process has open.
fn open_descriptors(pid: u32) -> anyhow::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_server_answers_at_the_descriptor_limit() -> anyhow::Result<()> {
    let (documents, _seen) = recorded_route().await?;
    let gateway = TestGateway::start(&documents).await?;
    let pid = gateway.process.pid();
    // Leave the process 40 descriptors beyond what it has open, then take them all.
    let limit = open_descriptors(pid)? + 40;
    let status = std::process::Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={limit}:{limit}"))
        .status()
        .context("running prlimit")?;
    ensure!(status.success(), "prlimit failed: {status}");
    let mut clients = idle_connections(gateway.listener(), 100).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for attempt in 0..5 {
        let (status, body) =
            gateway.process.get_admin("/ready").await.with_context(|| {
                format!("admin /ready at the descriptor limit (attempt {attempt})")
            })?;
        ensure!(status == 200, "/ready answered {status}: {body}");
    }
    let metrics = gateway.admin_text("/metrics").await?;
    ensure!(
        metrics.contains("portcullis_downstream_connections_refused_total{reason=\"fd_limit\"}"),
        "descriptor exhaustion not counted"
    );
    // Connections over the limit were closed, not left waiting in the backlog.
    let mut closed = 0;
    for client in &mut clients {
        if closed_within(client, Duration::from_millis(20)).await {
            closed += 1;
        }
    }
    ensure!(
        closed > 0,
        "no connection beyond the descriptor limit was closed"
    );
    drop(clients);
    // Once clients leave, the gateway serves again.
    let gateway_addr = gateway.listener();
    crate::fixture::eventually(Duration::from_secs(5), async || {
        let status = raw_status(gateway_addr, &request_with_headers("/again", &[])).await?;
        ensure!(status == 200, "after the clients left: {status}");
        Ok(())
    })
    .await
}
