//! [`CompositionMetrics`]: the series of composed responses (`Composition`, issue 16), by
//! composition and part. Registered under `portcullis_` with the rest.
//!
//! Label values are the config's names (`Composition ns/name`, a part's name) and fixed words
//! the caller chooses, never client data. One lookup per part and one per composition per
//! request: a composed request costs several backend requests, next to which these are small.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::{HistogramFamily, registered};
use crate::label_value::LabelValue;

/// Part durations: from 1 ms to 30 s, as request durations.
const PART_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CompositionResultLabels {
    composition: LabelValue,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartResultLabels {
    composition: LabelValue,
    part: LabelValue,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartLabels {
    composition: LabelValue,
    part: LabelValue,
}

/// The composition series.
#[derive(Clone, Debug)]
pub struct CompositionMetrics {
    compositions: Family<CompositionResultLabels, Counter>,
    parts: Family<PartResultLabels, Counter>,
    part_duration: HistogramFamily<PartLabels>,
}

impl CompositionMetrics {
    /// Registers the families in `registry` (the `portcullis_` one).
    pub(super) fn register(registry: &mut Registry) -> CompositionMetrics {
        CompositionMetrics {
            compositions: registered(
                registry,
                "compositions",
                "Composed responses, by composition and result: complete (every part \
                 answered), partial (an optional part failed), failed (a required part \
                 failed: 502), path_mismatch (the path does not fit pathPattern: 404)",
                Family::default(),
            ),
            parts: registered(
                registry,
                "composition_parts",
                "Parts of composed responses, by composition, part and result (ok, or the \
                 error code: timeout, upstream-status, invalid-json, dependency-failed, ...)",
                Family::default(),
            ),
            part_duration: registered(
                registry,
                "composition_part_duration_seconds",
                "How long parts of composed responses took, retries and body included, by \
                 composition and part",
                Family::new_with_constructor(|| Histogram::new(PART_BUCKETS)),
            ),
        }
    }

    /// One composed response ended with `result` (a fixed word).
    pub fn composed(&self, composition: &LabelValue, result: &'static str) {
        let labels = CompositionResultLabels {
            composition: composition.clone(),
            result,
        };
        self.compositions.get_or_create(&labels).inc();
    }

    /// The series a part that answered records into (`result="ok"` and its duration), to keep
    /// (`proxy`'s per-generation cache): recording through it looks no label up.
    pub fn part_ok_series(&self, composition: &LabelValue, part: &LabelValue) -> PartSeries {
        let labels = PartResultLabels {
            composition: composition.clone(),
            part: part.clone(),
            result: "ok",
        };
        let parts = self.parts.get_or_create(&labels).clone();
        let labels = PartLabels {
            composition: composition.clone(),
            part: part.clone(),
        };
        let duration = self.part_duration.get_or_create(&labels).clone();
        PartSeries { parts, duration }
    }

    /// The counter of composed responses with `result`, to keep (see
    /// [`CompositionMetrics::part_ok_series`]).
    pub fn composed_counter(
        &self,
        composition: &LabelValue,
        result: &'static str,
    ) -> ComposedCounter {
        let labels = CompositionResultLabels {
            composition: composition.clone(),
            result,
        };
        ComposedCounter(self.compositions.get_or_create(&labels).clone())
    }

    /// One part ended with `result` (`ok` or a fixed error code) after `duration` (`None`: it
    /// never ran, for example when a part it depends on failed).
    pub fn part(
        &self,
        composition: &LabelValue,
        part: &LabelValue,
        result: &'static str,
        duration: Option<Duration>,
    ) {
        let labels = PartResultLabels {
            composition: composition.clone(),
            part: part.clone(),
            result,
        };
        self.parts.get_or_create(&labels).inc();
        if let Some(duration) = duration {
            let labels = PartLabels {
                composition: composition.clone(),
                part: part.clone(),
            };
            self.part_duration
                .get_or_create(&labels)
                .observe(duration.as_secs_f64());
        }
    }
}

/// The series of one part's answers (`result="ok"`), from
/// [`CompositionMetrics::part_ok_series`]. Cheap to clone (clones share the values).
#[derive(Clone, Debug)]
pub struct PartSeries {
    parts: Counter,
    duration: Histogram,
}

impl PartSeries {
    /// Counts one answer that took `duration`.
    pub fn record(&self, duration: Duration) {
        self.parts.inc();
        self.duration.observe(duration.as_secs_f64());
    }
}

/// One `portcullis_compositions_total` series, from [`CompositionMetrics::composed_counter`].
/// Cheap to clone (clones share the value).
#[derive(Clone, Debug)]
pub struct ComposedCounter(Counter);

impl ComposedCounter {
    /// Counts one composed response.
    pub fn inc(&self) {
        self.0.inc();
    }
}
