use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use super::active::{health_check_request, is_serving, probe_all, probe_once};
use super::outlier::sweep_latency;
use super::*;
use crate::registry::Registry;
use snapshot::backend::policy::{ActiveHealth, LatencyOutlierSettings, OutlierDetection, Probe};
use snapshot::backend::{AppProtocol, BackendId, CompiledBackend, EndpointTarget, TargetAddress};

fn outlier() -> OutlierDetection {
    OutlierDetection {
        consecutive_5xx: Some(3),
        consecutive_gateway_errors: Some(2),
        interval: Duration::from_secs(5),
        base_ejection_time: Duration::from_secs(30),
        max_ejection_percent: 100,
        latency: None,
    }
}

fn backend(policy: BackendPolicy, ports: &[u16]) -> (Registry, Arc<BackendRuntime>) {
    let registry = Registry::new();
    let id = BackendId::new("shop");
    let targets = ports
        .iter()
        .map(|&port| EndpointTarget {
            address: TargetAddress::Ip(IpAddr::from([127, 0, 0, 1])),
            port,
            weight: 1,
        })
        .collect();
    registry.set_endpoints(HashMap::from([(id.clone(), targets)]));
    let spec = CompiledBackend {
        id,
        protocol: AppProtocol::Http1,
        tls: None,
        policy: Arc::new(policy),
    };
    let runtime = registry.link(&[spec]).remove(0);
    (registry, runtime)
}

fn with_outlier(outlier: OutlierDetection, ports: &[u16]) -> (Registry, Arc<BackendRuntime>) {
    let policy = BackendPolicy {
        outlier: Some(outlier),
        ..BackendPolicy::default()
    };
    backend(policy, ports)
}

fn endpoint(runtime: &BackendRuntime, index: usize) -> Arc<crate::EndpointRuntime> {
    Arc::clone(&runtime.endpoints().endpoints()[index])
}

fn status(status: u16) -> Outcome {
    Outcome::Success {
        status,
        latency: Duration::from_millis(1),
    }
}

#[tokio::test(start_paused = true)]
async fn consecutive_5xx_eject_until_base_ejection_time() {
    let (_registry, runtime) = with_outlier(outlier(), &[1, 2, 3]);
    let first = endpoint(&runtime, 0);
    assert_eq!(runtime.record_outcome(&first, status(500)), None);
    assert_eq!(runtime.record_outcome(&first, status(500)), None);
    assert_eq!(
        runtime.record_outcome(&first, status(500)),
        Some(EjectionReason::Consecutive5xx)
    );
    assert!(!first.is_available());
    assert!(endpoint(&runtime, 1).is_available());
    tokio::time::advance(Duration::from_secs(29)).await;
    assert!(!first.is_available());
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(first.is_available());
    assert_eq!(first.health().view().consecutive_5xx, 0);
}

#[tokio::test(start_paused = true)]
async fn success_resets_consecutive_errors() {
    let (_registry, runtime) = with_outlier(outlier(), &[1, 2]);
    let first = endpoint(&runtime, 0);
    for _ in 0..5 {
        runtime.record_outcome(&first, status(500));
        runtime.record_outcome(&first, status(500));
        runtime.record_outcome(&first, status(200));
    }
    assert!(first.is_available());
}

#[tokio::test(start_paused = true)]
async fn gateway_errors_are_connect_failures_and_502_to_504() {
    let mut settings = outlier();
    settings.consecutive_5xx = None;
    let (_registry, runtime) = with_outlier(settings, &[1, 2]);
    let first = endpoint(&runtime, 0);
    for _ in 0..5 {
        runtime.record_outcome(&first, status(500));
    }
    assert!(first.is_available(), "500 is not a gateway error");
    runtime.record_outcome(&first, status(503));
    assert_eq!(
        runtime.record_outcome(&first, Outcome::GatewayError),
        Some(EjectionReason::ConsecutiveGatewayErrors)
    );
    assert!(!first.is_available());
}

#[tokio::test(start_paused = true)]
async fn ejection_time_grows_with_each_ejection_up_to_the_cap() {
    let (_registry, runtime) = with_outlier(outlier(), &[1, 2]);
    let first = endpoint(&runtime, 0);
    let eject = || {
        runtime.record_outcome(&first, Outcome::GatewayError);
        runtime.record_outcome(&first, Outcome::GatewayError)
    };
    assert!(eject().is_some());
    tokio::time::advance(Duration::from_secs(31)).await;
    assert!(first.is_available());
    assert!(eject().is_some());
    tokio::time::advance(Duration::from_secs(59)).await;
    assert!(
        !first.is_available(),
        "the second ejection lasts twice as long"
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(first.is_available());
    assert_eq!(first.health().view().ejections, 2);

    let mut long = outlier();
    long.base_ejection_time = Duration::from_secs(200);
    let (_registry, runtime) = with_outlier(long, &[1, 2]);
    let first = endpoint(&runtime, 0);
    for _ in 0..2 {
        runtime.record_outcome(&first, Outcome::GatewayError);
        runtime.record_outcome(&first, Outcome::GatewayError);
        tokio::time::advance(MAX_EJECTION_TIME).await;
    }
    runtime.record_outcome(&first, Outcome::GatewayError);
    runtime.record_outcome(&first, Outcome::GatewayError);
    assert_eq!(first.health().ejection_remaining(), Some(MAX_EJECTION_TIME));
}

#[tokio::test(start_paused = true)]
async fn ejected_endpoints_traffic_does_not_count() {
    let (_registry, runtime) = with_outlier(outlier(), &[1, 2]);
    let first = endpoint(&runtime, 0);
    runtime.record_outcome(&first, Outcome::GatewayError);
    runtime.record_outcome(&first, Outcome::GatewayError);
    runtime.record_outcome(&first, Outcome::GatewayError);
    assert_eq!(first.health().view().consecutive_gateway_errors, 0);
    assert_eq!(first.health().view().ejections, 1);
}

#[tokio::test(start_paused = true)]
async fn max_ejection_percent_limits_ejections() {
    let mut half = outlier();
    half.max_ejection_percent = 50;
    let (_registry, runtime) = with_outlier(half, &[1, 2, 3, 4]);
    let ejected: Vec<bool> = (0..4)
        .map(|index| {
            let endpoint = endpoint(&runtime, index);
            runtime.record_outcome(&endpoint, Outcome::GatewayError);
            runtime
                .record_outcome(&endpoint, Outcome::GatewayError)
                .is_some()
        })
        .collect();
    assert_eq!(ejected, [true, true, false, false]);

    let mut none = outlier();
    none.max_ejection_percent = 0;
    let (_registry, runtime) = with_outlier(none, &[1, 2, 3]);
    let first = endpoint(&runtime, 0);
    runtime.record_outcome(&first, Outcome::GatewayError);
    assert_eq!(runtime.record_outcome(&first, Outcome::GatewayError), None);
    assert!(first.is_available());
}

#[tokio::test(start_paused = true)]
async fn single_endpoint_is_not_ejected_below_full_percent() {
    let mut half = outlier();
    half.max_ejection_percent = 50;
    let (_registry, runtime) = with_outlier(half, &[1]);
    let only = endpoint(&runtime, 0);
    runtime.record_outcome(&only, Outcome::GatewayError);
    assert_eq!(runtime.record_outcome(&only, Outcome::GatewayError), None);
}

fn latency_outlier() -> OutlierDetection {
    OutlierDetection {
        consecutive_5xx: None,
        consecutive_gateway_errors: None,
        latency: Some(LatencyOutlierSettings {
            threshold: 3.0,
            min_requests: 5,
        }),
        ..outlier()
    }
}

fn serve(runtime: &BackendRuntime, index: usize, requests: u32, millis: u64) {
    let endpoint = endpoint(runtime, index);
    for _ in 0..requests {
        runtime.record_outcome(
            &endpoint,
            Outcome::Success {
                status: 200,
                latency: Duration::from_millis(millis),
            },
        );
    }
}

#[tokio::test(start_paused = true)]
async fn latency_outlier_is_ejected() {
    let settings = latency_outlier();
    let (_registry, runtime) = with_outlier(settings.clone(), &[1, 2, 3, 4]);
    serve(&runtime, 0, 10, 10);
    serve(&runtime, 1, 10, 12);
    serve(&runtime, 2, 10, 100);
    // Far slower, but too few requests to be judged.
    serve(&runtime, 3, 4, 500);
    let ejected: Vec<u16> = sweep_latency(&runtime, &settings)
        .iter()
        .map(|e| e.addr().port())
        .collect();
    assert_eq!(ejected, [3]);
    assert!(!endpoint(&runtime, 2).is_available());
    assert!(endpoint(&runtime, 3).is_available());
    // Windows start over after a sweep.
    assert!(sweep_latency(&runtime, &settings).is_empty());
}

#[tokio::test(start_paused = true)]
async fn monitor_sweeps_latency_every_interval() {
    let (_registry, runtime) = with_outlier(latency_outlier(), &[1, 2, 3]);
    serve(&runtime, 0, 10, 10);
    serve(&runtime, 1, 10, 10);
    serve(&runtime, 2, 10, 80);
    tokio::time::sleep(Duration::from_millis(5_100)).await;
    assert!(!endpoint(&runtime, 2).is_available());
    assert!(endpoint(&runtime, 0).is_available());
}

/// A tiny HTTP/1.1 server answering every request with the status in `status`.
async fn flipping_server(status: Arc<AtomicU16>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local port");
    let addr = listener.local_addr().expect("a bound address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let status = Arc::clone(&status);
            tokio::spawn(async move {
                let service = service_fn(move |_request| {
                    let code = status.load(Ordering::Relaxed);
                    async move {
                        let mut response = http::Response::new(Full::new(Bytes::new()));
                        *response.status_mut() =
                            http::StatusCode::from_u16(code).expect("a valid status");
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn http_probe() -> Probe {
    Probe::Http {
        path: "/healthz".into(),
        expected_statuses: vec![200, 204],
        hostname: Some("shop.example".into()),
    }
}

#[tokio::test]
async fn http_probe_passes_on_expected_statuses() {
    let status = Arc::new(AtomicU16::new(200));
    let addr = flipping_server(Arc::clone(&status)).await;
    assert!(probe_once(&http_probe(), addr).await);
    status.store(204, Ordering::Relaxed);
    assert!(probe_once(&http_probe(), addr).await);
    status.store(500, Ordering::Relaxed);
    assert!(!probe_once(&http_probe(), addr).await);
}

#[tokio::test]
async fn tcp_probe_fails_on_a_closed_port() {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local port");
    let addr = listener.local_addr().expect("a bound address");
    assert!(probe_once(&Probe::Tcp, addr).await);
    drop(listener);
    assert!(!probe_once(&Probe::Tcp, addr).await);
    assert!(!probe_once(&http_probe(), addr).await);
}

fn active(probe: Probe) -> ActiveHealth {
    ActiveHealth {
        probe,
        interval: Duration::from_millis(50),
        timeout: Duration::from_secs(1),
        unhealthy_threshold: 2,
        healthy_threshold: 3,
    }
}

#[tokio::test]
async fn thresholds_mark_unhealthy_and_healthy_again() {
    let status = Arc::new(AtomicU16::new(500));
    let addr = flipping_server(Arc::clone(&status)).await;
    // No active health in the policy: this test drives the probes itself.
    let (_registry, runtime) = backend(BackendPolicy::default(), &[addr.port()]);
    let health = active(http_probe());
    let metrics = telemetry::Metrics::new();
    let only = endpoint(&runtime, 0);
    assert!(only.is_available(), "new endpoints start healthy");
    probe_all(&runtime, &health, Some(&metrics)).await;
    assert!(only.is_available());
    probe_all(&runtime, &health, Some(&metrics)).await;
    assert!(!only.is_available());
    status.store(200, Ordering::Relaxed);
    probe_all(&runtime, &health, Some(&metrics)).await;
    probe_all(&runtime, &health, Some(&metrics)).await;
    assert!(!only.is_available());
    probe_all(&runtime, &health, Some(&metrics)).await;
    assert!(only.is_available());
    let gauge = format!("portcullis_endpoint_healthy{{backend=\"shop\",endpoint=\"{addr}\"}} 1");
    assert!(metrics.encode().contains(&gauge), "{}", metrics.encode());
}

async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn monitor_removes_and_restores_endpoints() {
    let status = Arc::new(AtomicU16::new(200));
    let addr = flipping_server(Arc::clone(&status)).await;
    let policy = BackendPolicy {
        active_health: Some(active(http_probe())),
        ..BackendPolicy::default()
    };
    let (_registry, runtime) = backend(policy, &[addr.port()]);
    let only = endpoint(&runtime, 0);
    status.store(500, Ordering::Relaxed);
    eventually("unhealthy", || !only.is_available()).await;
    status.store(200, Ordering::Relaxed);
    eventually("healthy again", || only.is_available()).await;
}

#[tokio::test]
async fn monitor_stops_when_the_backend_goes_away() {
    let status = Arc::new(AtomicU16::new(500));
    let addr = flipping_server(Arc::clone(&status)).await;
    let policy = BackendPolicy {
        active_health: Some(active(http_probe())),
        ..BackendPolicy::default()
    };
    let (registry, runtime) = backend(policy, &[addr.port()]);
    let only = endpoint(&runtime, 0);
    eventually("unhealthy", || !only.is_available()).await;
    registry.link(&[]);
    status.store(200, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !only.is_available(),
        "no probes after the backend is unlinked"
    );
}

#[tokio::test]
async fn health_survives_endpoint_changes_while_the_address_stays() {
    let (registry, runtime) = backend(BackendPolicy::default(), &[1, 2]);
    let health = active(Probe::Tcp);
    let first = endpoint(&runtime, 0);
    first.health().record_probe(false, &health);
    first.health().record_probe(false, &health);
    assert!(!first.is_available());
    let targets = |ports: &[u16]| {
        let targets = ports
            .iter()
            .map(|&port| EndpointTarget {
                address: TargetAddress::Ip(IpAddr::from([127, 0, 0, 1])),
                port,
                weight: 1,
            })
            .collect();
        HashMap::from([(BackendId::new("shop"), targets)])
    };
    registry.set_endpoints(targets(&[2, 1, 3]));
    assert!(!endpoint(&runtime, 1).is_available(), "state kept");
    registry.set_endpoints(targets(&[2]));
    registry.set_endpoints(targets(&[2, 1]));
    assert!(
        endpoint(&runtime, 1).is_available(),
        "a removed and restored endpoint starts healthy"
    );
}

#[test]
fn grpc_health_messages_round_trip() {
    assert_eq!(&health_check_request("")[..], [0, 0, 0, 0, 0]);
    assert_eq!(
        &health_check_request("shop")[..],
        [0, 0, 0, 0, 6, 0x0a, 4, b's', b'h', b'o', b'p']
    );
    assert!(is_serving(&[0, 0, 0, 0, 2, 0x08, 1]));
    assert!(!is_serving(&[0, 0, 0, 0, 2, 0x08, 2]), "NOT_SERVING");
    assert!(!is_serving(&[0, 0, 0, 0, 0]), "UNKNOWN");
    assert!(!is_serving(&[0, 0, 0, 0, 9, 0x08, 1]), "truncated");
    // Unknown fields are skipped.
    assert!(is_serving(&[0, 0, 0, 0, 5, 0x12, 1, b'x', 0x08, 1]));
    assert!(!is_serving(&[1, 0, 0, 0, 2, 0x08, 1]), "compressed");
}

/// An h2c gRPC health server answering with `status`.
async fn grpc_server(status: u8) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local port");
    let addr = listener.local_addr().expect("a bound address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = service_fn(
                    move |request: http::Request<hyper::body::Incoming>| async move {
                        assert_eq!(request.uri().path(), "/grpc.health.v1.Health/Check");
                        let body = Bytes::from(vec![0, 0, 0, 0, 2, 0x08, status]);
                        let response = http::Response::builder()
                            .header("content-type", "application/grpc")
                            .body(Full::new(body))
                            .expect("a valid response");
                        Ok::<_, Infallible>(response)
                    },
                );
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn grpc_probe_passes_when_serving() {
    let probe = Probe::Grpc {
        service: "shop".into(),
    };
    assert!(probe_once(&probe, grpc_server(1).await).await);
    assert!(!probe_once(&probe, grpc_server(2).await).await);
}

#[tokio::test]
async fn policy_change_starts_the_monitor() {
    let status = Arc::new(AtomicU16::new(500));
    let addr = flipping_server(Arc::clone(&status)).await;
    let (registry, runtime) = backend(BackendPolicy::default(), &[addr.port()]);
    let only = endpoint(&runtime, 0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(only.is_available(), "no health checks without a policy");
    let spec = CompiledBackend {
        id: BackendId::new("shop"),
        protocol: AppProtocol::Http1,
        tls: None,
        policy: Arc::new(BackendPolicy {
            active_health: Some(active(http_probe())),
            ..BackendPolicy::default()
        }),
    };
    let relinked = registry.link(&[spec]);
    assert!(Arc::ptr_eq(&relinked[0], &runtime));
    eventually("unhealthy", || !only.is_available()).await;
    let view = registry.view().to_string();
    assert!(view.contains(r#""healthy":false"#), "{view}");
}

#[tokio::test]
async fn health_gauges_of_removed_endpoints_are_dropped() {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local port");
    let port = listener.local_addr().expect("a bound address").port();
    let (registry, runtime) = backend(BackendPolicy::default(), &[port]);
    let metrics = telemetry::Metrics::new();
    let mut reported = Vec::new();
    probe_all(&runtime, &active(Probe::Tcp), Some(&metrics)).await;
    super::active::forget_removed(&runtime, &metrics, &mut reported);
    let series = format!("endpoint=\"127.0.0.1:{port}\"");
    assert!(metrics.encode().contains(&series));
    registry.set_endpoints(HashMap::from([(BackendId::new("shop"), Vec::new())]));
    super::active::forget_removed(&runtime, &metrics, &mut reported);
    assert!(!metrics.encode().contains(&series));
}
