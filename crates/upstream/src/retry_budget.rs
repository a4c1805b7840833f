//! [`RetryBudgetWindow`]: retries of a route rule limited to a share of its requests.
//!
//! Owns the budget's sliding window (tower's `TpsBudget` semantics: every request deposits,
//! every retry withdraws, a per-second floor always allows a few retries). It does not decide
//! whether a response is worth retrying; the proxy asks the budget only once it would retry.
//!
//! This is runtime state: the settings ([`RetryBudgetSettings`]) are in the snapshot, the window
//! is kept by the proxy's rule-state registry under the rule's stable identity, so a reload that
//! leaves a rule's budget settings unchanged keeps its window (and what it has spent).
//!
//! Time is passed in by the caller (`std::time::Instant`), which keeps this crate free of a
//! runtime; the proxy passes tokio's clock, so tests can pause it.
//!
//! Arithmetic, in integers: a request deposits `percent` units and a retry costs 100, so over
//! the window retries stay at most `percent`% of requests, plus the reserve of
//! `min_retries_per_second × window` retries.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use snapshot::RetryBudgetSettings;

/// How long a deposit counts (tower's default `ttl`).
pub const BUDGET_WINDOW: Duration = Duration::from_secs(10);

/// Slots the window is split into: deposits expire a second at a time.
const SLOTS: usize = 10;

/// Units one retry costs.
const RETRY_COST: i64 = 100;

#[derive(Debug, Default)]
struct Slot {
    /// Which second (since the budget's start) the balance belongs to.
    period: AtomicU64,
    balance: AtomicI64,
}

/// A route rule's retry budget (`retry.budget` of a BackendTrafficPolicy). Shared by every
/// request of the rule; every method takes `&self` and is safe from any thread. Concurrent
/// withdrawals may overdraw by a retry or two (check and withdrawal are not one atomic step),
/// as in tower.
#[derive(Debug)]
pub struct RetryBudgetWindow {
    percent: u32,
    min_retries_per_second: u32,
    start: Instant,
    slots: [Slot; SLOTS],
    /// Held only to rotate a slot into a new second.
    rotation: Mutex<()>,
}

impl RetryBudgetWindow {
    /// A budget allowing retries of `percent`% of requests (0 allows only the floor), and at
    /// least `min_retries_per_second` retries per second on average.
    pub fn new(percent: u32, min_retries_per_second: u32) -> RetryBudgetWindow {
        RetryBudgetWindow {
            percent,
            min_retries_per_second,
            start: Instant::now(),
            slots: Default::default(),
            rotation: Mutex::new(()),
        }
    }

    /// A window for `settings`.
    pub fn with_settings(settings: RetryBudgetSettings) -> RetryBudgetWindow {
        RetryBudgetWindow::new(settings.percent(), settings.min_retries_per_second())
    }

    /// The settings this window enforces.
    pub fn settings(&self) -> RetryBudgetSettings {
        RetryBudgetSettings::new(self.percent, self.min_retries_per_second)
    }

    /// Counts one request (call once per request, not per attempt).
    pub fn deposit(&self, now: Instant) {
        self.slot(now)
            .balance
            .fetch_add(i64::from(self.percent), Ordering::AcqRel);
    }

    /// Takes one retry out of the budget; `false` (nothing taken) when it is spent.
    pub fn try_withdraw(&self, now: Instant) -> bool {
        let slot = self.slot(now);
        if self.balance(now) < RETRY_COST {
            return false;
        }
        slot.balance.fetch_sub(RETRY_COST, Ordering::AcqRel);
        true
    }

    /// Units available now: the window's deposits minus its withdrawals, plus the reserve.
    fn balance(&self, now: Instant) -> i64 {
        let current = self.period(now);
        let oldest = current.saturating_sub(SLOTS as u64 - 1);
        let window: i64 = self
            .slots
            .iter()
            .filter(|s| (oldest..=current).contains(&s.period.load(Ordering::Acquire)))
            .map(|s| s.balance.load(Ordering::Acquire))
            .sum();
        let reserve =
            i64::from(self.min_retries_per_second) * BUDGET_WINDOW.as_secs() as i64 * RETRY_COST;
        window.saturating_add(reserve)
    }

    fn period(&self, now: Instant) -> u64 {
        let slot_width = BUDGET_WINDOW.as_nanos() / SLOTS as u128;
        let elapsed = now.saturating_duration_since(self.start).as_nanos();
        u64::try_from(elapsed / slot_width).unwrap_or(u64::MAX)
    }

    /// The slot of `now`'s second, emptied first if it still holds an older second.
    fn slot(&self, now: Instant) -> &Slot {
        let period = self.period(now);
        let slot = &self.slots[(period % SLOTS as u64) as usize];
        if slot.period.load(Ordering::Acquire) != period {
            // The mutex guards no data of its own: a poisoned one is as good as a clean one.
            let _guard = self
                .rotation
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if slot.period.load(Ordering::Acquire) != period {
                slot.balance.store(0, Ordering::Release);
                slot.period.store(period, Ordering::Release);
            }
        }
        slot
    }
}

#[cfg(test)]
mod tests;
