use std::time::Duration;

use telemetry::trace::Root;

use super::*;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

fn parts(headers: &[(&str, &str)]) -> Parts {
    let mut request = http::Request::builder().uri("/shop?x=1");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(()).expect("valid request").into_parts().0
}

fn origin() -> Origin {
    Origin {
        peer: "127.0.0.1:40000".parse().expect("address"),
        client: "10.0.0.1".parse().expect("address"),
        port: 8080,
        scheme: "http",
    }
}

fn begin(sampler: Sampler, headers: &[(&str, &str)]) -> RequestTrace {
    RequestTrace::begin(
        sampler,
        &parts(headers),
        (SystemTime::now(), Instant::now()),
        origin(),
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
}

#[test]
fn a_sampled_caller_is_continued_with_a_new_span_per_attempt() {
    let traceparent = format!("00-{TRACE}-{PARENT}-01");
    let mut trace = begin(
        Sampler::ParentBased(Root::AlwaysOff),
        &[("traceparent", &traceparent), ("tracestate", "vendor=1")],
    );
    assert!(trace.exemplar().is_some(), "the caller sampled it");
    let mut headers = parts(&[("tracestate", "vendor=1")]).headers;
    trace.propagate(&mut headers);
    let first = header(&headers, "traceparent").to_owned();
    assert!(first.starts_with(&format!("00-{TRACE}-")), "{first}");
    assert!(first.ends_with("-01"), "{first}");
    assert!(
        !first.contains(PARENT),
        "our span, not the caller's: {first}"
    );
    assert_eq!(header(&headers, "tracestate"), "vendor=1");
    trace.propagate(&mut headers);
    let second = header(&headers, "traceparent").to_owned();
    assert_ne!(first, second, "a retry is a span of its own");
    assert_eq!(trace.ids().0.to_string(), TRACE);
}

#[test]
fn an_unsampled_caller_stays_unsampled_and_a_new_trace_starts_without_one() {
    let traceparent = format!("00-{TRACE}-{PARENT}-00");
    let mut trace = begin(Sampler::AlwaysOn, &[("traceparent", &traceparent)]);
    // AlwaysOn ignores the caller; ParentBased follows it.
    assert!(trace.exemplar().is_some());
    let mut trace2 = begin(
        Sampler::ParentBased(Root::AlwaysOn),
        &[("traceparent", &traceparent)],
    );
    assert!(trace2.exemplar().is_none());
    let mut headers = HeaderMap::new();
    trace2.propagate(&mut headers);
    assert!(header(&headers, "traceparent").ends_with("-00"));

    // No caller: a new trace id, and a stray tracestate is dropped.
    let mut fresh = begin(Sampler::ParentBased(Root::AlwaysOff), &[]);
    let mut headers = parts(&[("tracestate", "stale=1")]).headers;
    fresh.propagate(&mut headers);
    assert!(!headers.contains_key("tracestate"));
    assert!(!header(&headers, "traceparent").contains(TRACE));
    trace.propagate(&mut headers);
}

#[test]
fn b3_callers_get_b3_back() {
    let single = format!("{TRACE}-{PARENT}-1");
    let mut trace = begin(Sampler::ParentBased(Root::AlwaysOff), &[("b3", &single)]);
    let mut headers = parts(&[("b3", &single)]).headers;
    trace.propagate(&mut headers);
    let b3 = header(&headers, "b3");
    assert!(
        b3.starts_with(TRACE) && b3.ends_with("-1") && !b3.contains(PARENT),
        "{b3}"
    );
    assert!(header(&headers, "traceparent").contains(TRACE));

    let mut multi = begin(
        Sampler::ParentBased(Root::AlwaysOff),
        &[
            ("x-b3-traceid", TRACE),
            ("x-b3-spanid", PARENT),
            ("x-b3-sampled", "1"),
        ],
    );
    let mut headers = HeaderMap::new();
    multi.propagate(&mut headers);
    assert_eq!(header(&headers, "x-b3-traceid"), TRACE);
    assert_eq!(header(&headers, "x-b3-sampled"), "1");
    assert_eq!(
        header(&headers, "x-b3-parentspanid"),
        multi.ids().1.to_string()
    );
}

#[test]
fn an_invalid_traceparent_starts_a_new_trace() {
    let trace = begin(
        Sampler::ParentBased(Root::AlwaysOff),
        &[("traceparent", "00-not-a-trace")],
    );
    assert!(
        trace.exemplar().is_none(),
        "no parent decision: the root rule"
    );
    assert_ne!(trace.ids().0.to_string(), TRACE);
}

#[test]
fn a_sampled_request_becomes_a_server_span_with_its_attempts() {
    let traceparent = format!("00-{TRACE}-{PARENT}-01");
    let mut trace = begin(
        Sampler::ParentBased(Root::AlwaysOff),
        &[("traceparent", &traceparent), ("user-agent", "curl/8")],
    );
    let start = Instant::now();
    let endpoint: SocketAddr = "127.0.0.1:9000".parse().expect("address");
    let mut headers = HeaderMap::new();
    trace.propagate(&mut headers);
    trace.attempted(
        (start, start + Duration::from_millis(2)),
        endpoint,
        Some(&Err(ProxyError::Timeout)),
    );
    trace.propagate(&mut headers);
    trace.attempted((start, start + Duration::from_millis(3)), endpoint, None);
    let head = trace.take_head().expect("sampled requests keep their head");
    let span = trace
        .into_span(Some("HTTPRoute e2e/r rules[0]".into()), None, &head)
        .expect("sampled");
    assert_eq!(span.path, "/shop");
    assert_eq!(span.query.as_deref(), Some("x=1"));
    assert_eq!(span.user_agent.as_deref(), Some("curl/8"));
    assert_eq!(span.attempts.len(), 2);
    assert_ne!(span.attempts[0].span_id, span.attempts[1].span_id);
    assert_eq!(span.attempts[1].error, Some("upstream-timeout"));
    assert_eq!(
        span.parent.map(|p| Hex(p).to_string()).as_deref(),
        Some(PARENT)
    );
}
