//! What a request leaves behind: its [`Disposition`] (where it went), the metric series it
//! counts in, and the facts its access-log line keeps.
//!
//! It decides nothing about the request; `stack.rs` fills the disposition as the phases run and
//! calls [`record_request`] once the response head is known. The access-log line itself is
//! written when the response body ends (`body.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{Request, Version, header};
use telemetry::{HttpMethod, LabelValue, RequestKey, TraceExemplar};

use crate::cors;
use crate::plane::{DataPlane, Live};
use crate::series_cache::SeriesKey;

/// Where the request went, for metrics and the access log, and the CORS headers every
/// response of its rule carries.
///
/// `rule` and `backend_index` are set together with `route` and `backend`, and key the
/// request's metric series in the generation's cache (`Live::series`).
#[derive(Default)]
pub(crate) struct Disposition {
    pub(crate) route: Option<Arc<str>>,
    /// Address of the matched rule in the live snapshot.
    pub(crate) rule: Option<usize>,
    pub(crate) backend: Option<Arc<str>>,
    /// Index of `backend` in the live config.
    pub(crate) backend_index: Option<usize>,
    pub(crate) endpoint: Option<SocketAddr>,
    pub(crate) cors: Option<cors::CorsGrant>,
    /// The listener's scheme (`http`, `https`), once a listener took the request.
    pub(crate) scheme: &'static str,
    /// The request's trace, when tracing is on (`trace.rs`).
    pub(crate) trace: Option<Box<crate::trace::RequestTrace>>,
    /// When the last attempt's response head arrived (its verdict's clock reading), which ends
    /// the request's duration when that response is the answer.
    pub(crate) head_at: Option<std::time::Instant>,
}

/// Counts the request in the dashboard's live stats (`telemetry::LiveStats`, a few relaxed
/// atomic adds) and in `portcullis_requests_total`, `portcullis_request_duration_seconds` and
/// `http_server_request_duration_seconds` (with `exemplar`, its trace when sampled):
/// through the generation's series cache when it matched a rule (the common case), by labels
/// otherwise (no listener, no route: the labels are empty).
pub(crate) fn record_request(
    plane: &DataPlane,
    live: &Live,
    disposition: &Disposition,
    (method, status): (HttpMethod, u16),
    duration: Duration,
    exemplar: Option<TraceExemplar>,
) {
    plane.metrics.live_stats().record(status, duration);
    let label = |value: &Option<Arc<str>>| {
        value
            .clone()
            .map_or_else(LabelValue::empty, LabelValue::from)
    };
    let series = || {
        plane.metrics.request_series(&RequestKey {
            route: &label(&disposition.route),
            backend: &label(&disposition.backend),
            code: status,
            method,
            scheme: disposition.scheme,
        })
    };
    match disposition.rule {
        Some(rule) => {
            let key = SeriesKey {
                rule,
                backend: disposition.backend_index,
                code: status,
                method,
                scheme: disposition.scheme,
            };
            live.series.record_request(key, duration, exemplar, series);
        }
        None => series().record(duration, exemplar),
    }
}

/// The request facts the access log keeps (copied before the request moves upstream).
pub(crate) struct LogHead {
    /// When the request arrived (wall clock, for the log line's timestamp).
    pub(crate) time: SystemTime,
    pub(crate) method: http::Method,
    pub(crate) host: String,
    pub(crate) path: String,
    pub(crate) protocol: &'static str,
    pub(crate) bytes_received: u64,
}

impl LogHead {
    pub(crate) fn of<B>(request: &Request<B>) -> LogHead {
        let (method, uri, headers, version) = (
            request.method(),
            request.uri(),
            request.headers(),
            request.version(),
        );
        LogHead::from_head(method, uri, headers, version, SystemTime::now())
    }

    /// The head of a request that arrived at `time`.
    pub(crate) fn of_parts(parts: &http::request::Parts, time: SystemTime) -> LogHead {
        LogHead::from_head(
            &parts.method,
            &parts.uri,
            &parts.headers,
            parts.version,
            time,
        )
    }

    fn from_head(
        method: &http::Method,
        uri: &http::Uri,
        headers: &http::HeaderMap,
        version: Version,
        time: SystemTime,
    ) -> LogHead {
        LogHead {
            time,
            method: method.clone(),
            host: request_host(uri, headers).unwrap_or("").to_owned(),
            path: uri.path_and_query().map_or("/", |p| p.as_str()).to_owned(),
            protocol: version_text(version),
            // Declared length; streamed bodies without one count as 0.
            bytes_received: headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        }
    }
}

fn version_text(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// The virtual host: `:authority` (HTTP/2, or an absolute-form HTTP/1.1 target) or `Host`.
pub(crate) fn request_host<'a>(
    uri: &'a http::Uri,
    headers: &'a http::HeaderMap,
) -> Option<&'a str> {
    host_of(uri, headers.get(header::HOST))
}

/// [`request_host`] with the `Host` field already looked up.
pub(crate) fn host_of<'a>(
    uri: &'a http::Uri,
    host: Option<&'a http::HeaderValue>,
) -> Option<&'a str> {
    match uri.authority() {
        Some(authority) => Some(authority.as_str()),
        None => host.and_then(|v| v.to_str().ok()),
    }
}
