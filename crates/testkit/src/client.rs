//! Small HTTP clients for tests: HTTP/1.1 over hyper-util's pooled client, and HTTP/2 with prior knowledge
//! (h2c).
//!
//! Owns connecting to an explicit address while sending an arbitrary `Host` (or `:authority`), which is what a
//! gateway test needs. It never follows redirects, never retries, and adds no headers of its own beyond what
//! hyper requires.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http::header::{HOST, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::sync::Mutex;

use crate::echo::EchoReply;

/// The default limit on one request, matching the conformance suite's `RequestTimeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A complete response, body included.
#[derive(Debug, Clone)]
pub struct TestResponse {
    /// The response status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The whole response body.
    pub body: Bytes,
    /// The HTTP version the response came over.
    pub version: Version,
}

impl TestResponse {
    /// Parses the body as an echo backend reply.
    ///
    /// # Errors
    ///
    /// Fails, quoting the status and body, when the body is not echo JSON.
    pub fn echo(&self) -> anyhow::Result<EchoReply> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "expected an echo reply, got {} with body {:?}",
                self.status,
                self.text()
            )
        })
    }

    /// The body as text, with invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first value of response header `name`, if it is present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// Which wire protocol a client speaks.
#[derive(Debug)]
enum Transport {
    /// HTTP/1.1 through hyper-util's pooled client.
    Http1(Client<HttpConnector, Full<Bytes>>),
    /// HTTP/2 with prior knowledge; one cached connection per address when keep-alive is on.
    H2c(Mutex<HashMap<SocketAddr, http2::SendRequest<Full<Bytes>>>>),
}

/// A test HTTP client. Cheap to share by reference; every method takes `&self`.
///
/// Each request connects to the given address whatever the `host` is, and fails after the timeout
/// (10 s unless changed with [`HttpClient::with_timeout`]).
#[derive(Debug)]
pub struct HttpClient {
    /// How requests are sent.
    transport: Transport,
    /// Whether connections are reused.
    is_keep_alive: bool,
    /// The limit on one request, from connecting to the end of the body.
    timeout: Duration,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    /// An HTTP/1.1 client with keep-alive on (idle connections are pooled per address).
    pub fn new() -> Self {
        Self::http1(true)
    }

    /// An HTTP/1.1 client that opens a new connection for every request, as the conformance suite does.
    pub fn without_keep_alive() -> Self {
        Self::http1(false)
    }

    /// An HTTP/2 client with prior knowledge (h2c), keeping one connection per address.
    pub fn h2c() -> Self {
        Self {
            transport: Transport::H2c(Mutex::new(HashMap::new())),
            is_keep_alive: true,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// An h2c client that opens a new connection for every request.
    pub fn h2c_without_keep_alive() -> Self {
        Self {
            is_keep_alive: false,
            ..Self::h2c()
        }
    }

    /// Replaces the per-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Builds the HTTP/1.1 transport.
    fn http1(is_keep_alive: bool) -> Self {
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new());
        if !is_keep_alive {
            builder.pool_max_idle_per_host(0);
        }
        Self {
            transport: Transport::Http1(builder.build_http()),
            is_keep_alive,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Sends `GET path` with no body. See [`HttpClient::request`].
    ///
    /// # Errors
    ///
    /// As [`HttpClient::request`].
    pub async fn get(
        &self,
        addr: SocketAddr,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<TestResponse> {
        self.request(Method::GET, addr, host, path, headers, Bytes::new())
            .await
    }

    /// Sends one request to `addr` and reads the whole response.
    ///
    /// `host` becomes the `Host` header (HTTP/1.1) or `:authority` (h2c); an empty `host` uses `addr`. `path` is
    /// the request target, query included, sent as given. `headers` are appended in order, so a name may repeat.
    ///
    /// # Errors
    ///
    /// Fails on an invalid host, path or header, on any connection or protocol error (a reset or a close before
    /// the response is complete included), and when the request takes longer than the timeout.
    pub async fn request(
        &self,
        method: Method,
        addr: SocketAddr,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> anyhow::Result<TestResponse> {
        let exchange = async {
            match &self.transport {
                Transport::Http1(client) => {
                    let uri: Uri = format!("http://{addr}{path}")
                        .parse()
                        .with_context(|| format!("invalid request path {path:?}"))?;
                    let mut request = build_request(method, uri, headers, body)?;
                    if !host.is_empty() {
                        let host = HeaderValue::from_str(host)
                            .with_context(|| format!("invalid host {host:?}"))?;
                        request.headers_mut().insert(HOST, host);
                    }
                    let response = client
                        .request(request)
                        .await
                        .context("HTTP/1.1 request failed")?;
                    read_response(response).await
                }
                Transport::H2c(connections) => {
                    let authority = if host.is_empty() {
                        addr.to_string()
                    } else {
                        host.to_owned()
                    };
                    // hyper takes `:authority` from the URI, so the URI carries the host, not the address.
                    let uri: Uri = format!("http://{authority}{path}")
                        .parse()
                        .with_context(|| format!("invalid host {host:?} or path {path:?}"))?;
                    let request = build_request(method, uri, headers, body)?;
                    let mut sender = self.h2c_sender(connections, addr).await?;
                    let response = sender
                        .send_request(request)
                        .await
                        .context("h2c request failed")?;
                    read_response(response).await
                }
            }
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_elapsed) => bail!(
                "request to {addr} (host {host:?}, path {path:?}) timed out after {:?}",
                self.timeout
            ),
        }
    }

    /// A ready h2c connection to `addr`: the cached one if it is still open, else a new one.
    async fn h2c_sender(
        &self,
        connections: &Mutex<HashMap<SocketAddr, http2::SendRequest<Full<Bytes>>>>,
        addr: SocketAddr,
    ) -> anyhow::Result<http2::SendRequest<Full<Bytes>>> {
        let mut connections = connections.lock().await;
        if self.is_keep_alive
            && let Some(sender) = connections.get_mut(&addr)
            && sender.ready().await.is_ok()
        {
            return Ok(sender.clone());
        }
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        let _ignored = stream.set_nodelay(true);
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(TokioIo::new(stream))
            .await
            .with_context(|| format!("h2c handshake with {addr}"))?;
        tokio::spawn(connection);
        if self.is_keep_alive {
            connections.insert(addr, sender.clone());
        } else {
            connections.remove(&addr);
        }
        Ok(sender)
    }
}

/// A request with the given target, headers and body.
fn build_request(
    method: Method,
    uri: Uri,
    headers: &[(&str, &str)],
    body: Bytes,
) -> anyhow::Result<Request<Full<Bytes>>> {
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .with_context(|| format!("invalid header name {name:?}"))?;
        let value = HeaderValue::from_str(value)
            .with_context(|| format!("invalid value for header {name}"))?;
        request.headers_mut().append(name, value);
    }
    Ok(request)
}

/// Reads a response whole.
async fn read_response(
    response: http::Response<hyper::body::Incoming>,
) -> anyhow::Result<TestResponse> {
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .context("reading the response body")?
        .to_bytes();
    Ok(TestResponse {
        status: parts.status,
        headers: parts.headers,
        body,
        version: parts.version,
    })
}
