use super::*;

/// A GET over `http` with these labels.
fn key<'a>(route: &'a LabelValue, backend: &'a LabelValue, code: u16) -> RequestKey<'a> {
    RequestKey {
        route,
        backend,
        code,
        method: HttpMethod::Get,
        scheme: "http",
    }
}

fn line_value<'a>(text: &'a str, series: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
}

#[test]
fn requests_are_counted_by_route_backend_and_code() {
    let metrics = Metrics::new();
    let route = LabelValue::from("HTTPRoute shop/cart rules[0]");
    let backend = LabelValue::from("Service shop/cart:80".to_owned());
    metrics.record_request(&key(&route, &backend, 200), Duration::from_millis(3), None);
    metrics.record_request(&key(&route, &backend, 200), Duration::from_millis(7), None);
    metrics.record_request(&key(&route, &backend, 503), Duration::from_secs(20), None);

    let text = metrics.encode();
    let labels = r#"route="HTTPRoute shop/cart rules[0]",backend="Service shop/cart:80""#;
    assert_eq!(
        line_value(
            &text,
            &format!("portcullis_requests_total{{{labels},code=\"200\"}}")
        ),
        Some("2"),
        "{text}"
    );
    assert_eq!(
        line_value(
            &text,
            &format!("portcullis_requests_total{{{labels},code=\"503\"}}")
        ),
        Some("1"),
        "{text}"
    );
    let route_label = r#"route="HTTPRoute shop/cart rules[0]",backend="Service shop/cart:80""#;
    assert_eq!(
        line_value(
            &text,
            &format!("portcullis_request_duration_seconds_count{{{route_label}}}")
        ),
        Some("3"),
        "{text}"
    );
    assert_eq!(
        line_value(
            &text,
            &format!("portcullis_request_duration_seconds_bucket{{le=\"0.005\",{route_label}}}")
        ),
        Some("1"),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"));
}

#[test]
fn connections_are_gauged_and_counted() {
    let metrics = Metrics::new();
    let backend = LabelValue::from("Service shop/cart:80");
    metrics.upstream_connection_opened(&backend);
    metrics.upstream_connection_opened(&backend);
    metrics.upstream_connection_closed(&backend);
    metrics.downstream_connection_opened();
    metrics.downstream_connection_opened();
    metrics.downstream_connection_closed();

    let text = metrics.encode();
    let labels = r#"{backend="Service shop/cart:80"}"#;
    assert_eq!(
        line_value(
            &text,
            &format!("portcullis_upstream_connections_active{labels}")
        ),
        Some("1"),
        "{text}"
    );
    assert_eq!(
        line_value(
            &text,
            &format!("portcullis_upstream_connections_total{labels}")
        ),
        Some("2"),
        "{text}"
    );
    assert_eq!(
        line_value(&text, "portcullis_downstream_connections_active"),
        Some("1"),
        "{text}"
    );
}

#[test]
fn reloads_record_result_success_flag_and_generation() {
    let metrics = Metrics::new();
    metrics.config_reloaded(true, 1);
    metrics.config_reloaded(true, 2);
    metrics.config_reloaded(false, 3);

    let text = metrics.encode();
    assert_eq!(
        line_value(
            &text,
            r#"portcullis_config_reloads_total{result="success"}"#
        ),
        Some("2"),
        "{text}"
    );
    assert_eq!(
        line_value(&text, r#"portcullis_config_reloads_total{result="error"}"#),
        Some("1"),
        "{text}"
    );
    assert_eq!(
        line_value(&text, "portcullis_config_last_reload_success"),
        Some("0"),
        "{text}"
    );
    assert_eq!(
        line_value(&text, "portcullis_config_generation"),
        Some("2"),
        "{text}"
    );
}

#[test]
fn label_values_are_escaped() {
    let metrics = Metrics::new();
    let route = LabelValue::from("quote\" and \\ backslash");
    metrics.record_request(&key(&route, &route, 200), Duration::ZERO, None);
    let text = metrics.encode();
    assert!(
        text.contains(r#"route="quote\" and \\ backslash""#),
        "{text}"
    );
}

#[test]
fn mirror_requests_are_counted_by_route_and_result() {
    let metrics = Metrics::new();
    metrics.mirror_request_finished("HTTPRoute shop/cart rules[0]", "success");
    metrics.mirror_request_finished("HTTPRoute shop/cart rules[0]", "success");
    metrics.mirror_request_finished("HTTPRoute shop/cart rules[0]", "aborted");
    let text = metrics.encode();
    let route = r#"route="HTTPRoute shop/cart rules[0]""#;
    assert_eq!(
        line_value(
            &text,
            &format!("portcullis_mirror_requests_total{{{route},result=\"success\"}}")
        ),
        Some("2"),
        "{text}"
    );
    assert_eq!(
        line_value(
            &text,
            &format!("portcullis_mirror_requests_total{{{route},result=\"aborted\"}}")
        ),
        Some("1"),
        "{text}"
    );
}

/// The exposition's lines, sorted: a registry orders series by its own hashing, which differs
/// between two registries.
fn sorted_lines(metrics: &Metrics) -> Vec<String> {
    let mut lines: Vec<String> = metrics.encode().lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

#[test]
fn request_series_export_what_record_request_does() {
    let by_labels = Metrics::new();
    let by_handle = Metrics::new();
    let route = LabelValue::from("HTTPRoute shop/cart rules[0]");
    let backend = LabelValue::from("Service shop/cart:80");
    let ok = by_handle.request_series(&key(&route, &backend, 200));
    let failed = by_handle.request_series(&key(&route, &backend, 503));
    for (code, duration) in [(200, 3), (200, 7), (503, 20_000)] {
        let duration = Duration::from_millis(duration);
        by_labels.record_request(&key(&route, &backend, code), duration, None);
        if code == 200 { &ok } else { &failed }.record(duration, None);
    }
    // A handle fetched again shares the value with the first.
    by_labels.record_request(&key(&route, &backend, 200), Duration::ZERO, None);
    by_handle
        .request_series(&key(&route, &backend, 200))
        .record(Duration::ZERO, None);
    assert_eq!(sorted_lines(&by_handle), sorted_lines(&by_labels));
}

#[test]
fn a_request_series_handle_creates_its_series_when_fetched_only() {
    let metrics = Metrics::new();
    let before = metrics.encode();
    assert!(!before.contains("portcullis_requests_total{"), "{before}");
    let _series = metrics.request_series(&key(&LabelValue::empty(), &LabelValue::empty(), 404));
    let text = metrics.encode();
    assert_eq!(
        line_value(
            &text,
            r#"portcullis_requests_total{route="",backend="",code="404"}"#
        ),
        Some("0"),
        "{text}"
    );
}

#[test]
fn breaker_gauge_handle_sets_the_backend_series() {
    let metrics = Metrics::new();
    let backend = LabelValue::from("Service shop/cart:80");
    let gauge = metrics.circuit_breaker_gauge(&backend);
    let series = r#"portcullis_circuit_breaker_state{backend="Service shop/cart:80"}"#;
    assert_eq!(line_value(&metrics.encode(), series), Some("0"));
    gauge.set(1);
    assert_eq!(line_value(&metrics.encode(), series), Some("1"));
    metrics.circuit_breaker_gauge(&backend).set(2);
    assert_eq!(gauge.get(), 2);
    metrics.circuit_breaker_state(&backend, 0);
    assert_eq!(gauge.get(), 0);
    assert_eq!(line_value(&metrics.encode(), series), Some("0"));
}

#[test]
fn the_semantic_convention_histogram_carries_trace_exemplars() {
    let metrics = Metrics::new();
    let route = LabelValue::from("HTTPRoute shop/cart rules[0]");
    let backend = LabelValue::from("Service shop/cart:80");
    let post = RequestKey {
        method: HttpMethod::of("POST"),
        scheme: "https",
        ..key(&route, &backend, 201)
    };
    let exemplar = TraceExemplar {
        trace_id: crate::Hex([0xab; 16]),
        span_id: crate::Hex([0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08]),
    };
    metrics.record_request(&post, Duration::from_millis(3), Some(exemplar));
    // A method nobody registered is `_OTHER`, never a series of its own.
    let invented = RequestKey {
        method: HttpMethod::of("BREW"),
        ..key(&route, &backend, 405)
    };
    metrics.record_request(&invented, Duration::from_millis(1), None);

    let text = metrics.encode();
    let labels = r#"http_request_method="POST",http_response_status_code="201",http_route="HTTPRoute shop/cart rules[0]",url_scheme="https""#;
    assert_eq!(
        line_value(
            &text,
            &format!("http_server_request_duration_seconds_count{{{labels}}}")
        ),
        Some("1"),
        "{text}"
    );
    let bucket = format!("http_server_request_duration_seconds_bucket{{le=\"0.005\",{labels}}}");
    let line = text
        .lines()
        .find(|line| line.starts_with(&bucket))
        .unwrap_or_else(|| panic!("no {bucket} in {text}"));
    assert!(
        line.ends_with(&format!(
            "1 # {{trace_id=\"{}\",span_id=\"0102030405060708\"}} 0.003",
            "ab".repeat(16)
        )),
        "{line}"
    );
    assert!(
        text.contains(r#"http_request_method="_OTHER",http_response_status_code="405""#),
        "{text}"
    );
    // Our own series keep their prefix; the convention's has none.
    assert!(!text.contains("portcullis_http_server"), "{text}");
}

#[test]
fn udp_flows_get_their_counters_and_are_gauged() {
    let metrics = Metrics::new();
    // Two flows of one route, then one of another: every series is new the first time (a
    // handle held across the creation of another series of its family would deadlock).
    let first = metrics.l4.udp_flow_started("UDPRoute l4/dns rules[0]");
    let second = metrics.l4.udp_flow_started("UDPRoute l4/dns rules[0]");
    let _other = metrics.l4.udp_flow_started("UDPRoute l4/ntp rules[0]");
    first.datagrams_in.inc();
    first.bytes_in.inc_by(40);
    second.datagrams_out.inc();
    second.bytes_out.inc_by(90);
    metrics
        .l4
        .udp_flow_finished("UDPRoute l4/dns rules[0]", "idle_timeout", true);

    let text = metrics.encode();
    let route = r#"route="UDPRoute l4/dns rules[0]""#;
    for (series, value) in [
        (format!("portcullis_udp_flows_active{{{route}}}"), "1"),
        (
            format!("portcullis_udp_datagrams_total{{{route},direction=\"client_to_backend\"}}"),
            "1",
        ),
        (
            format!("portcullis_udp_bytes_total{{{route},direction=\"backend_to_client\"}}"),
            "90",
        ),
        (
            format!("portcullis_udp_flows_total{{{route},result=\"idle_timeout\"}}"),
            "1",
        ),
    ] {
        assert_eq!(line_value(&text, &series), Some(value), "{series}\n{text}");
    }
}
