//! An OpenTelemetry collector for tests: receives OTLP traces over gRPC
//! (`TraceService/Export`) and over HTTP/protobuf (`POST /v1/traces`), decoded with the
//! official protobuf definitions (the `opentelemetry-proto` crate), and keeps every span for
//! the test to inspect.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::bail;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How a span reached the receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with a protobuf body.
    HttpProtobuf,
}

/// One span as received, with its resource's `service.name`.
#[derive(Clone, Debug)]
pub struct ReceivedSpan {
    /// The span.
    pub span: Span,
    /// The `service.name` of the resource it came with.
    pub service_name: Option<String>,
    /// How it came.
    pub transport: Transport,
}

impl ReceivedSpan {
    /// The trace id, as lowercase hex.
    pub fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }

    /// The span id, as lowercase hex.
    pub fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }

    /// The parent span id, as lowercase hex (empty for a root span).
    pub fn parent_span_id(&self) -> String {
        hex(&self.span.parent_span_id)
    }

    /// A string attribute.
    pub fn string(&self, key: &str) -> Option<&str> {
        match attribute(&self.span.attributes, key)? {
            Value::StringValue(text) => Some(text),
            _ => None,
        }
    }

    /// An integer attribute.
    pub fn int(&self, key: &str) -> Option<i64> {
        match attribute(&self.span.attributes, key)? {
            Value::IntValue(number) => Some(*number),
            _ => None,
        }
    }
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

type Received = Arc<Mutex<Vec<ReceivedSpan>>>;

fn keep(received: &Received, request: ExportTraceServiceRequest, transport: Transport) {
    let mut spans = received.lock().unwrap_or_else(PoisonError::into_inner);
    for resource_spans in request.resource_spans {
        let service_name = resource_spans.resource.as_ref().and_then(|resource| {
            match attribute(&resource.attributes, "service.name")? {
                Value::StringValue(name) => Some(name.clone()),
                _ => None,
            }
        });
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                spans.push(ReceivedSpan {
                    span,
                    service_name: service_name.clone(),
                    transport,
                });
            }
        }
    }
}

struct Collector(Received);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        keep(&self.0, request.into_inner(), Transport::Grpc);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// A running receiver: one gRPC and one HTTP port on 127.0.0.1, stopped when dropped.
pub struct OtlpReceiver {
    grpc: SocketAddr,
    http: SocketAddr,
    received: Received,
    tasks: Vec<JoinHandle<()>>,
}

impl OtlpReceiver {
    /// Starts both endpoints.
    ///
    /// # Errors
    ///
    /// A port cannot be bound.
    pub async fn start() -> anyhow::Result<OtlpReceiver> {
        let received: Received = Arc::default();
        let grpc_listener = TcpListener::bind("127.0.0.1:0").await?;
        let grpc = grpc_listener.local_addr()?;
        let incoming = tonic::transport::server::TcpIncoming::from(grpc_listener);
        let service = TraceServiceServer::new(Collector(Arc::clone(&received)));
        let grpc_task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .serve_with_incoming(service, incoming)
                .await;
        });
        let http_listener = TcpListener::bind("127.0.0.1:0").await?;
        let http = http_listener.local_addr()?;
        let http_task = tokio::spawn(serve_http(http_listener, Arc::clone(&received)));
        Ok(OtlpReceiver {
            grpc,
            http,
            received,
            tasks: vec![grpc_task, http_task],
        })
    }

    /// The gRPC endpoint URL (`http://127.0.0.1:PORT`).
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// The HTTP base URL (`http://127.0.0.1:PORT`; spans go to `/v1/traces`).
    pub fn http_endpoint(&self) -> String {
        format!("http://{}", self.http)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until `done` holds for the spans received (checking every 50 ms), and returns
    /// them.
    ///
    /// # Errors
    ///
    /// `timeout` passed first; the error lists what arrived.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        done: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> anyhow::Result<Vec<ReceivedSpan>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let spans = self.spans();
            if done(&spans) {
                return Ok(spans);
            }
            if tokio::time::Instant::now() >= deadline {
                let names: Vec<String> = spans
                    .iter()
                    .map(|s| format!("{} ({:?})", s.span.name, s.transport))
                    .collect();
                bail!("spans wanted did not arrive within {timeout:?}; got {names:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// OTLP/HTTP: `POST /v1/traces` with `Content-Type: application/x-protobuf`; anything else is
/// refused as a collector would (404, 415, 400).
async fn serve_http(listener: TcpListener, received: Received) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let received = Arc::clone(&received);
        let service = service_fn(move |request: Request<hyper::body::Incoming>| {
            let received = Arc::clone(&received);
            async move { Ok::<_, Infallible>(export_http(request, &received).await) }
        });
        tokio::spawn(async move {
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn export_http(
    request: Request<hyper::body::Incoming>,
    received: &Received,
) -> Response<Full<Bytes>> {
    let answer = |status: StatusCode, body: Bytes| {
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        response
    };
    if request.method() != hyper::Method::POST || request.uri().path() != "/v1/traces" {
        return answer(StatusCode::NOT_FOUND, Bytes::new());
    }
    let protobuf = request
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/x-protobuf");
    if !protobuf {
        return answer(StatusCode::UNSUPPORTED_MEDIA_TYPE, Bytes::new());
    }
    let Ok(body) = request.into_body().collect().await else {
        return answer(StatusCode::BAD_REQUEST, Bytes::new());
    };
    match ExportTraceServiceRequest::decode(body.to_bytes()) {
        Ok(export) => {
            keep(received, export, Transport::HttpProtobuf);
            let reply = ExportTraceServiceResponse {
                partial_success: None,
            };
            let mut response = answer(StatusCode::OK, Bytes::from(reply.encode_to_vec()));
            if let Ok(value) = hyper::header::HeaderValue::from_str("application/x-protobuf") {
                response
                    .headers_mut()
                    .insert(hyper::header::CONTENT_TYPE, value);
            }
            response
        }
        Err(_) => answer(StatusCode::BAD_REQUEST, Bytes::new()),
    }
}
