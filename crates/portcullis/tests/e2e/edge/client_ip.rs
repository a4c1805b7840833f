//! Who the client is (ClientTrafficPolicy `proxyProtocol`, `clientIPDetection`): a PROXY
//! protocol header names it, and behind trusted proxies `X-Forwarded-For` does.

use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fixture::eventually;
use crate::fixture::manifest::{NS, http_route, rule, service_backend, service_ref};
use crate::fixture::running::{Echoes, HOST};

use super::limits::start_with_policy;

async fn echo_route() -> anyhow::Result<(Echoes, Vec<Value>)> {
    let echoes = Echoes::start(&["echo"]).await?;
    let mut documents = service_backend(NS, "echo", &[echoes.addr("echo")]);
    documents.push(http_route(
        "all",
        &[],
        vec![rule(vec![], vec![service_ref("echo")])],
    ));
    Ok((echoes, documents))
}

/// Sends `prefix` then a GET on a new connection; returns the raw answer.
async fn exchange(addr: std::net::SocketAddr, prefix: &[u8]) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut bytes = prefix.to_vec();
    bytes.extend_from_slice(
        format!("GET /who HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let _ = stream.write_all(&bytes).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// The `X-Forwarded-For` the echo backend received, from a raw HTTP/1.1 answer.
fn forwarded_for(answer: &str) -> anyhow::Result<Vec<String>> {
    let body = answer.split("\r\n\r\n").nth(1).context("no body")?;
    let reply: Value =
        serde_json::from_str(body).with_context(|| format!("not an echo reply: {answer}"))?;
    Ok(reply["headers"]["X-Forwarded-For"]
        .as_array()
        .map(|values| {
            values
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_protocol_header_names_the_client() -> anyhow::Result<()> {
    let (_echoes, documents) = echo_route().await?;
    let gateway = start_with_policy(
        &documents,
        Some(json!({"proxyProtocol": {"enabled": true}})),
        &[],
    )
    .await?;
    let addr = gateway.listener();

    let answer = exchange(addr, b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n").await?;
    ensure!(answer.starts_with("HTTP/1.1 200 "), "v1: {answer}");
    ensure!(
        forwarded_for(&answer)? == ["203.0.113.7"],
        "v1 X-Forwarded-For: {:?}",
        forwarded_for(&answer)?
    );

    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v2.extend_from_slice(&[
        0x21, 0x11, 0, 12, 198, 51, 100, 9, 127, 0, 0, 1, 0x1f, 0x90, 0, 80,
    ]);
    let answer = exchange(addr, &v2).await?;
    ensure!(
        forwarded_for(&answer)? == ["198.51.100.9"],
        "v2 X-Forwarded-For: {answer}"
    );

    // A LOCAL header (the balancer's own health check) keeps the real peer.
    let mut local = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    local.extend_from_slice(&[0x20, 0x00, 0, 0]);
    let answer = exchange(addr, &local).await?;
    ensure!(
        forwarded_for(&answer)? == ["127.0.0.1"],
        "LOCAL X-Forwarded-For: {answer}"
    );

    // Without the header, the connection is refused.
    let answer = exchange(addr, b"").await?;
    ensure!(
        answer.is_empty(),
        "a connection without a PROXY header was answered: {answer}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_trusted_hops_the_client_comes_from_x_forwarded_for() -> anyhow::Result<()> {
    let (_echoes, documents) = echo_route().await?;
    let spec = json!({"clientIPDetection": {"xForwardedFor": {"numTrustedHops": 1}}});
    let gateway = start_with_policy(&documents, Some(spec), &[]).await?;
    let xff = "198.51.100.1, 192.0.2.9";
    let response = gateway
        .get(HOST, "/hops", &[("x-forwarded-for", xff)])
        .await?;
    let reply = response.echo()?;
    ensure!(
        reply.headers.get("X-Forwarded-For") == Some(&vec![format!("{xff}, 127.0.0.1")]),
        "forwarded {:?}",
        reply.headers.get("X-Forwarded-For")
    );
    // The access log names the client the trusted proxy saw.
    eventually(Duration::from_secs(5), async || {
        let stdout = gateway.process.stdout_text();
        let line = stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|entry| entry["path"] == "/hops")
            .context("no access log line for /hops")?;
        let client = line["client"].as_str().unwrap_or_default();
        ensure!(
            client.starts_with("192.0.2.9"),
            "access log client {client}"
        );
        Ok(())
    })
    .await
}
