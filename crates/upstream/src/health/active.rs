//! Active health checks: the probes the gateway sends to every endpoint of a backend.
//!
//! Each probe uses its own plain connection (TCP connect; an HTTP/1.1 connection for HTTP; an
//! h2c connection for gRPC), closed after the probe, so probes neither borrow nor disturb the
//! data-plane pools. Probes do not speak TLS: for a backend with TLS settings, HTTP and gRPC
//! probes are sent as TCP connects (a cleartext request to a TLS port would fail every time
//! and take the whole backend out).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use telemetry::{LabelValue, Metrics};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use super::EndpointHealth;
use crate::registry::BackendRuntime;
use snapshot::backend::policy::{ActiveHealth, Probe};

type ProbeError = Box<dyn std::error::Error + Send + Sync>;

/// Probes every endpoint of the backend once, concurrently, each within `health.timeout`, and
/// records the results. Returns when every probe finished.
/// Drops the health gauges of endpoints probed last round that left the backend since;
/// `reported` holds the addresses probed last round and is updated.
pub(crate) fn forget_removed(
    runtime: &BackendRuntime,
    metrics: &Metrics,
    reported: &mut Vec<SocketAddr>,
) {
    let set = runtime.endpoints();
    let current: Vec<SocketAddr> = set.endpoints().iter().map(|e| e.addr()).collect();
    let backend = LabelValue::from(Arc::clone(runtime.id().as_shared()));
    for gone in reported.iter().filter(|addr| !current.contains(addr)) {
        metrics.endpoint_health_removed(&backend, &LabelValue::from(gone.to_string()));
    }
    *reported = current;
}

/// Sets `portcullis_endpoint_healthy` for every probed endpoint when `metrics` is given.
pub(crate) async fn probe_all(
    runtime: &BackendRuntime,
    health: &ActiveHealth,
    metrics: Option<&Metrics>,
) {
    let backend = LabelValue::from(Arc::clone(runtime.id().as_shared()));
    let set = runtime.endpoints();
    let probe = match &health.probe {
        Probe::Http { .. } | Probe::Grpc { .. } if runtime.tls().is_some() => Probe::Tcp,
        probe => probe.clone(),
    };
    let mut probes = JoinSet::new();
    for endpoint in set.endpoints() {
        let endpoint = Arc::clone(endpoint);
        let probe = probe.clone();
        let timeout = health.timeout;
        probes.spawn(async move {
            let passed = tokio::time::timeout(timeout, probe_once(&probe, endpoint.addr()))
                .await
                .unwrap_or(false);
            (endpoint, passed)
        });
    }
    while let Some(joined) = probes.join_next().await {
        let Ok((endpoint, passed)) = joined else {
            continue; // a panicking probe counts as nothing
        };
        if let Some(healthy) = endpoint.health().record_probe(passed, health) {
            tracing::info!(backend = %runtime.id(), endpoint = %endpoint.addr(), healthy,
                "active health check changed endpoint state");
        }
        if let Some(metrics) = metrics {
            let address = LabelValue::from(endpoint.addr().to_string());
            metrics.endpoint_health(&backend, &address, endpoint.health().is_healthy());
        }
    }
}

impl EndpointHealth {
    /// Counts one probe result; returns the new state when it changed (`Some(true)`: healthy
    /// again, `Some(false)`: now unhealthy).
    pub(crate) fn record_probe(&self, passed: bool, health: &ActiveHealth) -> Option<bool> {
        if passed {
            self.probe_failures.store(0, Ordering::Relaxed);
            let passes = self.probe_passes.fetch_add(1, Ordering::Relaxed) + 1;
            let unhealthy = self.unhealthy.load(Ordering::Relaxed);
            if unhealthy && passes >= health.healthy_threshold.max(1) {
                self.unhealthy.store(false, Ordering::Relaxed);
                return Some(true);
            }
        } else {
            self.probe_passes.store(0, Ordering::Relaxed);
            let failures = self.probe_failures.fetch_add(1, Ordering::Relaxed) + 1;
            let unhealthy = self.unhealthy.load(Ordering::Relaxed);
            if !unhealthy && failures >= health.unhealthy_threshold.max(1) {
                self.unhealthy.store(true, Ordering::Relaxed);
                return Some(false);
            }
        }
        None
    }
}

/// One probe of one endpoint: whether it passed. No timeout here (the caller bounds it).
pub(crate) async fn probe_once(probe: &Probe, addr: SocketAddr) -> bool {
    let result = match probe {
        Probe::Tcp => TcpStream::connect(addr)
            .await
            .map(|_| true)
            .map_err(Into::into),
        Probe::Http {
            path,
            expected_statuses,
            hostname,
        } => http_probe(addr, path, expected_statuses, hostname.as_deref()).await,
        Probe::Grpc { service } => grpc_probe(addr, service).await,
    };
    result.unwrap_or_else(|error| {
        tracing::debug!(%addr, %error, "health probe failed");
        false
    })
}

/// `GET path` over a fresh HTTP/1.1 connection; passes when the status is expected
/// (`[200]` when the list is empty).
async fn http_probe(
    addr: SocketAddr,
    path: &str,
    expected: &[u16],
    hostname: Option<&str>,
) -> Result<bool, ProbeError> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let host = hostname.map_or_else(|| addr.to_string(), str::to_owned);
    let request = http::Request::get(path)
        .header(http::header::HOST, host)
        .header(http::header::USER_AGENT, "portcullis-health-check")
        .body(Empty::<Bytes>::new())?;
    let exchange = async { sender.send_request(request).await };
    tokio::pin!(connection);
    let response = tokio::select! {
        // The response first: a server that answers and closes must not read as a failure.
        biased;
        response = exchange => response?,
        closed = &mut connection => {
            closed?;
            return Err("connection closed before the response".into());
        }
    };
    let status = response.status().as_u16();
    Ok(if expected.is_empty() {
        status == 200
    } else {
        expected.contains(&status)
    })
}

/// `grpc.health.v1.Health/Check` over a fresh h2c connection; passes when the answer is
/// `SERVING`.
async fn grpc_probe(addr: SocketAddr, service: &str) -> Result<bool, ProbeError> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
    let request = http::Request::post(format!("http://{addr}/grpc.health.v1.Health/Check"))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header(http::header::TE, "trailers")
        .header(http::header::USER_AGENT, "portcullis-health-check")
        .body(Full::new(health_check_request(service)))?;
    let exchange = async {
        let response = sender.send_request(request).await?;
        if response.status() != http::StatusCode::OK {
            return Ok::<_, ProbeError>(false);
        }
        let collected = response.into_body().collect().await?;
        let grpc_ok = collected
            .trailers()
            .and_then(|t| t.get("grpc-status"))
            .is_none_or(|status| status == "0");
        Ok(grpc_ok && is_serving(&collected.to_bytes()))
    };
    tokio::pin!(connection);
    tokio::select! {
        biased;
        passed = exchange => passed,
        closed = &mut connection => {
            closed?;
            Err("connection closed before the response".into())
        }
    }
}

/// A length-prefixed `HealthCheckRequest { service = 1 }` (proto3: an empty service is
/// omitted).
pub(crate) fn health_check_request(service: &str) -> Bytes {
    let mut message = BytesMut::new();
    if !service.is_empty() {
        message.put_u8(0x0a); // field 1, length-delimited
        put_varint(&mut message, service.len() as u64);
        message.put_slice(service.as_bytes());
    }
    let mut frame = BytesMut::with_capacity(5 + message.len());
    frame.put_u8(0); // not compressed
    frame.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    frame.put_slice(&message);
    frame.freeze()
}

fn put_varint(buffer: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        buffer.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    buffer.put_u8(value as u8);
}

/// Whether a length-prefixed `HealthCheckResponse` says `status = SERVING` (field 1 == 1).
pub(crate) fn is_serving(frame: &[u8]) -> bool {
    let Some((&[0, a, b, c, d], message)) = frame.split_first_chunk::<5>() else {
        return false; // too short, or compressed (we never offer compression)
    };
    let length = u32::from_be_bytes([a, b, c, d]) as usize;
    let Some(mut message) = message.get(..length) else {
        return false;
    };
    let mut status = 0; // UNKNOWN when absent
    while !message.is_empty() {
        let Some(key) = read_varint(&mut message) else {
            return false;
        };
        let skip = match (key >> 3, key & 7) {
            (1, 0) => match read_varint(&mut message) {
                Some(value) => {
                    status = value;
                    0
                }
                None => return false,
            },
            (_, 0) => match read_varint(&mut message) {
                Some(_) => 0,
                None => return false,
            },
            (_, 1) => 8,
            (_, 2) => match read_varint(&mut message) {
                Some(length) => usize::try_from(length).unwrap_or(usize::MAX),
                None => return false,
            },
            (_, 5) => 4,
            _ => return false,
        };
        let Some(rest) = message.get(skip..) else {
            return false;
        };
        message = rest;
    }
    status == 1
}

fn read_varint(input: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}
