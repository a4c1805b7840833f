//! GRPCRoute end to end: gRPC calls over h2c through the real gateway to a gRPC backend
//! started by the test.
//!
//! The backend ([`GrpcBackend`]) is a minimal gRPC server written with hyper: HTTP/2 only (as
//! gRPC servers are; an HTTP/1.1 request fails its connection preface), hand-rolled 5-byte
//! length-prefixed messages, and the status in trailers. Its Service has no `appProtocol`, so
//! reaching it at all shows that GRPCRoute backends are spoken to over h2c.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::fixture::manifest::{GATEWAY, NS, SERVICE_PORT, endpoint_slice, service};
use crate::fixture::running::{HOST, TestGateway};

/// The gRPC service the backend implements.
const SERVICE: &str = "portcullis.test.Echo";

/// `grpc-status` codes used here.
const OK: &str = "0";
const FAILED_PRECONDITION: &str = "9";
const UNIMPLEMENTED: &str = "12";

/// A gRPC server on 127.0.0.1: `Echo` answers the request message back with `grpc-status: 0`
/// in the trailers; `Fail` answers one message, then `grpc-status: 9` and a `grpc-message`
/// in the trailers; anything else is `UNIMPLEMENTED` (Trailers-Only).
struct GrpcBackend {
    addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl GrpcBackend {
    async fn start() -> anyhow::Result<GrpcBackend> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let accept = tokio::spawn(async move {
            while let Ok((stream, _peer)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ended = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service_fn(grpc_handler))
                        .await;
                });
            }
        });
        Ok(GrpcBackend { addr, accept })
    }
}

impl Drop for GrpcBackend {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// One optional data frame, then trailers.
struct UnaryReply {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl Body for UnaryReply {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }
}

async fn grpc_handler(request: Request<Incoming>) -> Result<Response<UnaryReply>, Infallible> {
    let method = request
        .uri()
        .path()
        .strip_prefix(&format!("/{SERVICE}/"))
        .unwrap_or_default()
        .to_owned();
    let message = request
        .into_body()
        .collect()
        .await
        .map(|body| body.to_bytes())
        .unwrap_or_default();
    let status = |code: &'static str, text: Option<&'static str>| {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static(code));
        if let Some(text) = text {
            trailers.insert("grpc-message", HeaderValue::from_static(text));
        }
        trailers
    };
    let (data, trailers) = match method.as_str() {
        // The request is already framed; echoing the frame echoes the message.
        "Echo" => (Some(message), Some(status(OK, None))),
        "Fail" => (
            Some(frame(b"partial")),
            Some(status(FAILED_PRECONDITION, Some("backend says no"))),
        ),
        _ => {
            let mut response = Response::new(UnaryReply {
                data: None,
                trailers: None,
            });
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
            headers.insert("grpc-status", HeaderValue::from_static(UNIMPLEMENTED));
            return Ok(response);
        }
    };
    let mut response = Response::new(UnaryReply { data, trailers });
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    Ok(response)
}

/// A gRPC length-prefixed message: uncompressed flag, 4-byte big-endian length, message.
fn frame(message: &[u8]) -> Bytes {
    let mut framed = BytesMut::with_capacity(message.len() + 5);
    framed.put_u8(0);
    framed.put_u32(u32::try_from(message.len()).expect("test messages are small"));
    framed.put_slice(message);
    framed.freeze()
}

/// What a gRPC call got back.
struct GrpcReply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    trailers: Option<HeaderMap>,
}

impl GrpcReply {
    /// `grpc-status` from the trailers, or from the headers of a Trailers-Only response.
    fn grpc_status(&self) -> Option<&str> {
        self.trailers
            .as_ref()
            .and_then(|t| t.get("grpc-status"))
            .or_else(|| self.headers.get("grpc-status"))
            .and_then(|v| v.to_str().ok())
    }

    fn grpc_message(&self) -> Option<&str> {
        self.trailers
            .as_ref()
            .and_then(|t| t.get("grpc-message"))
            .or_else(|| self.headers.get("grpc-message"))
            .and_then(|v| v.to_str().ok())
    }
}

/// A unary call to `/SERVICE/method` over h2c with prior knowledge, on a new connection.
async fn call(gateway: SocketAddr, method: &str, message: &[u8]) -> anyhow::Result<GrpcReply> {
    let stream = TcpStream::connect(gateway).await?;
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .context("h2c handshake with the gateway")?;
    let driver = tokio::spawn(connection);
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{HOST}/{SERVICE}/{method}"))
        .header(header::CONTENT_TYPE, "application/grpc")
        .header(header::TE, "trailers")
        .body(Full::new(frame(message)))?;
    let exchange = async {
        let response = sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let collected = body.collect().await?;
        anyhow::Ok((parts, collected))
    };
    let (parts, collected) = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .context("no answer within 10 s")??;
    driver.abort();
    let trailers = collected.trailers().cloned();
    Ok(GrpcReply {
        status: parts.status,
        headers: parts.headers,
        body: collected.to_bytes(),
        trailers,
    })
}

/// A GRPCRoute serving `Echo` and `Fail` of [`SERVICE`] from Service `grpc`.
fn grpc_route() -> Value {
    let backend = json!([{"name": "grpc", "port": SERVICE_PORT}]);
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GRPCRoute",
        "metadata": {"name": "echo", "namespace": NS},
        "spec": {
            "parentRefs": [{"name": GATEWAY, "namespace": NS}],
            "rules": [
                {"matches": [{"method": {"service": SERVICE, "method": "Echo"}}], "backendRefs": backend},
                {"matches": [{"method": {"service": SERVICE, "method": "Fail"}}], "backendRefs": backend},
            ],
        },
    })
}

async fn start() -> anyhow::Result<(GrpcBackend, TestGateway)> {
    let backend = GrpcBackend::start().await?;
    let gateway = TestGateway::start(&[
        // No appProtocol: GRPCRoute backends are spoken to over h2c regardless.
        service(NS, "grpc", None),
        endpoint_slice(NS, "grpc", "grpc-1", backend.addr),
        grpc_route(),
    ])
    .await?;
    Ok((backend, gateway))
}

#[tokio::test]
async fn grpc_calls_are_routed_by_method() -> anyhow::Result<()> {
    let (_backend, gateway) = start().await?;

    // A matched method reaches the backend and its message and trailers come back.
    let reply = call(gateway.listener(), "Echo", b"hello").await?;
    ensure!(
        reply.status == StatusCode::OK && reply.grpc_status() == Some(OK),
        "Echo: HTTP {} grpc-status {:?} ({:?}), headers {:?}",
        reply.status,
        reply.grpc_status(),
        reply.grpc_message(),
        reply.headers
    );
    ensure!(reply.body == frame(b"hello"), "Echo body: {:?}", reply.body);

    // A method no rule matches gets UNIMPLEMENTED from the gateway, Trailers-Only.
    let reply = call(gateway.listener(), "Secret", b"hello").await?;
    ensure!(
        reply.status == StatusCode::OK,
        "unmatched: HTTP {}",
        reply.status
    );
    ensure!(
        reply
            .headers
            .get(header::CONTENT_TYPE)
            .map(HeaderValue::as_bytes)
            == Some(b"application/grpc".as_slice()),
        "unmatched: headers {:?}",
        reply.headers
    );
    ensure!(
        reply.headers.get("grpc-status").map(HeaderValue::as_bytes) == Some(b"12".as_slice()),
        "unmatched: grpc-status must be in the headers: {:?}",
        reply.headers
    );
    ensure!(
        reply
            .headers
            .get("x-portcullis-error")
            .map(HeaderValue::as_bytes)
            == Some(b"no-route".as_slice()),
        "unmatched: the gateway, not the backend, answers: {:?}",
        reply.headers
    );
    ensure!(
        reply.body.is_empty() && reply.trailers.is_none(),
        "unmatched: Trailers-Only has no body and no trailers: {:?} {:?}",
        reply.body,
        reply.trailers
    );
    Ok(())
}

#[tokio::test]
async fn backend_grpc_status_in_trailers_passes_through() -> anyhow::Result<()> {
    let (_backend, gateway) = start().await?;
    let reply = call(gateway.listener(), "Fail", b"").await?;
    ensure!(
        reply.status == StatusCode::OK,
        "Fail: HTTP {}",
        reply.status
    );
    let trailers = reply.trailers.as_ref().context("Fail: no trailers")?;
    ensure!(
        trailers.get("grpc-status").map(HeaderValue::as_bytes)
            == Some(FAILED_PRECONDITION.as_bytes())
            && trailers.get("grpc-message").map(HeaderValue::as_bytes)
                == Some(b"backend says no".as_slice()),
        "Fail trailers: {trailers:?}"
    );
    ensure!(
        reply.headers.get("grpc-status").is_none(),
        "Fail: the status belongs in the trailers: {:?}",
        reply.headers
    );
    ensure!(
        reply.body == frame(b"partial"),
        "Fail body: {:?}",
        reply.body
    );
    Ok(())
}

#[tokio::test]
async fn plain_http_misses_still_get_404() -> anyhow::Result<()> {
    let (_backend, gateway) = start().await?;
    let status = gateway.status_of(HOST, "/not/grpc").await?;
    ensure!(status == StatusCode::NOT_FOUND, "plain GET: {status}");
    Ok(())
}
