//! The client against a backend written on a raw socket, so each test says byte for byte what
//! the backend sends and checks what it received.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full, StreamBody};
use telemetry::Metrics;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::http1_pool::{Http1Pool, Lifetimes};
use crate::pool::{CountingConnector, RequestBody, UpstreamError};

fn pool() -> Http1Pool<CountingConnector> {
    let connector = CountingConnector::new(Arc::new(Metrics::new()), Duration::from_secs(2), None);
    Http1Pool::new(
        connector,
        Lifetimes {
            idle_timeout: Duration::from_secs(30),
            max_idle_per_endpoint: 8,
            max_lifetime: None,
        },
    )
}

fn empty() -> RequestBody {
    RequestBody::empty()
}

fn request(method: &str, path: &str, body: RequestBody) -> Request<RequestBody> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "app.test")
        .body(body)
        .expect("request")
}

/// A backend that runs `script` on each accepted connection, and reports how many it took.
async fn backend<F, Fut>(script: F) -> (SocketAddr, mpsc::UnboundedReceiver<()>)
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (accepted, accepts) = mpsc::unbounded_channel();
    let script = Arc::new(script);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = accepted.send(());
            tokio::spawn(script(stream));
        }
    });
    (addr, accepts)
}

/// How often a backend from [`answering`] answers on one connection.
#[derive(Clone, Copy)]
enum Answers {
    /// One request, then the connection closes (without saying so).
    Once,
    /// Every request, while the client keeps the connection.
    Each,
}

/// A backend that answers requests with `answer`, byte for byte.
async fn answering(
    answer: &'static [u8],
    answers: Answers,
) -> (SocketAddr, mpsc::UnboundedReceiver<()>) {
    backend(move |mut stream| async move {
        let mut buffer = Vec::new();
        while read_head(&mut stream, &mut buffer).await.is_some() {
            stream.write_all(answer).await.expect("write");
            if matches!(answers, Answers::Once) {
                return;
            }
        }
    })
    .await
}

/// Reads up to and including the empty line that ends a head; the head as text, and any
/// bytes read past it.
async fn read_head(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head: Vec<u8> = buffer.drain(..end + 4).collect();
            return Some(String::from_utf8(head).expect("utf-8 head"));
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

async fn read_exactly(stream: &mut TcpStream, buffer: &mut Vec<u8>, n: usize) -> Vec<u8> {
    while buffer.len() < n {
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await.expect("read");
        assert!(read > 0, "closed before {n} bytes");
        buffer.extend_from_slice(&chunk[..read]);
    }
    buffer.drain(..n).collect()
}

/// A GET of `/` through `pool`: the response body as text.
async fn get_text(pool: &Http1Pool<CountingConnector>, addr: SocketAddr) -> String {
    let response = pool
        .send(addr, request("GET", "/", empty()))
        .await
        .expect("exchange");
    body_text(response).await
}

async fn body_text(response: http::Response<crate::UpstreamBody>) -> String {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

#[tokio::test]
async fn keep_alive_requests_share_one_connection_and_are_written_as_sent() {
    let (heads_tx, mut heads) = mpsc::unbounded_channel();
    let (addr, mut accepts) = backend(move |mut stream| {
        let heads = heads_tx.clone();
        async move {
            let mut buffer = Vec::new();
            while let Some(head) = read_head(&mut stream, &mut buffer).await {
                let _ = heads.send(head);
                let answer = b"HTTP/1.1 200 OK\r\nServer: raw\r\nContent-Length: 5\r\n\r\nhello";
                stream.write_all(answer).await.expect("write");
            }
        }
    })
    .await;
    let pool = pool();
    for _ in 0..3 {
        let response = pool
            .send(addr, request("GET", "/a/b?c=d", empty()))
            .await
            .expect("exchange");
        assert_eq!(response.headers()["server"], "raw");
        assert_eq!(body_text(response).await, "hello");
    }
    let head = heads.recv().await.expect("head");
    assert_eq!(head, "GET /a/b?c=d HTTP/1.1\r\nhost: app.test\r\n\r\n");
    accepts.recv().await.expect("one connection");
    assert!(
        accepts.try_recv().is_err(),
        "a second connection was opened"
    );
}

#[tokio::test]
async fn chunked_responses_with_extensions_and_trailers_are_decoded() {
    let (addr, mut accepts) = answering(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
        5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nx-checksum: abc\r\n\r\n",
        Answers::Each,
    )
    .await;
    let pool = pool();
    for _ in 0..2 {
        let response = pool
            .send(addr, request("GET", "/", empty()))
            .await
            .expect("exchange");
        let collected = response.into_body().collect().await.expect("body");
        assert_eq!(collected.trailers().expect("trailers")["x-checksum"], "abc");
        assert_eq!(collected.to_bytes(), "hello world");
    }
    accepts.recv().await.expect("one connection");
    assert!(
        accepts.try_recv().is_err(),
        "chunked responses must not cost a connection"
    );
}

#[tokio::test]
async fn a_body_until_close_is_read_and_its_connection_not_reused() {
    let (addr, mut accepts) = answering(b"HTTP/1.1 200 OK\r\n\r\nall of it", Answers::Once).await;
    let pool = pool();
    for _ in 0..2 {
        assert_eq!(get_text(&pool, addr).await, "all of it");
    }
    accepts.recv().await.expect("first");
    accepts.recv().await.expect("second connection");
}

#[tokio::test]
async fn request_bodies_are_sized_or_chunked() {
    let (bodies_tx, mut bodies) = mpsc::unbounded_channel();
    let (addr, _accepts) = backend(move |mut stream| {
        let bodies = bodies_tx.clone();
        async move {
            let mut buffer = Vec::new();
            while let Some(head) = read_head(&mut stream, &mut buffer).await {
                let body = if head.contains("content-length: 4\r\n") {
                    read_exactly(&mut stream, &mut buffer, 4).await
                } else if head.contains("transfer-encoding: chunked\r\n") {
                    // "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n"
                    read_exactly(&mut stream, &mut buffer, 21).await
                } else {
                    Vec::new()
                };
                let _ = bodies.send((head, String::from_utf8(body).expect("utf-8")));
                stream
                    .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                    .await
                    .expect("write");
            }
        }
    })
    .await;
    let pool = pool();
    let sized = Full::new(Bytes::from_static(b"data")).map_err(|e| match e {});
    let response = pool
        .send(addr, request("POST", "/", RequestBody::new(sized)))
        .await
        .expect("sized");
    assert_eq!(response.status(), 204);
    let (head, body) = bodies.recv().await.expect("sized body");
    assert!(head.starts_with("POST / HTTP/1.1\r\n"), "{head}");
    assert_eq!(body, "data");

    let frames = ["abc", "def"]
        .map(|s| Ok::<_, crate::pool::BoxError>(http_body::Frame::data(Bytes::from(s))));
    let streamed = StreamBody::new(futures_util::stream::iter(frames));
    let response = pool
        .send(addr, request("PUT", "/", RequestBody::new(streamed)))
        .await
        .expect("streamed");
    assert_eq!(response.status(), 204);
    let (head, body) = bodies.recv().await.expect("chunked body");
    assert!(head.contains("transfer-encoding: chunked\r\n"), "{head}");
    assert_eq!(body, "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n");

    let response = pool
        .send(addr, request("POST", "/", empty()))
        .await
        .expect("empty");
    assert_eq!(response.status(), 204);
    let (head, body) = bodies.recv().await.expect("empty body");
    assert!(head.contains("content-length: 0\r\n"), "{head}");
    assert_eq!(body, "");
}

#[tokio::test]
async fn a_backend_may_answer_before_the_request_body_ends() {
    let (addr, _accepts) = backend(|mut stream| async move {
        let mut buffer = Vec::new();
        if read_head(&mut stream, &mut buffer).await.is_some() {
            let answer = b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\n\r\nbig!";
            stream.write_all(answer).await.expect("write");
            // Keep the connection open: only the response may end the exchange.
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    })
    .await;
    let (_sender, frames) =
        mpsc::channel::<Result<http_body::Frame<Bytes>, crate::pool::BoxError>>(1);
    let endless = StreamBody::new(tokio_stream_from(frames));
    let response = tokio::time::timeout(
        Duration::from_secs(2),
        pool().send(addr, request("POST", "/upload", RequestBody::new(endless))),
    )
    .await
    .expect("the response must not wait for the body")
    .expect("exchange");
    assert_eq!(response.status(), 413);
    assert_eq!(body_text(response).await, "big!");
}

/// A receiver as a stream of frames (the body never ends while its sender lives).
fn tokio_stream_from<T: Send + 'static>(
    mut receiver: mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

#[tokio::test]
async fn interim_responses_are_skipped() {
    let (addr, _accepts) = answering(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n\
        HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        Answers::Once,
    )
    .await;
    let response = pool()
        .send(addr, request("GET", "/", empty()))
        .await
        .expect("exchange");
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("link").is_none());
    assert_eq!(body_text(response).await, "ok");
}

#[tokio::test]
async fn after_101_the_connection_is_the_upgrade() {
    let (addr, _accepts) = backend(|mut stream| async move {
        let mut buffer = Vec::new();
        if read_head(&mut stream, &mut buffer).await.is_some() {
            let answer = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: upgrade\r\n\r\nfirst";
            stream.write_all(answer).await.expect("write");
            let echoed = read_exactly(&mut stream, &mut buffer, 4).await;
            stream.write_all(&echoed).await.expect("echo");
        }
    })
    .await;
    let mut response = pool()
        .send(addr, request("GET", "/ws", empty()))
        .await
        .expect("exchange");
    assert_eq!(response.status(), 101);
    let mut upgraded = response
        .body_mut()
        .take_upgrade()
        .expect("upgraded connection");
    let mut first = [0u8; 5];
    upgraded
        .read_exact(&mut first)
        .await
        .expect("bytes after the head");
    assert_eq!(&first, b"first");
    upgraded.write_all(b"ping").await.expect("write");
    let mut echoed = [0u8; 4];
    upgraded.read_exact(&mut echoed).await.expect("echo");
    assert_eq!(&echoed, b"ping");
}

#[tokio::test]
async fn an_idle_connection_the_backend_closed_is_not_reused() {
    // Each connection serves one response and then closes without saying so.
    let (addr, mut accepts) = answering(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        Answers::Once,
    )
    .await;
    let pool = pool();
    for _ in 0..3 {
        assert_eq!(get_text(&pool, addr).await, "ok");
        // The backend's FIN arrives while the connection is idle in the pool.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..3 {
        accepts.recv().await.expect("a connection per request");
    }
}

#[tokio::test]
async fn a_connection_closed_after_the_request_is_an_error_not_a_resend() {
    let (addr, mut accepts) = backend(|mut stream| async move {
        let mut buffer = Vec::new();
        let _ = read_head(&mut stream, &mut buffer).await;
    })
    .await;
    let error = pool()
        .send(addr, request("GET", "/", empty()))
        .await
        .expect_err("no response");
    assert!(matches!(error, UpstreamError::Reset(_)), "{error}");
    accepts.recv().await.expect("the one connection");
    assert!(accepts.try_recv().is_err(), "the request was sent again");
}

#[tokio::test]
async fn malformed_responses_are_errors() {
    let answers: [&[u8]; 4] = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
    ];
    for answer in answers {
        let (addr, _accepts) = answering(answer, Answers::Once).await;
        let outcome = match pool().send(addr, request("GET", "/", empty())).await {
            Err(error) => Err(error.to_string()),
            Ok(response) => response
                .into_body()
                .collect()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        };
        assert!(
            outcome.is_err(),
            "{:?} was accepted",
            String::from_utf8_lossy(answer)
        );
    }
}

#[tokio::test]
async fn bytes_after_a_response_close_its_connection() {
    let (addr, mut accepts) = answering(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n",
        Answers::Each,
    )
    .await;
    let pool = pool();
    for _ in 0..2 {
        assert_eq!(get_text(&pool, addr).await, "ok");
    }
    accepts.recv().await.expect("first");
    accepts
        .recv()
        .await
        .expect("a smuggled response must not be read as the next one");
}
