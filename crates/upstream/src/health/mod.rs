//! Endpoint health: active probes, passive outlier detection, and the availability verdict the
//! balancers read.
//!
//! Owns the per-endpoint health state ([`EndpointHealth`], kept inside each
//! [`EndpointRuntime`](crate::EndpointRuntime), so it survives reloads and endpoint-set changes while the address
//! stays) and the per-backend monitor task (active probes every `interval`, latency-outlier
//! sweeps every outlier `interval`). It does not pick endpoints: the balancers skip endpoints
//! whose [`EndpointRuntime::is_available`](crate::EndpointRuntime::is_available) is false.
//!
//! - **Active checks** ([`active`]): `unhealthy_threshold` consecutive failed probes mark an
//!   endpoint unhealthy, `healthy_threshold` consecutive passes mark it healthy again. New
//!   endpoints start healthy, so a fresh endpoint serves at once instead of waiting
//!   `healthy_threshold` intervals (a dead one is caught by the first probes or by passive
//!   detection).
//! - **Outlier detection** ([`outlier`]): consecutive 5xx / gateway errors, and latency far above
//!   the backend's median, eject an endpoint for `base_ejection_time` x its ejection count
//!   (capped at [`MAX_EJECTION_TIME`]), never more than `max_ejection_percent` of the backend's
//!   endpoints at once. Ejection ends by itself: `EndpointRuntime::is_available` compares the
//!   deadline with the clock, no timer runs.
//! - **Panic threshold**: when *every* endpoint of a backend is unavailable, the balancers send
//!   traffic to all of them as if they were healthy. Failing every request is never better
//!   than trying endpoints that may have recovered, and a probe or a bad policy must not be
//!   able to take a whole backend down on its own.
//!
//! Concurrency: the data plane only touches atomics here. The max-percent guard counts
//! ejected endpoints without a lock, so two ejections racing in the same instant can both
//! pass the guard; the next ejection sees the true count.

pub(crate) mod active;
pub(crate) mod outlier;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use telemetry::{LabelValue, Metrics};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::registry::BackendRuntime;
use snapshot::backend::BackendId;
use snapshot::backend::policy::{BackendPolicy, OutlierDetection};

/// Longest single ejection, however often an endpoint was ejected before.
pub const MAX_EJECTION_TIME: Duration = Duration::from_secs(300);

/// How one exchange with an endpoint ended, as seen by the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A response head arrived (any status, 5xx included).
    Success {
        /// Response status code.
        status: u16,
        /// Time from sending the request to the response head.
        latency: Duration,
    },
    /// No response: connect failure, reset, timeout or an invalid response.
    GatewayError,
    /// A forwarded byte stream (TCPRoute, TLSRoute) connected: what a connection can tell of
    /// the endpoint. Neither a 5xx nor a gateway error.
    Connected {
        /// Time the TCP connect took.
        latency: Duration,
    },
}

/// Why an endpoint was ejected (the `reason` label of `portcullis_outlier_ejections_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EjectionReason {
    /// `consecutive_5xx` responses with a 5xx status.
    Consecutive5xx,
    /// `consecutive_gateway_errors` gateway errors (connect failure, reset, timeout, 502-504).
    ConsecutiveGatewayErrors,
    /// Mean latency above `threshold` x the backend's median.
    Latency,
}

impl EjectionReason {
    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            EjectionReason::Consecutive5xx => "consecutive-5xx",
            EjectionReason::ConsecutiveGatewayErrors => "consecutive-gateway-errors",
            EjectionReason::Latency => "latency",
        }
    }
}

/// Health state of one endpoint; all atomics, read lock-free by the balancers.
#[derive(Debug)]
pub struct EndpointHealth {
    /// Reference point of `ejected_until` (a tokio instant, so paused-clock tests work).
    born: Instant,
    /// Marked unhealthy by active probes.
    unhealthy: AtomicBool,
    /// Consecutive failed / passed probes (written by the backend's monitor task only).
    probe_failures: AtomicU32,
    probe_passes: AtomicU32,
    /// Ejection deadline in nanoseconds after `born`; 0 = never ejected.
    ejected_until: AtomicU64,
    /// Times ejected; the n-th ejection lasts n x `base_ejection_time`.
    ejections: AtomicU32,
    consecutive_5xx: AtomicU32,
    consecutive_gateway_errors: AtomicU32,
    /// Successful responses and their summed latency (µs) since the last latency sweep.
    window_requests: AtomicU64,
    window_latency_micros: AtomicU64,
}

impl Default for EndpointHealth {
    fn default() -> EndpointHealth {
        EndpointHealth::new()
    }
}

impl EndpointHealth {
    /// A healthy, never ejected endpoint.
    pub fn new() -> EndpointHealth {
        EndpointHealth {
            born: Instant::now(),
            unhealthy: AtomicBool::new(false),
            probe_failures: AtomicU32::new(0),
            probe_passes: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            ejections: AtomicU32::new(0),
            consecutive_5xx: AtomicU32::new(0),
            consecutive_gateway_errors: AtomicU32::new(0),
            window_requests: AtomicU64::new(0),
            window_latency_micros: AtomicU64::new(0),
        }
    }

    /// Not marked unhealthy by active probes and not currently ejected.
    pub fn is_available(&self) -> bool {
        !self.unhealthy.load(Ordering::Relaxed) && !self.is_ejected()
    }

    /// Whether active probes passed (or none ran yet).
    pub fn is_healthy(&self) -> bool {
        !self.unhealthy.load(Ordering::Relaxed)
    }

    /// Whether outlier detection ejected the endpoint and the ejection has not ended.
    pub fn is_ejected(&self) -> bool {
        let until = self.ejected_until.load(Ordering::Relaxed);
        // Only read the clock for endpoints that were ever ejected.
        until != 0 && self.nanos_now() < until
    }

    fn nanos_now(&self) -> u64 {
        nanos(Instant::now().saturating_duration_since(self.born))
    }

    /// Time left in the current ejection, `None` when not ejected.
    pub fn ejection_remaining(&self) -> Option<Duration> {
        let until = self.ejected_until.load(Ordering::Relaxed);
        let now = self.nanos_now();
        (until != 0 && now < until).then(|| Duration::from_nanos(until - now))
    }

    /// A JSON-ready view for `/endpoints`.
    pub fn view(&self) -> HealthView {
        HealthView {
            healthy: self.is_healthy(),
            ejected_for_ms: self
                .ejection_remaining()
                .map(|left| u64::try_from(left.as_millis()).unwrap_or(u64::MAX)),
            ejections: self.ejections.load(Ordering::Relaxed),
            consecutive_5xx: self.consecutive_5xx.load(Ordering::Relaxed),
            consecutive_gateway_errors: self.consecutive_gateway_errors.load(Ordering::Relaxed),
            probe_failures: self.probe_failures.load(Ordering::Relaxed),
        }
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// `/endpoints` view of an endpoint's health.
#[derive(Debug, Serialize)]
pub struct HealthView {
    /// Not marked unhealthy by active probes.
    pub healthy: bool,
    /// Milliseconds left in the current ejection; absent when not ejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ejected_for_ms: Option<u64>,
    /// Times ejected so far.
    pub ejections: u32,
    /// Consecutive 5xx responses.
    pub consecutive_5xx: u32,
    /// Consecutive gateway errors.
    pub consecutive_gateway_errors: u32,
    /// Consecutive failed probes.
    pub probe_failures: u32,
}

/// The running health monitors, one per linked backend whose policy needs one. Kept by the
/// registry next to its DNS resolvers.
#[derive(Debug, Default)]
pub(crate) struct Monitors {
    running: HashMap<BackendId, Monitor>,
}

/// A running health monitor and what it was started for.
#[derive(Debug)]
struct Monitor {
    runtime: Arc<BackendRuntime>,
    policy: Arc<BackendPolicy>,
    task: JoinHandle<()>,
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Monitors {
    /// Brings the monitors in line with the linked backends: starts one for each backend whose
    /// policy needs it, restarts it when the policy or the runtime changed, and aborts the ones
    /// no longer needed. Endpoint health lives in the endpoints, so a restart keeps it. Must
    /// run inside a tokio runtime when a monitor is started.
    pub(crate) fn sync(
        &mut self,
        backends: &HashMap<BackendId, Arc<BackendRuntime>>,
        metrics: Option<&Arc<Metrics>>,
    ) {
        self.running.retain(|id, monitor| {
            backends.get(id).is_some_and(|runtime| {
                Arc::ptr_eq(runtime, &monitor.runtime) && *runtime.policy() == *monitor.policy
            })
        });
        for (id, runtime) in backends {
            let policy = runtime.policy();
            if !needs_monitor(&policy) {
                self.running.remove(id);
            } else if !self.running.contains_key(id) {
                let task = spawn_monitor(Arc::clone(runtime), metrics.cloned());
                let runtime = Arc::clone(runtime);
                self.running.insert(
                    id.clone(),
                    Monitor {
                        runtime,
                        policy,
                        task,
                    },
                );
            }
        }
    }
}

/// Whether a policy needs the per-backend monitor task (active probes or latency outliers;
/// consecutive-error ejection runs on the data plane and needs no task).
fn needs_monitor(policy: &BackendPolicy) -> bool {
    policy.active_health.is_some() || policy.outlier.as_ref().is_some_and(|o| o.latency.is_some())
}

/// Starts the monitor task of a backend for its current policy. [`Monitors`] aborts it when
/// the backend goes away or its policy changes (and starts a new one for the new policy).
/// Health metrics (endpoint health, latency ejections) go to `metrics` when given.
fn spawn_monitor(runtime: Arc<BackendRuntime>, metrics: Option<Arc<Metrics>>) -> JoinHandle<()> {
    let policy = runtime.policy();
    tokio::spawn(async move {
        let mut probes = policy.active_health.as_ref().map(|health| {
            let mut ticks = tokio::time::interval(health.interval.max(Duration::from_millis(10)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks
        });
        let latency = policy
            .outlier
            .as_ref()
            .filter(|o| o.latency.is_some())
            .map(|o| {
                let interval = o.interval.max(Duration::from_millis(10));
                // The first tick would fire at once, over an empty window.
                tokio::time::interval_at(Instant::now() + interval, interval)
            });
        let mut latency = latency;
        let mut reported = Vec::new();
        loop {
            tokio::select! {
                Some(_) = tick(probes.as_mut()) => {
                    if let Some(health) = &policy.active_health {
                        active::probe_all(&runtime, health, metrics.as_deref()).await;
                        if let Some(metrics) = &metrics {
                            active::forget_removed(&runtime, metrics, &mut reported);
                        }
                    }
                }
                Some(_) = tick(latency.as_mut()) => {
                    if let Some(outlier) = &policy.outlier {
                        latency_round(&runtime, outlier, metrics.as_deref());
                    }
                }
                else => return,
            }
        }
    })
}

/// One latency-outlier sweep, logged and counted.
fn latency_round(runtime: &BackendRuntime, outlier: &OutlierDetection, metrics: Option<&Metrics>) {
    let ejected = outlier::sweep_latency(runtime, outlier);
    let backend = LabelValue::from(Arc::clone(runtime.id().as_shared()));
    for endpoint in &ejected {
        tracing::info!(backend = %runtime.id(), endpoint = %endpoint.addr(), "latency outlier ejected");
        if let Some(metrics) = metrics {
            metrics.outlier_ejected(&backend, EjectionReason::Latency.as_str());
        }
    }
}

async fn tick(interval: Option<&mut tokio::time::Interval>) -> Option<Instant> {
    match interval {
        Some(interval) => Some(interval.tick().await),
        None => None,
    }
}

#[cfg(test)]
mod tests;
