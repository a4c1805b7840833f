//! The shared state of the data plane.

use std::sync::Arc;

use arc_swap::ArcSwap;
use snapshot::Snapshot;
use telemetry::{AccessLog, Metrics};
use upstream::{BackendRuntime, Pools};

use crate::series_cache::SeriesCache;

/// A snapshot linked to the live runtimes of its backends (index-aligned with
/// `snapshot.backends`), and the metric series its requests record into.
#[derive(Debug, Default)]
pub struct Live {
    /// The compiled config.
    pub snapshot: Arc<Snapshot>,
    /// `backends[i]` is the runtime of `snapshot.backends[i]`.
    pub backends: Vec<Arc<BackendRuntime>>,
    /// Series handles keyed by this generation's rules and backend indexes; dropped with it.
    pub(crate) series: SeriesCache,
}

impl Live {
    /// Links `snapshot` to its backends' runtimes (`backends[i]` for `snapshot.backends[i]`).
    pub fn new(snapshot: Arc<Snapshot>, backends: Vec<Arc<BackendRuntime>>) -> Live {
        Live {
            series: SeriesCache::new(backends.len()),
            snapshot,
            backends,
        }
    }
}

/// Everything a request handler needs, shared by all connections.
#[derive(Debug)]
pub struct DataPlane {
    live: ArcSwap<Live>,
    pub(crate) pools: Pools,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) access_log: AccessLog,
}

impl DataPlane {
    /// A data plane with an empty config (every request gets 404 until [`DataPlane::publish`]).
    pub fn new(pools: Pools, metrics: Arc<Metrics>, access_log: AccessLog) -> DataPlane {
        DataPlane {
            live: ArcSwap::from_pointee(Live::default()),
            pools,
            metrics,
            access_log,
        }
    }

    /// Atomically replaces the live config. Requests in flight keep the one they loaded.
    pub fn publish(&self, live: Live) {
        self.live.store(Arc::new(live));
    }

    /// The live config.
    pub fn live(&self) -> Arc<Live> {
        self.live.load_full()
    }
}
