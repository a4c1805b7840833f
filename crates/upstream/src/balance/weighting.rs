//! The weight every balancer gives an endpoint for one pick: its configured weight, ramped
//! by slow start, or nothing when it is out of rotation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::endpoint::EndpointRuntime;

/// A full ramp, in thousandths.
pub(super) const FULL_RAMP: u64 = 1000;
/// A new endpoint gets at least this share of its weight during slow start (10%).
const MIN_RAMP: u64 = 100;

/// Weighs endpoints for one pick (availability and time are read once per call).
#[derive(Debug)]
pub(super) struct Weigher {
    /// Every endpoint with a weight is unavailable: treat all as available (panic threshold).
    panic: bool,
    slow_start: Option<Duration>,
    now: Instant,
}

impl Weigher {
    pub(super) fn new(
        endpoints: &[Arc<EndpointRuntime>],
        slow_start: Option<Duration>,
        now: Instant,
    ) -> Weigher {
        let panic = !endpoints.iter().any(|e| e.weight() > 0 && e.is_available());
        Weigher {
            panic,
            slow_start: slow_start.filter(|window| !window.is_zero()),
            now,
        }
    }

    /// Whether the endpoint may take this request at all (weight and availability).
    pub(super) fn is_eligible(&self, endpoint: &EndpointRuntime) -> bool {
        endpoint.weight() > 0 && (self.panic || endpoint.is_available())
    }

    /// Slow-start ramp in thousandths: `age / window`, at least 10%, 1000 once past the window.
    pub(super) fn ramp(&self, endpoint: &EndpointRuntime) -> u64 {
        let Some(window) = self.slow_start else {
            return FULL_RAMP;
        };
        let age = self.now.saturating_duration_since(endpoint.created());
        if age >= window {
            return FULL_RAMP;
        }
        let ramp = age.as_nanos() * u128::from(FULL_RAMP) / window.as_nanos();
        u64::try_from(ramp).unwrap_or(FULL_RAMP).max(MIN_RAMP)
    }

    /// Effective weight in thousandths of a weight unit; 0 = never pick.
    pub(super) fn weight(&self, endpoint: &EndpointRuntime) -> u64 {
        if !self.is_eligible(endpoint) {
            return 0;
        }
        endpoint.weight().saturating_mul(self.ramp(endpoint))
    }
}
