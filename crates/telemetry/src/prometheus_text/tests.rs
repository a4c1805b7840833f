use std::time::Duration;

use super::*;
use crate::{Hex, HttpMethod, LabelValue, Metrics, RequestKey, TraceExemplar};

#[test]
fn counters_are_named_with_total_and_units_and_eof_are_dropped() {
    let metrics = Metrics::new();
    metrics.retry_attempted("HTTPRoute shop/cart rules[0]");
    let text = prometheus_text(&metrics.encode());
    assert!(
        text.contains("# HELP portcullis_retries_total Retries of requests"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE portcullis_retries_total counter\n"),
        "{text}"
    );
    assert!(
        text.contains("portcullis_retries_total{route=\"HTTPRoute shop/cart rules[0]\"} 1\n"),
        "{text}"
    );
    assert!(!text.contains("# EOF"), "{text}");
    assert!(!text.contains("# UNIT"), "{text}");
    assert!(
        text.contains("# TYPE portcullis_config_generation gauge\n"),
        "{text}"
    );
}

#[test]
fn exemplars_are_dropped_and_labels_kept_whole() {
    let metrics = Metrics::new();
    // A label value holding what ends a series elsewhere: a quote, a brace, " # ".
    let route = LabelValue::from("HTTPRoute a/b\"} # rules[0]");
    let backend = LabelValue::from("Service a/b:80");
    let exemplar = TraceExemplar {
        trace_id: Hex([0xab; 16]),
        span_id: Hex([0xcd; 8]),
    };
    metrics.record_request(
        &RequestKey {
            route: &route,
            backend: &backend,
            code: 200,
            method: HttpMethod::Get,
            scheme: "http",
        },
        Duration::from_millis(3),
        Some(exemplar),
    );
    let openmetrics = metrics.encode();
    assert!(openmetrics.contains("trace_id=\"abab"), "{openmetrics}");

    let text = prometheus_text(&openmetrics);
    assert!(!text.contains("trace_id"), "{text}");
    let bucket = text
        .lines()
        .find(|line| line.starts_with("http_server_request_duration_seconds_bucket{le=\"0.005\""))
        .unwrap_or_else(|| panic!("no 0.005 bucket:\n{text}"));
    assert!(
        bucket.ends_with(r#"http_route="HTTPRoute a/b\"} # rules[0]",url_scheme="http"} 1"#),
        "{bucket}"
    );
    assert!(
        text.contains("# TYPE http_server_request_duration_seconds histogram\n"),
        "{text}"
    );
}

#[test]
fn help_quotes_are_unescaped() {
    let mut help = String::new();
    push_help(&mut help, r#"say \"hi\" \\ and \n"#);
    assert_eq!(help, r#"say "hi" \\ and \n"#);
}

#[test]
fn sample_timestamps_are_dropped() {
    let text = prometheus_text("# TYPE up gauge\nup 1 1700000000.5\n# EOF\n");
    assert_eq!(text, "# TYPE up gauge\nup 1\n");
}
