use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Request;
use telemetry::Metrics;
use tokio::net::TcpListener;

use crate::pool::{PoolSettings, Pools, RequestBody, UpstreamError};
use crate::registry::{BackendRuntime, Registry};
use snapshot::backend::policy::{BackendPolicy, ConcurrencyLimits};
use snapshot::backend::{AppProtocol, BackendId, CompiledBackend};

fn spec(id: &str, policy: BackendPolicy) -> CompiledBackend {
    CompiledBackend {
        policy: Arc::new(policy),
        id: BackendId::new(id),
        protocol: AppProtocol::Http1,
        tls: None,
    }
}

fn limited(max: u32) -> BackendPolicy {
    BackendPolicy {
        limits: ConcurrencyLimits {
            max_connections: Some(max),
            ..ConcurrencyLimits::default()
        },
        ..BackendPolicy::default()
    }
}

fn pools() -> Pools {
    Pools::new(Arc::new(Metrics::new()), &PoolSettings::default())
}

fn request(endpoint: SocketAddr) -> Request<RequestBody> {
    Request::get(format!("http://{endpoint}/"))
        .header(http::header::HOST, "example.test")
        .body(RequestBody::empty())
        .expect("test setup")
}

/// Sends a GET to `endpoint` through `pools`, under the runtime's current policy.
async fn send(
    pools: &Pools,
    runtime: &BackendRuntime,
    endpoint: SocketAddr,
) -> Result<http::Response<crate::UpstreamBody>, UpstreamError> {
    let policy = runtime.policy();
    pools
        .send(runtime, &policy, None, endpoint, request(endpoint))
        .await
}

#[test]
fn default_settings_use_the_shared_pools() {
    let pools = pools();
    let registry = Registry::new();
    let linked = registry.link(&[spec("plain", BackendPolicy::default())]);
    assert!(linked[0].own_pools(&linked[0].policy(), &pools).is_none());
}

#[test]
fn differing_settings_get_own_pools_rebuilt_on_change() {
    let pools = pools();
    let registry = Registry::new();
    let short = BackendPolicy {
        connect_timeout: Duration::from_millis(200),
        ..BackendPolicy::default()
    };
    let linked = registry.link(&[spec("b", short.clone())]);
    let runtime = Arc::clone(&linked[0]);
    let first = runtime
        .own_pools(&runtime.policy(), &pools)
        .expect("own pools");
    let again = runtime
        .own_pools(&runtime.policy(), &pools)
        .expect("own pools");
    assert!(Arc::ptr_eq(&first, &again), "kept while settings stay");

    // A change unrelated to connections keeps the pools.
    let other = BackendPolicy {
        slow_start: Some(Duration::from_secs(1)),
        ..short.clone()
    };
    let linked = registry.link(&[spec("b", other)]);
    assert!(Arc::ptr_eq(&linked[0], &runtime), "runtime kept");
    let kept = runtime
        .own_pools(&runtime.policy(), &pools)
        .expect("own pools");
    assert!(Arc::ptr_eq(&first, &kept));

    // A connection setting change rebuilds them.
    let idle = BackendPolicy {
        idle_timeout: Duration::from_secs(5),
        ..short
    };
    registry.link(&[spec("b", idle)]);
    let rebuilt = runtime
        .own_pools(&runtime.policy(), &pools)
        .expect("own pools");
    assert!(!Arc::ptr_eq(&first, &rebuilt));

    // Back to the defaults: the shared pools.
    registry.link(&[spec("b", BackendPolicy::default())]);
    assert!(runtime.own_pools(&runtime.policy(), &pools).is_none());
}

#[tokio::test]
async fn max_connections_refuses_a_connection_beyond_the_limit() {
    // Accepts connections and holds them without answering.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("test setup");
    let endpoint = listener.local_addr().expect("test setup");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let pools = pools();
    let registry = Registry::new();
    let runtime: Arc<BackendRuntime> = Arc::clone(&registry.link(&[spec("b", limited(2))])[0]);

    let mut hanging = Vec::new();
    for _ in 0..2 {
        let pools = pools.clone();
        let runtime = Arc::clone(&runtime);
        hanging.push(tokio::spawn(async move {
            send(&pools, &runtime, endpoint).await
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while runtime.own_open_connections() < 2 {
        assert!(Instant::now() < deadline, "two connections should open");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let started = Instant::now();
    let third = tokio::time::timeout(Duration::from_secs(2), send(&pools, &runtime, endpoint))
        .await
        .expect("the third request fails fast");
    match third {
        Err(UpstreamError::ConnectionLimit(limit)) => {
            assert_eq!(limit.0, 2);
            assert!(limit.to_string().contains("connection limit"), "{limit}");
        }
        other => panic!("expected a connection limit error, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(
        runtime.own_open_connections(),
        2,
        "the refused slot is given back"
    );

    for task in hanging {
        task.abort();
    }
}

#[tokio::test]
async fn connect_timeout_of_the_backend_applies() {
    let policy = BackendPolicy {
        connect_timeout: Duration::from_millis(200),
        ..BackendPolicy::default()
    };
    let pools = pools();
    let registry = Registry::new();
    let runtime = Arc::clone(&registry.link(&[spec("b", policy)])[0]);
    // A listener that never accepts, its accept queue filled: further SYNs are dropped, so a
    // connect hangs (an address such as 10.255.255.1 may be answered by a sandbox's proxy).
    let socket = tokio::net::TcpSocket::new_v4().expect("test setup");
    socket
        .bind("127.0.0.1:0".parse().expect("test setup"))
        .expect("test setup");
    let listener = socket.listen(0).expect("test setup");
    let endpoint = listener.local_addr().expect("test setup");
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(stream)) = tokio::time::timeout(
            Duration::from_millis(100),
            tokio::net::TcpStream::connect(endpoint),
        )
        .await
        {
            fillers.push(stream);
        }
    }
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(3), send(&pools, &runtime, endpoint))
        .await
        .expect("the connect timeout ends the attempt");
    assert!(
        matches!(result, Err(UpstreamError::Connect(_))),
        "{result:?}"
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(150),
        "timed out, not refused: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    assert_eq!(runtime.own_open_connections(), 0);
    drop((fillers, listener));
}
