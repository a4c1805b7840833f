use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use telemetry::{LabelValue, Metrics};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::*;
use crate::Document;

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

struct Running {
    address: SocketAddr,
    state: Arc<AdminState>,
    stop: oneshot::Sender<()>,
    server: JoinHandle<io::Result<()>>,
}

async fn start() -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("local address");
    let state = Arc::new(AdminState::new(
        Arc::new(Metrics::new()),
        || serde_json::json!({"Service shop/cart:80": [{"address": "10.0.0.1:8080", "healthy": true}]}),
    ));
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, Arc::clone(&state), async move {
        let _ = stopped.await;
    }));
    Running {
        address,
        state,
        stop,
        server,
    }
}

/// One request on a fresh connection, read to the end (`Connection: close`).
async fn request(address: SocketAddr, method: &str, path: &str) -> Reply {
    request_with(address, method, path, "").await
}

/// As [`request`], with `extra` header lines (each ending in CRLF).
async fn request_with(address: SocketAddr, method: &str, path: &str, extra: &str) -> Reply {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let head =
        format!("{method} {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n{extra}\r\n");
    stream.write_all(head.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("receive");
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok());
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    Reply {
        status: status.expect("a status line"),
        headers,
        body: body.to_owned(),
    }
}

async fn get(address: SocketAddr, path: &str) -> Reply {
    request(address, "GET", path).await
}

#[tokio::test]
async fn ready_flips_from_503_to_200() {
    let admin = start().await;
    let reply = get(admin.address, "/ready").await;
    assert_eq!((reply.status, reply.body.as_str()), (503, "not ready"));

    admin.state.ready.store(true, Ordering::Release);
    let reply = get(admin.address, "/ready").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "ready"));
}

#[tokio::test]
async fn healthz_is_ok() {
    let admin = start().await;
    let reply = get(admin.address, "/healthz").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "ok"));
}

#[tokio::test]
async fn status_and_config_return_what_was_stored() {
    let admin = start().await;
    assert_eq!(get(admin.address, "/status").await.body, "{}");

    admin
        .state
        .status_json
        .store(Arc::new(Document::ready(Bytes::from_static(
            br#"{"HTTPRoute shop/cart":[]}"#,
        ))));
    admin.state.config_json.store(Arc::new(Document::lazy(|| {
        Bytes::from_static(br#"{"listeners":[]}"#)
    })));
    let status = get(admin.address, "/status").await;
    assert_eq!(status.status, 200);
    assert_eq!(status.header("content-type"), Some("application/json"));
    assert_eq!(status.body, r#"{"HTTPRoute shop/cart":[]}"#);
    assert_eq!(
        get(admin.address, "/config").await.body,
        r#"{"listeners":[]}"#
    );
}

#[tokio::test]
async fn endpoints_are_computed_on_request() {
    let admin = start().await;
    let reply = get(admin.address, "/endpoints").await;
    let body: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
    assert_eq!(body["Service shop/cart:80"][0]["healthy"], true);
}

#[tokio::test]
async fn metrics_contain_recorded_series() {
    let admin = start().await;
    let route = LabelValue::from("HTTPRoute shop/cart rules[0]");
    let backend = LabelValue::from("Service shop/cart:80");
    admin.state.metrics.record_request(
        &telemetry::RequestKey {
            route: &route,
            backend: &backend,
            code: 200,
            method: telemetry::HttpMethod::Get,
            scheme: "http",
        },
        Duration::from_millis(2),
        None,
    );

    let sample = r#"portcullis_requests_total{route="HTTPRoute shop/cart rules[0]",backend="Service shop/cart:80",code="200"} 1"#;
    // What Prometheus sends.
    let prometheus = "Accept: application/openmetrics-text;version=1.0.0,\
                      application/openmetrics-text;version=0.0.1;q=0.75,\
                      text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n";
    let reply = request_with(admin.address, "GET", "/metrics", prometheus).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some(telemetry::METRICS_CONTENT_TYPE)
    );
    assert!(reply.body.contains(sample), "{}", reply.body);
    assert!(reply.body.ends_with("# EOF\n"), "{}", reply.body);
}

#[tokio::test]
async fn metrics_without_openmetrics_in_accept_are_prometheus_text() {
    let admin = start().await;
    admin
        .state
        .metrics
        .retry_attempted("HTTPRoute shop/cart rules[0]");
    let refused = "Accept: application/openmetrics-text;q=0, text/plain\r\n";
    for extra in ["", "Accept: */*\r\n", refused] {
        let reply = request_with(admin.address, "GET", "/metrics", extra).await;
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.header("content-type"),
            Some(telemetry::PROMETHEUS_TEXT_CONTENT_TYPE),
            "{extra:?}"
        );
        assert!(
            reply
                .body
                .contains("# TYPE portcullis_retries_total counter\n"),
            "{extra:?}: {}",
            reply.body
        );
        assert!(!reply.body.contains("# EOF"), "{extra:?}: {}", reply.body);
    }
}

#[tokio::test]
async fn unknown_paths_are_404_json() {
    let admin = start().await;
    for method in ["GET", "POST"] {
        let reply = request(admin.address, method, "/nope").await;
        assert_eq!(reply.status, 404);
        let body: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains("/nope")),
            "{body}"
        );
    }
}

#[tokio::test]
async fn other_methods_are_405() {
    let admin = start().await;
    for method in ["POST", "PUT", "DELETE"] {
        let reply = request(admin.address, method, "/ready").await;
        assert_eq!(reply.status, 405, "{method}");
        assert_eq!(reply.header("allow"), Some("GET, HEAD"));
        assert!(reply.body.contains("error"));
    }
    let head = request(admin.address, "HEAD", "/healthz").await;
    assert_eq!((head.status, head.body.as_str()), (200, ""));
}

#[tokio::test]
async fn every_response_is_no_store() {
    let admin = start().await;
    for (method, path) in [
        ("GET", "/ready"),
        ("GET", "/metrics"),
        ("GET", "/missing"),
        ("POST", "/status"),
    ] {
        let reply = request(admin.address, method, path).await;
        assert_eq!(
            reply.header("cache-control"),
            Some("no-store"),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let admin = start().await;
    assert_eq!(get(admin.address, "/healthz").await.status, 200);
    admin.stop.send(()).expect("server running");
    let result = tokio::time::timeout(Duration::from_secs(2), admin.server).await;
    result
        .expect("stops promptly")
        .expect("no panic")
        .expect("no error");
    assert!(
        TcpStream::connect(admin.address).await.is_err(),
        "listener closed"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_does_not_hold_up_shutdown() {
    let admin = start().await;
    let mut idle = TcpStream::connect(admin.address).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: admin\r\n\r\n")
        .await
        .expect("send");
    let mut buffer = [0_u8; 512];
    let read = idle.read(&mut buffer).await.expect("a response");
    assert!(buffer[..read].starts_with(b"HTTP/1.1 200"));

    admin.stop.send(()).expect("server running");
    let result = tokio::time::timeout(Duration::from_secs(2), admin.server).await;
    result
        .expect("stops promptly")
        .expect("no panic")
        .expect("no error");
}

#[tokio::test]
async fn the_dashboard_and_its_assets_are_served_from_the_binary() {
    let admin = start().await;
    for (path, content_type, marker) in [
        (
            "/ui",
            "text/html; charset=utf-8",
            "<title>Portcullis dashboard</title>",
        ),
        ("/ui/", "text/html; charset=utf-8", "/ui/app.js"),
        (
            "/ui/app.js",
            "text/javascript; charset=utf-8",
            "/ui/api/live",
        ),
        ("/ui/app.css", "text/css; charset=utf-8", ".badge"),
    ] {
        let reply = get(admin.address, path).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.header("content-type"), Some(content_type), "{path}");
        assert!(reply.body.contains(marker), "{path} lacks {marker:?}");
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert!(
            reply
                .header("content-security-policy")
                .is_some_and(|policy| policy.contains("script-src 'self'")),
            "{path}: {:?}",
            reply.headers
        );
    }
    assert_eq!(get(admin.address, "/ui/other.js").await.status, 404);
    assert_eq!(request(admin.address, "POST", "/ui").await.status, 405);
}

#[tokio::test]
async fn the_page_loads_nothing_from_elsewhere() {
    let admin = start().await;
    for path in ["/ui", "/ui/app.js", "/ui/app.css"] {
        let body = get(admin.address, path).await.body;
        for remote in ["http://", "https://", "//cdn", "@import"] {
            // The SVG namespace URI is a name, not a fetch.
            let fetched = body
                .match_indices(remote)
                .any(|(at, _)| !body[at..].starts_with("http://www.w3.org/2000/svg"));
            assert!(!fetched, "{path} refers to {remote}");
        }
    }
}

#[tokio::test]
async fn live_shows_totals_samples_and_reloads() {
    let admin = start().await;
    let stats = admin.state.metrics.live_stats();
    let start = std::time::Instant::now();
    stats.sample(start, std::time::SystemTime::now());
    stats.record(200, Duration::from_millis(3));
    stats.record(502, Duration::from_millis(40));
    stats.sample(start + Duration::from_secs(1), std::time::SystemTime::now());
    admin.state.reloads.record(crate::ReloadRecord {
        generation: 7,
        at: std::time::SystemTime::now(),
        elapsed: Duration::from_millis(3),
        compiled: true,
        file_errors: vec!["config.yaml: not YAML".to_owned()],
        problems: (0..30).map(|i| format!("problem {i}")).collect(),
        problem_count: 30,
    });
    admin.state.set_ready(true);

    let reply = get(admin.address, "/ui/api/live").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let live: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
    assert_eq!(live["ready"], true);
    // The server's own sampler may have closed an interval too; ours holds both requests.
    assert_eq!(live["totals"]["requests"], 2, "{live}");
    assert_eq!(live["totals"]["errors"], 1, "{live}");
    let samples = live["samples"].as_array().expect("samples");
    let ours = samples
        .iter()
        .find(|sample| sample["requests"] == 2)
        .unwrap_or_else(|| panic!("no sample with the two requests: {live}"));
    assert_eq!(ours["errors"], 1);
    assert_eq!(ours["error_ratio"], 0.5);
    assert!(
        ours["p99_ms"].as_f64().is_some_and(|p99| p99 > 30.0),
        "{ours}"
    );
    let reloads = live["reloads"].as_array().expect("reloads");
    assert_eq!(reloads.len(), 1);
    assert_eq!(reloads[0]["generation"], 7);
    assert_eq!(reloads[0]["outcome"], "rejected");
    assert_eq!(reloads[0]["problem_count"], 30);
    assert_eq!(
        reloads[0]["problems"].as_array().map(Vec::len),
        Some(crate::PROBLEMS_KEPT)
    );
}

#[tokio::test]
async fn the_server_samples_live_stats_every_second() {
    let admin = start().await;
    admin
        .state
        .metrics
        .live_stats()
        .record(200, Duration::from_millis(1));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let samples = admin.state.metrics.live_stats().samples();
        if samples.iter().any(|sample| sample.requests == 1) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no sample within 5 s: {samples:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn explain_passes_the_query_to_the_explainer() {
    let admin = start().await;
    let path = "/explain?url=http%3A%2F%2Fshop%2F&header=qa:canary-test";
    assert_eq!(get(admin.address, path).await.status, 503);
    let explainer: Box<crate::Explainer> = Box::new(|query: &crate::ExplainQuery| {
        if query.url.starts_with("http://") {
            Ok(
                serde_json::json!({"method": query.method, "url": query.url, "headers": query.headers}),
            )
        } else {
            Err(format!("invalid URL {:?}", query.url))
        }
    });
    admin.state.explain.store(Some(Arc::new(explainer)));
    let reply = get(admin.address, path).await;
    assert_eq!(reply.status, 200);
    let body: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
    assert_eq!(
        body,
        serde_json::json!({"method": "GET", "url": "http://shop/", "headers": ["qa:canary-test"]})
    );
    let reply = get(admin.address, "/explain?url=shop").await;
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("invalid URL"), "{}", reply.body);
    let reply = get(admin.address, "/explain?method=GET").await;
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("\"error\""), "{}", reply.body);
}
