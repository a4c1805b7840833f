//! [`Metrics`]: every Prometheus series Portcullis exports, in one registry.
//!
//! Names carry the `portcullis_` prefix; counters get `_total` from the OpenMetrics encoder.
//! Series are created on first use, so a route that never served a request has no series.

use std::sync::Weak;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};

use self::duration_histogram::DurationHistogram;
use crate::endpoint_latency::{EndpointLatencyCollector, EndpointLatencySource};
use crate::label_value::LabelValue;
use crate::live_stats::LiveStats;
use crate::semconv::{HttpMethod, ServerDurationLabels, TraceExemplar};

/// The content type of [`Metrics::encode`]'s output (OpenMetrics text, which Prometheus
/// scrapes natively).
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Request duration buckets, in seconds: 0.5 ms to 10 s.
const DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: LabelValue,
    backend: LabelValue,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: LabelValue,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteBackendLabels {
    route: LabelValue,
    backend: LabelValue,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    backend: LabelValue,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectionLabels {
    backend: LabelValue,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    backend: LabelValue,
    endpoint: LabelValue,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EjectionLabels {
    backend: LabelValue,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MirrorLabels {
    route: LabelValue,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TlsConnectionLabels {
    route: LabelValue,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuthLabels {
    policy: LabelValue,
    method: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RateLimitLabels {
    rule: LabelValue,
    scope: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExportLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JwksLabels {
    uri: LabelValue,
    result: &'static str,
}

/// Redis round-trip buckets, in seconds: 0.1 ms to 1 s.
const REDIS_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

type ExemplarHistogramFamily<L> =
    Family<L, HistogramWithExemplars<TraceExemplar>, fn() -> HistogramWithExemplars<TraceExemplar>>;

/// What one answered request's series are labelled with ([`Metrics::request_series`]).
#[derive(Clone, Copy, Debug)]
pub struct RequestKey<'a> {
    /// The matched rule (`HTTPRoute ns/name rules[0]`), empty without one.
    pub route: &'a LabelValue,
    /// The backend the request went to, empty if it went to none.
    pub backend: &'a LabelValue,
    /// The status sent to the client.
    pub code: u16,
    /// The request method.
    pub method: HttpMethod,
    /// `http` or `https`: the listener's scheme (empty when no listener took the request).
    pub scheme: &'static str,
}

/// Every metric Portcullis exports. Share it behind an `Arc`; every method takes `&self` and
/// is safe to call from any thread.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: Family<RouteBackendLabels, DurationHistogram, fn() -> DurationHistogram>,
    server_request_duration: ExemplarHistogramFamily<ServerDurationLabels>,
    upstream_connections_active: Family<BackendLabels, Gauge>,
    upstream_connections: Family<BackendLabels, Counter>,
    downstream_connections_active: Gauge,
    downstream_connections_hibernated: Gauge,
    downstream_connections_closed: Family<ReasonLabels, Counter>,
    downstream_connections_refused: Family<ReasonLabels, Counter>,
    config_reloads: Family<ReloadLabels, Counter>,
    config_last_reload_success: Gauge,
    config_generation: Gauge,
    retries: Family<RouteLabels, Counter>,
    retry_budget_exhausted: Family<RouteLabels, Counter>,
    circuit_breaker_state: Family<BackendLabels, Gauge>,
    circuit_breaker_rejections: Family<RejectionLabels, Counter>,
    endpoint_healthy: Family<EndpointLabels, Gauge>,
    outlier_ejections: Family<EjectionLabels, Counter>,
    mirror_requests: Family<MirrorLabels, Counter>,
    tls_connections: Family<TlsConnectionLabels, Counter>,
    auth_decisions: Family<AuthLabels, Counter>,
    rate_limit_decisions: Family<RateLimitLabels, Counter>,
    redis_duration: Histogram,
    redis_errors: Family<ReasonLabels, Counter>,
    jwks_fetches: Family<JwksLabels, Counter>,
    trace_spans_exported: Family<ExportLabels, Counter>,
    trace_spans_dropped: Counter,
    endpoint_latency: EndpointLatencyCollector,
    live_stats: LiveStats,
    /// TCPRoute, TLSRoute and UDPRoute connections and flows.
    pub l4: L4Metrics,
    /// Composed responses and their parts.
    pub composition: CompositionMetrics,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every series family registered and empty.
    //
    // Long by design: one registration (name, help, family) per exported metric, in one flat
    // list, so that the whole exported surface reads in one place.
    pub fn new() -> Metrics {
        // The OpenTelemetry semantic-convention series go at the root (their names are the
        // convention's); ours under `portcullis_`.
        let mut root = Registry::default();
        let server_request_duration = registered(
            &mut root,
            "http_server_request_duration_seconds",
            "Duration of HTTP server requests (OpenTelemetry semantic convention \
             http.server.request.duration), by method, status code, route and scheme; \
             exemplars carry the trace of sampled requests",
            ExemplarHistogramFamily::<ServerDurationLabels>::new_with_constructor(|| {
                HistogramWithExemplars::new(DURATION_BUCKETS.into_iter())
            }),
        );
        let registry = root.sub_registry_with_prefix("portcullis");
        let endpoint_latency = EndpointLatencyCollector::default();
        registry.register_collector(Box::new(endpoint_latency.clone()));
        let metrics = Metrics {
            requests: registered(
                registry,
                "requests",
                "Requests answered, by route, backend and status code",
                Family::<RequestLabels, Counter>::default(),
            ),
            request_duration: registered(
                registry,
                "request_duration_seconds",
                "Time from request head received to response head ready (from the backend, or the gateway's own), by route \
                 and backend",
                Family::new_with_constructor(|| DurationHistogram::new(&DURATION_BUCKETS)),
            ),
            upstream_connections_active: registered(
                registry,
                "upstream_connections_active",
                "Open connections to upstream endpoints, by backend",
                Family::<BackendLabels, Gauge>::default(),
            ),
            upstream_connections: registered(
                registry,
                "upstream_connections",
                "Connections opened to upstream endpoints, by backend",
                Family::<BackendLabels, Counter>::default(),
            ),
            downstream_connections_active: registered(
                registry,
                "downstream_connections_active",
                "Open client connections",
                Gauge::default(),
            ),
            downstream_connections_hibernated: registered(
                registry,
                "downstream_connections_hibernated",
                "Open client connections parked while idle (HTTP/1.1 keep-alive connections \
                 waiting for a request without a task or buffers)",
                Gauge::default(),
            ),
            downstream_connections_closed: registered(
                registry,
                "downstream_connections_closed_by_gateway",
                "Client connections the gateway closed, by reason (header_timeout, idle_timeout, \
                 write_stall, rapid_reset, control_flood)",
                Family::<ReasonLabels, Counter>::default(),
            ),
            downstream_connections_refused: registered(
                registry,
                "downstream_connections_refused",
                "Client connections refused at accept, by reason (listener_limit, global_limit, \
                 fd_limit)",
                Family::<ReasonLabels, Counter>::default(),
            ),
            config_reloads: registered(
                registry,
                "config_reloads",
                "Config reloads, by result",
                Family::<ReloadLabels, Counter>::default(),
            ),
            config_last_reload_success: registered(
                registry,
                "config_last_reload_success",
                "1 if the last config reload succeeded, 0 if it failed",
                Gauge::default(),
            ),
            config_generation: registered(
                registry,
                "config_generation",
                "Generation of the config in use",
                Gauge::default(),
            ),
            retries: registered(
                registry,
                "retries",
                "Retries of requests to backends, by route rule",
                Family::<RouteLabels, Counter>::default(),
            ),
            retry_budget_exhausted: registered(
                registry,
                "retry_budget_exhausted",
                "Retries not made because the route rule's retry budget was spent, by route rule",
                Family::<RouteLabels, Counter>::default(),
            ),
            circuit_breaker_state: registered(
                registry,
                "circuit_breaker_state",
                "Error-rate breaker state by backend: 0 closed, 1 open, 2 half-open",
                Family::<BackendLabels, Gauge>::default(),
            ),
            circuit_breaker_rejections: registered(
                registry,
                "circuit_breaker_rejections",
                "Requests answered 503 by the circuit breaker, by backend and reason",
                Family::<RejectionLabels, Counter>::default(),
            ),
            endpoint_healthy: registered(
                registry,
                "endpoint_healthy",
                "Active health check verdict per endpoint: 1 healthy, 0 unhealthy",
                Family::<EndpointLabels, Gauge>::default(),
            ),
            outlier_ejections: registered(
                registry,
                "outlier_ejections",
                "Endpoints ejected by outlier detection, by backend and reason",
                Family::<EjectionLabels, Counter>::default(),
            ),
            mirror_requests: registered(
                registry,
                "mirror_requests",
                "Mirrored copies of requests (RequestMirror), by route rule and result",
                Family::<MirrorLabels, Counter>::default(),
            ),
            tls_connections: registered(
                registry,
                "tls_connections",
                "Connections on TLS listeners (TLSRoute), by route rule and result",
                Family::<TlsConnectionLabels, Counter>::default(),
            ),
            auth_decisions: registered(
                registry,
                "auth_decisions",
                "SecurityPolicy decisions, by policy, method (oidc, jwt, api_key, basic, \
                 ext_auth, authorization) and result (allowed, or why the request was refused)",
                Family::<AuthLabels, Counter>::default(),
            ),
            rate_limit_decisions: registered(
                registry,
                "rate_limit_decisions",
                "RateLimitPolicy decisions, by rule, scope (local, global) and result (allowed, \
                 limited, shadow_limited, failed_open, failed_closed)",
                Family::<RateLimitLabels, Counter>::default(),
            ),
            redis_duration: registered(
                registry,
                "redis_request_duration_seconds",
                "Round trips to Redis for global rate limits that got an answer",
                Histogram::new(REDIS_BUCKETS),
            ),
            redis_errors: registered(
                registry,
                "redis_errors",
                "Global rate-limit decisions Redis did not answer, by reason (timeout, \
                 connection, script, not_configured)",
                Family::<ReasonLabels, Counter>::default(),
            ),
            jwks_fetches: registered(
                registry,
                "jwks_fetches",
                "Fetches of remote JSON Web Key Sets, by URI and result (success, error, \
                 invalid)",
                Family::<JwksLabels, Counter>::default(),
            ),
            trace_spans_exported: registered(
                registry,
                "trace_spans_exported",
                "Spans handed to the OTLP exporter, by result (success, error: the collector \
                 refused them or did not answer in time)",
                Family::<ExportLabels, Counter>::default(),
            ),
            trace_spans_dropped: registered(
                registry,
                "trace_spans_dropped",
                "Spans of sampled requests dropped because the export queue was full",
                Counter::default(),
            ),
            server_request_duration,
            endpoint_latency,
            live_stats: LiveStats::new(),
            l4: L4Metrics::register(registry),
            composition: CompositionMetrics::register(registry),
            registry: Registry::default(),
        };
        Metrics {
            registry: root,
            ..metrics
        }
    }

    /// Counts one answered request in `portcullis_requests_total{route,backend,code}` and
    /// observes its duration in `portcullis_request_duration_seconds{route,backend}` and
    /// `http_server_request_duration_seconds{http_request_method,http_response_status_code,http_route,url_scheme}`
    /// (with `exemplar`, the request's trace when it was sampled).
    ///
    /// Looks the series up by their labels; a caller that records into the same series again
    /// and again keeps a [`RequestSeries`] instead.
    pub fn record_request(
        &self,
        key: &RequestKey<'_>,
        duration: Duration,
        exemplar: Option<TraceExemplar>,
    ) {
        self.request_series(key).record(duration, exemplar);
    }

    /// The series [`Metrics::record_request`] records into for these labels, created (empty)
    /// if they do not exist yet. The handles share their values with the registry, so
    /// recording through them exports exactly what `record_request` would.
    pub fn request_series(&self, key: &RequestKey<'_>) -> RequestSeries {
        let labels = RequestLabels {
            route: key.route.clone(),
            backend: key.backend.clone(),
            code: key.code,
        };
        let requests = self.requests.get_or_create_owned(&labels);
        let duration = self
            .request_duration
            .get_or_create_owned(&RouteBackendLabels {
                route: labels.route,
                backend: labels.backend,
            });
        let server_duration =
            self.server_request_duration
                .get_or_create_owned(&ServerDurationLabels {
                    http_request_method: key.method,
                    http_response_status_code: key.code,
                    http_route: key.route.clone(),
                    url_scheme: key.scheme,
                });
        RequestSeries {
            requests,
            duration,
            server_duration,
        }
    }

    /// A connection to an endpoint of `backend` opened: raises
    /// `portcullis_upstream_connections_active{backend}` and counts
    /// `portcullis_upstream_connections_total{backend}`.
    pub fn upstream_connection_opened(&self, backend: &LabelValue) {
        let labels = BackendLabels {
            backend: backend.clone(),
        };
        self.upstream_connections_active
            .get_or_create(&labels)
            .inc();
        self.upstream_connections.get_or_create(&labels).inc();
    }

    /// A connection to an endpoint of `backend` closed: lowers
    /// `portcullis_upstream_connections_active{backend}`. Call once per
    /// [`Metrics::upstream_connection_opened`].
    pub fn upstream_connection_closed(&self, backend: &LabelValue) {
        let labels = BackendLabels {
            backend: backend.clone(),
        };
        self.upstream_connections_active
            .get_or_create(&labels)
            .dec();
    }

    /// A client connection was accepted: raises `portcullis_downstream_connections_active`.
    pub fn downstream_connection_opened(&self) {
        self.downstream_connections_active.inc();
    }

    /// `delta` client connections were parked while idle (positive) or left the idle set
    /// (negative): moves `portcullis_downstream_connections_hibernated`.
    pub fn downstream_connection_hibernated(&self, delta: i64) {
        self.downstream_connections_hibernated.inc_by(delta);
    }

    /// The gateway closed a client connection for `reason`: counts
    /// `portcullis_downstream_connections_closed_by_gateway_total{reason}`.
    pub fn downstream_connection_closed_by_gateway(&self, reason: &'static str) {
        self.downstream_connections_closed
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// A client connection was refused at accept for `reason`: counts
    /// `portcullis_downstream_connections_refused_total{reason}`.
    pub fn downstream_connection_refused(&self, reason: &'static str) {
        self.downstream_connections_refused
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// A client connection closed: lowers `portcullis_downstream_connections_active`. Call once
    /// per [`Metrics::downstream_connection_opened`].
    pub fn downstream_connection_closed(&self) {
        self.downstream_connections_active.dec();
    }

    /// Sets `portcullis_endpoint_healthy{backend,endpoint}` to the active health check's
    /// verdict (1 healthy, 0 unhealthy).
    pub fn endpoint_health(&self, backend: &LabelValue, endpoint: &LabelValue, healthy: bool) {
        let labels = EndpointLabels {
            backend: backend.clone(),
            endpoint: endpoint.clone(),
        };
        self.endpoint_healthy
            .get_or_create(&labels)
            .set(i64::from(healthy));
    }

    /// Drops the `portcullis_endpoint_healthy{backend,endpoint}` series of an endpoint that left
    /// its backend.
    pub fn endpoint_health_removed(&self, backend: &LabelValue, endpoint: &LabelValue) {
        let labels = EndpointLabels {
            backend: backend.clone(),
            endpoint: endpoint.clone(),
        };
        self.endpoint_healthy.remove(&labels);
    }

    /// Outlier detection ejected an endpoint: counts
    /// `portcullis_outlier_ejections_total{backend,reason}`. `reason` is a fixed word
    /// (`consecutive-5xx`, `consecutive-gateway-errors`, `latency`).
    pub fn outlier_ejected(&self, backend: &LabelValue, reason: &'static str) {
        let labels = EjectionLabels {
            backend: backend.clone(),
            reason,
        };
        self.outlier_ejections.get_or_create(&labels).inc();
    }

    /// A request is being retried: counts `portcullis_retries_total{route}`.
    pub fn retry_attempted(&self, route: &str) {
        let labels = RouteLabels {
            route: LabelValue::from(route),
        };
        self.retries.get_or_create(&labels).inc();
    }

    /// A retry was not made because the rule's retry budget was spent: counts
    /// `portcullis_retry_budget_exhausted_total{route}`.
    pub fn retry_budget_exhausted(&self, route: &str) {
        let labels = RouteLabels {
            route: LabelValue::from(route),
        };
        self.retry_budget_exhausted.get_or_create(&labels).inc();
    }

    /// Sets `portcullis_circuit_breaker_state{backend}` (0 closed, 1 open, 2 half-open).
    pub fn circuit_breaker_state(&self, backend: &LabelValue, state: i64) {
        self.circuit_breaker_gauge(backend).set(state);
    }

    /// The `portcullis_circuit_breaker_state{backend}` series, created (at 0, closed) if it does
    /// not exist yet, for callers that set it again and again.
    pub fn circuit_breaker_gauge(&self, backend: &LabelValue) -> BreakerStateGauge {
        let labels = BackendLabels {
            backend: backend.clone(),
        };
        BreakerStateGauge(self.circuit_breaker_state.get_or_create_owned(&labels))
    }

    /// The circuit breaker answered a request: counts
    /// `portcullis_circuit_breaker_rejections_total{backend,reason}`. `reason` is a fixed word
    /// (`parallel`, `pending`, `breaker-open`).
    pub fn circuit_breaker_rejected(&self, backend: &LabelValue, reason: &'static str) {
        let labels = RejectionLabels {
            backend: backend.clone(),
            reason,
        };
        self.circuit_breaker_rejections.get_or_create(&labels).inc();
    }

    /// A mirrored copy of a request finished: counts
    /// `portcullis_mirror_requests_total{route,result}`. `result` is a fixed word chosen by the
    /// caller (`success`, `error`, ...), never request data.
    pub fn mirror_request_finished(&self, route: &str, result: &'static str) {
        let labels = MirrorLabels {
            route: LabelValue::from(route),
            result,
        };
        self.mirror_requests.get_or_create(&labels).inc();
    }

    /// A connection on a TLS listener ended: counts
    /// `portcullis_tls_connections_total{route,result}`. `route` is empty when no route was
    /// found; `result` is a fixed word chosen by the caller (`forwarded`, `no_route`, ...),
    /// never client data.
    pub fn tls_connection_finished(&self, route: &str, result: &'static str) {
        let labels = TlsConnectionLabels {
            route: LabelValue::from(route),
            result,
        };
        self.tls_connections.get_or_create(&labels).inc();
    }

    /// A SecurityPolicy phase decided: counts
    /// `portcullis_auth_decisions_total{policy,method,result}`. `method` and `result` are fixed
    /// words chosen by the caller (`jwt`, `allowed`, `invalid_token`, ...), never request data.
    pub fn auth_decision(&self, policy: &str, method: &'static str, result: &'static str) {
        let labels = AuthLabels {
            policy: LabelValue::from(policy),
            method,
            result,
        };
        self.auth_decisions.get_or_create(&labels).inc();
    }

    /// A rate-limit rule decided: counts
    /// `portcullis_rate_limit_decisions_total{rule,scope,result}` (`scope` is `local` or
    /// `global`; `result` a fixed word: `allowed`, `limited`, `shadow_limited`, `failed_open`,
    /// `failed_closed`).
    pub fn rate_limit_decision(&self, rule: &str, scope: &'static str, result: &'static str) {
        let labels = RateLimitLabels {
            rule: LabelValue::from(rule),
            scope,
            result,
        };
        self.rate_limit_decisions.get_or_create(&labels).inc();
    }

    /// Redis answered a global rate-limit decision after `duration`: observes
    /// `portcullis_redis_request_duration_seconds`.
    pub fn redis_answered(&self, duration: Duration) {
        self.redis_duration.observe(duration.as_secs_f64());
    }

    /// Redis did not answer a decision: counts `portcullis_redis_errors_total{reason}`
    /// (`timeout`, `connection`, `script`, `not_configured`).
    pub fn redis_failed(&self, reason: &'static str) {
        self.redis_errors
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// A remote JWKS fetch finished: counts `portcullis_jwks_fetches_total{uri,result}`
    /// (`success`, `error`, `invalid`).
    pub fn jwks_fetched(&self, uri: &str, result: &'static str) {
        let labels = JwksLabels {
            uri: LabelValue::from(uri),
            result,
        };
        self.jwks_fetches.get_or_create(&labels).inc();
    }

    /// A config reload finished: counts `portcullis_config_reloads_total{result="success"|"error"}`
    /// and sets `portcullis_config_last_reload_success` (1 or 0). On success,
    /// Counts `spans` dropped at a full export queue.
    pub fn trace_spans_dropped(&self, spans: u64) {
        self.trace_spans_dropped.inc_by(spans);
    }

    /// Counts `spans` handed to the exporter, which took them (`ok`) or not.
    pub fn trace_spans_exported(&self, spans: u64, ok: bool) {
        let result = if ok { "success" } else { "error" };
        self.trace_spans_exported
            .get_or_create(&ExportLabels { result })
            .inc_by(spans);
    }

    /// `portcullis_config_generation` becomes `generation`; a failed reload keeps serving the
    /// previous generation, so the gauge keeps it too.
    pub fn config_reloaded(&self, ok: bool, generation: u64) {
        let result = if ok { "success" } else { "error" };
        self.config_reloads
            .get_or_create(&ReloadLabels { result })
            .inc();
        self.config_last_reload_success.set(i64::from(ok));
        if ok {
            self.config_generation
                .set(i64::try_from(generation).unwrap_or(i64::MAX));
        }
    }

    /// Installs the source of `portcullis_endpoint_latency_ewma_seconds`, read at every scrape
    /// (held weakly: the series disappears when the source is dropped).
    pub fn set_endpoint_latency_source(&self, source: Weak<dyn EndpointLatencySource>) {
        self.endpoint_latency.set_source(source);
    }

    /// The per-second request rate, error rate and latency of the last minutes, for the admin
    /// dashboard. Not exported in [`Metrics::encode`]: it summarises what
    /// `portcullis_requests_total` and `portcullis_request_duration_seconds` already export.
    pub fn live_stats(&self) -> &LiveStats {
        &self.live_stats
    }

    /// Every series in the OpenMetrics text exposition format (see [`METRICS_CONTENT_TYPE`]),
    /// ending with `# EOF`.
    pub fn encode(&self) -> String {
        let mut text = String::with_capacity(4096);
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail and our label encoders never fail");
        text
    }
}

/// The three series one answered request records into, from [`Metrics::request_series`]:
/// `portcullis_requests_total{route,backend,code}`,
/// `portcullis_request_duration_seconds{route,backend}` and
/// `http_server_request_duration_seconds{...}`. Cheap to clone (clones share the values); keeps
/// the series alive but never removes or creates any, so holding it exports nothing new.
#[derive(Clone, Debug)]
pub struct RequestSeries {
    requests: Counter,
    duration: DurationHistogram,
    server_duration: HistogramWithExemplars<TraceExemplar>,
}

impl RequestSeries {
    /// Counts one answered request and observes its duration, with `exemplar` (a sampled
    /// request's trace) on the semantic-convention histogram. Lock-free for the counter and
    /// our histogram; the semantic-convention one (prometheus-client's, for its exemplars)
    /// takes its own per-series lock.
    pub fn record(&self, duration: Duration, exemplar: Option<TraceExemplar>) {
        self.requests.inc();
        self.duration.observe(duration);
        self.server_duration
            .observe(duration.as_secs_f64(), exemplar, None);
    }
}

/// One backend's `portcullis_circuit_breaker_state` series, from
/// [`Metrics::circuit_breaker_gauge`]. Cheap to clone (clones share the value).
#[derive(Clone, Debug)]
pub struct BreakerStateGauge(Gauge);

impl BreakerStateGauge {
    /// Sets the gauge (0 closed, 1 open, 2 half-open). Writes only when the value differs, so
    /// calling it after every request does not bounce the value's cache line between threads.
    pub fn set(&self, state: i64) {
        if self.0.get() != state {
            self.0.set(state);
        }
    }

    /// The value exported now.
    pub fn get(&self) -> i64 {
        self.0.get()
    }
}

/// Registers `metric` under `name` with its help text, and returns it (the registry keeps a
/// handle sharing its values).
fn registered<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

mod composition;
mod duration_histogram;
mod l4;
#[cfg(test)]
mod tests;

pub use composition::{ComposedCounter, CompositionMetrics, PartSeries};
pub use l4::{L4Metrics, UdpFlowCounters};
