//! Resilience settings of a backend, as compiled from a `BackendTrafficPolicy` (plain data).
//!
//! `compile` builds one [`BackendPolicy`] per backend (the default when no policy applies); the
//! registry keeps it in the backend's runtime, next to the state it governs (balancer, health,
//! outlier and breaker state), so a policy change updates settings without resetting state.

use std::time::Duration;

use http::HeaderName;
use serde::Serialize;

/// Everything a backend's runtime needs to know about how to treat its endpoints.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendPolicy {
    /// Endpoint selection.
    pub balancer: Balancer,
    /// New endpoints ramp up their share over this window.
    pub slow_start: Option<Duration>,
    /// Probes sent by the gateway.
    pub active_health: Option<ActiveHealth>,
    /// Outlier detection on live traffic.
    pub outlier: Option<OutlierDetection>,
    /// Concurrency limits (answered with 503 and `x-portcullis-error: overloaded-parallel` or
    /// `overloaded-pending`; see `breaker`).
    pub limits: ConcurrencyLimits,
    /// The error-rate breaker (open: 503 with `x-portcullis-error: circuit-open`).
    pub error_rate: Option<ErrorRateSettings>,
    /// TCP connect timeout. A backend whose connect timeout, idle timeout,
    /// `limits.max_connections` or `max_connection_duration` differ from the defaults gets
    /// pools of its own built with them (`backend_pool`; a TLS backend's TLS pools too).
    pub connect_timeout: Duration,
    /// Idle pooled connections are closed after this (see `connect_timeout`).
    pub idle_timeout: Duration,
    /// A connection this old takes no new request: it finishes the one in flight and closes
    /// (`None` = no limit). Like the timeouts above, it gives a backend its own pools.
    pub max_connection_duration: Option<Duration>,
    /// The PROXY protocol header each forwarded TCP connection (TCPRoute, TLSRoute) starts
    /// with, giving the backend the client's address; `None` sends none.
    pub proxy_protocol: Option<ProxyProtocolVersion>,
}

/// A PROXY protocol version (haproxy.org's PROXY protocol specification).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ProxyProtocolVersion {
    /// The human-readable header: `PROXY TCP4 ...\r\n`.
    V1,
    /// The binary header.
    V2,
}

impl Default for BackendPolicy {
    fn default() -> BackendPolicy {
        BackendPolicy {
            balancer: Balancer::PeakEwma,
            slow_start: None,
            active_health: None,
            outlier: None,
            limits: ConcurrencyLimits::default(),
            error_rate: None,
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(90),
            max_connection_duration: None,
            proxy_protocol: None,
        }
    }
}

/// Load-balancing algorithm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Balancer {
    /// Power of two choices over in-flight requests and decayed peak latency (default).
    PeakEwma,
    /// Weighted round robin.
    RoundRobin,
    /// Weighted random.
    Random,
    /// Power of two choices over in-flight requests.
    LeastRequest,
    /// Consistent hashing of a request attribute (minimal disruption when endpoints change).
    ConsistentHash(HashKey),
}

/// What consistent hashing hashes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum HashKey {
    /// A request header's value.
    Header(#[serde(serialize_with = "serialize_header")] HeaderName),
    /// The client's IP address.
    SourceIp,
    /// A cookie's value; the gateway sets the cookie (with this lifetime) when absent.
    Cookie {
        /// Cookie name.
        name: String,
        /// Lifetime of a cookie set by the gateway; `None` = session cookie.
        ttl: Option<Duration>,
    },
}

fn serialize_header<S: serde::Serializer>(
    name: &HeaderName,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(name.as_str())
}

/// Active health checking.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveHealth {
    /// What a probe is.
    pub probe: Probe,
    /// Time between probes of one endpoint.
    pub interval: Duration,
    /// A probe not answered within this fails.
    pub timeout: Duration,
    /// Consecutive failed probes that make an endpoint unhealthy.
    pub unhealthy_threshold: u32,
    /// Consecutive passed probes that make an unhealthy endpoint healthy again.
    pub healthy_threshold: u32,
}

/// A health probe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Probe {
    /// `GET path`, healthy when the status is one of `expected_statuses`.
    Http {
        /// Path (and query) probed.
        path: String,
        /// Healthy statuses.
        expected_statuses: Vec<u16>,
        /// Host header; `None` = the endpoint address.
        hostname: Option<String>,
    },
    /// A TCP connect.
    Tcp,
    /// `grpc.health.v1.Health/Check`, healthy when SERVING.
    Grpc {
        /// `HealthCheckRequest.service`.
        service: String,
    },
}

/// Passive health checking (outlier detection).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutlierDetection {
    /// Consecutive 5xx responses that eject an endpoint.
    pub consecutive_5xx: Option<u32>,
    /// Consecutive gateway errors (connect failure, reset, 502, 503, 504) that eject.
    pub consecutive_gateway_errors: Option<u32>,
    /// How often latency outliers are evaluated and ejections reconsidered.
    pub interval: Duration,
    /// First ejection time; the n-th ejection of an endpoint lasts n times as long.
    pub base_ejection_time: Duration,
    /// At most this share of a backend's endpoints is ejected at once.
    pub max_ejection_percent: u32,
    /// Latency outliers: ejected when their latency exceeds `threshold` x the median.
    pub latency: Option<LatencyOutlierSettings>,
}

/// Latency outlier settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencyOutlierSettings {
    /// Multiple of the median latency of the backend's endpoints.
    pub threshold: f64,
    /// Requests an endpoint needs in an interval to be judged.
    pub min_requests: u32,
}

/// Concurrency limits per backend (`None` = unlimited).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConcurrencyLimits {
    /// Open upstream connections (cleartext and TLS): the backend's own pools' connector counts
    /// them and refuses a new one beyond the limit (503 `overloaded-connections`; see
    /// `backend_pool`).
    pub max_connections: Option<u32>,
    /// Requests waiting for a connection.
    pub max_pending_requests: Option<u32>,
    /// Requests in flight.
    pub max_parallel_requests: Option<u32>,
}

/// The error-rate breaker: opens when the error share over a window exceeds a threshold,
/// answers immediately while open, lets a few probe requests through when half-open.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorRateSettings {
    /// Error share (0..1) that opens the breaker.
    pub threshold: f64,
    /// Requests in the window before the share counts.
    pub min_requests: u32,
    /// Sliding window.
    pub window: Duration,
    /// Time open before half-opening.
    pub open_for: Duration,
    /// Probe requests while half-open; all must succeed to close.
    pub half_open_requests: u32,
}
