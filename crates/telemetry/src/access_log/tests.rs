use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use serde_json::{Value, json};

use super::*;

/// A writer tests can read back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .expect("not poisoned")
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("not poisoned").clone()).expect("UTF-8")
    }
}

fn entry() -> AccessLogEntry<'static> {
    AccessLogEntry {
        time: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        client: Some("10.0.0.9:51234".parse().expect("address")),
        method: "GET",
        host: "shop.example",
        path: "/cart?id=\"1\"",
        protocol: "HTTP/1.1",
        status: 200,
        route: Some("HTTPRoute shop/cart rules[0]"),
        backend: Some("Service shop/cart:80"),
        endpoint: Some("127.0.0.1:3000".parse().expect("address")),
        bytes_received: 12,
        bytes_sent: 512,
        duration: Duration::from_nanos(1_234_567),
        error: None,
        trace_id: Some(crate::Hex([
            0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
            0x47, 0x36,
        ])),
        span_id: Some(crate::Hex([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7])),
    }
}

#[test]
fn a_json_line_has_every_field() {
    let captured = Captured::default();
    let log = AccessLog::to_writer(AccessLogFormat::Json, Box::new(captured.clone()));
    assert!(log.is_enabled());
    log.log(&entry());

    let text = captured.text();
    assert!(
        text.ends_with('\n') && text.lines().count() == 1,
        "{text:?}"
    );
    let line: Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(
        line,
        json!({
            "time": "2023-11-14T22:13:20.123Z",
            "client": "10.0.0.9:51234",
            "method": "GET",
            "host": "shop.example",
            "path": "/cart?id=\"1\"",
            "protocol": "HTTP/1.1",
            "status": 200,
            "route": "HTTPRoute shop/cart rules[0]",
            "backend": "Service shop/cart:80",
            "endpoint": "127.0.0.1:3000",
            "bytes_received": 12,
            "bytes_sent": 512,
            "duration_ms": 1.235,
            "error": null,
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "span_id": "00f067aa0ba902b7",
        })
    );
    assert!(text.contains(r#""duration_ms":1.235,"#), "{text}");
}

#[test]
fn absent_values_are_null() {
    let captured = Captured::default();
    let log = AccessLog::to_writer(AccessLogFormat::Json, Box::new(captured.clone()));
    let entry = AccessLogEntry {
        client: None,
        route: None,
        backend: None,
        endpoint: None,
        status: 404,
        error: Some("no route"),
        trace_id: None,
        span_id: None,
        ..entry()
    };
    log.log(&entry);
    log.log(&entry);

    let text = captured.text();
    assert_eq!(text.lines().count(), 2);
    let line: Value =
        serde_json::from_str(text.lines().next().expect("a line")).expect("valid JSON");
    for field in [
        "client", "route", "backend", "endpoint", "trace_id", "span_id",
    ] {
        assert!(line[field].is_null(), "{field}: {line}");
    }
    assert_eq!(line["error"], "no route");
}

#[test]
fn off_writes_nothing() {
    let captured = Captured::default();
    let log = AccessLog::to_writer(AccessLogFormat::Off, Box::new(captured.clone()));
    assert!(!log.is_enabled());
    log.log(&entry());
    assert!(captured.text().is_empty());
    assert!(!AccessLog::new(AccessLogFormat::Off).is_enabled());
}

#[test]
fn format_parses_and_displays() {
    for format in [AccessLogFormat::Json, AccessLogFormat::Off] {
        assert_eq!(format.to_string().parse::<AccessLogFormat>(), Ok(format));
    }
    let error = "xml".parse::<AccessLogFormat>().expect_err("unknown");
    assert_eq!(
        error.to_string(),
        r#"unknown access log format "xml": expected "json" or "off""#
    );
}

#[test]
fn durations_round_to_microseconds() {
    assert_eq!(duration_ms(Duration::from_nanos(1_234_499)), 1.234);
    assert_eq!(duration_ms(Duration::from_nanos(1_234_500)), 1.235);
    assert_eq!(duration_ms(Duration::ZERO), 0.0);
    assert_eq!(duration_ms(Duration::from_secs(3)), 3000.0);
}
