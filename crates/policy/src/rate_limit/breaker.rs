//! Failing fast while Redis is known to be down.
//!
//! Without this, every decision during an outage would wait for the policy's timeout (or for a
//! connection attempt) before applying its failure mode: a dead Redis would add the timeout to
//! every request. The breaker opens when Redis is known to be unreachable: at once on a
//! connection error, and after [`TIMEOUTS_TO_OPEN`] failures in a row of another kind (one slow
//! answer must not fail a burst of traffic). While open, decisions fail at once with the last
//! failure's reason for [`PAUSE`]; then the first decision to come probes Redis, alone (the
//! others keep failing fast until it answers or its timeout passes), and the first answer
//! closes the breaker. A Redis that comes back is used again within `PAUSE` plus the connection
//! manager's reconnect backoff, without a restart. Lock-free: three atomics.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::global::GlobalFailure;

/// While open, decisions do not ask Redis for this long.
pub(crate) const PAUSE: Duration = Duration::from_millis(100);
/// Failures in a row other than connection errors (timeouts, script errors) that open it.
pub(crate) const TIMEOUTS_TO_OPEN: u32 = 3;

/// The breaker of one Redis connection.
pub(crate) struct Breaker {
    epoch: Instant,
    /// Milliseconds since `epoch` (plus one) until which decisions fail fast; 0: closed.
    open_until: AtomicU64,
    /// Failures since the last answer.
    failures_in_a_row: AtomicU32,
    /// The [`GlobalFailure::code`] of the last failure.
    last_failure: AtomicU8,
}

impl Breaker {
    /// A closed breaker.
    pub(crate) fn new() -> Breaker {
        Breaker {
            epoch: Instant::now(),
            open_until: AtomicU64::new(0),
            failures_in_a_row: AtomicU32::new(0),
            last_failure: AtomicU8::new(GlobalFailure::Connection.code()),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX / 2) + 1
    }

    /// `Ok` when this decision may ask Redis (closed, or this is the one probe); otherwise the
    /// last failure, to report without asking.
    pub(crate) fn admit(&self, timeout: Duration) -> Result<(), GlobalFailure> {
        let until = self.open_until.load(Ordering::Acquire);
        if until == 0 {
            return Ok(());
        }
        let now = self.now();
        let last = GlobalFailure::from_code(self.last_failure.load(Ordering::Relaxed));
        if now < until {
            return Err(last);
        }
        // Half-open: the decision that moves the deadline probes; the others fail fast until it
        // answers, or until its own timeout has passed and another may probe.
        let timeout = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX / 4);
        let probe_until = now.saturating_add(timeout).saturating_add(1);
        self.open_until
            .compare_exchange(until, probe_until, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(|_| last)
    }

    /// Redis answered: close.
    pub(crate) fn succeeded(&self) {
        if self.failures_in_a_row.load(Ordering::Relaxed) != 0 {
            self.failures_in_a_row.store(0, Ordering::Relaxed);
        }
        if self.open_until.load(Ordering::Relaxed) != 0 {
            self.open_until.store(0, Ordering::Release);
        }
    }

    /// Redis did not answer a decision that asked it.
    pub(crate) fn failed(&self, failure: GlobalFailure) {
        self.last_failure.store(failure.code(), Ordering::Relaxed);
        let in_a_row = self
            .failures_in_a_row
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        let known_down = failure == GlobalFailure::Connection || in_a_row >= TIMEOUTS_TO_OPEN;
        // A failed probe reopens whatever its kind: the breaker was open for a reason.
        let probing = self.open_until.load(Ordering::Acquire) != 0;
        if known_down || probing {
            let pause = u64::try_from(PAUSE.as_millis()).unwrap_or(100);
            self.open_until.store(self.now() + pause, Ordering::Release);
        }
    }

    /// Whether decisions currently fail fast (tests).
    #[cfg(test)]
    pub(crate) fn is_open(&self) -> bool {
        self.open_until.load(Ordering::Acquire) > self.now()
    }
}
