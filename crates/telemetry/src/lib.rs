//! Telemetry: Prometheus metrics ([`Metrics`]), OpenTelemetry traces ([`trace`]), JSON access
//! logs ([`AccessLog`]) and the in-process traffic history of the admin dashboard
//! ([`LiveStats`]).
//!
//! Metrics and logs are called from the data plane once per request, so they avoid locks beyond what
//! `prometheus-client` takes and allocate nothing per request in the steady state. This crate
//! does not decide what to record: the proxy calls it at the end of each request, and the admin
//! server exposes [`Metrics::encode`] (OpenMetrics) or, for readers that do not ask for
//! OpenMetrics, its [`prometheus_text`].

mod access_log;
mod endpoint_latency;
mod label_value;
mod live_stats;
mod metrics;
mod prometheus_text;
mod semconv;
mod timestamp;
pub mod trace;

pub use access_log::{AccessLog, AccessLogEntry, AccessLogFormat, UnknownAccessLogFormat};
pub use endpoint_latency::EndpointLatencySource;
pub use label_value::LabelValue;
pub use live_stats::{HISTORY_LEN, LiveSample, LiveStats, LiveTotals};
pub use metrics::{
    BreakerStateGauge, ComposedCounter, CompositionMetrics, L4Metrics, METRICS_CONTENT_TYPE,
    Metrics, PartSeries, RequestKey, RequestSeries, UdpFlowCounters,
};
pub use prometheus_text::{PROMETHEUS_TEXT_CONTENT_TYPE, prometheus_text};
pub use semconv::{Hex, HttpMethod, TraceExemplar};
