//! [`LiveStats`]: request rate, error rate and latency percentiles of the last minutes, sampled
//! in-process for the admin dashboard (`/ui`), so that an on-call person sees traffic without a
//! Prometheus server.
//!
//! Two halves with different costs:
//!
//! - the data plane calls [`LiveStats::record`] once per answered request: two or three relaxed
//!   atomic adds into cumulative counters (requests, 5xx, one latency bucket) of the calling
//!   thread's shard, no lock and no allocation;
//! - one task calls [`LiveStats::sample`] about once a second: it diffs the cumulative counters
//!   against the previous sample and appends one [`LiveSample`] (rate, error ratio, p50/p90/p99
//!   of that interval) to a ring of the last [`HISTORY_LEN`] samples, under a lock that only the
//!   sampler and admin readers take.
//!
//! Latency is bucketed on a log scale with four buckets per power of two of microseconds
//! (each bucket is at most 25% wide, so a percentile read from it is within about 12% of the
//! true value after interpolation). It does not keep per-route series: `/metrics` has those.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Samples kept: ten minutes at one sample per second.
pub const HISTORY_LEN: usize = 600;

/// Buckets per power of two.
const SUB_BUCKETS: u32 = 4;
/// Powers of two of microseconds covered: up to 2^31 µs (about 36 minutes); anything longer
/// lands in the last bucket.
const OCTAVES: u32 = 31;
/// Bucket 0 holds durations under one microsecond; the others four per octave.
const BUCKETS: usize = 1 + (OCTAVES * SUB_BUCKETS) as usize;

/// Counter sets: each thread records into one, chosen when it first records, so that worker
/// threads on different cores do not bounce the same cache lines on every request.
const SHARDS: usize = 8;

/// Per-interval request statistics over the last minutes. Share it behind the `Arc` of
/// [`crate::Metrics`] ([`crate::Metrics::live_stats`]); every method takes `&self`.
#[derive(Debug)]
pub struct LiveStats {
    /// The cumulative counters, one set per shard of threads; readers add them up.
    shards: Box<[Shard; SHARDS]>,
    /// What the sampler keeps between calls, and the samples.
    history: Mutex<History>,
}

/// One set of cumulative counters, on cache lines of its own.
#[derive(Debug)]
#[repr(align(128))]
struct Shard {
    /// Answered requests since start.
    requests: AtomicU64,
    /// Of those, answered with a 5xx status.
    errors: AtomicU64,
    /// Request durations since start, by [`bucket_index`].
    latency: [AtomicU64; BUCKETS],
}

impl Shard {
    fn new() -> Shard {
        Shard {
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// The shard of the current thread: threads take shards in turn as they first record.
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|shard| *shard)
}

/// The sampler's state: the cumulative counters at the previous sample (at creation before
/// the first) and the ring.
#[derive(Debug)]
struct History {
    previous: Cumulative,
    samples: VecDeque<LiveSample>,
}

/// A reading of the cumulative counters.
#[derive(Debug, Clone)]
struct Cumulative {
    at: Instant,
    requests: u64,
    errors: u64,
    latency: [u64; BUCKETS],
}

/// One interval of traffic (normally one second), as the dashboard plots it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LiveSample {
    /// When the interval ended, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// Requests answered in the interval.
    pub requests: u64,
    /// Of those, answered with a 5xx status.
    pub errors: u64,
    /// Requests per second over the interval.
    pub requests_per_second: f64,
    /// `errors / requests`, 0 when there were no requests.
    pub error_ratio: f64,
    /// Median request duration in the interval, milliseconds; `None` without requests.
    pub p50_ms: Option<f64>,
    /// 90th percentile, milliseconds; `None` without requests.
    pub p90_ms: Option<f64>,
    /// 99th percentile, milliseconds; `None` without requests.
    pub p99_ms: Option<f64>,
}

/// The cumulative totals since the process started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LiveTotals {
    /// Answered requests.
    pub requests: u64,
    /// Of those, answered with a 5xx status.
    pub errors: u64,
}

impl Default for LiveStats {
    fn default() -> LiveStats {
        LiveStats::new()
    }
}

impl LiveStats {
    /// Empty counters and no samples.
    pub fn new() -> LiveStats {
        LiveStats {
            shards: Box::new(std::array::from_fn(|_| Shard::new())),
            history: Mutex::new(History {
                previous: Cumulative {
                    at: Instant::now(),
                    requests: 0,
                    errors: 0,
                    latency: [0; BUCKETS],
                },
                samples: VecDeque::with_capacity(HISTORY_LEN),
            }),
        }
    }

    /// Counts one answered request with its status code and duration, in the current
    /// thread's shard. Relaxed atomic adds only: a concurrent [`LiveStats::sample`] may see the
    /// request counted and its bucket not yet (the next sample has it), which a once-a-second
    /// plot does not show.
    pub fn record(&self, status: u16, duration: Duration) {
        let shard = &self.shards[shard_index()];
        shard.requests.fetch_add(1, Ordering::Relaxed);
        if status >= 500 {
            shard.errors.fetch_add(1, Ordering::Relaxed);
        }
        shard.latency[bucket_index(duration)].fetch_add(1, Ordering::Relaxed);
    }

    /// The totals since start.
    pub fn totals(&self) -> LiveTotals {
        let sum = |counter: fn(&Shard) -> &AtomicU64| {
            self.shards
                .iter()
                .map(|shard| counter(shard).load(Ordering::Relaxed))
                .sum()
        };
        LiveTotals {
            requests: sum(|shard| &shard.requests),
            errors: sum(|shard| &shard.errors),
        }
    }

    /// Closes the interval since the previous call: appends the traffic recorded in it to the
    /// ring (dropping the oldest sample beyond [`HISTORY_LEN`]); the first call closes the
    /// interval since [`LiveStats::new`]. `now` is the monotonic clock (rates divide
    /// by the real interval, so a late tick does not inflate them); `wall` stamps the sample.
    pub fn sample(&self, now: Instant, wall: SystemTime) {
        let totals = self.totals();
        let current = Cumulative {
            at: now,
            requests: totals.requests,
            errors: totals.errors,
            latency: std::array::from_fn(|i| {
                self.shards
                    .iter()
                    .map(|shard| shard.latency[i].load(Ordering::Relaxed))
                    .sum()
            }),
        };
        let mut history = self
            .history
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let sample = interval_sample(&history.previous, &current, wall);
        if history.samples.len() == HISTORY_LEN {
            history.samples.pop_front();
        }
        history.samples.push_back(sample);
        history.previous = current;
    }

    /// The samples kept, oldest first.
    pub fn samples(&self) -> Vec<LiveSample> {
        let history = self
            .history
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        history.samples.iter().cloned().collect()
    }
}

/// The sample of the interval between two readings.
fn interval_sample(previous: &Cumulative, current: &Cumulative, wall: SystemTime) -> LiveSample {
    let requests = current.requests.saturating_sub(previous.requests);
    let errors = current.errors.saturating_sub(previous.errors);
    let seconds = current
        .at
        .saturating_duration_since(previous.at)
        .as_secs_f64();
    let counts: [u64; BUCKETS] =
        std::array::from_fn(|i| current.latency[i].saturating_sub(previous.latency[i]));
    LiveSample {
        at_unix_ms: wall.duration_since(UNIX_EPOCH).map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        }),
        requests,
        errors,
        requests_per_second: if seconds > 0.0 {
            requests as f64 / seconds
        } else {
            0.0
        },
        error_ratio: if requests > 0 {
            errors as f64 / requests as f64
        } else {
            0.0
        },
        p50_ms: percentile_ms(&counts, 0.50),
        p90_ms: percentile_ms(&counts, 0.90),
        p99_ms: percentile_ms(&counts, 0.99),
    }
}

/// The bucket of `duration`: 0 under one microsecond, else four buckets per power of two of
/// microseconds (the octave, then the two bits after the leading one), the last one open-ended.
fn bucket_index(duration: Duration) -> usize {
    let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
    if micros == 0 {
        return 0;
    }
    let octave = 63 - micros.leading_zeros();
    if octave >= OCTAVES {
        return BUCKETS - 1;
    }
    // The two bits below the leading one, for octave 0 and 1 padded with zeros.
    let sub = ((micros << 2) >> octave) & u64::from(SUB_BUCKETS - 1);
    1 + (octave * SUB_BUCKETS) as usize + sub as usize
}

/// The bounds of bucket `index` in microseconds: `[low, high)`.
fn bucket_bounds(index: usize) -> (f64, f64) {
    if index == 0 {
        return (0.0, 1.0);
    }
    let slot = (index - 1) as u32;
    let octave = slot / SUB_BUCKETS;
    let sub = slot % SUB_BUCKETS;
    let scale = f64::from(1_u32 << octave.min(31)) / f64::from(SUB_BUCKETS);
    let low = f64::from(SUB_BUCKETS + sub) * scale;
    let high = f64::from(SUB_BUCKETS + sub + 1) * scale;
    (low, high)
}

/// The `quantile` (0 to 1) of the durations counted in `counts`, in milliseconds; `None` when
/// nothing was counted. The observations of a bucket are taken as spread evenly over it, each
/// at the middle of its share (one observation alone sits at the bucket's middle).
fn percentile_ms(counts: &[u64; BUCKETS], quantile: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    // The rank of the wanted observation, 1-based: the smallest one with at least `quantile` of
    // all observations at or below it.
    let rank = ((quantile * total as f64).ceil() as u64).clamp(1, total);
    let mut below = 0_u64;
    for (index, &count) in counts.iter().enumerate() {
        if count == 0 {
            continue;
        }
        if below + count >= rank {
            let (low, high) = bucket_bounds(index);
            let within = ((rank - below) as f64 - 0.5) / count as f64;
            return Some((low + (high - low) * within) / 1000.0);
        }
        below += count;
    }
    None
}

#[cfg(test)]
mod tests;
