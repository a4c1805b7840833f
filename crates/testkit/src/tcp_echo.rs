//! A TCP backend that speaks echo-basic's TCP mode (`TCP_ECHO_SERVER`), or plainly echoes bytes back.
//!
//! Owns the listener and the per-connection tasks of one backend instance. In [`TcpEchoMode::Conformance`] it
//! reproduces what the Gateway API conformance suite's TCP client (`conformance/utils/tcp`) expects of
//! echo-basic: on connect it sends [`WELCOME_LINE`], then answers each line it reads: `PING` with `PONG`,
//! `IS_TLS` with `false`, `TEST` with one JSON line ([`TcpEchoReport`]) naming the pod, namespace and service.
//! Other lines are ignored, as echo-basic ignores them. In [`TcpEchoMode::Bytes`] every byte read is written
//! back until the client half-closes, which is what throughput and proxying tests want.
//!
//! It deliberately does not do TLS (echo-basic's `TLS_PORT`) nor the `TCP_MODE=RESET` variant: a test that
//! needs an upstream that resets connections uses [`crate::FaultyUpstream`].

#[cfg(test)]
mod tests;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// The first line echo-basic's TCP mode sends on every connection (newline included).
pub const WELCOME_LINE: &str = "Gateway API Test TCP Server\n";

/// The longest line the conformance mode reads; a longer one closes the connection (echo-basic's line
/// scanner stops at 64 KiB too).
const MAX_LINE: usize = 64 * 1024;

/// What a [`TcpEchoServer`] does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpEchoMode {
    /// echo-basic's line protocol: welcome line, `PING`, `IS_TLS`, `TEST`.
    Conformance,
    /// Every byte read is written back; the write side is shut down when the client half-closes.
    Bytes,
}

/// How to start a [`TcpEchoServer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpEchoConfig {
    /// Reported as `pod`; the conformance suite matches it by prefix (`<backend>-`).
    pub pod: String,
    /// Reported as `namespace`.
    pub namespace: String,
    /// Reported as `service` (echo-basic's `SERVICE_NAME`).
    pub service: String,
    /// Where to listen; port 0 picks a free port (read it back with [`TcpEchoServer::addr`]).
    pub bind: SocketAddr,
    /// What to do with a connection.
    pub mode: TcpEchoMode,
}

impl TcpEchoConfig {
    /// A conformance-mode backend on `127.0.0.1:<ephemeral>` reporting `pod` and `namespace`, with an empty
    /// service name.
    pub fn new(pod: impl Into<String>, namespace: impl Into<String>) -> Self {
        Self {
            pod: pod.into(),
            namespace: namespace.into(),
            service: String::new(),
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            mode: TcpEchoMode::Conformance,
        }
    }

    /// A plain byte echo on `127.0.0.1:<ephemeral>` (no identity: it never sends one).
    pub fn bytes() -> Self {
        Self {
            mode: TcpEchoMode::Bytes,
            ..Self::new("", "")
        }
    }
}

/// The JSON line a conformance-mode backend answers `TEST` with, as echo-basic's `TCPAssertions` spells it
/// (without the TLS part, which this backend never has).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpEchoReport {
    /// The pod's namespace.
    #[serde(default)]
    pub namespace: String,
    /// echo-basic's `INGRESS_NAME` (always empty here).
    #[serde(default)]
    pub ingress: String,
    /// echo-basic's `SERVICE_NAME`.
    #[serde(default)]
    pub service: String,
    /// The pod name.
    #[serde(default)]
    pub pod: String,
    /// The port the backend listens on, as text (echo-basic reports its `TCP_PORT`).
    #[serde(default)]
    pub tcpport: String,
    /// Whether the connection arrived over TLS (always false here).
    #[serde(default, rename = "isTLS")]
    pub is_tls: bool,
}

/// What one backend shares with its connection tasks.
#[derive(Debug)]
struct TcpEchoState {
    /// The `TEST` answer, newline included, built once.
    report_line: String,
    /// What to do with a connection.
    mode: TcpEchoMode,
    /// Connections accepted so far.
    connections: AtomicU64,
}

/// A running TCP echo backend.
///
/// It serves until [`TcpEchoServer::shutdown`] or drop. Both stop the accept loop and abort every open
/// connection; afterwards the port refuses connections (after `shutdown` returns; shortly after a drop).
#[derive(Debug)]
pub struct TcpEchoServer {
    /// The address actually bound.
    addr: SocketAddr,
    /// The pod name reported.
    pod: String,
    /// Shared with every connection.
    state: Arc<TcpEchoState>,
    /// Owns the listener and, through a [`JoinSet`], every connection task.
    accept_task: JoinHandle<()>,
}

impl TcpEchoServer {
    /// Binds `config.bind` and starts serving on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// Fails when the address cannot be bound.
    pub async fn start(config: TcpEchoConfig) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.bind).await.with_context(|| {
            format!(
                "binding TCP echo server {:?} to {}",
                config.pod, config.bind
            )
        })?;
        let addr = listener
            .local_addr()
            .context("reading the TCP echo server's bound address")?;
        let report = TcpEchoReport {
            namespace: config.namespace,
            ingress: String::new(),
            service: config.service,
            pod: config.pod.clone(),
            tcpport: addr.port().to_string(),
            is_tls: false,
        };
        let mut report_line =
            serde_json::to_string(&report).context("encoding the TCP echo report")?;
        report_line.push('\n');
        let state = Arc::new(TcpEchoState {
            report_line,
            mode: config.mode,
            connections: AtomicU64::new(0),
        });
        let accept_task = tokio::spawn(accept_loop(listener, Arc::clone(&state)));
        Ok(Self {
            addr,
            pod: config.pod,
            state,
            accept_task,
        })
    }

    /// The address the server listens on (the real port when `bind` had port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The pod name this backend reports.
    pub fn pod(&self) -> &str {
        &self.pod
    }

    /// How many connections have been accepted so far.
    pub fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Stops the server and waits until the listener is closed, so the port refuses connections on return.
    /// Open connections are aborted.
    pub async fn shutdown(mut self) {
        self.accept_task.abort();
        // Resolves once the task's future, and with it the listener and the connection set, has been dropped.
        let _cancelled = (&mut self.accept_task).await;
    }
}

impl Drop for TcpEchoServer {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

/// Connects to a conformance-mode backend (directly or through a gateway), reads the welcome line, sends
/// `TEST` and returns the parsed report: the suite's `EchoSendOnce`.
///
/// # Errors
///
/// Fails when the connection cannot be made, closes early, the welcome line differs, the answer is not a
/// report, or `timeout` passes first.
pub async fn identify(addr: SocketAddr, timeout: Duration) -> anyhow::Result<TcpEchoReport> {
    let exchange = async {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        let mut stream = BufReader::new(stream);
        let welcome = read_line(&mut stream)
            .await
            .context("reading the welcome line")?;
        if welcome != WELCOME_LINE {
            bail!("unexpected welcome line {welcome:?}");
        }
        stream
            .get_mut()
            .write_all(b"TEST\n")
            .await
            .context("writing TEST")?;
        let line = read_line(&mut stream)
            .await
            .context("reading the TEST answer")?;
        serde_json::from_str(&line).with_context(|| format!("decoding the TEST answer {line:?}"))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .with_context(|| format!("no TCP echo answer from {addr} within {timeout:?}"))?
}

/// Reads one line, newline included; an end of stream before any newline is an error.
async fn read_line<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> anyhow::Result<String> {
    let mut line = Vec::new();
    let read = reader.read_until(b'\n', &mut line).await?;
    if read == 0 || line.last() != Some(&b'\n') {
        bail!(
            "the connection closed after {:?}",
            String::from_utf8_lossy(&line)
        );
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// Accepts connections until aborted. Dropping this future drops the [`JoinSet`], which aborts every connection.
async fn accept_loop(listener: TcpListener, state: Arc<TcpEchoState>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    state.connections.fetch_add(1, Ordering::SeqCst);
                    connections.spawn(serve_connection(stream, Arc::clone(&state)));
                }
                // Usually a full file table; back off instead of spinning, and keep serving.
                Err(_error) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            // Reap finished connections so the set does not grow for the lifetime of the server.
            Some(_finished) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Serves one connection in the configured mode; I/O errors just end it (the peer went away).
async fn serve_connection(mut stream: TcpStream, state: Arc<TcpEchoState>) {
    let _outcome = match state.mode {
        TcpEchoMode::Conformance => serve_lines(&mut stream, &state.report_line).await,
        TcpEchoMode::Bytes => echo_bytes(&mut stream).await,
    };
}

/// echo-basic's line protocol on one connection, until the client closes it.
async fn serve_lines<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    report_line: &str,
) -> std::io::Result<()> {
    stream.write_all(WELCOME_LINE.as_bytes()).await?;
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .await?;
        if read == 0 {
            return Ok(());
        }
        let is_complete = line.last() == Some(&b'\n');
        if !is_complete && line.len() >= MAX_LINE {
            // Too long for echo-basic's scanner too: it gives up on the connection.
            return Ok(());
        }
        // Like Go's bufio.ScanLines: the newline and one carriage return before it are not part of the line.
        let mut text: &[u8] = &line;
        if let Some(rest) = text.strip_suffix(b"\n") {
            text = rest;
        }
        if let Some(rest) = text.strip_suffix(b"\r") {
            text = rest;
        }
        let answer: &[u8] = match text {
            b"TEST" => report_line.as_bytes(),
            b"IS_TLS" => b"false\n",
            b"PING" => b"PONG\n",
            _ => b"",
        };
        if !answer.is_empty() {
            reader.get_mut().write_all(answer).await?;
        }
        if !is_complete {
            // The last line had no newline: the client closed its side after it.
            return Ok(());
        }
    }
}

/// Writes back every byte read until the client half-closes, then shuts the write side down.
async fn echo_bytes(stream: &mut TcpStream) -> std::io::Result<()> {
    let (mut reader, mut writer) = stream.split();
    tokio::io::copy(&mut reader, &mut writer).await?;
    writer.shutdown().await
}
