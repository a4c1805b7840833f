use std::hash::BuildHasher;

use telemetry::{LabelValue, Metrics, RequestKey};

use super::*;

fn key(rule: usize, backend: Option<usize>, code: u16) -> SeriesKey {
    SeriesKey {
        rule,
        backend,
        code,
        method: HttpMethod::Get,
        scheme: "http",
    }
}

/// The exposition's lines, sorted: the registry orders series by its own hashing, which
/// differs between two registries.
fn sorted_lines(metrics: &Metrics) -> Vec<String> {
    let mut lines: Vec<String> = metrics.encode().lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

fn series_for(metrics: &Metrics, route: &str, backend: &str, code: u16) -> RequestSeries {
    metrics.request_series(&RequestKey {
        route: &LabelValue::from(route),
        backend: &LabelValue::from(backend),
        code,
        method: HttpMethod::Get,
        scheme: "http",
    })
}

#[test]
fn a_hit_records_without_asking_the_registry() {
    let metrics = Metrics::new();
    let by_labels = Metrics::new();
    let cache = SeriesCache::new(1);
    let mut fetched = 0;
    for _ in 0..3 {
        cache.record_request(
            key(0x1000, Some(0), 200),
            Duration::from_millis(2),
            None,
            || {
                fetched += 1;
                series_for(&metrics, "rule", "backend", 200)
            },
        );
        series_for(&by_labels, "rule", "backend", 200).record(Duration::from_millis(2), None);
    }
    assert_eq!(fetched, 1);
    assert_eq!(sorted_lines(&metrics), sorted_lines(&by_labels));
}

#[test]
fn rule_backend_and_code_each_select_a_series() {
    let metrics = Metrics::new();
    let by_labels = Metrics::new();
    let cache = SeriesCache::new(2);
    let requests = [
        (0x1000, Some(0), 200, "a", "x"),
        (0x1000, Some(1), 200, "a", "y"),
        (0x1000, Some(0), 503, "a", "x"),
        (0x1000, None, 302, "a", ""),
        (0x2000, Some(0), 200, "b", "x"),
        (0x1000, Some(0), 200, "a", "x"),
    ];
    for (rule, backend, code, route_name, backend_name) in requests {
        cache.record_request(key(rule, backend, code), Duration::ZERO, None, || {
            series_for(&metrics, route_name, backend_name, code)
        });
        series_for(&by_labels, route_name, backend_name, code).record(Duration::ZERO, None);
    }
    assert_eq!(sorted_lines(&metrics), sorted_lines(&by_labels));
}

#[test]
fn breaker_gauge_is_fetched_once_per_backend() {
    let metrics = Metrics::new();
    let cache = SeriesCache::new(1);
    let mut fetched = 0;
    for state in [0, 1, 2, 0] {
        cache.set_breaker_state(0, state, || {
            fetched += 1;
            metrics.circuit_breaker_gauge(&LabelValue::from("backend"))
        });
        assert_eq!(
            metrics
                .circuit_breaker_gauge(&LabelValue::from("backend"))
                .get(),
            state
        );
    }
    assert_eq!(fetched, 1);
    // Beyond the generation's backends: still set, just not cached.
    cache.set_breaker_state(5, 1, || {
        metrics.circuit_breaker_gauge(&LabelValue::from("other"))
    });
    assert_eq!(
        metrics
            .circuit_breaker_gauge(&LabelValue::from("other"))
            .get(),
        1
    );
}

#[test]
fn the_hasher_tells_nearby_keys_apart() {
    let hasher = FastHashBuilder::default();
    let hashes: std::collections::HashSet<u64> = (0..64usize)
        .flat_map(|rule| {
            [None, Some(0), Some(1)]
                .map(|backend| hasher.hash_one(key(0x7f00_0000 + rule * 64, backend, 200)))
        })
        .collect();
    assert_eq!(hashes.len(), 64 * 3);
}

#[test]
fn composition_series_are_fetched_once_and_count_as_the_registry_would() {
    let metrics = Metrics::new();
    let by_labels = Metrics::new();
    let cache = SeriesCache::new(0);
    let composition = LabelValue::from("Composition shop/page");
    let part = LabelValue::from("price");
    let mut fetched = 0;
    for _ in 0..3 {
        cache.record_part(0x2000, Duration::from_millis(5), || {
            fetched += 1;
            metrics.composition.part_ok_series(&composition, &part)
        });
        by_labels
            .composition
            .part(&composition, &part, "ok", Some(Duration::from_millis(5)));
        cache.count_complete(0x3000, || {
            fetched += 1;
            metrics
                .composition
                .composed_counter(&composition, "complete")
        });
        by_labels.composition.composed(&composition, "complete");
    }
    assert_eq!(fetched, 2, "one fetch per series");
    assert_eq!(sorted_lines(&metrics), sorted_lines(&by_labels));
    assert!(
        metrics.encode().contains(
            "portcullis_composition_parts_total{composition=\"Composition shop/page\",part=\"price\",result=\"ok\"} 3"
        ),
        "{}",
        metrics.encode()
    );
}
