//! The OpenTelemetry HTTP semantic conventions' names for what a request is: its method as the
//! conventions spell it ([`HttpMethod`]), the labels of `http.server.request.duration`
//! exported as `http_server_request_duration_seconds` ([`ServerDurationLabels`]), and the
//! exemplar linking a histogram bucket to a sampled trace ([`TraceExemplar`]).

use std::fmt::{self, Write};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};

use crate::label_value::LabelValue;

/// `http.request.method`: one of the methods of RFC 9110 and PATCH, or `_OTHER` for any
/// other (so a client inventing methods cannot create series).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum HttpMethod {
    /// GET.
    #[default]
    Get,
    /// HEAD.
    Head,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// DELETE.
    Delete,
    /// CONNECT.
    Connect,
    /// OPTIONS.
    Options,
    /// TRACE.
    Trace,
    /// PATCH.
    Patch,
    /// Any other method.
    Other,
}

impl HttpMethod {
    /// The method named `method` (case-sensitive, as methods are).
    pub fn of(method: &str) -> HttpMethod {
        match method {
            "GET" => HttpMethod::Get,
            "HEAD" => HttpMethod::Head,
            "POST" => HttpMethod::Post,
            "PUT" => HttpMethod::Put,
            "DELETE" => HttpMethod::Delete,
            "CONNECT" => HttpMethod::Connect,
            "OPTIONS" => HttpMethod::Options,
            "TRACE" => HttpMethod::Trace,
            "PATCH" => HttpMethod::Patch,
            _ => HttpMethod::Other,
        }
    }

    /// The conventions' spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Connect => "CONNECT",
            HttpMethod::Options => "OPTIONS",
            HttpMethod::Trace => "TRACE",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Other => "_OTHER",
        }
    }
}

impl EncodeLabelValue for HttpMethod {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

/// The labels of `http_server_request_duration_seconds`: the conventions' attribute names with
/// dots as underscores.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ServerDurationLabels {
    pub(crate) http_request_method: HttpMethod,
    pub(crate) http_response_status_code: u16,
    /// The matched rule: Gateway API routes have no path template, and the rule is what an
    /// operator looks for.
    pub(crate) http_route: LabelValue,
    pub(crate) url_scheme: &'static str,
}

/// A sampled request's trace and span, attached as an OpenMetrics exemplar
/// (`# {trace_id="...",span_id="..."} 0.0042`) to the bucket its duration fell in: Grafana
/// and Prometheus link the bucket to the trace by the `trace_id` label. Hex encoded at export;
/// building one allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TraceExemplar {
    /// The W3C trace id.
    pub trace_id: Hex<16>,
    /// The request's server span.
    pub span_id: Hex<8>,
}

/// Bytes shown as lowercase hex (trace and span ids).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Hex<const N: usize>(pub [u8; N]);

impl<const N: usize> fmt::Display for Hex<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl<const N: usize> EncodeLabelValue for Hex<N> {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), fmt::Error> {
        write!(encoder, "{self}")
    }
}
