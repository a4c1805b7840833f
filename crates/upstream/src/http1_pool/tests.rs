use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use telemetry::Metrics;
use tokio::net::TcpListener;

use super::{Http1Pool, Lifetimes};
use crate::pool::{CountingConnector, RequestBody};

/// A real HTTP/1.1 backend that counts the connections it accepted and still has open.
struct Backend {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
}

async fn backend() -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let open = Arc::new(AtomicUsize::new(0));
    let (accepted_count, open_count) = (Arc::clone(&accepted), Arc::clone(&open));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            accepted_count.fetch_add(1, Ordering::SeqCst);
            open_count.fetch_add(1, Ordering::SeqCst);
            let open = Arc::clone(&open_count);
            tokio::spawn(async move {
                // Reads the whole request body before answering, as most servers do.
                let service = service_fn(|request: Request<hyper::body::Incoming>| async move {
                    let path = request.uri().path().to_owned();
                    let _ = request.into_body().collect().await;
                    Ok::<_, Infallible>(answer(&path))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    Backend {
        addr,
        accepted,
        open,
    }
}

type AnswerBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn answer(path: &str) -> Response<AnswerBody> {
    match path {
        "/close" => Response::builder()
            .header(http::header::CONNECTION, "close")
            .body(Full::new(Bytes::from_static(b"bye")).boxed()),
        "/empty" => Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Empty::new().boxed()),
        // 4 MiB in 64 KiB chunks, chunked: far more than a socket buffer holds.
        "/big" => {
            let chunks =
                (0..64).map(|_| Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'x'; 65_536]))));
            Response::builder().body(StreamBody::new(futures_util::stream::iter(chunks)).boxed())
        }
        _ => Response::builder().body(Full::new(Bytes::from_static(b"hello")).boxed()),
    }
    .expect("test response")
}

fn pool(idle_timeout: Duration, max_idle: usize) -> Http1Pool<CountingConnector> {
    pool_with(Lifetimes {
        idle_timeout,
        max_idle_per_endpoint: max_idle,
        max_lifetime: None,
    })
}

fn pool_with(lifetimes: Lifetimes) -> Http1Pool<CountingConnector> {
    let connector = CountingConnector::new(Arc::new(Metrics::new()), Duration::from_secs(2), None);
    Http1Pool::new(connector, lifetimes)
}

fn get(endpoint: SocketAddr, path: &str) -> Request<RequestBody> {
    Request::get(format!("http://{endpoint}{path}"))
        .header(http::header::HOST, "example.test")
        .body(RequestBody::empty())
        .expect("test request")
}

async fn fetch(pool: &Http1Pool<CountingConnector>, endpoint: SocketAddr, path: &str) -> Bytes {
    let response = pool
        .send(endpoint, get(endpoint, path))
        .await
        .expect("exchange");
    response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
}

async fn eventually(what: &str, check: impl Fn() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn sequential_requests_reuse_one_connection() {
    let backend = backend().await;
    let pool = pool(Duration::from_secs(30), 16);
    for _ in 0..20 {
        assert_eq!(fetch(&pool, backend.addr, "/").await, "hello");
    }
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(pool.idle_count(backend.addr), 1);
}

#[tokio::test]
async fn the_origin_server_sees_an_origin_form_target() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        let target = Arc::new(std::sync::Mutex::new(String::new()));
        let recorded = Arc::clone(&target);
        let service = service_fn(move |request: Request<hyper::body::Incoming>| {
            *recorded.lock().expect("lock") = request.uri().to_string();
            async { Ok::<_, Infallible>(answer("/")) }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await;
        target.lock().expect("lock").clone()
    });
    let pool = pool(Duration::from_secs(30), 16);
    assert_eq!(fetch(&pool, addr, "/a/b?c=d").await, "hello");
    drop(pool);
    assert_eq!(seen.await.expect("backend task"), "/a/b?c=d");
}

#[tokio::test]
async fn concurrent_requests_open_connections_that_are_then_reused() {
    let backend = backend().await;
    let pool = pool(Duration::from_secs(30), 16);
    let round = || async {
        let all = (0..4).map(|_| fetch(&pool, backend.addr, "/"));
        for body in futures_util::future::join_all(all).await {
            assert_eq!(body, "hello");
        }
    };
    round().await;
    let after_first = backend.accepted.load(Ordering::SeqCst);
    assert!((1..=4).contains(&after_first), "{after_first} connections");
    round().await;
    round().await;
    assert_eq!(
        backend.accepted.load(Ordering::SeqCst),
        after_first,
        "no new connections"
    );
}

#[tokio::test]
async fn a_body_dropped_before_its_end_closes_its_connection() {
    let backend = backend().await;
    let pool = pool(Duration::from_secs(30), 16);
    let response = pool
        .send(backend.addr, get(backend.addr, "/big"))
        .await
        .expect("exchange");
    let mut body = response.into_body();
    let first = body.frame().await.expect("a frame").expect("data");
    assert!(first.is_data());
    drop(body);
    assert_eq!(pool.idle_count(backend.addr), 0, "never pooled");
    eventually("the backend sees the connection close", || {
        backend.open.load(Ordering::SeqCst) == 0
    })
    .await;
    assert_eq!(fetch(&pool, backend.addr, "/").await, "hello");
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_streamed_body_read_to_its_end_releases_its_connection() {
    let backend = backend().await;
    let pool = pool(Duration::from_secs(30), 16);
    assert_eq!(fetch(&pool, backend.addr, "/big").await.len(), 64 * 65_536);
    assert_eq!(pool.idle_count(backend.addr), 1);
    assert_eq!(fetch(&pool, backend.addr, "/").await, "hello");
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_response_without_a_body_releases_its_connection_when_dropped() {
    let backend = backend().await;
    let pool = pool(Duration::from_secs(30), 16);
    let response = pool
        .send(backend.addr, get(backend.addr, "/empty"))
        .await
        .expect("exchange");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    drop(response);
    assert_eq!(pool.idle_count(backend.addr), 1);
    assert_eq!(fetch(&pool, backend.addr, "/").await, "hello");
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_connection_the_backend_closes_is_not_reused() {
    let backend = backend().await;
    let pool = pool(Duration::from_secs(30), 16);
    assert_eq!(fetch(&pool, backend.addr, "/close").await, "bye");
    eventually("the backend closed it", || {
        backend.open.load(Ordering::SeqCst) == 0
    })
    .await;
    for _ in 0..3 {
        assert_eq!(fetch(&pool, backend.addr, "/").await, "hello");
    }
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn idle_connections_close_after_the_idle_timeout() {
    let backend = backend().await;
    let pool = pool(Duration::from_millis(200), 16);
    assert_eq!(fetch(&pool, backend.addr, "/").await, "hello");
    assert_eq!(pool.idle_count(backend.addr), 1);
    eventually("the sweeper closed the idle connection", || {
        backend.open.load(Ordering::SeqCst) == 0
    })
    .await;
    assert_eq!(pool.idle_count(backend.addr), 0);
    assert_eq!(fetch(&pool, backend.addr, "/").await, "hello");
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn at_most_max_idle_connections_are_kept_per_endpoint() {
    let backend = backend().await;
    let pool = pool(Duration::from_secs(30), 2);
    let all = (0..6).map(|_| fetch(&pool, backend.addr, "/big"));
    futures_util::future::join_all(all).await;
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 6, "six at once");
    assert_eq!(pool.idle_count(backend.addr), 2);
    eventually("the other four closed", || {
        backend.open.load(Ordering::SeqCst) == 2
    })
    .await;
}

#[tokio::test]
async fn a_refused_connect_is_a_connect_error() {
    let unused = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = unused.local_addr().expect("addr");
    drop(unused);
    let pool = pool(Duration::from_secs(30), 16);
    let error = pool.send(addr, get(addr, "/")).await.expect_err("refused");
    assert!(
        matches!(error, crate::UpstreamError::Connect(ref detail) if detail.contains("refused")),
        "{error}"
    );
}

#[tokio::test]
async fn a_connection_past_its_maximum_lifetime_takes_no_new_request() {
    let backend = backend().await;
    let pool = pool_with(Lifetimes {
        idle_timeout: Duration::from_secs(30),
        max_idle_per_endpoint: 16,
        max_lifetime: Some(Duration::from_millis(300)),
    });
    assert_eq!(fetch(&pool, backend.addr, "/").await, "hello");
    assert_eq!(fetch(&pool, backend.addr, "/").await, "hello");
    assert_eq!(
        backend.accepted.load(Ordering::SeqCst),
        1,
        "reused while young"
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(fetch(&pool, backend.addr, "/").await, "hello");
    assert_eq!(
        backend.accepted.load(Ordering::SeqCst),
        2,
        "replaced when old"
    );
    eventually("the old connection closed", || {
        backend.open.load(Ordering::SeqCst) == 1
    })
    .await;
}

#[tokio::test]
async fn a_failing_client_body_is_reported_as_the_clients_fault() {
    let backend = backend().await;
    let pool = pool(Duration::from_secs(30), 16);
    let frames: Vec<Result<Frame<Bytes>, crate::pool::BoxError>> = vec![
        Ok(Frame::data(Bytes::from_static(b"first"))),
        Err(crate::pool::ClientBodyError::boxed(std::io::Error::other(
            "invalid chunk size line",
        ))),
    ];
    let body = RequestBody::new(StreamBody::new(futures_util::stream::iter(frames)));
    let request = Request::post(format!("http://{}/", backend.addr))
        .header(http::header::HOST, "example.test")
        .body(body)
        .expect("test request");
    let error = pool
        .send(backend.addr, request)
        .await
        .expect_err("the body failed");
    assert!(
        matches!(error, crate::UpstreamError::ClientBody(ref detail) if detail.contains("invalid chunk")),
        "{error:?}"
    );
}
