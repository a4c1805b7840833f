//! The Generic Cell Rate Algorithm, as pure arithmetic on one bucket's state.
//!
//! A bucket is one number, its theoretical arrival time (TAT): the instant at which it would be
//! full again. With an emission interval `T = period / requests` and a burst of `b` requests, a
//! request at `now` is admitted when `max(TAT, now) + T - now <= b·T`, and then the TAT moves to
//! `max(TAT, now) + T`. A refused request changes nothing. A bucket whose TAT is in the past is
//! exactly a fresh bucket, so idle buckets can be forgotten without losing anything: that is what
//! bounds the local store's memory (`local.rs`) and what the Redis keys' expiry relies on
//! (`gcra.lua` is this same arithmetic, in microseconds of the Redis server's clock).
//!
//! Times here are plain integers in one unit chosen by the caller (nanoseconds locally,
//! microseconds in Redis). All arithmetic saturates: no limit, however large, can overflow.

use std::time::Duration;

use snapshot::rate_limit::Limit;

/// The constants of one limit, in the caller's time unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rate {
    /// `T`: time one request costs.
    pub(crate) interval: u64,
    /// `b·T`: how far ahead of `now` the TAT may run. Zero refuses every request.
    pub(crate) capacity: u64,
}

impl Rate {
    /// The rate of `limit` with `unit` time units per second (1e9 for nanoseconds, 1e6 for
    /// microseconds). `requests: 0` refuses everything; a burst of 0 is taken as 1 (strict
    /// pacing: one request per interval, no burst).
    pub(crate) fn new(limit: &Limit, unit_per_second: u64) -> Rate {
        let period = duration_in(limit.period, unit_per_second);
        if limit.requests == 0 {
            return Rate {
                interval: period.max(1),
                capacity: 0,
            };
        }
        let interval = (period / limit.requests).max(1);
        Rate {
            interval,
            capacity: interval.saturating_mul(limit.burst.max(1)),
        }
    }

    /// Requests that could be admitted at once in a bucket whose TAT is `ahead` of now.
    fn remaining(&self, ahead: u64) -> u64 {
        self.capacity.saturating_sub(ahead) / self.interval
    }
}

/// What one bucket said about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// The request fits the limit (and was counted).
    pub(crate) admitted: bool,
    /// Requests that could still be admitted right now (after this one, when admitted).
    pub(crate) remaining: u64,
    /// When refused: how long until a request would be admitted. Zero when admitted.
    pub(crate) retry_after: u64,
    /// How long until the bucket is full again.
    pub(crate) reset: u64,
}

/// Decides one request at `now` against a bucket whose TAT is `tat` (`None`: no state yet,
/// a fresh bucket). Returns the verdict and the bucket's new TAT when it changed.
pub(crate) fn decide(tat: Option<u64>, now: u64, rate: Rate) -> (Verdict, Option<u64>) {
    let start = tat.map_or(now, |tat| tat.max(now));
    let new_tat = start.saturating_add(rate.interval);
    let ahead = new_tat - now;
    if ahead <= rate.capacity {
        let verdict = Verdict {
            admitted: true,
            remaining: rate.remaining(ahead),
            retry_after: 0,
            reset: ahead,
        };
        (verdict, Some(new_tat))
    } else {
        let verdict = Verdict {
            admitted: false,
            remaining: 0,
            retry_after: ahead - rate.capacity,
            reset: start - now,
        };
        (verdict, None)
    }
}

/// Gives back one admitted request (a later rule refused the request): the TAT moves back one
/// interval, never before `now` (a bucket cannot hold more than a fresh one).
pub(crate) fn refund(tat: u64, now: u64, rate: Rate) -> u64 {
    tat.saturating_sub(rate.interval).max(now)
}

/// `duration` in units of `1/unit_per_second` seconds, saturating.
pub(crate) fn duration_in(duration: Duration, unit_per_second: u64) -> u64 {
    let units = duration.as_nanos() * u128::from(unit_per_second) / 1_000_000_000;
    u64::try_from(units).unwrap_or(u64::MAX)
}
