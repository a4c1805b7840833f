//! Unit tests of the echo backend's parsers, and of the retry simulator over real sockets.

use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode};
use tokio::time::Instant;

use super::go_duration::parse_go_duration;
use super::handler::echo_set_headers;
use super::query::first_query_value;
use super::reply::canonical_header_name;
use super::{EchoConfig, EchoServer};
use crate::HttpClient;

#[test]
fn go_durations_parse_like_time_parse_duration() {
    let cases = [
        ("0", Duration::ZERO),
        ("1s", Duration::from_secs(1)),
        ("500ms", Duration::from_millis(500)),
        ("1.5s", Duration::from_millis(1500)),
        (".5s", Duration::from_millis(500)),
        ("1h2m3s", Duration::from_secs(3723)),
        ("10us", Duration::from_micros(10)),
        ("10\u{b5}s", Duration::from_micros(10)),
        ("7ns", Duration::from_nanos(7)),
        ("+2m", Duration::from_secs(120)),
        ("-1s", Duration::ZERO),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_go_duration(text), Ok(expected), "{text}");
    }
}

#[test]
fn go_durations_reject_what_go_rejects() {
    for text in [
        "",
        "1",
        "s",
        "1x",
        ".s",
        "1.2.3s",
        "-",
        "9999999999999999999h",
        "3000000h",
    ] {
        assert!(
            parse_go_duration(text).is_err(),
            "{text:?} should be rejected"
        );
    }
}

#[test]
fn header_names_are_go_canonical() {
    assert_eq!(canonical_header_name("x-forwarded-for"), "X-Forwarded-For");
    assert_eq!(canonical_header_name("content-type"), "Content-Type");
    assert_eq!(
        canonical_header_name("x-echo-set-header"),
        "X-Echo-Set-Header"
    );
    assert_eq!(
        canonical_header_name("www-authenticate"),
        "Www-Authenticate"
    );
    assert_eq!(canonical_header_name("bad name"), "bad name");
}

#[test]
fn query_values_decode_like_go() {
    let query = "a=1&delay=1.5s&b=x+y%21&a=2&flag";
    assert_eq!(first_query_value(query, "a").as_deref(), Some("1"));
    assert_eq!(first_query_value(query, "delay").as_deref(), Some("1.5s"));
    assert_eq!(first_query_value(query, "b").as_deref(), Some("x y!"));
    assert_eq!(first_query_value(query, "flag").as_deref(), Some(""));
    assert_eq!(first_query_value(query, "missing"), None);
    assert_eq!(
        first_query_value("bad=%zz&bad=ok", "bad").as_deref(),
        Some("ok")
    );
}

#[test]
fn echo_set_header_joins_repeated_names_and_skips_empty_entries() {
    let mut headers = HeaderMap::new();
    headers.append(
        "x-echo-set-header",
        HeaderValue::from_static("X-A: 1, X-B:two,,x-a:3"),
    );
    headers.append("x-echo-set-header", HeaderValue::from_static(""));
    let set: Vec<(String, String)> = echo_set_headers(&headers)
        .into_iter()
        .map(|(name, value)| {
            (
                name.to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    assert_eq!(
        set,
        vec![
            ("x-a".to_owned(), "1,3".to_owned()),
            ("x-b".to_owned(), "two".to_owned())
        ]
    );
}

/// echo-basic's retry handler holds one lock through an attempt's `delayRetry` sleep, so two attempts that
/// arrive together are answered one after the other: the second no earlier than two delays after both started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_retry_attempts_are_served_one_after_another() {
    const DELAY: Duration = Duration::from_millis(200);
    let server = EchoServer::start(EchoConfig::new("retry", "test"))
        .await
        .expect("echo server starts");
    let path = "/retry/serial?uuid=serial&succeedAfter=2&responseCode=503&delayRetry=200ms";
    let started = Instant::now();
    // One client, so one connection, per attempt: the attempts do not queue behind each other in a pool.
    let attempt = async || {
        let response = HttpClient::new()
            .get(server.addr(), "echo", path, &[])
            .await
            .expect("the attempt is answered");
        (response.status, started.elapsed())
    };
    let ((first_status, first_done), (second_status, second_done)) =
        tokio::join!(attempt(), attempt());
    assert_eq!(first_status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(second_status, StatusCode::SERVICE_UNAVAILABLE);
    let (earlier, later) = (first_done.min(second_done), first_done.max(second_done));
    assert!(
        earlier >= DELAY,
        "the first attempt ended after {earlier:?}"
    );
    assert!(
        later >= 2 * DELAY,
        "the second attempt ended {later:?} after both started: it did not wait for the first ({earlier:?})"
    );
}
