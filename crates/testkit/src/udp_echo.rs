//! A UDP backend that speaks echo-basic's UDP mode (`UDP_ECHO_SERVER`), or sends every datagram back as it is.
//!
//! Owns one socket and the task that serves it. In [`UdpEchoMode::Conformance`] it answers each datagram with
//! one JSON datagram ([`UdpEchoReport`]): the request payload and the pod, namespace and service, which is what
//! the Gateway API conformance suite's UDP client (`conformance/utils/udp`) reads. In [`UdpEchoMode::Bytes`] it
//! returns each datagram unchanged. Either way it remembers which source addresses it has heard from
//! ([`UdpEchoServer::peers`]), so a test can check that a gateway keeps one upstream flow per client.
//!
//! It deliberately keeps no per-peer state beyond that set, and never sends unprompted.

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// The largest datagram received whole (the largest a UDP datagram over IPv4 can carry).
const MAX_DATAGRAM: usize = 65_535;

/// What a [`UdpEchoServer`] answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpEchoMode {
    /// echo-basic's JSON envelope ([`UdpEchoReport`]).
    Conformance,
    /// The datagram itself.
    Bytes,
}

/// How to start a [`UdpEchoServer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpEchoConfig {
    /// Reported as `pod`.
    pub pod: String,
    /// Reported as `namespace`.
    pub namespace: String,
    /// Reported as `service` (echo-basic's `SERVICE_NAME`).
    pub service: String,
    /// Where to listen; port 0 picks a free port (read it back with [`UdpEchoServer::addr`]).
    pub bind: SocketAddr,
    /// What to answer with.
    pub mode: UdpEchoMode,
}

impl UdpEchoConfig {
    /// A conformance-mode backend on `127.0.0.1:<ephemeral>` reporting `pod` and `namespace`, with an empty
    /// service name.
    pub fn new(pod: impl Into<String>, namespace: impl Into<String>) -> Self {
        Self {
            pod: pod.into(),
            namespace: namespace.into(),
            service: String::new(),
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            mode: UdpEchoMode::Conformance,
        }
    }

    /// A plain datagram echo on `127.0.0.1:<ephemeral>`.
    pub fn bytes() -> Self {
        Self {
            mode: UdpEchoMode::Bytes,
            ..Self::new("", "")
        }
    }
}

/// The JSON datagram a conformance-mode backend answers with, as echo-basic's `EchoResponse` spells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UdpEchoReport {
    /// The request datagram, as text (invalid UTF-8 replaced).
    #[serde(default)]
    pub request: String,
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
}

/// What the serving task shares with the [`UdpEchoServer`] handle.
#[derive(Debug, Default)]
struct UdpEchoState {
    /// Datagrams received so far.
    datagrams: AtomicU64,
    /// Every source address heard from.
    peers: Mutex<BTreeSet<SocketAddr>>,
}

/// A running UDP echo backend. It serves until [`UdpEchoServer::shutdown`] or drop.
#[derive(Debug)]
pub struct UdpEchoServer {
    /// The address actually bound.
    addr: SocketAddr,
    /// The pod name reported.
    pod: String,
    /// Shared with the serving task.
    state: Arc<UdpEchoState>,
    /// Owns the socket.
    task: JoinHandle<()>,
}

impl UdpEchoServer {
    /// Binds `config.bind` and starts serving on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// Fails when the address cannot be bound.
    pub async fn start(config: UdpEchoConfig) -> anyhow::Result<Self> {
        let socket = UdpSocket::bind(config.bind).await.with_context(|| {
            format!(
                "binding UDP echo server {:?} to {}",
                config.pod, config.bind
            )
        })?;
        let addr = socket
            .local_addr()
            .context("reading the UDP echo server's bound address")?;
        let state = Arc::new(UdpEchoState::default());
        let pod = config.pod.clone();
        let task = tokio::spawn(serve(socket, config, Arc::clone(&state)));
        Ok(Self {
            addr,
            pod,
            state,
            task,
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

    /// How many datagrams have arrived so far.
    pub fn datagrams(&self) -> u64 {
        self.state.datagrams.load(Ordering::SeqCst)
    }

    /// Every source address a datagram came from so far, in address order.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.state
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .collect()
    }

    /// Stops the server and waits until its socket is closed.
    pub async fn shutdown(mut self) {
        self.task.abort();
        // Resolves once the task's future, and with it the socket, has been dropped.
        let _cancelled = (&mut self.task).await;
    }
}

impl Drop for UdpEchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Sends `payload` from a fresh socket to a conformance-mode backend (directly or through a gateway) and
/// returns the parsed answer: the suite's `udpEchoSendOnce`.
///
/// # Errors
///
/// Fails when nothing answers within `timeout` (an ICMP port-unreachable shows as a refused receive), or the
/// answer is not a report.
pub async fn identify(
    addr: SocketAddr,
    payload: &[u8],
    timeout: Duration,
) -> anyhow::Result<UdpEchoReport> {
    let answer = exchange(addr, payload, timeout).await?;
    serde_json::from_slice(&answer).with_context(|| {
        format!(
            "decoding the UDP echo answer {:?}",
            String::from_utf8_lossy(&answer)
        )
    })
}

/// Sends `payload` from a fresh socket to `addr` and returns the first datagram that comes back.
///
/// # Errors
///
/// Fails when nothing answers within `timeout`, or the receive is refused (ICMP port unreachable).
pub async fn exchange(
    addr: SocketAddr,
    payload: &[u8],
    timeout: Duration,
) -> anyhow::Result<Vec<u8>> {
    let local: SocketAddr = if addr.is_ipv4() {
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))
    } else {
        SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))
    };
    let socket = UdpSocket::bind(local)
        .await
        .context("binding a UDP client socket")?;
    socket
        .connect(addr)
        .await
        .with_context(|| format!("connecting a UDP socket to {addr}"))?;
    socket
        .send(payload)
        .await
        .with_context(|| format!("sending a datagram to {addr}"))?;
    let mut buffer = vec![0; MAX_DATAGRAM];
    match tokio::time::timeout(timeout, socket.recv(&mut buffer)).await {
        Ok(Ok(length)) => {
            buffer.truncate(length);
            Ok(buffer)
        }
        Ok(Err(error)) => bail!("receiving from {addr}: {error}"),
        Err(_elapsed) => bail!("no datagram from {addr} within {timeout:?}"),
    }
}

/// Answers datagrams until aborted. A failed receive or send (an ICMP error from an earlier peer) is skipped.
async fn serve(socket: UdpSocket, config: UdpEchoConfig, state: Arc<UdpEchoState>) {
    let mut buffer = vec![0; MAX_DATAGRAM];
    loop {
        let Ok((length, peer)) = socket.recv_from(&mut buffer).await else {
            continue;
        };
        state.datagrams.fetch_add(1, Ordering::SeqCst);
        state
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(peer);
        let payload = &buffer[..length];
        let answer = match config.mode {
            UdpEchoMode::Bytes => payload.to_vec(),
            UdpEchoMode::Conformance => {
                let report = UdpEchoReport {
                    request: String::from_utf8_lossy(payload).into_owned(),
                    namespace: config.namespace.clone(),
                    ingress: String::new(),
                    service: config.service.clone(),
                    pod: config.pod.clone(),
                };
                match serde_json::to_vec(&report) {
                    Ok(encoded) => encoded,
                    Err(_error) => continue,
                }
            }
        };
        let _sent = socket.send_to(&answer, peer).await;
    }
}
