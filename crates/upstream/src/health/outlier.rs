//! Passive health checking (outlier detection): consecutive-error ejection on the data plane,
//! latency-outlier sweeps in the backend's monitor task.
//!
//! Owns the ejection decision and its max-percent guard. It does not time ejections out:
//! [`EndpointHealth::is_ejected`] compares the stored deadline with the clock.

use std::sync::atomic::Ordering;

use super::{EjectionReason, EndpointHealth, MAX_EJECTION_TIME, Outcome, nanos};
use crate::endpoint::{EndpointRuntime, EndpointSet};
use crate::registry::BackendRuntime;
use snapshot::backend::policy::{BackendPolicy, OutlierDetection};

impl BackendRuntime {
    /// Records how an exchange with one of this backend's endpoints ended, and ejects the
    /// endpoint when its consecutive 5xx or gateway errors reach the policy's thresholds (and
    /// the max-percent guard allows). Lock-free; call once per attempt, after the exchange.
    /// Returns the reason when this outcome ejected the endpoint.
    ///
    /// Lives on the backend rather than the endpoint because the thresholds (the policy) and
    /// the max-percent guard (the endpoint set) belong to the backend.
    pub fn record_outcome(
        &self,
        endpoint: &EndpointRuntime,
        outcome: Outcome,
    ) -> Option<EjectionReason> {
        self.record_outcome_under(&self.policy(), endpoint, outcome)
    }

    /// [`record_outcome`](Self::record_outcome) under `policy`, one the caller holds already
    /// (an attempt's admission).
    pub fn record_outcome_under(
        &self,
        policy: &BackendPolicy,
        endpoint: &EndpointRuntime,
        outcome: Outcome,
    ) -> Option<EjectionReason> {
        let outlier = policy.outlier.as_ref()?;
        let health = endpoint.health();
        if let Outcome::Success { latency, .. } | Outcome::Connected { latency } = outcome
            && outlier.latency.is_some()
        {
            health.window_requests.fetch_add(1, Ordering::Relaxed);
            let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            health
                .window_latency_micros
                .fetch_add(micros, Ordering::Relaxed);
        }
        let reason = health.count(outcome, outlier)?;
        try_eject(&self.endpoints(), health, outlier, reason).then_some(reason)
    }
}

impl EndpointHealth {
    /// Updates the consecutive counters; returns the reason to eject, if a threshold is met.
    fn count(&self, outcome: Outcome, outlier: &OutlierDetection) -> Option<EjectionReason> {
        if self.is_ejected() {
            // Traffic reaching an ejected endpoint (panic threshold) neither extends nor
            // pre-loads the next ejection: counters restart when the ejection ends.
            return None;
        }
        let (is_5xx, is_gateway_error) = match outcome {
            Outcome::Success { status, .. } => {
                ((500..600).contains(&status), matches!(status, 502..=504))
            }
            Outcome::GatewayError => (false, true),
            Outcome::Connected { .. } => (false, false),
        };
        let errors_5xx = bump(&self.consecutive_5xx, is_5xx);
        let gateway_errors = bump(&self.consecutive_gateway_errors, is_gateway_error);
        let reached = |count: u32, threshold: Option<u32>| {
            threshold.is_some_and(|threshold| threshold > 0 && count >= threshold)
        };
        if reached(gateway_errors, outlier.consecutive_gateway_errors) {
            Some(EjectionReason::ConsecutiveGatewayErrors)
        } else if reached(errors_5xx, outlier.consecutive_5xx) {
            Some(EjectionReason::Consecutive5xx)
        } else {
            None
        }
    }

    fn reset_counters(&self) {
        self.consecutive_5xx.store(0, Ordering::Relaxed);
        self.consecutive_gateway_errors.store(0, Ordering::Relaxed);
    }
}

/// Adds one to a consecutive counter, or resets it; returns the new value.
fn bump(counter: &std::sync::atomic::AtomicU32, hit: bool) -> u32 {
    if hit {
        counter.fetch_add(1, Ordering::Relaxed).saturating_add(1)
    } else {
        counter.store(0, Ordering::Relaxed);
        0
    }
}

/// Ejects `health`'s endpoint unless that would put more than `max_ejection_percent` of the
/// set's endpoints out at once. The n-th ejection lasts n x `base_ejection_time`, capped at
/// [`MAX_EJECTION_TIME`]. Counters are reset either way, so a refused ejection is retried only
/// after another full run of errors.
pub(crate) fn try_eject(
    set: &EndpointSet,
    health: &EndpointHealth,
    outlier: &OutlierDetection,
    reason: EjectionReason,
) -> bool {
    health.reset_counters();
    let total = set.endpoints().len();
    let ejected = set
        .endpoints()
        .iter()
        .filter(|e| e.health().is_ejected())
        .count();
    let percent = usize::try_from(outlier.max_ejection_percent.min(100)).unwrap_or(100);
    if (ejected + 1) * 100 > total * percent {
        tracing::debug!(
            ?reason,
            ejected,
            total,
            "ejection refused by maxEjectionPercent"
        );
        return false;
    }
    let count = health
        .ejections
        .fetch_add(1, Ordering::Relaxed)
        .saturating_add(1);
    let time = outlier
        .base_ejection_time
        .saturating_mul(count)
        .min(MAX_EJECTION_TIME);
    let until = health.nanos_now().saturating_add(nanos(time)).max(1);
    health.ejected_until.store(until, Ordering::Relaxed);
    true
}

/// Latency outliers: compares each endpoint's mean latency over the last interval (endpoints
/// with at least `min_requests` responses) with the median of those means, and ejects the ones
/// above `threshold` x the median. Needs at least two judged endpoints. Clears every window.
/// Returns the endpoints it ejected.
pub(crate) fn sweep_latency(
    runtime: &BackendRuntime,
    outlier: &OutlierDetection,
) -> Vec<std::sync::Arc<EndpointRuntime>> {
    let Some(latency) = &outlier.latency else {
        return Vec::new();
    };
    let set = runtime.endpoints();
    let mut judged = Vec::new();
    for endpoint in set.endpoints() {
        let health = endpoint.health();
        let requests = health.window_requests.swap(0, Ordering::Relaxed);
        let micros = health.window_latency_micros.swap(0, Ordering::Relaxed);
        if requests >= u64::from(latency.min_requests.max(1)) && !health.is_ejected() {
            judged.push((endpoint, micros as f64 / requests as f64));
        }
    }
    if judged.len() < 2 {
        return Vec::new();
    }
    let mut means: Vec<f64> = judged.iter().map(|(_, mean)| *mean).collect();
    means.sort_by(f64::total_cmp);
    let middle = means.len() / 2;
    let median = if means.len().is_multiple_of(2) {
        (means[middle - 1] + means[middle]) / 2.0
    } else {
        means[middle]
    };
    // A sub-microsecond median would make any measurable latency an outlier.
    let limit = latency.threshold * median.max(1.0);
    let mut ejected = Vec::new();
    for (endpoint, mean) in judged {
        if mean > limit && try_eject(&set, endpoint.health(), outlier, EjectionReason::Latency) {
            ejected.push(std::sync::Arc::clone(endpoint));
        }
    }
    ejected
}
