//! PeakEWMA: the cost of an endpoint is its decayed peak latency times its load
//! (`rtt_estimate * (in_flight + 1)`), compared by [`super::two_choices`].
//!
//! The maths follow tower's `load::PeakEwma`: an observation above the estimate replaces it at
//! once (the peak), one below is blended in with weight `1 - exp(-elapsed / tau)`, and the
//! estimate decays toward zero while no response arrives, so an endpoint that was slow gets
//! probed again after a while instead of starving forever. Unlike tower, reading the cost does
//! not store the decay (the hot path only loads atomics); the result is the same because decays
//! compose multiplicatively.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::endpoint::EndpointRuntime;

/// Decay time constant (linkerd's and tower's usual 10 s).
const TAU_NANOS: f64 = 10_000_000_000.0;
/// Estimate of an endpoint that has not answered yet: optimistic, so new endpoints get tried.
const DEFAULT_RTT: Duration = Duration::from_millis(1);

/// A decayed peak latency estimate, lock-free: the estimate (nanoseconds, `f64` bits) and the
/// time of its last update (nanoseconds since the process epoch).
#[derive(Debug)]
pub(crate) struct LatencyEstimate {
    estimate: AtomicU64,
    updated: AtomicU64,
}

impl LatencyEstimate {
    /// The estimate of a fresh endpoint ([`DEFAULT_RTT`], as of now).
    pub(crate) fn new() -> LatencyEstimate {
        LatencyEstimate {
            estimate: AtomicU64::new((DEFAULT_RTT.as_nanos() as f64).to_bits()),
            updated: AtomicU64::new(nanos_since_epoch(Instant::now())),
        }
    }

    /// Folds one observed round trip in. Concurrent observations may race; each one still
    /// lands (compare-and-swap on the estimate), only the decay interval can be shared.
    pub(crate) fn observe(&self, rtt: Duration, now: Instant) {
        let now = nanos_since_epoch(now);
        let rtt = rtt.as_nanos() as f64;
        let last = self.updated.swap(now, Ordering::Relaxed);
        let elapsed = now.saturating_sub(last) as f64;
        let _ = self
            .estimate
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                let current = f64::from_bits(bits);
                let next = if rtt > current {
                    rtt
                } else {
                    let decay = (-elapsed / TAU_NANOS).exp();
                    current * decay + rtt * (1.0 - decay)
                };
                Some(next.to_bits())
            });
    }

    /// The estimate at `now` in nanoseconds, decayed toward zero since the last observation.
    pub(crate) fn at(&self, now: Instant) -> f64 {
        let estimate = f64::from_bits(self.estimate.load(Ordering::Relaxed));
        let elapsed = nanos_since_epoch(now).saturating_sub(self.updated.load(Ordering::Relaxed));
        estimate * (-(elapsed as f64) / TAU_NANOS).exp()
    }
}

/// `rtt_estimate * (in_flight + 1)`.
pub(super) fn cost(endpoint: &EndpointRuntime, now: Instant) -> f64 {
    endpoint.latency().at(now) * (endpoint.in_flight() as f64 + 1.0)
}

/// Nanoseconds from the first call in this process to `at` (0 for times before it).
fn nanos_since_epoch(at: Instant) -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(at.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
}
