//! Protocol handling over real sockets: h2c clients and h2c backends, streamed bodies in both
//! directions, `X-Forwarded-*`, and hop-by-hop headers (RFC 9110 section 7.6.1).
//!
//! Streaming uses a small byte-counting backend defined here ([`BlobServer`]), since the echo
//! backend ignores request bodies and only sends small replies.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use anyhow::{Context as _, ensure};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use testkit::{EchoConfig, EchoMode, EchoServer, HttpClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::fixture::manifest::{
    NS, backend, backend_ref, endpoint_slice, http_route, path_match, rule, service,
    service_backend, service_ref,
};
use crate::fixture::running::{Echoes, HOST, TestGateway};

/// Size of the streamed request body.
const UPLOAD_BYTES: u64 = 1024 * 1024;

/// Size of the streamed response body.
const DOWNLOAD_BYTES: u64 = 8 * 1024 * 1024;

/// Bytes per frame of a [`PatternBody`].
const CHUNK_BYTES: u64 = 64 * 1024;

/// Byte `index` of every test payload: a pattern whose period (251, prime) does not divide
/// any chunk size, so a dropped, repeated or reordered chunk changes the hash.
fn pattern_byte(index: u64) -> u8 {
    u8::try_from(index % 251).unwrap_or_default()
}

/// FNV-1a, 64 bit: enough to tell whether two byte streams are equal.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn update(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The FNV-1a hash of the first `len` pattern bytes.
fn pattern_hash(len: u64) -> u64 {
    let mut hash = Fnv::new();
    for index in 0..len {
        hash.update(&[pattern_byte(index)]);
    }
    hash.0
}

/// A body of `total` pattern bytes in [`CHUNK_BYTES`] frames, with no declared length, so
/// HTTP/1.1 sends it chunked.
struct PatternBody {
    offset: u64,
    total: u64,
}

impl PatternBody {
    fn new(total: u64) -> PatternBody {
        PatternBody { offset: 0, total }
    }
}

impl Body for PatternBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.offset >= self.total {
            return Poll::Ready(None);
        }
        let end = (self.offset + CHUNK_BYTES).min(self.total);
        let chunk: Vec<u8> = (self.offset..end).map(pattern_byte).collect();
        self.offset = end;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
    }
}

/// A backend for streaming tests, speaking HTTP/1.1 and h2c. A request with a body answers JSON
/// with the number of body bytes received, their hash, and the HTTP version seen;
/// `GET .../blob?size=N` streams N pattern bytes without a Content-Length.
struct BlobServer {
    addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl BlobServer {
    async fn start() -> anyhow::Result<BlobServer> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let accept = tokio::spawn(async move {
            while let Ok((stream, _peer)) = listener.accept().await {
                tokio::spawn(async move {
                    let service = service_fn(blob_handler);
                    let _ended = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(BlobServer { addr, accept })
    }
}

impl Drop for BlobServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Either a JSON summary or a streamed pattern.
enum BlobReply {
    Summary(Full<Bytes>),
    Pattern(PatternBody),
}

impl Body for BlobReply {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            BlobReply::Summary(full) => Pin::new(full).poll_frame(cx),
            BlobReply::Pattern(pattern) => Pin::new(pattern).poll_frame(cx),
        }
    }
}

async fn blob_handler(request: Request<Incoming>) -> Result<Response<BlobReply>, Infallible> {
    if request.method() == Method::GET {
        let size = request
            .uri()
            .query()
            .and_then(|query| query.strip_prefix("size="))
            .and_then(|size| size.parse().ok())
            .unwrap_or(0);
        return Ok(Response::new(BlobReply::Pattern(PatternBody::new(size))));
    }
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let (transfer_encoding, content_length) =
        (header("transfer-encoding"), header("content-length"));
    let version = format!("{:?}", request.version());
    let mut body = request.into_body();
    let mut received = 0_u64;
    let mut hash = Fnv::new();
    let mut error = None;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    received += data.len() as u64;
                    hash.update(data);
                }
            }
            Err(failure) => {
                error = Some(failure.to_string());
                break;
            }
        }
    }
    let summary = json!({
        "received": received,
        "hash": hash.0,
        "transfer_encoding": transfer_encoding,
        "content_length": content_length,
        "error": error,
        "version": version,
    });
    Ok(Response::new(BlobReply::Summary(Full::new(Bytes::from(
        summary.to_string(),
    )))))
}

/// A response read off the wire by [`raw_exchange`].
struct RawResponse {
    status: u16,
    head: String,
    body: String,
}

/// Writes `request` as is on a new connection and reads until the server closes it (so the
/// request must end the connection: HTTP/1.0 or `Connection: close`). For request forms the
/// test clients cannot produce.
async fn raw_exchange(addr: SocketAddr, request: &str) -> anyhow::Result<RawResponse> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut received = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut received),
    )
    .await
    .context("the server did not close the connection within 10 s")??;
    let text = String::from_utf8_lossy(&received).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("no complete response head: {text:?}"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("no status line: {head:?}"))?;
    Ok(RawResponse {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    })
}

/// Paths to a [`BlobServer`] through the gateway, with the HTTP version the gateway speaks to
/// it on each.
const BLOB_PATHS: [(&str, &str); 2] = [("/h1", "HTTP/1.1"), ("/h2c", "HTTP/2.0")];

/// A gateway routing `/h1` to a [`BlobServer`] over HTTP/1.1 and `/h2c` to the same server
/// over h2c (a second Service with `appProtocol: kubernetes.io/h2c`).
async fn serve_blobs() -> anyhow::Result<(BlobServer, TestGateway)> {
    let blobs = BlobServer::start().await?;
    let documents = vec![
        service(NS, "blob-h1", None),
        endpoint_slice(NS, "blob-h1", "blob-h1-1", blobs.addr),
        service(NS, "blob-h2c", Some("kubernetes.io/h2c")),
        endpoint_slice(NS, "blob-h2c", "blob-h2c-1", blobs.addr),
        http_route(
            "blob",
            &[],
            vec![
                rule(
                    vec![path_match("PathPrefix", "/h1")],
                    vec![service_ref("blob-h1")],
                ),
                rule(
                    vec![path_match("PathPrefix", "/h2c")],
                    vec![service_ref("blob-h2c")],
                ),
            ],
        ),
    ];
    let gateway = TestGateway::start(&documents).await?;
    Ok((blobs, gateway))
}

/// Checks a [`BlobServer`] upload summary.
fn ensure_upload(body: &[u8], upstream_version: &str) -> anyhow::Result<()> {
    let summary: serde_json::Value = serde_json::from_slice(body)
        .with_context(|| format!("not an upload summary: {:?}", String::from_utf8_lossy(body)))?;
    ensure!(
        summary["error"].is_null(),
        "the backend failed reading the body: {summary}"
    );
    ensure!(
        summary["received"] == UPLOAD_BYTES,
        "the backend received {summary}"
    );
    ensure!(
        summary["hash"] == pattern_hash(UPLOAD_BYTES),
        "the bytes changed on the way: {summary}"
    );
    ensure!(
        summary["version"] == upstream_version,
        "expected {upstream_version} upstream: {summary}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_client_reaches_http1_backend() -> anyhow::Result<()> {
    let echoes = Echoes::start(&["h1"]).await?;
    let mut documents = service_backend(NS, "h1", &[echoes.addr("h1")]);
    documents.push(http_route(
        "h1",
        &[],
        vec![rule(vec![], vec![service_ref("h1")])],
    ));
    let gateway = TestGateway::start(&documents).await?;

    let client = HttpClient::h2c();
    for _ in 0..3 {
        let response = client
            .get(
                gateway.listener(),
                HOST,
                "/over/h2?x=1",
                &[("x-custom", "kept")],
            )
            .await?;
        ensure!(
            response.version == Version::HTTP_2,
            "the client spoke {:?}",
            response.version
        );
        let reply = response.echo()?;
        ensure!(
            reply.pod == "h1" && reply.proto == "HTTP/1.1",
            "backend saw {reply:?}"
        );
        ensure!(
            reply.host == HOST,
            "the :authority becomes the Host: {:?}",
            reply.host
        );
        ensure!(
            reply.path == "/over/h2?x=1",
            "path and query kept: {:?}",
            reply.path
        );
        ensure!(
            reply.header("x-custom").as_deref() == Some("kept"),
            "headers kept: {reply:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_app_protocol_backend_is_reached_over_h2c() -> anyhow::Result<()> {
    let h2c_only = |pod: &str| EchoConfig {
        mode: EchoMode::H2cOnly,
        ..EchoConfig::new(pod, NS)
    };
    let service_echo = EchoServer::start(h2c_only("h2-service")).await?;
    let backend_echo = EchoServer::start(h2c_only("h2-backend")).await?;
    let mut h2c_backend = backend(NS, "h2-backend", &[(backend_echo.addr(), 1)]);
    h2c_backend["spec"]["appProtocol"] = json!("kubernetes.io/h2c");
    let documents = vec![
        service(NS, "h2-service", Some("kubernetes.io/h2c")),
        endpoint_slice(NS, "h2-service", "h2-service-1", service_echo.addr()),
        h2c_backend,
        http_route(
            "h2",
            &[],
            vec![
                rule(
                    vec![path_match("PathPrefix", "/service")],
                    vec![service_ref("h2-service")],
                ),
                rule(
                    vec![path_match("PathPrefix", "/backend")],
                    vec![backend_ref("h2-backend")],
                ),
            ],
        ),
    ];
    let gateway = TestGateway::start(&documents).await?;

    let h2c_client = HttpClient::h2c();
    for (path, pod) in [
        ("/service/x?q=1", "h2-service"),
        ("/backend/y", "h2-backend"),
    ] {
        for client in [&gateway.client, &h2c_client] {
            let response = client.get(gateway.listener(), HOST, path, &[]).await?;
            ensure!(
                response.status == StatusCode::OK,
                "GET {path}: {} {:?} (an h2c-only backend answers HTTP/1 with 400)",
                response.status,
                response.text()
            );
            let reply = response.echo()?;
            ensure!(reply.pod == pod, "GET {path} answered by {}", reply.pod);
            ensure!(
                reply.proto == "HTTP/2.0",
                "GET {path}: the backend saw {}",
                reply.proto
            );
            ensure!(
                reply.host == HOST,
                "GET {path}: the backend saw :authority {:?}",
                reply.host
            );
            ensure!(
                reply.path == path,
                "GET {path}: the backend saw {:?}",
                reply.path
            );
        }
    }
    Ok(())
}

/// Awaits an upload's response (within 30 s) and checks it: 200 and the upload summary of the
/// whole body, received over `upstream_version`.
async fn finish_upload(
    sending: impl std::future::Future<Output = hyper::Result<Response<Incoming>>>,
    upstream_version: &str,
) -> anyhow::Result<()> {
    let (status, body) = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        let response = sending.await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::Ok((status, body))
    })
    .await
    .context("the upload did not finish in 30 s")??;
    ensure!(status == StatusCode::OK, "answered {status}: {body:?}");
    ensure_upload(&body, upstream_version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_request_body_reaches_the_backend_whole() -> anyhow::Result<()> {
    let (_blobs, gateway) = serve_blobs().await?;
    for (prefix, upstream_version) in BLOB_PATHS {
        // A chunked upload: the body has no declared length.
        let stream = TcpStream::connect(gateway.listener()).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let connection = tokio::spawn(connection);
        let request = Request::post(format!("{prefix}/upload"))
            .header(http::header::HOST, HOST)
            .body(PatternBody::new(UPLOAD_BYTES))?;
        let uploaded = finish_upload(sender.send_request(request), upstream_version).await;
        connection.abort();
        uploaded.with_context(|| format!("chunked upload to {prefix}"))?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_request_body_over_h2c_reaches_the_backend_whole() -> anyhow::Result<()> {
    let (_blobs, gateway) = serve_blobs().await?;
    for (prefix, upstream_version) in BLOB_PATHS {
        // No declared length, and 16 times the stream's flow-control window (64 KiB): the
        // upload goes on only as the gateway gives the window back.
        let stream = TcpStream::connect(gateway.listener()).await?;
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await?;
        let connection = tokio::spawn(connection);
        let request = Request::post(format!("http://{HOST}{prefix}/upload"))
            .body(PatternBody::new(UPLOAD_BYTES))?;
        let uploaded = finish_upload(sender.send_request(request), upstream_version).await;
        connection.abort();
        uploaded.with_context(|| format!("streamed h2c upload to {prefix}"))?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_length_request_body_reaches_the_backend_whole() -> anyhow::Result<()> {
    let (_blobs, gateway) = serve_blobs().await?;
    let payload = Bytes::from((0..UPLOAD_BYTES).map(pattern_byte).collect::<Vec<u8>>());
    let h2c_client = HttpClient::h2c();
    for (prefix, upstream_version) in BLOB_PATHS {
        for client in [&gateway.client, &h2c_client] {
            let path = format!("{prefix}/upload");
            let response = client
                .request(
                    Method::PUT,
                    gateway.listener(),
                    HOST,
                    &path,
                    &[],
                    payload.clone(),
                )
                .await?;
            ensure!(
                response.status == StatusCode::OK,
                "PUT {path} answered {}",
                response.status
            );
            ensure_upload(&response.body, upstream_version)
                .with_context(|| format!("PUT {path} from an {:?} client", response.version))?;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_streamed_response_reaches_the_client_whole() -> anyhow::Result<()> {
    let (_blobs, gateway) = serve_blobs().await?;
    let expected = pattern_hash(DOWNLOAD_BYTES);
    let client = HttpClient::new().with_timeout(std::time::Duration::from_secs(60));
    let h2c_client = HttpClient::h2c().with_timeout(std::time::Duration::from_secs(60));
    for (prefix, _) in BLOB_PATHS {
        let path = format!("{prefix}/blob?size={DOWNLOAD_BYTES}");
        for client in [&client, &h2c_client] {
            let response = client.get(gateway.listener(), HOST, &path, &[]).await?;
            ensure!(
                response.status == StatusCode::OK,
                "GET {path} answered {}",
                response.status
            );
            ensure!(
                response.body.len() as u64 == DOWNLOAD_BYTES,
                "GET {path}: received {} of {DOWNLOAD_BYTES} bytes over {:?}",
                response.body.len(),
                response.version
            );
            let mut hash = Fnv::new();
            hash.update(&response.body);
            ensure!(
                hash.0 == expected,
                "GET {path}: the bytes changed on the way over {:?}",
                response.version
            );
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_reach_the_backend() -> anyhow::Result<()> {
    let echoes = Echoes::start(&["a"]).await?;
    let mut documents = service_backend(NS, "a", &[echoes.addr("a")]);
    documents.push(http_route(
        "a",
        &[],
        vec![rule(vec![], vec![service_ref("a")])],
    ));
    let gateway = TestGateway::start(&documents).await?;

    let reply = gateway.get(HOST, "/", &[]).await?.echo()?;
    ensure!(
        reply.header("x-forwarded-for").as_deref() == Some("127.0.0.1"),
        "X-Forwarded-For is the client address: {:?}",
        reply.header("x-forwarded-for")
    );
    ensure!(
        reply.header("x-forwarded-proto").as_deref() == Some("http"),
        "X-Forwarded-Proto: {:?}",
        reply.header("x-forwarded-proto")
    );

    // An existing X-Forwarded-For is appended to.
    let reply = gateway
        .get(HOST, "/", &[("x-forwarded-for", "203.0.113.9")])
        .await?
        .echo()?;
    ensure!(
        reply.header("x-forwarded-for").as_deref() == Some("203.0.113.9, 127.0.0.1"),
        "X-Forwarded-For is appended to: {:?}",
        reply.header("x-forwarded-for")
    );
    // A client cannot claim another scheme.
    let reply = gateway
        .get(HOST, "/", &[("x-forwarded-proto", "https")])
        .await?
        .echo()?;
    ensure!(
        reply.header("x-forwarded-proto").as_deref() == Some("http"),
        "X-Forwarded-Proto is overwritten: {:?}",
        reply.header("x-forwarded-proto")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_request_headers_are_not_forwarded() -> anyhow::Result<()> {
    let echoes = Echoes::start(&["a"]).await?;
    let mut documents = service_backend(NS, "a", &[echoes.addr("a")]);
    documents.push(http_route(
        "a",
        &[],
        vec![rule(vec![], vec![service_ref("a")])],
    ));
    let gateway = TestGateway::start(&documents).await?;

    let response = gateway
        .get(
            HOST,
            "/",
            &[
                ("connection", "x-foo"),
                ("x-foo", "1"),
                ("keep-alive", "timeout=5"),
                ("proxy-connection", "keep-alive"),
                ("x-end-to-end", "kept"),
            ],
        )
        .await?;
    let reply = response.echo()?;
    for hop_by_hop in ["x-foo", "keep-alive", "proxy-connection"] {
        ensure!(
            reply.header(hop_by_hop).is_none(),
            "{hop_by_hop} reached the backend: {:?}",
            reply.headers
        );
    }
    ensure!(
        reply
            .header("connection")
            .is_none_or(|value| !value.contains("x-foo")),
        "the client's Connection header reached the backend: {:?}",
        reply.header("connection")
    );
    ensure!(
        reply.header("x-end-to-end").as_deref() == Some("kept"),
        "end-to-end headers are kept: {:?}",
        reply.headers
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_response_headers_are_not_returned() -> anyhow::Result<()> {
    let echoes = Echoes::start(&["a"]).await?;
    let mut documents = service_backend(NS, "a", &[echoes.addr("a")]);
    documents.push(http_route(
        "a",
        &[],
        vec![rule(vec![], vec![service_ref("a")])],
    ));
    let gateway = TestGateway::start(&documents).await?;

    // The echo backend sets the response headers this request lists.
    let response = gateway
        .get(
            HOST,
            "/",
            &[(
                "x-echo-set-header",
                "Connection:x-resp,x-resp:1,Keep-Alive:timeout=9,x-kept:yes",
            )],
        )
        .await?;
    ensure!(
        response.status == StatusCode::OK,
        "answered {}",
        response.status
    );
    ensure!(
        response.header("x-kept") == Some("yes"),
        "end-to-end response headers are kept: {:?}",
        response.headers
    );
    for hop_by_hop in ["x-resp", "keep-alive"] {
        ensure!(
            response.header(hop_by_hop).is_none(),
            "{hop_by_hop} reached the client: {:?}",
            response.headers
        );
    }
    ensure!(
        response
            .header("connection")
            .is_none_or(|value| !value.contains("x-resp")),
        "the backend's Connection header reached the client: {:?}",
        response.headers
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http11_request_without_host_answers_400() -> anyhow::Result<()> {
    // RFC 9112 section 3.2: a server MUST answer 400 to an HTTP/1.1 request without Host.
    let echoes = Echoes::start(&["a"]).await?;
    let mut documents = service_backend(NS, "a", &[echoes.addr("a")]);
    documents.push(http_route(
        "a",
        &[],
        vec![rule(vec![], vec![service_ref("a")])],
    ));
    let gateway = TestGateway::start(&documents).await?;
    let response = raw_exchange(
        gateway.listener(),
        "GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
    )
    .await?;
    ensure!(
        response.status == 400,
        "answered {}:\n{}",
        response.head,
        response.body
    );
    ensure!(
        echoes.server("a").requests() == 0,
        "the request reached the backend"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http10_request_without_host_is_routed() -> anyhow::Result<()> {
    // HTTP/1.0 has no Host requirement, and `proxy/src/stack.rs` deliberately selects the
    // listener with an empty host for such requests; a route without hostnames on a listener
    // without hostname then matches, so the request should reach the backend.
    let echoes = Echoes::start(&["a"]).await?;
    let mut documents = service_backend(NS, "a", &[echoes.addr("a")]);
    documents.push(http_route(
        "a",
        &[],
        vec![rule(vec![], vec![service_ref("a")])],
    ));
    let gateway = TestGateway::start(&documents).await?;
    let response = raw_exchange(gateway.listener(), "GET /old HTTP/1.0\r\n\r\n").await?;
    ensure!(
        response.status == 200,
        "GET /old HTTP/1.0 without Host answered {}:\n{}",
        response.head,
        response.body
    );
    ensure!(
        echoes.server("a").requests() == 1,
        "the request reached the backend"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_form_target_decides_host_for_routing_and_backend() -> anyhow::Result<()> {
    // RFC 9112 section 3.2.2: with an absolute-form target the server MUST ignore Host and use
    // the target's authority. The gateway routes on the authority; the backend must then see
    // that same host, not the Host header the routing ignored.
    let echoes = Echoes::start(&["abs", "other"]).await?;
    let mut documents = service_backend(NS, "abs", &[echoes.addr("abs")]);
    documents.extend(service_backend(NS, "other", &[echoes.addr("other")]));
    documents.push(http_route(
        "abs",
        &["abs.example.com"],
        vec![rule(vec![], vec![service_ref("abs")])],
    ));
    documents.push(http_route(
        "other",
        &["other.example.com"],
        vec![rule(vec![], vec![service_ref("other")])],
    ));
    let gateway = TestGateway::start(&documents).await?;
    let response = raw_exchange(
        gateway.listener(),
        "GET http://abs.example.com/y HTTP/1.1\r\nHost: other.example.com\r\nConnection: close\r\n\r\n",
    )
    .await?;
    ensure!(
        response.status == 200,
        "answered {}:\n{}",
        response.head,
        response.body
    );
    let reply: testkit::EchoReply = serde_json::from_str(&response.body)?;
    ensure!(
        reply.pod == "abs",
        "routed by the target's authority to abs, got {}",
        reply.pod
    );
    ensure!(
        reply.host == "abs.example.com",
        "the backend of abs.example.com received Host {:?}",
        reply.host
    );
    Ok(())
}
