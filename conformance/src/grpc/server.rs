//! The gRPC echo server: h2c with prior knowledge on an ephemeral port of the address it is given.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, HeaderValue};
use http::{HeaderMap, Request, Response};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use super::wire::EchoAssertions;
use super::{SERVICE_PREFIX, UNIMPLEMENTED};

/// Who this server claims to be in its replies.
#[derive(Debug)]
struct Identity {
    /// Reported as `context.pod`.
    pod: String,
    /// Reported as `context.namespace`.
    namespace: String,
}

/// A running gRPC echo. Dropping it stops the accept loop and every open connection.
#[derive(Debug)]
pub(crate) struct GrpcEchoServer {
    /// The bound address.
    addr: SocketAddr,
    /// Owns the listener and the connection tasks.
    accept_task: JoinHandle<()>,
}

impl GrpcEchoServer {
    /// Binds an ephemeral port of `ip` and serves until dropped.
    pub(crate) async fn start(pod: &str, namespace: &str, ip: Ipv4Addr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind((ip, 0))
            .await
            .with_context(|| format!("binding the gRPC echo of pod {pod}"))?;
        let addr = listener
            .local_addr()
            .context("reading the gRPC echo's address")?;
        let identity = Arc::new(Identity {
            pod: pod.to_owned(),
            namespace: namespace.to_owned(),
        });
        let accept_task = tokio::spawn(accept_loop(listener, identity));
        Ok(Self { addr, accept_task })
    }

    /// The address the server listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for GrpcEchoServer {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

/// Accepts connections until aborted; dropping the [`JoinSet`] aborts the connections.
async fn accept_loop(listener: TcpListener, identity: Arc<Identity>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    connections.spawn(serve_connection(stream, Arc::clone(&identity)));
                }
                // Usually a full file table: back off rather than spin.
                Err(_error) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_finished) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Serves one HTTP/2 connection; HTTP/1 clients fail the preface and are dropped, like a gRPC server does.
async fn serve_connection(stream: TcpStream, identity: Arc<Identity>) {
    let _ignored = stream.set_nodelay(true);
    let service = service_fn(move |request| handle(Arc::clone(&identity), request));
    let _served = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// Answers one RPC.
async fn handle(
    identity: Arc<Identity>,
    request: Request<Incoming>,
) -> Result<Response<UnaryBody>, Infallible> {
    let (parts, body) = request.into_parts();
    // The request message is always empty (`EchoRequest {}`); read it so the stream ends cleanly.
    let _ignored = body.collect().await;
    let method = parts.uri.path().strip_prefix(SERVICE_PREFIX).unwrap_or("");
    if method != "Echo" && method != "EchoTwo" {
        // echo-basic leaves EchoThree unimplemented on purpose; unknown methods get the same code.
        return Ok(trailers_only(
            UNIMPLEMENTED,
            &format!("method {:?} not implemented", parts.uri.path()),
        ));
    }
    let authority = parts
        .uri
        .authority()
        .map(|authority| authority.as_str().to_owned())
        .or_else(|| {
            parts
                .headers
                .get(HOST)
                .map(|host| String::from_utf8_lossy(host.as_bytes()).into_owned())
        })
        .unwrap_or_default();
    let assertions = EchoAssertions {
        fully_qualified_method: parts.uri.path().to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        authority,
        namespace: identity.namespace.clone(),
        pod: identity.pod.clone(),
    };
    let message = assertions.encode_response();
    let mut framed = Vec::with_capacity(message.len() + 5);
    framed.push(0); // not compressed
    framed.extend_from_slice(
        &u32::try_from(message.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    framed.extend_from_slice(&message);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let mut response = Response::new(UnaryBody {
        data: Some(Bytes::from(framed)),
        trailers: Some(trailers),
    });
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    Ok(response)
}

/// A gRPC "Trailers-Only" response: the status travels in the headers and there is no body.
fn trailers_only(code: u32, message: &str) -> Response<UnaryBody> {
    let mut response = Response::new(UnaryBody {
        data: None,
        trailers: None,
    });
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert("grpc-status", HeaderValue::from(code));
    if let Ok(message) = HeaderValue::from_str(message) {
        headers.insert("grpc-message", message);
    }
    response
}

/// One data frame, then the trailers.
#[derive(Debug)]
struct UnaryBody {
    /// The length-prefixed message, until sent.
    data: Option<Bytes>,
    /// The trailers, until sent.
    trailers: Option<HeaderMap>,
}

impl Body for UnaryBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _context: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(
            self.trailers
                .take()
                .map(|trailers| Ok(Frame::trailers(trailers))),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }
}
