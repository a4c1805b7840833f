//! [`Tracer`]: where finished request spans go. A bounded queue (full: the span is dropped and
//! counted, the request never waits), one task that batches the queue and hands each batch to
//! the OTLP exporter (gRPC or HTTP/protobuf), and a flush at shutdown.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanExporter as _;
use tokio::sync::{mpsc, oneshot};

use crate::Metrics;
use crate::trace::sampler::Sampler;
use crate::trace::span::ServerSpan;

/// How spans travel to the collector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OtlpProtocol {
    /// OTLP/gRPC (port 4317 by convention).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (port 4318, `POST /v1/traces`): the OpenTelemetry
    /// default.
    #[default]
    HttpProtobuf,
}

impl std::str::FromStr for OtlpProtocol {
    type Err = String;

    /// `grpc` or `http/protobuf` (the `OTEL_EXPORTER_OTLP_PROTOCOL` values; `http/json` is not
    /// offered).
    fn from_str(text: &str) -> Result<OtlpProtocol, String> {
        match text.trim() {
            "grpc" => Ok(OtlpProtocol::Grpc),
            "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
            other => Err(format!(
                "unsupported OTLP protocol {other:?}: expected grpc or http/protobuf"
            )),
        }
    }
}

/// The tracing settings (command line and `OTEL_*` environment, resolved by the binary).
#[derive(Clone, Debug, PartialEq)]
pub struct TracingSettings {
    /// The collector: for gRPC its URL (`http://collector:4317`); for HTTP the base URL, to
    /// which `/v1/traces` is added unless the path already ends with it. `None`: the
    /// exporter's own resolution (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, then
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub endpoint: Option<String>,
    /// gRPC or HTTP/protobuf.
    pub protocol: OtlpProtocol,
    /// The default sampler (a Gateway's ClientTrafficPolicy `tracing` may replace it for its
    /// listeners).
    pub sampler: Sampler,
    /// Requests whose spans may wait for export (`OTEL_BSP_MAX_QUEUE_SIZE`, 2048).
    pub queue_size: usize,
    /// Requests per export at most (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, 512).
    pub batch_size: usize,
    /// How long a span may wait for its batch to fill (`OTEL_BSP_SCHEDULE_DELAY`, 5 s in the
    /// spec; 1 s here, so that a trace shows up while the person is still looking).
    pub delay: Duration,
    /// Time one export may take (`OTEL_BSP_EXPORT_TIMEOUT`, 30 s).
    pub export_timeout: Duration,
}

impl Default for TracingSettings {
    fn default() -> TracingSettings {
        TracingSettings {
            endpoint: None,
            protocol: OtlpProtocol::default(),
            sampler: Sampler::default(),
            queue_size: 2048,
            batch_size: 512,
            delay: Duration::from_secs(1),
            export_timeout: Duration::from_secs(30),
        }
    }
}

/// The tracing choices of the command line; each falls back to its `OTEL_*` variable.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TracingFlags {
    /// `--otlp-endpoint`.
    pub endpoint: Option<String>,
    /// `--otlp-protocol`.
    pub protocol: Option<OtlpProtocol>,
    /// `--trace-sampler`.
    pub sampler: Option<Sampler>,
}

impl TracingSettings {
    /// The settings of `flags`, completed from the environment (`var` reads a variable):
    /// tracing is on when `--otlp-endpoint`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` names a collector, unless `OTEL_SDK_DISABLED=true` or
    /// `OTEL_TRACES_EXPORTER=none`. Also read: `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL`,
    /// `OTEL_TRACES_SAMPLER(_ARG)`, `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`,
    /// `OTEL_BSP_SCHEDULE_DELAY` and `OTEL_BSP_EXPORT_TIMEOUT` (milliseconds); the exporter
    /// itself reads `OTEL_EXPORTER_OTLP_(TRACES_)HEADERS` and `_TIMEOUT`. `None`: tracing off.
    ///
    /// # Errors
    ///
    /// A value that cannot be used, naming its variable.
    pub fn resolve(
        flags: TracingFlags,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<TracingSettings>, String> {
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        if set("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
            || set("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim() == "none")
        {
            return Ok(None);
        }
        let from_env = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
            || set("OTEL_EXPORTER_OTLP_ENDPOINT").is_some();
        if flags.endpoint.is_none() && !from_env {
            return Ok(None);
        }
        let mut settings = TracingSettings {
            endpoint: flags.endpoint,
            ..TracingSettings::default()
        };
        settings.protocol = match flags.protocol {
            Some(protocol) => protocol,
            None => match [
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ]
            .into_iter()
            .find_map(|name| set(name).map(|value| (name, value)))
            {
                Some((name, value)) => value.parse().map_err(|e| format!("{name}: {e}"))?,
                None => OtlpProtocol::default(),
            },
        };
        settings.sampler = match flags.sampler {
            Some(sampler) => sampler,
            None => match set("OTEL_TRACES_SAMPLER") {
                Some(name) => {
                    let arg = set("OTEL_TRACES_SAMPLER_ARG");
                    Sampler::from_env_values(&name, arg.as_deref())
                        .map_err(|e| format!("OTEL_TRACES_SAMPLER: {e}"))?
                }
                None => Sampler::default(),
            },
        };
        let number = |name: &str| -> Result<Option<u64>, String> {
            set(name)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .map_err(|_| format!("{name}: {v:?} is not a whole number"))
                })
                .transpose()
        };
        let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX).max(1);
        if let Some(n) = number("OTEL_BSP_MAX_QUEUE_SIZE")? {
            settings.queue_size = count(n);
        }
        if let Some(n) = number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")? {
            settings.batch_size = count(n);
        }
        if let Some(ms) = number("OTEL_BSP_SCHEDULE_DELAY")? {
            settings.delay = Duration::from_millis(ms);
        }
        if let Some(ms) = number("OTEL_BSP_EXPORT_TIMEOUT")? {
            settings.export_timeout = Duration::from_millis(ms.max(1));
        }
        Ok(Some(settings))
    }
}

/// The exporter could not be built from the settings.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the OTLP trace exporter: {0}")]
pub struct TracingError(String);

/// Takes finished request spans and exports them in the background.
#[derive(Debug)]
pub struct Tracer {
    sampler: Sampler,
    queue: mpsc::Sender<ServerSpan>,
    metrics: Arc<Metrics>,
    stop: Mutex<Option<oneshot::Sender<oneshot::Sender<()>>>>,
}

impl Tracer {
    /// Builds the exporter and starts the export task. Must run inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// The endpoint is not a URL, or the exporter cannot be built.
    pub fn start(
        settings: &TracingSettings,
        metrics: Arc<Metrics>,
    ) -> Result<Tracer, TracingError> {
        let mut exporter = build_exporter(settings)?;
        exporter.set_resource(&resource());
        let (queue, spans) = mpsc::channel(settings.queue_size.max(1));
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(export_loop(
            exporter,
            spans,
            stopped,
            Batching {
                size: settings.batch_size.max(1),
                delay: settings.delay,
                timeout: settings.export_timeout,
            },
            Arc::clone(&metrics),
        ));
        Ok(Tracer {
            sampler: settings.sampler,
            queue,
            metrics,
            stop: Mutex::new(Some(stop)),
        })
    }

    /// The default sampler.
    pub fn sampler(&self) -> Sampler {
        self.sampler
    }

    /// Queues a sampled request's spans for export; when the queue is full they are dropped
    /// (and counted in `portcullis_trace_spans_dropped_total`): tracing never slows a request.
    pub fn submit(&self, span: ServerSpan) {
        let spans = 1 + span.attempts.len() as u64;
        if self.queue.try_send(span).is_err() {
            self.metrics.trace_spans_dropped(spans);
        }
    }

    /// Exports what is queued (waiting at most `timeout`) and stops the export task. Spans
    /// submitted afterwards are dropped.
    pub async fn shutdown(&self, timeout: Duration) {
        let stop = self
            .stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(stop) = stop else { return };
        let (done, finished) = oneshot::channel();
        if stop.send(done).is_ok() {
            let _ = tokio::time::timeout(timeout, finished).await;
        }
    }
}

/// `service.name` is `portcullis` unless `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES`
/// names it; the other `OTEL_RESOURCE_ATTRIBUTES` are kept.
fn resource() -> Resource {
    let named = std::env::var_os("OTEL_SERVICE_NAME").is_some()
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES")
            .is_ok_and(|attributes| attributes.contains("service.name="));
    let builder = Resource::builder().with_attribute(opentelemetry::KeyValue::new(
        "service.version",
        env!("CARGO_PKG_VERSION"),
    ));
    if named {
        builder.build()
    } else {
        builder.with_service_name("portcullis").build()
    }
}

fn build_exporter(
    settings: &TracingSettings,
) -> Result<opentelemetry_otlp::SpanExporter, TracingError> {
    let built = match settings.protocol {
        OtlpProtocol::Grpc => {
            let mut builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
            if let Some(endpoint) = &settings.endpoint {
                check_plain_http(endpoint)?;
                builder = builder.with_endpoint(endpoint.clone());
            }
            builder.build()
        }
        OtlpProtocol::HttpProtobuf => {
            let mut builder = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary);
            if let Some(endpoint) = &settings.endpoint {
                check_plain_http(endpoint)?;
                builder = builder.with_endpoint(http_traces_url(endpoint));
            }
            builder.build()
        }
    };
    built.map_err(|error| TracingError(error.to_string()))
}

/// The collector must be reached over plain HTTP: TLS to the collector is not built in (run a
/// collector beside the gateway, or on the node, as is usual).
fn check_plain_http(endpoint: &str) -> Result<(), TracingError> {
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|error| TracingError(format!("endpoint {endpoint:?} is not a URL: {error}")))?;
    match uri.scheme_str() {
        Some("http") if uri.authority().is_some() => Ok(()),
        Some("https") => Err(TracingError(format!(
            "endpoint {endpoint:?}: TLS to the collector is not supported; use http://"
        ))),
        _ => Err(TracingError(format!(
            "endpoint {endpoint:?} must be an http:// URL with a host"
        ))),
    }
}

/// The OTLP/HTTP traces URL for a base URL (as `OTEL_EXPORTER_OTLP_ENDPOINT` is treated).
pub(crate) fn http_traces_url(endpoint: &str) -> String {
    let trimmed = endpoint.trim_end_matches('/');
    if trimmed.ends_with("/v1/traces") {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/v1/traces")
    }
}

/// How the export task groups spans.
struct Batching {
    size: usize,
    delay: Duration,
    timeout: Duration,
}

/// Takes spans off the queue in batches of up to `batching.size` requests, waiting at most
/// `batching.delay` for a batch to fill, and exports each (one export at a time, as the
/// exporter requires). On `stop`, exports what is queued and ends.
async fn export_loop(
    exporter: opentelemetry_otlp::SpanExporter,
    mut spans: mpsc::Receiver<ServerSpan>,
    mut stop: oneshot::Receiver<oneshot::Sender<()>>,
    batching: Batching,
    metrics: Arc<Metrics>,
) {
    let mut batch: Vec<ServerSpan> = Vec::with_capacity(batching.size);
    let done = loop {
        tokio::select! {
            done = &mut stop => break done.ok(),
            first = spans.recv() => {
                let Some(first) = first else { break None };
                batch.push(first);
            }
        }
        let deadline = tokio::time::Instant::now() + batching.delay;
        while batch.len() < batching.size {
            tokio::select! {
                more = spans.recv() => match more {
                    Some(span) => batch.push(span),
                    None => break,
                },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        export(&exporter, &mut batch, batching.timeout, &metrics).await;
    };
    // Shutting down: what is queued goes out in one last round.
    while let Ok(span) = spans.try_recv() {
        batch.push(span);
        if batch.len() >= batching.size {
            export(&exporter, &mut batch, batching.timeout, &metrics).await;
        }
    }
    export(&exporter, &mut batch, batching.timeout, &metrics).await;
    let _ = exporter.shutdown_with_timeout(Duration::from_secs(1));
    if let Some(done) = done {
        let _ = done.send(());
    }
}

async fn export(
    exporter: &opentelemetry_otlp::SpanExporter,
    batch: &mut Vec<ServerSpan>,
    timeout: Duration,
    metrics: &Metrics,
) {
    if batch.is_empty() {
        return;
    }
    let spans: Vec<_> = batch
        .drain(..)
        .flat_map(ServerSpan::into_span_data)
        .collect();
    let count = spans.len() as u64;
    let result = tokio::time::timeout(timeout, exporter.export(spans)).await;
    let ok = matches!(result, Ok(Ok(())));
    match result {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(%error, spans = count, "OTLP trace export failed; spans lost")
        }
        Err(_) => tracing::warn!(
            spans = count,
            ?timeout,
            "OTLP trace export timed out; spans lost"
        ),
    }
    metrics.trace_spans_exported(count, ok);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Root;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    #[test]
    fn tracing_is_off_without_a_collector() {
        let resolved = TracingSettings::resolve(TracingFlags::default(), env(&[]));
        assert_eq!(resolved, Ok(None));
        let disabled = TracingSettings::resolve(
            TracingFlags::default(),
            env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_TRACES_EXPORTER", "none"),
            ]),
        );
        assert_eq!(disabled, Ok(None));
    }

    #[test]
    fn the_environment_completes_the_flags() {
        let resolved = TracingSettings::resolve(
            TracingFlags::default(),
            env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.01"),
                ("OTEL_BSP_MAX_QUEUE_SIZE", "10"),
                ("OTEL_BSP_SCHEDULE_DELAY", "250"),
            ]),
        )
        .expect("valid")
        .expect("on");
        assert_eq!(
            resolved.endpoint, None,
            "the exporter resolves the variable itself"
        );
        assert_eq!(resolved.protocol, OtlpProtocol::Grpc);
        assert_eq!(resolved.sampler, Sampler::ParentBased(Root::Ratio(0.01)));
        assert_eq!(resolved.queue_size, 10);
        assert_eq!(resolved.delay, Duration::from_millis(250));

        let flags = TracingFlags {
            endpoint: Some("http://127.0.0.1:4318".to_owned()),
            protocol: Some(OtlpProtocol::HttpProtobuf),
            sampler: Some(Sampler::AlwaysOn),
        };
        let resolved = TracingSettings::resolve(
            flags,
            env(&[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_TRACES_SAMPLER", "always_off"),
            ]),
        )
        .expect("valid")
        .expect("on");
        assert_eq!(resolved.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(resolved.sampler, Sampler::AlwaysOn);
    }

    #[test]
    fn bad_values_name_their_variable() {
        let flags = TracingFlags {
            endpoint: Some("http://c:4318".to_owned()),
            ..TracingFlags::default()
        };
        let error =
            TracingSettings::resolve(flags.clone(), env(&[("OTEL_TRACES_SAMPLER", "sometimes")]))
                .expect_err("unknown sampler");
        assert!(error.starts_with("OTEL_TRACES_SAMPLER:"), "{error}");
        let error =
            TracingSettings::resolve(flags, env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]))
                .expect_err("unsupported protocol");
        assert!(error.starts_with("OTEL_EXPORTER_OTLP_PROTOCOL:"), "{error}");
    }

    #[test]
    fn the_http_url_gets_the_traces_path_once() {
        assert_eq!(
            http_traces_url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            http_traces_url("http://c:4318/v1/traces/"),
            "http://c:4318/v1/traces"
        );
        assert_eq!(http_traces_url("http://c/otlp/"), "http://c/otlp/v1/traces");
    }

    #[test]
    fn only_plain_http_endpoints_are_taken() {
        assert!(check_plain_http("http://127.0.0.1:4317").is_ok());
        assert!(check_plain_http("https://collector:4317").is_err());
        assert!(check_plain_http("collector:4317").is_err());
        assert!(check_plain_http("not a url").is_err());
    }
}
