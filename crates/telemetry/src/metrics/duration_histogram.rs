//! [`DurationHistogram`]: a histogram of durations whose observation is two atomic additions.
//!
//! prometheus-client's `Histogram` takes a mutex per observation and keeps its sum as `f64`;
//! `portcullis_request_duration_seconds` is observed once per request, on every worker, so it
//! counts here instead: one `AtomicU64` per bucket and the sum in whole nanoseconds (exact,
//! and an integer addition). It encodes through prometheus-client's own histogram encoder, so
//! the exposition is the same as the crate's histogram's.
//!
//! A scrape reads the buckets one by one while requests keep counting: `_count` is the sum of
//! the buckets it read (so it always equals the `+Inf` bucket, as the format requires), and
//! `_sum` may include an observation or two that the buckets did not yet, as with any scrape
//! that races traffic.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// A histogram of durations with fixed bucket bounds (seconds). Cheap to clone: clones share
/// the counts.
#[derive(Clone, Debug)]
pub(crate) struct DurationHistogram {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Upper bounds in seconds, ascending; the `+Inf` bucket is implied.
    bounds: &'static [f64],
    /// One count per bound, then the `+Inf` bucket's.
    counts: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
}

impl DurationHistogram {
    /// An empty histogram with these upper bounds (seconds, ascending).
    pub(crate) fn new(bounds: &'static [f64]) -> DurationHistogram {
        debug_assert!(bounds.is_sorted(), "bucket bounds must ascend");
        DurationHistogram {
            inner: Arc::new(Inner {
                bounds,
                counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
                sum_nanos: AtomicU64::new(0),
            }),
        }
    }

    /// Counts one observation in the first bucket whose bound is at least `duration`.
    pub(crate) fn observe(&self, duration: Duration) {
        let inner = &*self.inner;
        let seconds = duration.as_secs_f64();
        let bucket = inner
            .bounds
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(inner.bounds.len());
        if let Some(count) = inner.counts.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        // 584 years of nanoseconds fit in a u64: saturate rather than wrap past that.
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        inner.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

impl TypedMetric for DurationHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for DurationHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let inner = &*self.inner;
        // Per-bucket counts, as prometheus-client's encoder takes them (it accumulates).
        let buckets: Vec<(f64, u64)> = inner
            .bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(inner.counts.iter())
            .map(|(bound, count)| (bound, count.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|&(_, count)| count).sum();
        let sum = Duration::from_nanos(inner.sum_nanos.load(Ordering::Relaxed)).as_secs_f64();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use prometheus_client::metrics::histogram::Histogram;
    use prometheus_client::registry::Registry;

    use super::DurationHistogram;

    const BOUNDS: [f64; 3] = [0.001, 0.01, 0.1];

    fn exposition(register: impl FnOnce(&mut Registry)) -> String {
        let mut registry = Registry::default();
        register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry)
            .expect("encoding into a String succeeds");
        text
    }

    #[test]
    fn exposes_what_the_crates_histogram_exposes_for_the_same_observations() {
        // Durations on a bound, between bounds, and past the last one (+Inf).
        let observations = [
            Duration::from_micros(200),
            Duration::from_millis(1),
            Duration::from_millis(7),
            Duration::from_millis(50),
            Duration::from_millis(50),
            Duration::from_secs(3),
        ];
        let ours = DurationHistogram::new(&BOUNDS);
        let theirs = Histogram::new(BOUNDS);
        for duration in observations {
            ours.observe(duration);
            theirs.observe(duration.as_secs_f64());
        }
        let ours = exposition(|r| r.register("latency", "help", ours));
        let theirs = exposition(|r| r.register("latency", "help", theirs));
        assert_eq!(ours, theirs);
        assert!(ours.contains("latency_bucket{le=\"0.01\"} 3\n"), "{ours}");
        assert!(ours.contains("latency_bucket{le=\"+Inf\"} 6\n"), "{ours}");
        assert!(ours.contains("latency_count 6\n"), "{ours}");
        assert!(ours.contains("latency_sum 3.1082\n"), "{ours}");
    }

    #[test]
    fn clones_count_into_the_same_buckets() {
        let histogram = DurationHistogram::new(&BOUNDS);
        let clone = histogram.clone();
        clone.observe(Duration::from_millis(5));
        histogram.observe(Duration::from_millis(5));
        let text = exposition(|r| r.register("latency", "help", histogram));
        assert!(text.contains("latency_bucket{le=\"0.01\"} 2\n"), "{text}");
        assert!(text.contains("latency_bucket{le=\"0.001\"} 0\n"), "{text}");
    }
}
