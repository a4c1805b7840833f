//! A request's trace while it is served ([`RequestTrace`]): the context it came with (W3C
//! `traceparent`, else B3 single or multi), the sampling decision, the `traceparent` each
//! attempt sends its backend, and, for a sampled request, the facts its server span and the
//! attempts' client spans are built from (`telemetry::trace`).
//!
//! Only exists when tracing is on (`--otlp-endpoint`): with it off, a request pays one branch.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::header::{HeaderName, USER_AGENT};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Response};
use rand::RngCore;
use telemetry::trace::context::{self, Propagation, RemoteParent, SpanId, TraceId};
use telemetry::trace::{AttemptSpan, Sampler, ServerSpan};
use telemetry::{Hex, TraceExemplar};
use upstream::UpstreamBody;

use crate::error::ProxyError;
use crate::record::LogHead;

static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
static B3: HeaderName = HeaderName::from_static("b3");
static B3_TRACE_ID: HeaderName = HeaderName::from_static("x-b3-traceid");
static B3_SPAN_ID: HeaderName = HeaderName::from_static("x-b3-spanid");
static B3_PARENT_SPAN_ID: HeaderName = HeaderName::from_static("x-b3-parentspanid");
static B3_SAMPLED: HeaderName = HeaderName::from_static("x-b3-sampled");
static B3_FLAGS: HeaderName = HeaderName::from_static("x-b3-flags");

/// Where the request came from, for its server span.
#[derive(Clone, Copy)]
pub(crate) struct Origin {
    pub(crate) peer: SocketAddr,
    pub(crate) client: IpAddr,
    pub(crate) port: u16,
    pub(crate) scheme: &'static str,
}

/// One request's trace.
pub(crate) struct RequestTrace {
    trace_id: TraceId,
    /// Our server span.
    span_id: SpanId,
    parent: Option<RemoteParent>,
    sampled: bool,
    /// The request's start on both clocks: span times are wall-clock, attempts are timed on
    /// the monotonic one.
    wall: SystemTime,
    start: Instant,
    /// The span id the current attempt's `traceparent` names.
    attempt_id: SpanId,
    /// Sampled requests only.
    recording: Option<Box<Recording>>,
}

/// What a sampled request's spans are built from, besides the trace's ids.
struct Recording {
    /// The request line and host, also the access log's (taken by `stack.rs` when the access
    /// log is off).
    head: Option<LogHead>,
    user_agent: Option<String>,
    origin: Origin,
    attempts: Vec<AttemptSpan>,
}

impl RequestTrace {
    /// The trace of a request with head `parts`, received at `start` (and `wall`), sampled by
    /// `sampler` unless its caller decided (for parent-based samplers).
    pub(crate) fn begin(
        sampler: Sampler,
        parts: &Parts,
        (wall, start): (SystemTime, Instant),
        origin: Origin,
    ) -> RequestTrace {
        let parent = extract(&parts.headers);
        let mut rng = rand::rng();
        let trace_id = parent.map_or_else(|| random_trace_id(&mut rng), |p| p.trace_id);
        let span_id = random_span_id(&mut rng);
        let sampled = sampler.samples(parent.and_then(|p| p.sampled), &trace_id);
        let recording = sampled.then(|| {
            Box::new(Recording {
                head: Some(LogHead::of_parts(parts, wall)),
                user_agent: parts
                    .headers
                    .get(USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                origin,
                attempts: Vec::new(),
            })
        });
        RequestTrace {
            trace_id,
            span_id,
            parent,
            sampled,
            wall,
            start,
            attempt_id: span_id,
            recording,
        }
    }

    /// The trace and server span ids (the access log's `trace_id` / `span_id`).
    pub(crate) fn ids(&self) -> (Hex<16>, Hex<8>) {
        (Hex(self.trace_id), Hex(self.span_id))
    }

    /// The exemplar of a sampled request.
    pub(crate) fn exemplar(&self) -> Option<TraceExemplar> {
        self.sampled.then_some(TraceExemplar {
            trace_id: Hex(self.trace_id),
            span_id: Hex(self.span_id),
        })
    }

    /// Sets the trace context the next attempt sends its backend: `traceparent` naming the
    /// attempt's span (a new one per attempt when sampled; the server span otherwise), and
    /// the B3 headers in the format the request came with, updated the same way. A
    /// `tracestate` without a valid `traceparent` is dropped, as W3C requires.
    pub(crate) fn propagate(&mut self, headers: &mut HeaderMap) {
        if self.recording.is_some() {
            self.attempt_id = random_span_id(&mut rand::rng());
        }
        let traceparent =
            context::format_traceparent(&self.trace_id, &self.attempt_id, self.sampled);
        insert(headers, &TRACEPARENT, &traceparent);
        match self.parent.map(|p| p.format) {
            None => {
                headers.remove(&TRACESTATE);
            }
            Some(Propagation::W3c) => {}
            Some(Propagation::B3Single) => {
                let b3 = context::format_b3_single(&self.trace_id, &self.attempt_id, self.sampled);
                insert(headers, &B3, &b3);
            }
            Some(Propagation::B3Multi) => {
                let mut trace = [0u8; 32];
                context::write_hex(&mut trace, &self.trace_id);
                let mut span = [0u8; 16];
                context::write_hex(&mut span, &self.attempt_id);
                let mut parent = [0u8; 16];
                context::write_hex(&mut parent, &self.span_id);
                insert(headers, &B3_TRACE_ID, &trace);
                insert(headers, &B3_SPAN_ID, &span);
                insert(headers, &B3_PARENT_SPAN_ID, &parent);
                insert(headers, &B3_SAMPLED, if self.sampled { b"1" } else { b"0" });
                headers.remove(&B3_FLAGS);
            }
        }
    }

    /// Records the attempt that started at `started` and ended at `ended` at `endpoint` with
    /// `outcome` (`None`: it timed out), as a client span of a sampled request.
    pub(crate) fn attempted(
        &mut self,
        (started, ended): (Instant, Instant),
        endpoint: SocketAddr,
        outcome: Option<&Result<Response<UpstreamBody>, ProxyError>>,
    ) {
        let (start, end) = (self.wall_at(started), self.wall_at(ended));
        let Some(recording) = self.recording.as_deref_mut() else {
            return;
        };
        let (status, error) = match outcome {
            Some(Ok(response)) => (Some(response.status().as_u16()), None),
            Some(Err(error)) => (None, Some(error.code())),
            None => (None, Some(ProxyError::Timeout.code())),
        };
        recording.attempts.push(AttemptSpan {
            span_id: self.attempt_id,
            start,
            end,
            endpoint: Some(endpoint),
            status,
            error,
            part: None,
        });
    }

    /// The trace of one part of a composed response (`compose.rs`): the same trace and server
    /// span, so that its attempts are children of the request's span, with attempts of its
    /// own (parts run concurrently, each with its own `Disposition`). Its attempts come back
    /// with [`RequestTrace::join`].
    pub(crate) fn fork(&self) -> RequestTrace {
        RequestTrace {
            trace_id: self.trace_id,
            span_id: self.span_id,
            parent: self.parent,
            sampled: self.sampled,
            wall: self.wall,
            start: self.start,
            attempt_id: self.span_id,
            recording: self.recording.as_ref().map(|recording| {
                Box::new(Recording {
                    head: None,
                    user_agent: None,
                    origin: recording.origin,
                    attempts: Vec::new(),
                })
            }),
        }
    }

    /// Whether the request is sampled (its spans are recorded).
    pub(crate) fn is_recording(&self) -> bool {
        self.recording.is_some()
    }

    /// Takes the attempts of a part's trace (from [`RequestTrace::fork`]) into this one,
    /// marked with the part.
    pub(crate) fn join(&mut self, part: RequestTrace, tag: &Arc<telemetry::trace::PartTag>) {
        let (Some(recording), Some(theirs)) = (self.recording.as_deref_mut(), part.recording)
        else {
            return;
        };
        recording
            .attempts
            .extend(theirs.attempts.into_iter().map(|mut attempt| {
                attempt.part = Some(Arc::clone(tag));
                attempt
            }));
    }

    /// A sampled request's access-log head, when `stack.rs` has none of its own.
    pub(crate) fn take_head(&mut self) -> Option<LogHead> {
        self.recording.as_deref_mut().and_then(|r| r.head.take())
    }

    /// The server span of a sampled request (its end, status and bytes are filled in when the
    /// response ends: `body.rs`).
    pub(crate) fn into_span(
        self,
        route: Option<Arc<str>>,
        backend: Option<Arc<str>>,
        head: &LogHead,
    ) -> Option<Box<ServerSpan>> {
        let recording = self.recording?;
        let Recording {
            user_agent,
            origin,
            attempts,
            ..
        } = *recording;
        let (path, query) = match head.path.split_once('?') {
            Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
            None => (head.path.clone(), None),
        };
        Some(Box::new(ServerSpan {
            trace_id: self.trace_id,
            span_id: self.span_id,
            parent: self.parent.map(|p| p.span_id),
            start: self.wall,
            end: self.wall,
            method: head.method.as_str().to_owned(),
            path,
            query,
            scheme: origin.scheme,
            host: router::strip_port(&head.host).to_owned(),
            port: origin.port,
            peer: origin.peer,
            client: origin.client,
            protocol_version: head
                .protocol
                .strip_prefix("HTTP/")
                .map_or("1.1", |v| if v == "2.0" { "2" } else { v }),
            user_agent,
            status: 0,
            route,
            backend,
            bytes_sent: 0,
            error: None,
            attempts,
        }))
    }

    fn wall_at(&self, instant: Instant) -> SystemTime {
        self.wall + instant.saturating_duration_since(self.start)
    }
}

/// The caller's context: `traceparent` first (W3C), then `b3`, then `X-B3-*`. An invalid
/// header counts as none.
fn extract(headers: &HeaderMap) -> Option<RemoteParent> {
    if let Some(value) = headers.get(&TRACEPARENT) {
        return context::parse_traceparent(value.as_bytes());
    }
    if let Some(value) = headers.get(&B3) {
        return context::parse_b3_single(value.as_bytes());
    }
    let trace_id = headers.get(&B3_TRACE_ID)?;
    let span_id = headers.get(&B3_SPAN_ID)?;
    context::parse_b3_multi(
        trace_id.as_bytes(),
        span_id.as_bytes(),
        headers.get(&B3_SAMPLED).map(HeaderValue::as_bytes),
        headers.get(&B3_FLAGS).map(HeaderValue::as_bytes),
    )
}

fn insert(headers: &mut HeaderMap, name: &HeaderName, value: &[u8]) {
    // Hex digits and dashes: always a valid field value.
    if let Ok(value) = HeaderValue::from_bytes(value) {
        headers.insert(name.clone(), value);
    }
}

fn random_trace_id(rng: &mut impl RngCore) -> TraceId {
    loop {
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        if id != [0; 16] {
            return id;
        }
    }
}

fn random_span_id(rng: &mut impl RngCore) -> SpanId {
    loop {
        let mut id = [0u8; 8];
        rng.fill_bytes(&mut id);
        if id != [0; 8] {
            return id;
        }
    }
}

#[cfg(test)]
mod tests;
