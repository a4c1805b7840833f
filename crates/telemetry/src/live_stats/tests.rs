use super::*;

fn micros(value: u64) -> Duration {
    Duration::from_micros(value)
}

fn counts_of(durations: &[Duration]) -> [u64; BUCKETS] {
    let mut counts = [0_u64; BUCKETS];
    for duration in durations {
        counts[bucket_index(*duration)] += 1;
    }
    counts
}

#[test]
fn every_duration_falls_inside_its_bucket() {
    for value in (1..5000).chain([10_000, 123_456, 1_000_000, 60_000_000, 1 << 30]) {
        let (low, high) = bucket_bounds(bucket_index(micros(value)));
        let value = value as f64;
        assert!(
            low <= value && value < high,
            "{value} not in [{low}, {high})"
        );
    }
}

#[test]
fn buckets_are_at_most_a_quarter_wide() {
    for index in 5..BUCKETS {
        let (low, high) = bucket_bounds(index);
        assert!(
            (high - low) / low <= 0.25 + 1e-9,
            "bucket {index}: [{low}, {high})"
        );
        let (_, previous_high) = bucket_bounds(index - 1);
        assert_eq!(
            previous_high, low,
            "buckets {index} and its predecessor touch"
        );
    }
}

#[test]
fn sub_microsecond_and_huge_durations_have_buckets() {
    assert_eq!(bucket_index(Duration::from_nanos(300)), 0);
    assert_eq!(bucket_index(Duration::from_secs(100_000)), BUCKETS - 1);
    assert_eq!(bucket_index(Duration::MAX), BUCKETS - 1);
}

#[test]
fn no_requests_have_no_percentile() {
    assert_eq!(percentile_ms(&[0; BUCKETS], 0.5), None);
}

#[test]
fn one_request_sits_in_the_middle_of_its_bucket() {
    // 10 ms lands in [8.192, 10.24) ms.
    let p = percentile_ms(&counts_of(&[micros(10_000)]), 0.99).expect("a percentile");
    assert!((p - 9.216).abs() < 1e-9, "{p}");
}

#[test]
fn percentiles_of_a_uniform_spread_are_within_the_bucket_error() {
    // 1, 2, ..., 1000 ms: p50 = 500 ms, p90 = 900 ms, p99 = 990 ms.
    let durations: Vec<Duration> = (1..=1000).map(|ms| micros(ms * 1000)).collect();
    let counts = counts_of(&durations);
    for (quantile, expected) in [(0.5, 500.0), (0.9, 900.0), (0.99, 990.0)] {
        let p = percentile_ms(&counts, quantile).expect("a percentile");
        let error = (p - expected).abs() / expected;
        assert!(
            error < 0.13,
            "p{quantile}: {p} ms, expected about {expected} ms"
        );
    }
}

#[test]
fn a_slow_tail_shows_in_p99_and_not_in_p50() {
    // 98 requests at 2 ms, 2 at 800 ms.
    let mut durations = vec![micros(2_000); 98];
    durations.extend([micros(800_000); 2]);
    let counts = counts_of(&durations);
    let p50 = percentile_ms(&counts, 0.5).expect("p50");
    let p90 = percentile_ms(&counts, 0.9).expect("p90");
    let p99 = percentile_ms(&counts, 0.99).expect("p99");
    assert!((1.7..2.6).contains(&p50), "p50 {p50}");
    assert!((1.7..2.6).contains(&p90), "p90 {p90}");
    assert!((700.0..900.0).contains(&p99), "p99 {p99}");
}

#[test]
fn the_first_sample_covers_the_time_since_creation() {
    let stats = LiveStats::new();
    stats.record(200, micros(1_000));
    stats.record(500, micros(1_000));
    stats.sample(Instant::now() + Duration::from_secs(1), SystemTime::now());
    let samples = stats.samples();
    assert_eq!(samples.len(), 1);
    assert_eq!((samples[0].requests, samples[0].errors), (2, 1));
    assert!(samples[0].requests_per_second > 0.0, "{samples:?}");
}

#[test]
fn a_sample_holds_the_traffic_of_its_interval() {
    let stats = LiveStats::new();
    let start = Instant::now();
    stats.record(200, micros(1_000));
    stats.sample(start, SystemTime::now());

    for _ in 0..6 {
        stats.record(200, micros(4_000));
    }
    stats.record(503, micros(4_000));
    stats.record(404, micros(4_000));
    stats.sample(
        start + Duration::from_secs(2),
        UNIX_EPOCH + Duration::from_secs(5),
    );

    let samples = stats.samples();
    assert_eq!(samples.len(), 2);
    let sample = &samples[1];
    assert_eq!(sample.at_unix_ms, 5_000);
    assert_eq!((sample.requests, sample.errors), (8, 1));
    assert!(
        (sample.requests_per_second - 4.0).abs() < 1e-9,
        "{sample:?}"
    );
    assert!((sample.error_ratio - 0.125).abs() < 1e-9, "{sample:?}");
    // All eight took 4 ms, in bucket [3.584, 4.096) ms.
    let p50 = sample.p50_ms.expect("p50");
    assert!((3.5..4.1).contains(&p50), "{sample:?}");
    assert_eq!(
        stats.totals(),
        LiveTotals {
            requests: 9,
            errors: 1
        }
    );
}

#[test]
fn a_quiet_interval_has_zero_rate_and_no_latency() {
    let stats = LiveStats::new();
    let start = Instant::now();
    stats.sample(start, SystemTime::now());
    stats.sample(start + Duration::from_secs(1), SystemTime::now());
    let samples = stats.samples();
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[1].requests, 0);
    assert_eq!(samples[1].requests_per_second, 0.0);
    assert_eq!(samples[1].error_ratio, 0.0);
    assert_eq!(samples[1].p99_ms, None);
}

#[test]
fn the_ring_keeps_the_last_ten_minutes() {
    let stats = LiveStats::new();
    let start = Instant::now();
    for second in 0..=(HISTORY_LEN as u64 + 5) {
        stats.record(200, micros(100));
        stats.sample(
            start + Duration::from_secs(second),
            UNIX_EPOCH + Duration::from_secs(second),
        );
    }
    let samples = stats.samples();
    assert_eq!(samples.len(), HISTORY_LEN);
    assert_eq!(samples[0].at_unix_ms, 6_000, "the oldest six were dropped");
    assert_eq!(
        samples.last().map(|s| s.at_unix_ms),
        Some((HISTORY_LEN as u64 + 5) * 1000)
    );
}

#[test]
fn requests_recorded_on_many_threads_are_all_sampled() {
    let stats = LiveStats::new();
    std::thread::scope(|scope| {
        for thread in 0..(2 * SHARDS as u64) {
            let stats = &stats;
            scope.spawn(move || {
                for _ in 0..100 {
                    stats.record(if thread == 0 { 503 } else { 200 }, micros(250));
                }
            });
        }
    });
    stats.sample(Instant::now() + Duration::from_secs(1), SystemTime::now());
    let expected = 2 * SHARDS as u64 * 100;
    assert_eq!(
        stats.totals(),
        LiveTotals {
            requests: expected,
            errors: 100
        }
    );
    let samples = stats.samples();
    assert_eq!((samples[0].requests, samples[0].errors), (expected, 100));
    let p50 = samples[0].p50_ms.expect("p50");
    assert!((0.22..0.26).contains(&p50), "{p50}");
}
