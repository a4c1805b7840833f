use std::net::IpAddr;

use super::*;

fn spec(id: &str) -> CompiledBackend {
    CompiledBackend {
        policy: Arc::default(),
        id: BackendId::new(id),
        protocol: AppProtocol::Http1,
        tls: None,
    }
}

fn ip(port: u16) -> EndpointTarget {
    EndpointTarget {
        address: TargetAddress::Ip(IpAddr::from([127, 0, 0, 1])),
        port,
        weight: 1,
    }
}

/// A pick context for balancers that ignore the request.
fn any_request() -> PickContext<'static> {
    static HEADERS: std::sync::LazyLock<http::HeaderMap> =
        std::sync::LazyLock::new(http::HeaderMap::new);
    PickContext {
        headers: &HEADERS,
        client: IpAddr::from([127, 0, 0, 1]),
        now: std::time::Instant::now(),
    }
}

fn ports(runtime: &BackendRuntime) -> Vec<u16> {
    runtime
        .endpoints()
        .endpoints()
        .iter()
        .map(|e| e.addr().port())
        .collect()
}

#[test]
fn endpoints_set_before_link_are_applied_on_link() {
    let registry = Registry::new();
    registry.set_endpoints(HashMap::from([(BackendId::new("a"), vec![ip(1), ip(2)])]));
    let linked = registry.link(&[spec("a")]);
    assert_eq!(ports(&linked[0]), vec![1, 2]);
}

#[test]
fn relink_keeps_runtime_and_endpoint_state() {
    let registry = Registry::new();
    registry.set_endpoints(HashMap::from([(BackendId::new("a"), vec![ip(1)])]));
    let first = registry.link(&[spec("a")]);
    let endpoint = first[0].pick(&any_request()).expect("endpoint");
    let _in_flight = endpoint.start_request();
    let second = registry.link(&[spec("b"), spec("a")]);
    assert!(Arc::ptr_eq(&first[0], &second[1]));
    assert_eq!(
        second[1]
            .pick(&any_request())
            .expect("endpoint")
            .in_flight(),
        1
    );
}

#[test]
fn endpoint_change_keeps_endpoints_that_stay() {
    let registry = Registry::new();
    registry.set_endpoints(HashMap::from([(BackendId::new("a"), vec![ip(1), ip(2)])]));
    let linked = registry.link(&[spec("a")]);
    let before = Arc::clone(&linked[0].endpoints().endpoints()[1]);
    registry.set_endpoints(HashMap::from([(BackendId::new("a"), vec![ip(2), ip(3)])]));
    let after = linked[0].endpoints();
    assert_eq!(ports(&linked[0]), vec![2, 3]);
    assert!(Arc::ptr_eq(&before, &after.endpoints()[0]));
}

#[test]
fn removing_all_sources_empties_the_backend() {
    let registry = Registry::new();
    registry.set_endpoints(HashMap::from([(BackendId::new("a"), vec![ip(1)])]));
    let linked = registry.link(&[spec("a")]);
    registry.set_endpoints(HashMap::new());
    assert!(linked[0].pick(&any_request()).is_none());
}

#[test]
fn unlinked_backends_are_dropped() {
    let registry = Registry::new();
    registry.link(&[spec("a")]);
    registry.link(&[spec("b")]);
    assert!(registry.get(&BackendId::new("a")).is_none());
    assert!(registry.get(&BackendId::new("b")).is_some());
}

#[test]
fn endpoint_latency_is_exported_at_scrape_time() {
    let metrics = Arc::new(Metrics::new());
    let registry = Arc::new(Registry::new());
    registry.export_endpoint_latency(&metrics);
    registry.link(&[spec("a")]);
    registry.set_endpoints(HashMap::from([(BackendId::new("a"), vec![ip(1)])]));
    let linked = registry.link(&[spec("a")]);
    linked[0].endpoints().endpoints()[0].observe_latency(std::time::Duration::from_millis(250));
    let text = metrics.encode();
    let line = text
        .lines()
        .find(|line| line.starts_with("portcullis_endpoint_latency_ewma_seconds{"))
        .unwrap_or_else(|| panic!("no latency series in\n{text}"));
    assert!(line.contains("backend=\"a\""), "{line}");
    assert!(line.contains("endpoint=\"127.0.0.1:1\""), "{line}");
    let value: f64 = line
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a value");
    assert!(value > 0.1 && value <= 0.25, "{line}");
    assert!(text.contains("# TYPE portcullis_endpoint_latency_ewma_seconds gauge"));

    drop(registry);
    assert!(!metrics.encode().contains("endpoint_latency_ewma"));
}
