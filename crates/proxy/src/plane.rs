//! The shared state of the data plane.

use std::sync::Arc;

use arc_swap::ArcSwap;
use snapshot::Snapshot;
use telemetry::trace::Tracer;
use telemetry::{AccessLog, Metrics};
use upstream::{BackendRuntime, Pools};

use crate::access::PolicyRuntime;
use crate::rule_state::{LinkedRuleStates, RuleStates};
use crate::series_cache::SeriesCache;

/// A snapshot linked to the runtime state it governs: the live runtimes of its backends
/// (index-aligned with `snapshot.backends`), its rules' retry budget and mirror windows, and
/// the metric series its requests record into.
#[derive(Debug, Default)]
pub struct Live {
    /// The compiled config.
    pub snapshot: Arc<Snapshot>,
    /// `backends[i]` is the runtime of `snapshot.backends[i]`.
    pub backends: Vec<Arc<BackendRuntime>>,
    /// Retry budget and mirror windows of this snapshot's rules (kept across reloads by
    /// `DataPlane::rule_states`).
    pub(crate) rule_states: LinkedRuleStates,
    /// Series handles keyed by this generation's rules and backend indexes; dropped with it.
    pub(crate) series: SeriesCache,
}

/// Everything a request handler needs, shared by all connections.
#[derive(Debug)]
pub struct DataPlane {
    live: ArcSwap<Live>,
    /// Rule state that outlives snapshots, linked to each one as it is published.
    rule_states: RuleStates,
    pub(crate) pools: Pools,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) access_log: AccessLog,
    /// State of SecurityPolicies and RateLimitPolicies (`access.rs`).
    pub(crate) policies: PolicyRuntime,
    /// Where sampled requests' spans go; `None`: tracing is off (`trace.rs`).
    pub(crate) tracer: Option<Arc<Tracer>>,
}

impl DataPlane {
    /// A data plane with an empty config (every request gets 404 until [`DataPlane::publish`]).
    /// Global rate limits have no Redis: see [`DataPlane::with_policies`].
    pub fn new(pools: Pools, metrics: Arc<Metrics>, access_log: AccessLog) -> DataPlane {
        let policies = PolicyRuntime::without_redis(Arc::clone(&metrics));
        DataPlane {
            live: ArcSwap::from_pointee(Live::default()),
            rule_states: RuleStates::default(),
            pools,
            metrics,
            access_log,
            policies,
            tracer: None,
        }
    }

    /// This data plane with tracing on: requests join or start traces, propagate them to
    /// backends, and sampled ones send their spans to `tracer`.
    pub fn with_tracer(mut self, tracer: Arc<Tracer>) -> DataPlane {
        self.tracer = Some(tracer);
        self
    }

    /// This data plane with these policy runtimes (`--redis`).
    pub fn with_policies(mut self, policies: PolicyRuntime) -> DataPlane {
        self.policies = policies;
        self
    }

    /// Atomically replaces the live config with `snapshot`, linked to its backends' runtimes
    /// (`backends[i]` for `snapshot.backends[i]`, from `upstream::Registry::link`) and to the
    /// state of its rules that outlives reloads. Requests in flight keep the one they loaded.
    /// Called by the control plane only, one publish at a time.
    pub fn publish(&self, snapshot: Arc<Snapshot>, backends: Vec<Arc<BackendRuntime>>) {
        self.policies.retain(&snapshot);
        let live = Live {
            rule_states: self.rule_states.link(&snapshot),
            series: SeriesCache::new(backends.len()),
            snapshot,
            backends,
        };
        self.live.store(Arc::new(live));
    }

    /// The live config.
    pub fn live(&self) -> Arc<Live> {
        self.live.load_full()
    }
}
