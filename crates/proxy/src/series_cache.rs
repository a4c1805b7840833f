//! [`SeriesCache`]: the metric series of one config generation, found without the registry.
//!
//! Owns, per [`Live`](crate::plane::Live), the handles of the series requests record into: the
//! request series by (rule, backend, status) and each backend's breaker state gauge. A request
//! that hits the cache hashes three integers under an uncontended read lock instead of hashing
//! label strings under the registry's locks. Keys are the address of a rule in the generation's
//! snapshot and backend indexes into it, which the `Live` owning the cache keeps alive and
//! unchanged; a reload builds a new `Live` with an empty cache and this one is dropped with it.
//!
//! It does not decide what is recorded (`stack.rs`) or how series are named and exported
//! (`telemetry`): every handle comes from `telemetry::Metrics` and shares its value with the
//! registry, so the exported series are exactly those the registry would create. It never
//! creates a series itself; a miss asks the caller for the handle at the moment the registry
//! would have created the series anyway.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use snapshot::fast_hash::FastHashBuilder;
use telemetry::{
    BreakerStateGauge, ComposedCounter, HttpMethod, PartSeries, RequestSeries, TraceExemplar,
};

/// Which request series a request records into, within one generation.
///
/// Compared and hashed with `scheme` by address: the data plane's schemes are the two
/// `&'static str`s of `snapshot::Scheme::as_str`, so that is enough to tell them
/// apart without comparing bytes on every request. Two copies of one text at two addresses
/// would only make two keys for one series, both valid handles.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SeriesKey {
    /// Address of the matched `RouteRule` in the generation's snapshot.
    pub(crate) rule: usize,
    /// Index of the backend the request went to, if it got that far.
    pub(crate) backend: Option<usize>,
    /// The response status.
    pub(crate) code: u16,
    /// The request method (the semantic-convention histogram's label).
    pub(crate) method: HttpMethod,
    /// The listener's scheme.
    pub(crate) scheme: &'static str,
}

impl PartialEq for SeriesKey {
    fn eq(&self, other: &SeriesKey) -> bool {
        self.rule == other.rule
            && self.backend == other.backend
            && self.code == other.code
            && self.method == other.method
            && std::ptr::eq(self.scheme, other.scheme)
    }
}

impl Eq for SeriesKey {}

impl std::hash::Hash for SeriesKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.rule.hash(state);
        self.backend.hash(state);
        self.code.hash(state);
        self.method.hash(state);
        self.scheme.as_ptr().addr().hash(state);
    }
}

type SeriesMap = HashMap<SeriesKey, RequestSeries, FastHashBuilder>;

/// The series handles of one generation. Bounded by rules × (backends + 1) × status codes ×
/// methods (ten at most: `telemetry::HttpMethod`).
#[derive(Debug, Default)]
pub(crate) struct SeriesCache {
    requests: RwLock<SeriesMap>,
    /// `breaker_gauges[i]`: backend `i`'s `portcullis_circuit_breaker_state`, once used.
    breaker_gauges: Box<[OnceLock<BreakerStateGauge>]>,
    /// Composition parts' answers, by the address of the part in the snapshot.
    parts: RwLock<HashMap<usize, PartSeries, FastHashBuilder>>,
    /// Complete compositions, by the address of the composition in the snapshot.
    complete: RwLock<HashMap<usize, ComposedCounter, FastHashBuilder>>,
}

impl SeriesCache {
    /// An empty cache for a generation with `backends` backends.
    pub(crate) fn new(backends: usize) -> SeriesCache {
        SeriesCache {
            requests: RwLock::default(),
            breaker_gauges: (0..backends).map(|_| OnceLock::new()).collect(),
            parts: RwLock::default(),
            complete: RwLock::default(),
        }
    }

    /// Records a composition part's answer (`part`: its address in the generation's snapshot)
    /// that took `duration`; `series` fetches the handle on a miss (as `record_request`).
    pub(crate) fn record_part(
        &self,
        part: usize,
        duration: Duration,
        series: impl FnOnce() -> PartSeries,
    ) {
        if let Some(hit) = read(&self.parts).get(&part) {
            hit.record(duration);
            return;
        }
        let series = series();
        series.record(duration);
        write(&self.parts).entry(part).or_insert(series);
    }

    /// Counts a complete composition (`composition`: its address in the generation's
    /// snapshot); `counter` fetches the handle on a miss.
    pub(crate) fn count_complete(
        &self,
        composition: usize,
        counter: impl FnOnce() -> ComposedCounter,
    ) {
        if let Some(hit) = read(&self.complete).get(&composition) {
            hit.inc();
            return;
        }
        let counter = counter();
        counter.inc();
        write(&self.complete).entry(composition).or_insert(counter);
    }

    /// Records one answered request into the series of `key`. On a miss, `series` fetches the
    /// handle from the registry (creating the series, as recording by labels would) and the
    /// cache keeps it; it must return the series `key` stands for in this generation.
    pub(crate) fn record_request(
        &self,
        key: SeriesKey,
        duration: Duration,
        exemplar: Option<TraceExemplar>,
        series: impl FnOnce() -> RequestSeries,
    ) {
        if let Some(hit) = self.read().get(&key) {
            hit.record(duration, exemplar);
            return;
        }
        // Fetched outside our lock: the registry takes its own. Two requests missing at once
        // both fetch the same shared series; the second insert finds the first's.
        let series = series();
        series.record(duration, exemplar);
        self.write().entry(key).or_insert(series);
    }

    /// Sets backend `backend`'s breaker state gauge to `state`, fetching the handle with
    /// `gauge` the first time (or every time, for an index beyond the generation's backends,
    /// which the data plane never passes).
    pub(crate) fn set_breaker_state(
        &self,
        backend: usize,
        state: i64,
        gauge: impl FnOnce() -> BreakerStateGauge,
    ) {
        match self.breaker_gauges.get(backend) {
            Some(slot) => slot.get_or_init(gauge).set(state),
            None => gauge().set(state),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, SeriesMap> {
        // A panic while holding the lock cannot leave the map half-updated in a way that
        // matters: every entry present is a valid handle.
        self.requests
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, SeriesMap> {
        self.requests
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A read guard of `map`; a panic while it was held cannot leave it half-updated in a way that
/// matters (every entry present is a valid handle).
fn read<T>(map: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    map.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A write guard of `map` (see [`read`]).
fn write<T>(map: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    map.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests;
