//! `portcullis_endpoint_latency_ewma_seconds{backend,endpoint}`: each endpoint's decayed peak
//! latency estimate (the peak-EWMA balancer's), read at scrape time from a source the
//! application installs (the upstream registry), so the request path does no label lookups.

use std::sync::{Arc, RwLock, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

/// Something that knows every endpoint's latency estimate.
pub trait EndpointLatencySource: Send + Sync + 'static {
    /// Calls `visit(backend, endpoint, seconds)` once per endpoint.
    fn for_each_endpoint_latency(&self, visit: &mut dyn FnMut(&str, &str, f64));
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    backend: String,
    endpoint: String,
}

type Slot = Arc<RwLock<Option<Weak<dyn EndpointLatencySource>>>>;

/// The collector registered with the metrics registry; the source is set later.
#[derive(Clone, Default)]
pub(crate) struct EndpointLatencyCollector {
    source: Slot,
}

impl std::fmt::Debug for EndpointLatencyCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointLatencyCollector")
            .finish_non_exhaustive()
    }
}

impl EndpointLatencyCollector {
    pub(crate) fn set_source(&self, source: Weak<dyn EndpointLatencySource>) {
        *self.source.write().unwrap_or_else(|p| p.into_inner()) = Some(source);
    }
}

impl Collector for EndpointLatencyCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let source = self
            .source
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(Weak::upgrade);
        let Some(source) = source else {
            return Ok(());
        };
        let mut samples = Vec::new();
        source.for_each_endpoint_latency(&mut |backend, endpoint, seconds| {
            let labels = LatencyLabels {
                backend: backend.to_owned(),
                endpoint: endpoint.to_owned(),
            };
            samples.push((labels, seconds));
        });
        if samples.is_empty() {
            return Ok(());
        }
        let mut metric = encoder.encode_descriptor(
            "endpoint_latency_ewma_seconds",
            "Decayed peak latency estimate of each endpoint (peak-EWMA), by backend and endpoint",
            None,
            MetricType::Gauge,
        )?;
        for (labels, seconds) in &samples {
            let family = metric.encode_family(labels)?;
            ConstGauge::new(*seconds).encode(family)?;
        }
        Ok(())
    }
}
