//! The error-rate breaker's state machine: closed → open → half-open → closed (or open again).
//!
//! Owns the sliding window of outcomes and the state. It does not decide what an error is (the
//! proxy reports outcomes) and does not count concurrency (`breaker/mod.rs` does).
//!
//! Concurrency: the state is one atomic word (`generation << 2 | state`), read lock-free on
//! every admission. The window is a ring of [`BUCKETS`] atomic counters, allocated with the
//! first outcome recorded under an error-rate setting (most backends have none, and the ring is
//! 160 of a backend's ~700 bytes: 0.8 MB at 5,000 backends); the `transitions`
//! mutex is held only to rotate a stale bucket or to change state, both rare and O(1) (a window
//! reset is O([`BUCKETS`])). The generation changes with every transition, so an outcome of a
//! probe admitted in an earlier half-open period cannot close or reopen a later one.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

use snapshot::backend::policy::ErrorRateSettings;

/// Buckets the window is split into: the window slides in steps of `window / BUCKETS`.
pub(crate) const BUCKETS: usize = 10;

/// The breaker's state, as exported in `portcullis_circuit_breaker_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests pass; outcomes are counted.
    Closed,
    /// Requests are rejected until `open_for` has passed.
    Open,
    /// A few probe requests pass; the rest are rejected.
    HalfOpen,
}

impl BreakerState {
    /// The gauge value: 0 closed, 1 open, 2 half-open.
    pub fn gauge_value(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }

    fn bits(self) -> u64 {
        self.gauge_value() as u64
    }

    fn from_bits(bits: u64) -> BreakerState {
        match bits & 0b11 {
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }
}

/// What an admission by the error-rate breaker is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pass {
    /// The breaker is closed (or disabled): the outcome feeds the window.
    Normal,
    /// A half-open probe of the given generation.
    Probe(u64),
}

#[derive(Debug, Default)]
struct Bucket {
    /// Which bucket period (time since start / bucket width) the counts belong to.
    period: AtomicU64,
    requests: AtomicU32,
    errors: AtomicU32,
}

/// State of one backend's error-rate breaker. Survives reloads inside the backend's runtime;
/// settings are passed in on every call, so a policy change applies at once (a changed window
/// length re-buckets the counts already in it, approximately).
#[derive(Debug)]
pub(crate) struct ErrorRate {
    start: Instant,
    /// `generation << 2 | state bits`.
    state: AtomicU64,
    /// When the breaker last opened, as nanoseconds since `start`.
    opened_at: AtomicU64,
    probes_admitted: AtomicU32,
    probes_succeeded: AtomicU32,
    /// The window's ring, from the first outcome recorded under settings on.
    buckets: OnceLock<Box<[Bucket; BUCKETS]>>,
    transitions: Mutex<()>,
}

impl ErrorRate {
    pub(crate) fn new() -> ErrorRate {
        ErrorRate {
            start: Instant::now(),
            state: AtomicU64::new(BreakerState::Closed.bits()),
            opened_at: AtomicU64::new(0),
            probes_admitted: AtomicU32::new(0),
            probes_succeeded: AtomicU32::new(0),
            buckets: OnceLock::new(),
            transitions: Mutex::new(()),
        }
    }

    /// The current state.
    pub(crate) fn state(&self) -> BreakerState {
        BreakerState::from_bits(self.state.load(Ordering::Acquire))
    }

    /// Admits a request, or `None` when the breaker rejects it (open, or half-open with every
    /// probe slot taken). Without settings the breaker is disabled and closes if it was not.
    pub(crate) fn admit(&self, settings: Option<&ErrorRateSettings>) -> Option<Pass> {
        let Some(settings) = settings else {
            if self.state() != BreakerState::Closed {
                self.transition(None, BreakerState::Closed);
            }
            return Some(Pass::Normal);
        };
        let word = self.state.load(Ordering::Acquire);
        match BreakerState::from_bits(word) {
            BreakerState::Closed => Some(Pass::Normal),
            BreakerState::Open => {
                let open_until = self
                    .opened_at
                    .load(Ordering::Acquire)
                    .saturating_add(nanos(settings.open_for));
                if self.now() < open_until {
                    return None;
                }
                self.transition(Some(word), BreakerState::HalfOpen);
                self.admit_probe(settings)
            }
            BreakerState::HalfOpen => self.admit_probe(settings),
        }
    }

    fn admit_probe(&self, settings: &ErrorRateSettings) -> Option<Pass> {
        let word = self.state.load(Ordering::Acquire);
        if BreakerState::from_bits(word) != BreakerState::HalfOpen {
            return None;
        }
        let taken = self.probes_admitted.fetch_add(1, Ordering::AcqRel);
        // Re-checked after taking the slot: a transition in between resets the slots, and
        // this admission must not consume one of the next period's.
        if taken >= settings.half_open_requests.max(1) || self.state.load(Ordering::Acquire) != word
        {
            self.release_probe(word);
            return None;
        }
        Some(Pass::Probe(word >> 2))
    }

    fn release_probe(&self, word: u64) {
        let _guard = self.lock();
        if self.state.load(Ordering::Acquire) == word {
            self.probes_admitted.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// An admitted request ended without an outcome (cancelled): a probe gives its slot back.
    pub(crate) fn abandon(&self, pass: Pass) {
        if let Pass::Probe(generation) = pass {
            self.release_probe(generation << 2 | BreakerState::HalfOpen.bits());
        }
    }

    /// Records the outcome of an admitted request and moves the state machine.
    pub(crate) fn record(&self, settings: Option<&ErrorRateSettings>, pass: Pass, is_error: bool) {
        let Some(settings) = settings else { return };
        match pass {
            Pass::Normal => self.record_normal(settings, is_error),
            Pass::Probe(generation) => {
                let word = generation << 2 | BreakerState::HalfOpen.bits();
                if self.state.load(Ordering::Acquire) != word {
                    return; // a probe of an earlier half-open period
                }
                if is_error {
                    self.transition(Some(word), BreakerState::Open);
                    return;
                }
                let succeeded = self.probes_succeeded.fetch_add(1, Ordering::AcqRel) + 1;
                if succeeded >= settings.half_open_requests.max(1) {
                    self.transition(Some(word), BreakerState::Closed);
                }
            }
        }
    }

    fn record_normal(&self, settings: &ErrorRateSettings, is_error: bool) {
        let width = bucket_width(settings.window);
        let period = self.now() / width;
        let buckets = self.buckets.get_or_init(Box::default);
        let bucket = &buckets[(period % BUCKETS as u64) as usize];
        if bucket.period.load(Ordering::Acquire) != period {
            let _guard = self.lock();
            if bucket.period.load(Ordering::Acquire) != period {
                bucket.requests.store(0, Ordering::Release);
                bucket.errors.store(0, Ordering::Release);
                bucket.period.store(period, Ordering::Release);
            }
        }
        bucket.requests.fetch_add(1, Ordering::AcqRel);
        if !is_error {
            return;
        }
        bucket.errors.fetch_add(1, Ordering::AcqRel);
        // Only an error can push the share over the threshold, so only errors evaluate it.
        let word = self.state.load(Ordering::Acquire);
        if BreakerState::from_bits(word) != BreakerState::Closed {
            return; // admitted before the breaker opened: counted, but decides nothing
        }
        let (requests, errors) = self.window_counts(period);
        if requests >= settings.min_requests.max(1)
            && f64::from(errors) >= settings.threshold * f64::from(requests)
        {
            self.transition(Some(word), BreakerState::Open);
        }
    }

    /// Requests and errors in the buckets of the window ending with `period`.
    fn window_counts(&self, period: u64) -> (u32, u32) {
        let Some(buckets) = self.buckets.get() else {
            return (0, 0);
        };
        let oldest = period.saturating_sub(BUCKETS as u64 - 1);
        buckets
            .iter()
            .filter(|b| (oldest..=period).contains(&b.period.load(Ordering::Acquire)))
            .fold((0u32, 0u32), |(requests, errors), b| {
                (
                    requests.saturating_add(b.requests.load(Ordering::Acquire)),
                    errors.saturating_add(b.errors.load(Ordering::Acquire)),
                )
            })
    }

    /// Moves to `next` if the state is still `from` (`None`: whatever it is). Resets what the
    /// next state starts from before publishing it, so readers never see stale counters.
    fn transition(&self, from: Option<u64>, next: BreakerState) {
        let _guard = self.lock();
        let word = self.state.load(Ordering::Acquire);
        if from.is_some_and(|from| from != word) || BreakerState::from_bits(word) == next {
            return;
        }
        match next {
            BreakerState::Open => self.opened_at.store(self.now(), Ordering::Release),
            BreakerState::HalfOpen => {
                self.probes_admitted.store(0, Ordering::Release);
                self.probes_succeeded.store(0, Ordering::Release);
            }
            BreakerState::Closed => {
                for bucket in self.buckets.get().into_iter().flat_map(|b| b.iter()) {
                    bucket.requests.store(0, Ordering::Release);
                    bucket.errors.store(0, Ordering::Release);
                }
            }
        }
        let generation = (word >> 2).wrapping_add(1);
        self.state
            .store(generation << 2 | next.bits(), Ordering::Release);
    }

    /// Whether the window's ring has been allocated.
    #[cfg(test)]
    pub(crate) fn has_window(&self) -> bool {
        self.buckets.get().is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        // The mutex guards no data of its own, so a poisoned lock is as good as a clean one.
        self.transitions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn now(&self) -> u64 {
        nanos(self.start.elapsed())
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Nanoseconds per bucket (at least 1, so a zero window still buckets).
fn bucket_width(window: Duration) -> u64 {
    (nanos(window) / BUCKETS as u64).max(1)
}
