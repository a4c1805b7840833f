//! The spans of one request, as plain facts ([`ServerSpan`], [`AttemptSpan`]), and their
//! OpenTelemetry form: a SERVER span per request following the HTTP semantic conventions, with
//! a CLIENT child per attempt at a backend (so a retried request shows each try, its endpoint,
//! its status and why it failed).

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::trace::{SpanContext, SpanKind, Status, TraceFlags, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue, trace};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

use crate::trace::context::{SpanId, TraceId};

/// A request the gateway answered, with what the server span says about it.
#[derive(Clone, Debug)]
pub struct ServerSpan {
    /// The trace.
    pub trace_id: TraceId,
    /// The request's span.
    pub span_id: SpanId,
    /// The caller's span, when the request carried one.
    pub parent: Option<SpanId>,
    /// Request head received.
    pub start: SystemTime,
    /// Response ended (its body sent, or the client gone).
    pub end: SystemTime,
    /// The method as received (`http.request.method` is `_OTHER` for unknown ones, with this
    /// in `http.request.method_original`).
    pub method: String,
    /// `url.path`.
    pub path: String,
    /// `url.query`, if any.
    pub query: Option<String>,
    /// `url.scheme`: the listener's.
    pub scheme: &'static str,
    /// `server.address`: the request's host, without port.
    pub host: String,
    /// `server.port`: the port the request came in on.
    pub port: u16,
    /// `network.peer.address` / `.port`.
    pub peer: SocketAddr,
    /// `client.address`: the client as `clientIPDetection` found it (may differ from the peer
    /// behind trusted proxies).
    pub client: std::net::IpAddr,
    /// `network.protocol.version`: `1.0`, `1.1` or `2`.
    pub protocol_version: &'static str,
    /// `user_agent.original`.
    pub user_agent: Option<String>,
    /// `http.response.status_code`.
    pub status: u16,
    /// `http.route`: the matched rule (`HTTPRoute ns/name rules[0]`).
    pub route: Option<Arc<str>>,
    /// `portcullis.backend`: the backend chosen.
    pub backend: Option<Arc<str>>,
    /// `http.response.body.size`: bytes of response body sent.
    pub bytes_sent: u64,
    /// `error.type`: what went wrong, if anything did (the gateway's error code, e.g.
    /// `upstream-timeout`; the span's status is then Error).
    pub error: Option<&'static str>,
    /// The attempts at the backend, in order.
    pub attempts: Vec<AttemptSpan>,
}

/// One attempt at a backend endpoint.
#[derive(Clone, Debug)]
pub struct AttemptSpan {
    /// The attempt's span; the backend saw it as its parent in `traceparent`.
    pub span_id: SpanId,
    /// Attempt started (before the endpoint pick).
    pub start: SystemTime,
    /// Response head received, or the attempt failed.
    pub end: SystemTime,
    /// The endpoint, if one was picked.
    pub endpoint: Option<SocketAddr>,
    /// The backend's status, if a response came back.
    pub status: Option<u16>,
    /// Why the attempt failed, if it did (`error.type`).
    pub error: Option<&'static str>,
    /// The part of a composed response this attempt belongs to (`None`: the request's own
    /// forwarding).
    pub part: Option<Arc<PartTag>>,
}

/// What a composition part's attempts carry besides the attempt itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartTag {
    /// `portcullis.composition.part`: the part's name.
    pub name: Arc<str>,
    /// `portcullis.composition`: `Composition ns/name`.
    pub composition: Arc<str>,
    /// The part's method (`http.request.method`; the span's name).
    pub method: http::Method,
    /// `portcullis.backend`: the part's backend.
    pub backend: Option<Arc<str>>,
}

/// The instrumentation scope of every span.
fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("portcullis")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

fn context(trace_id: TraceId, span_id: SpanId) -> SpanContext {
    SpanContext::new(
        trace::TraceId::from_bytes(trace_id),
        trace::SpanId::from_bytes(span_id),
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    )
}

/// Methods `http.request.method` may name; others are `_OTHER`.
fn known_method(method: &str) -> bool {
    crate::HttpMethod::of(method) != crate::HttpMethod::Other
}

impl ServerSpan {
    /// The server span and one client span per attempt.
    pub fn into_span_data(self) -> Vec<SpanData> {
        let scope = scope();
        let mut spans = Vec::with_capacity(1 + self.attempts.len());
        let method_label = if known_method(&self.method) {
            Cow::Owned(self.method.clone())
        } else {
            Cow::Borrowed("_OTHER")
        };
        for (index, attempt) in self.attempts.iter().enumerate() {
            // Retries count within their own part (or among the request's own attempts).
            let resend = self.attempts[..index]
                .iter()
                .filter(|earlier| earlier.part == attempt.part)
                .count();
            spans.push(attempt.span_data(
                self.trace_id,
                self.span_id,
                &method_label,
                resend,
                self.backend.as_deref(),
                scope.clone(),
            ));
        }
        let name = match &self.route {
            Some(route) => format!("{method_label} {route}"),
            None => method_label.clone().into_owned(),
        };
        let mut attributes = vec![
            KeyValue::new("http.request.method", method_label.into_owned()),
            KeyValue::new("url.path", self.path),
            KeyValue::new("url.scheme", self.scheme),
            KeyValue::new("server.address", self.host),
            KeyValue::new("server.port", i64::from(self.port)),
            KeyValue::new("network.peer.address", self.peer.ip().to_string()),
            KeyValue::new("network.peer.port", i64::from(self.peer.port())),
            KeyValue::new("client.address", self.client.to_string()),
            KeyValue::new("network.protocol.name", "http"),
            KeyValue::new("network.protocol.version", self.protocol_version),
            KeyValue::new("http.response.status_code", i64::from(self.status)),
            KeyValue::new(
                "http.response.body.size",
                i64::try_from(self.bytes_sent).unwrap_or(i64::MAX),
            ),
        ];
        if !known_method(&self.method) {
            attributes.push(KeyValue::new("http.request.method_original", self.method));
        }
        if let Some(query) = self.query {
            attributes.push(KeyValue::new("url.query", query));
        }
        if let Some(agent) = self.user_agent {
            attributes.push(KeyValue::new("user_agent.original", agent));
        }
        if let Some(route) = self.route {
            attributes.push(KeyValue::new("http.route", route.to_string()));
        }
        if let Some(backend) = self.backend {
            attributes.push(KeyValue::new("portcullis.backend", backend.to_string()));
        }
        let own = self.attempts.iter().filter(|a| a.part.is_none());
        if let Some(last) = own.clone().next_back().and_then(|a| a.endpoint) {
            attributes.push(KeyValue::new("portcullis.endpoint", last.to_string()));
        }
        let own = own.count();
        if own > 1 {
            attributes.push(KeyValue::new(
                "portcullis.retries",
                i64::try_from(own - 1).unwrap_or(i64::MAX),
            ));
        }
        let status = failure(self.error, Some(self.status), &mut attributes);
        spans.push(SpanData {
            span_context: context(self.trace_id, self.span_id),
            parent_span_id: self
                .parent
                .map_or(trace::SpanId::INVALID, trace::SpanId::from_bytes),
            parent_span_is_remote: self.parent.is_some(),
            span_kind: SpanKind::Server,
            name: Cow::Owned(name),
            start_time: self.start,
            end_time: self.end,
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status,
            instrumentation_scope: scope,
        });
        spans
    }
}

/// The span's status, and its `error.type`: an error when something failed (`error`, the
/// gateway's error code) or on a 5xx (its status code); a 4xx is the client's and leaves the
/// status unset.
fn failure(
    error: Option<&'static str>,
    status: Option<u16>,
    attributes: &mut Vec<KeyValue>,
) -> Status {
    let error: Cow<'static, str> = match (error, status) {
        (Some(error), _) => Cow::Borrowed(error),
        (None, Some(status)) if status >= 500 => Cow::Owned(status.to_string()),
        _ => return Status::Unset,
    };
    attributes.push(KeyValue::new("error.type", error.clone()));
    Status::error(error)
}

impl AttemptSpan {
    fn span_data(
        &self,
        trace_id: TraceId,
        parent: SpanId,
        method: &str,
        index: usize,
        backend: Option<&str>,
        scope: InstrumentationScope,
    ) -> SpanData {
        // A composition part's attempt is its own request: its method, its backend.
        let (method, backend) = match &self.part {
            Some(part) => (part.method.as_str(), part.backend.as_deref()),
            None => (method, backend),
        };
        let mut attributes = vec![KeyValue::new("http.request.method", method.to_owned())];
        if let Some(part) = &self.part {
            attributes.push(KeyValue::new(
                "portcullis.composition",
                part.composition.to_string(),
            ));
            attributes.push(KeyValue::new(
                "portcullis.composition.part",
                part.name.to_string(),
            ));
        }
        if let Some(endpoint) = self.endpoint {
            attributes.push(KeyValue::new("server.address", endpoint.ip().to_string()));
            attributes.push(KeyValue::new("server.port", i64::from(endpoint.port())));
            attributes.push(KeyValue::new(
                "network.peer.address",
                endpoint.ip().to_string(),
            ));
        }
        if let Some(status) = self.status {
            attributes.push(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
        }
        if index > 0 {
            attributes.push(KeyValue::new(
                "http.request.resend_count",
                i64::try_from(index).unwrap_or(i64::MAX),
            ));
        }
        if let Some(backend) = backend {
            attributes.push(KeyValue::new("portcullis.backend", backend.to_owned()));
        }
        let status = failure(self.error, self.status, &mut attributes);
        SpanData {
            span_context: context(trace_id, self.span_id),
            parent_span_id: trace::SpanId::from_bytes(parent),
            parent_span_is_remote: false,
            span_kind: SpanKind::Client,
            name: Cow::Owned(method.to_owned()),
            start_time: self.start,
            end_time: self.end,
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status,
            instrumentation_scope: scope,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(status: u16, error: Option<&'static str>, method: &str) -> ServerSpan {
        let start = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        ServerSpan {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent: None,
            start,
            end: start + std::time::Duration::from_millis(3),
            method: method.to_owned(),
            path: "/cart".to_owned(),
            query: None,
            scheme: "https",
            host: "shop.example".to_owned(),
            port: 443,
            peer: "10.0.0.9:5000".parse().expect("address"),
            client: "10.0.0.9".parse().expect("address"),
            protocol_version: "2",
            user_agent: None,
            status,
            route: None,
            backend: None,
            bytes_sent: 0,
            error,
            attempts: vec![AttemptSpan {
                span_id: [3; 8],
                start,
                end: start,
                endpoint: Some("127.0.0.1:80".parse().expect("address")),
                status: Some(status),
                error: None,
                part: None,
            }],
        }
    }

    fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a opentelemetry::Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    }

    #[test]
    fn a_4xx_is_not_an_error_and_a_5xx_is() {
        let spans = request(404, None, "GET").into_span_data();
        let (attempt, server) = (&spans[0], &spans[1]);
        assert_eq!(server.span_kind, SpanKind::Server);
        assert_eq!(server.status, Status::Unset);
        assert!(attribute(server, "error.type").is_none());
        assert_eq!(attempt.parent_span_id, server.span_context.span_id());
        assert_eq!(attempt.span_kind, SpanKind::Client);

        let spans = request(502, Some("upstream-reset"), "GET").into_span_data();
        let server = &spans[1];
        assert_eq!(server.status, Status::error("upstream-reset"));
        assert_eq!(
            attribute(server, "error.type").map(ToString::to_string),
            Some("upstream-reset".to_owned())
        );
        // The attempt got a 502 answer: its status code is its error.
        assert_eq!(
            attribute(&spans[0], "error.type").map(ToString::to_string),
            Some("502".to_owned())
        );
    }

    #[test]
    fn unknown_methods_are_other_with_the_original_kept() {
        let spans = request(200, None, "BREW").into_span_data();
        let server = &spans[1];
        assert_eq!(server.name, "_OTHER");
        assert_eq!(
            attribute(server, "http.request.method").map(ToString::to_string),
            Some("_OTHER".to_owned())
        );
        assert_eq!(
            attribute(server, "http.request.method_original").map(ToString::to_string),
            Some("BREW".to_owned())
        );
        assert!(server.parent_span_id == trace::SpanId::INVALID && !server.parent_span_is_remote);
    }

    #[test]
    fn composition_parts_are_client_spans_with_their_own_method_backend_and_retries() {
        let mut span = request(200, None, "GET");
        let part = |name: &str| {
            Some(Arc::new(PartTag {
                name: Arc::from(name),
                composition: Arc::from("Composition shop/page"),
                method: http::Method::POST,
                backend: Some(Arc::from("Service shop/pricing:8080")),
            }))
        };
        let own = span.attempts[0].clone();
        span.backend = None;
        span.attempts = vec![
            AttemptSpan {
                part: part("price"),
                status: Some(503),
                ..own.clone()
            },
            AttemptSpan {
                part: part("stock"),
                ..own.clone()
            },
            AttemptSpan {
                part: part("price"),
                ..own
            },
        ];
        let spans = span.into_span_data();
        let server = &spans[3];
        let text = |span: &SpanData, key: &str| attribute(span, key).map(ToString::to_string);
        for part in &spans[..3] {
            assert_eq!(part.span_kind, SpanKind::Client);
            assert_eq!(part.parent_span_id, server.span_context.span_id());
            assert_eq!(part.name, "POST");
            assert_eq!(
                text(part, "portcullis.backend").as_deref(),
                Some("Service shop/pricing:8080")
            );
            assert_eq!(
                text(part, "portcullis.composition").as_deref(),
                Some("Composition shop/page")
            );
        }
        assert_eq!(
            text(&spans[0], "portcullis.composition.part").as_deref(),
            Some("price")
        );
        assert_eq!(
            text(&spans[1], "portcullis.composition.part").as_deref(),
            Some("stock")
        );
        // The second attempt of `price` is its first retry; `stock`'s is not one.
        assert_eq!(text(&spans[1], "http.request.resend_count"), None);
        assert_eq!(
            text(&spans[2], "http.request.resend_count").as_deref(),
            Some("1")
        );
        // The server span counts no retries of its own and names no endpoint of a part.
        assert_eq!(text(server, "portcullis.retries"), None);
        assert_eq!(text(server, "portcullis.endpoint"), None);
    }
}
