//! Live endpoints and their counters.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::balance::{BalanceTables, LatencyEstimate};
use crate::health::{EndpointHealth, HealthView};

/// One live endpoint. Kept across endpoint-set changes while its address stays, so its
/// counters (and later its health, EWMA and breaker state) survive.
#[derive(Debug)]
pub struct EndpointRuntime {
    addr: SocketAddr,
    /// `ip:port` as a URI authority, built once: HTTP/1.1 requests are addressed with it.
    authority: http::uri::Authority,
    weight: AtomicU64,
    in_flight: AtomicU64,
    requests: AtomicU64,
    failures: AtomicU64,
    health: EndpointHealth,
    /// When the endpoint appeared (slow start).
    created: Instant,
    /// Decayed peak latency (PeakEWMA).
    latency: LatencyEstimate,
}

impl EndpointRuntime {
    /// A fresh endpoint.
    pub fn new(addr: SocketAddr, weight: u32) -> EndpointRuntime {
        // A SocketAddr always formats as a valid authority.
        let authority = http::uri::Authority::try_from(addr.to_string().as_str())
            .expect("a socket address is a valid URI authority");
        EndpointRuntime {
            addr,
            authority,
            weight: AtomicU64::new(u64::from(weight)),
            in_flight: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            health: EndpointHealth::new(),
            created: Instant::now(),
            latency: LatencyEstimate::new(),
        }
    }

    /// The endpoint's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address as a URI authority (`127.0.0.1:8080`, `[::1]:8080`).
    pub fn authority(&self) -> &http::uri::Authority {
        &self.authority
    }

    /// Its current weight.
    pub fn weight(&self) -> u64 {
        self.weight.load(Ordering::Relaxed)
    }

    pub(crate) fn set_weight(&self, weight: u32) {
        self.weight.store(u64::from(weight), Ordering::Relaxed);
    }

    /// Marks a request as started; the returned guard marks it finished when dropped.
    pub fn start_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        InFlight {
            endpoint: Arc::clone(self),
        }
    }

    /// Records a failed request (connect error, reset, 5xx from the gateway's view).
    pub fn record_failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Not marked unhealthy by active checks and not ejected by outlier detection. Lock-free.
    /// The balancers skip unavailable endpoints unless every endpoint of the backend is
    /// unavailable (the panic threshold, see [`crate::health`]).
    pub fn is_available(&self) -> bool {
        self.health.is_available()
    }

    /// Its health state (active checks and outlier detection).
    pub fn health(&self) -> &EndpointHealth {
        &self.health
    }

    /// Records the time from sending a request to receiving its response head (PeakEWMA).
    /// Lock-free; call once per response.
    pub fn observe_latency(&self, elapsed: Duration) {
        self.latency.observe(elapsed, Instant::now());
    }

    /// [`observe_latency`](Self::observe_latency) with the clock reading the caller has.
    pub fn observe_latency_at(&self, elapsed: Duration, now: Instant) {
        self.latency.observe(elapsed, now);
    }

    /// The decayed peak latency estimate as of now.
    pub fn latency_estimate(&self) -> Duration {
        Duration::from_nanos(self.latency.at(Instant::now()) as u64)
    }

    pub(crate) fn latency(&self) -> &LatencyEstimate {
        &self.latency
    }

    /// When this endpoint appeared (kept while its address stays in the set).
    pub fn created(&self) -> Instant {
        self.created
    }

    /// Requests currently in flight.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// A JSON-ready view for `/endpoints`.
    pub fn view(&self) -> EndpointView {
        EndpointView {
            address: self.addr,
            weight: self.weight(),
            in_flight: self.in_flight(),
            requests: self.requests.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            health: self.health.view(),
            latency_ms: self.latency_estimate().as_secs_f64() * 1000.0,
        }
    }
}

/// Guard for one in-flight request on an endpoint.
#[derive(Debug)]
pub struct InFlight {
    endpoint: Arc<EndpointRuntime>,
}

impl InFlight {
    /// The endpoint the request went to.
    pub fn endpoint(&self) -> &Arc<EndpointRuntime> {
        &self.endpoint
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.endpoint.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `/endpoints` view of one endpoint.
#[derive(Debug, Serialize)]
pub struct EndpointView {
    /// Address.
    pub address: SocketAddr,
    /// Weight.
    pub weight: u64,
    /// Requests in flight now.
    pub in_flight: u64,
    /// Requests sent since the endpoint appeared.
    pub requests: u64,
    /// Failed requests since the endpoint appeared.
    pub failures: u64,
    /// Health checks and outlier detection.
    pub health: HealthView,
    /// Decayed peak latency estimate (PeakEWMA), milliseconds.
    pub latency_ms: f64,
}

/// An immutable set of live endpoints, swapped as a whole when the set changes.
#[derive(Debug, Default)]
pub struct EndpointSet {
    pub(crate) endpoints: Vec<Arc<EndpointRuntime>>,
    /// Sum of weights; 0 means nothing can be picked.
    pub(crate) total_weight: u64,
    /// Per-set balancer tables (round-robin schedule, hash ring).
    pub(crate) tables: BalanceTables,
}

impl EndpointSet {
    /// Builds a set from endpoints (weights read once, here).
    pub fn new(endpoints: Vec<Arc<EndpointRuntime>>) -> EndpointSet {
        let total_weight = endpoints.iter().map(|e| e.weight()).sum();
        let tables = BalanceTables::new(&endpoints);
        EndpointSet {
            endpoints,
            total_weight,
            tables,
        }
    }

    /// The endpoints.
    pub fn endpoints(&self) -> &[Arc<EndpointRuntime>] {
        &self.endpoints
    }

    /// Whether no endpoint can take traffic.
    pub fn is_empty(&self) -> bool {
        self.total_weight == 0
    }
}
