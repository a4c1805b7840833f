//! The endpoint registry: one [`BackendRuntime`] per [`BackendId`], kept across reloads.
//!
//! Locking: the registry's mutex is taken by the control plane only (link, set_endpoints,
//! views). The data plane reads a backend's endpoints through an `ArcSwap`, lock-free.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use serde::Serialize;
use telemetry::{EndpointLatencySource, Metrics};
use tokio::task::JoinHandle;

use crate::backend_pool::{BackendPools, OwnPools};
use crate::balance::{self, PickContext};
use crate::breaker::{Admission, Breaker, BreakerView, Rejection};
use crate::dns;
use crate::endpoint::{EndpointRuntime, EndpointSet, EndpointView};
use crate::health;
use crate::pool::Pools;
use crate::tls_pool::BackendTls;
use snapshot::backend::policy::{BackendPolicy, Balancer, HashKey};
use snapshot::backend::tls::UpstreamTls;
use snapshot::backend::{AppProtocol, BackendId, CompiledBackend, EndpointTarget, TargetAddress};

/// Live state of one backend: its endpoint set and balancing cursor, and for a backend with
/// TLS settings its TLS connection pools.
#[derive(Debug)]
pub struct BackendRuntime {
    id: BackendId,
    protocol: AppProtocol,
    tls: Option<BackendTls>,
    policy: ArcSwap<BackendPolicy>,
    /// Whether `policy` balances by a hash of a cookie: kept with it, so that every request
    /// to a backend that does not (nearly all) asks a flag rather than loads the policy.
    hashes_cookie: AtomicBool,
    endpoints: ArcSwap<EndpointSet>,
    cursor: AtomicUsize,
    breaker: Arc<Breaker>,
    /// Cleartext pools of its own when its connection settings differ from the defaults.
    own_pools: BackendPools,
}

impl BackendRuntime {
    fn new(spec: &CompiledBackend) -> BackendRuntime {
        BackendRuntime {
            id: spec.id.clone(),
            protocol: spec.protocol,
            tls: spec.tls.clone().map(BackendTls::new),
            policy: ArcSwap::new(Arc::clone(&spec.policy)),
            hashes_cookie: AtomicBool::new(hashes_cookie(&spec.policy)),
            endpoints: ArcSwap::from_pointee(EndpointSet::default()),
            cursor: AtomicUsize::new(0),
            breaker: Arc::new(Breaker::new()),
            own_pools: BackendPools::default(),
        }
    }

    /// Admits one request (one attempt) under the current policy's concurrency limits and
    /// error-rate breaker, or says which one rejects it. Report the outcome on the returned
    /// [`Admission`]; see `breaker` for what the limits count.
    pub fn admit(&self) -> Result<Admission, Rejection> {
        self.breaker.admit(self.policy.load_full())
    }

    /// The backend's breaker state (kept across reloads with the runtime).
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// The backend's resilience settings. A reload that changes them swaps them here, keeping
    /// endpoint, health and breaker state.
    pub fn policy(&self) -> Arc<BackendPolicy> {
        self.policy.load_full()
    }

    /// Whether the current policy balances by a hash of a cookie (`ConsistentHash` on a
    /// cookie): [`policy`](Self::policy) says the same, for more instructions.
    pub fn hashes_cookie(&self) -> bool {
        self.hashes_cookie.load(Ordering::Relaxed)
    }

    /// Swaps the policy in (a reload), with what is derived from it.
    fn set_policy(&self, policy: &Arc<BackendPolicy>) {
        self.hashes_cookie
            .store(hashes_cookie(policy), Ordering::Relaxed);
        self.policy.store(Arc::clone(policy));
    }

    /// Whether this runtime can serve `spec` as is: same protocol and equal TLS settings.
    fn serves(&self, spec: &CompiledBackend) -> bool {
        self.protocol == spec.protocol && self.tls() == spec.tls.as_ref()
    }

    /// The TLS settings its connections use (`None`: cleartext).
    pub fn tls(&self) -> Option<&Arc<UpstreamTls>> {
        self.tls.as_ref().map(BackendTls::spec)
    }

    /// The backend's own cleartext pools under the current policy, or `None` when the shared
    /// pools serve it (default connection settings).
    /// The backend's own cleartext pools under `policy` (its connection settings), if it
    /// needs its own.
    pub(crate) fn own_pools(
        &self,
        policy: &BackendPolicy,
        shared: &Pools,
    ) -> Option<Arc<OwnPools>> {
        self.own_pools.get(policy, shared)
    }

    #[cfg(test)]
    pub(crate) fn own_open_connections(&self) -> usize {
        self.own_pools.open_connections()
    }

    pub(crate) fn tls_state(&self) -> Option<&BackendTls> {
        self.tls.as_ref()
    }

    /// The backend's identity.
    pub fn id(&self) -> &BackendId {
        &self.id
    }

    /// Protocol to its endpoints.
    pub fn protocol(&self) -> AppProtocol {
        self.protocol
    }

    /// Picks an endpoint for one request by the policy's balancer (read on every call, so a
    /// policy change applies to the next request); `None` when no endpoint can take traffic.
    /// Lock-free. Unavailable endpoints are skipped unless all are (see `balance`).
    pub fn pick(&self, context: &PickContext<'_>) -> Option<Arc<EndpointRuntime>> {
        self.pick_under(&self.policy.load(), context)
    }

    /// [`pick`](Self::pick) under `policy`, one the caller holds already (an attempt's
    /// admission).
    pub fn pick_under(
        &self,
        policy: &BackendPolicy,
        context: &PickContext<'_>,
    ) -> Option<Arc<EndpointRuntime>> {
        balance::pick(&self.endpoints.load(), policy, &self.cursor, context)
    }

    /// The current endpoint set.
    pub fn endpoints(&self) -> Arc<EndpointSet> {
        self.endpoints.load_full()
    }

    /// Replaces the endpoint set with resolved addresses, keeping the runtime (counters, later
    /// health and EWMA state) of every address that stays.
    pub(crate) fn replace_endpoints(&self, resolved: &[(SocketAddr, u32)]) {
        let current = self.endpoints.load();
        let mut next = Vec::with_capacity(resolved.len());
        for &(addr, weight) in resolved {
            if next.iter().any(|e: &Arc<EndpointRuntime>| e.addr() == addr) {
                continue; // the same address listed twice (two slices) counts once
            }
            let endpoint = match current.endpoints().iter().find(|e| e.addr() == addr) {
                Some(existing) => {
                    existing.set_weight(weight);
                    Arc::clone(existing)
                }
                None => Arc::new(EndpointRuntime::new(addr, weight)),
            };
            next.push(endpoint);
        }
        let set = EndpointSet::new(next);
        if matches!(self.policy.load().balancer, Balancer::ConsistentHash(_)) {
            // Build the ring here, on the control path, rather than in the first request.
            set.tables.ring(set.endpoints());
        }
        self.endpoints.store(Arc::new(set));
    }

    fn view(&self) -> BackendView {
        BackendView {
            protocol: self.protocol,
            tls: self.tls().cloned(),
            endpoints: self
                .endpoints
                .load()
                .endpoints()
                .iter()
                .map(|e| e.view())
                .collect(),
            breaker: self.breaker.view(),
        }
    }
}

/// Whether `policy` balances by a hash of a cookie. The flag is stored apart from the policy:
/// a request racing a reload may see one before the other, which costs that request at most
/// the cookie a reload just turned on (`session::hash_cookie` reads the policy itself when
/// the flag is set).
fn hashes_cookie(policy: &BackendPolicy) -> bool {
    matches!(
        policy.balancer,
        Balancer::ConsistentHash(HashKey::Cookie { .. })
    )
}

#[derive(Debug, Serialize)]
struct BackendView {
    protocol: AppProtocol,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<Arc<UpstreamTls>>,
    endpoints: Vec<EndpointView>,
    breaker: BreakerView,
}

#[derive(Debug, Default)]
struct RegistryState {
    backends: HashMap<BackendId, Arc<BackendRuntime>>,
    targets: HashMap<BackendId, Arc<[EndpointTarget]>>,
    resolvers: HashMap<BackendId, JoinHandle<()>>,
    /// Health monitor tasks (active probes, latency outliers), one per backend that needs one.
    monitors: health::Monitors,
    /// Where health monitors report (`None`: not reported).
    metrics: Option<Arc<Metrics>>,
}

/// All backends the current snapshot uses, with their live endpoints.
#[derive(Debug, Default)]
pub struct Registry {
    state: Mutex<RegistryState>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// An empty registry whose health monitors report endpoint health and latency ejections
    /// to `metrics`.
    pub fn with_metrics(metrics: Arc<Metrics>) -> Registry {
        let registry = Registry::default();
        registry.lock().metrics = Some(metrics);
        registry
    }

    /// Makes `metrics` export every endpoint's latency estimate
    /// (`portcullis_endpoint_latency_ewma_seconds`), read from this registry at scrape time.
    pub fn export_endpoint_latency(self: &Arc<Registry>, metrics: &Metrics) {
        let weak: std::sync::Weak<Registry> = Arc::downgrade(self);
        metrics.set_endpoint_latency_source(weak);
    }

    fn lock(&self) -> MutexGuard<'_, RegistryState> {
        // A panic while holding the lock leaves plain maps behind, still consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Links a snapshot's backends to their runtimes, in the order given: runtimes of backends
    /// that stay are reused (endpoints, counters and pooled connections survive the reload);
    /// backends no longer referenced are dropped. A backend whose protocol or TLS settings
    /// changed gets a fresh runtime, so no connection made under the old settings is reused. Must be called inside a tokio runtime when
    /// any backend has DNS endpoints or a policy with active health checks or latency outlier
    /// detection (each such backend gets a health monitor task, restarted on a policy change).
    pub fn link(&self, specs: &[CompiledBackend]) -> Vec<Arc<BackendRuntime>> {
        let mut state = self.lock();
        let mut linked = Vec::with_capacity(specs.len());
        let mut keep: HashMap<BackendId, Arc<BackendRuntime>> = HashMap::with_capacity(specs.len());
        for spec in specs {
            if let Some(runtime) = keep.get(&spec.id) {
                linked.push(Arc::clone(runtime));
                continue;
            }
            let runtime = match state.backends.get(&spec.id) {
                Some(existing) if existing.serves(spec) => {
                    let current = existing.policy.load();
                    // Most backends share one policy `Arc` from one config to the next: no
                    // field-by-field comparison for them.
                    if !Arc::ptr_eq(&current, &spec.policy) && **current != *spec.policy {
                        existing.set_policy(&spec.policy);
                    }
                    Arc::clone(existing)
                }
                _ => {
                    let runtime = Arc::new(BackendRuntime::new(spec));
                    if let Some(targets) = state.targets.get(&spec.id).cloned() {
                        apply_targets(&mut state.resolvers, &runtime, &targets);
                    }
                    runtime
                }
            };
            keep.insert(spec.id.clone(), Arc::clone(&runtime));
            linked.push(runtime);
        }
        state.resolvers.retain(|id, task| {
            let kept = keep.contains_key(id);
            if !kept {
                task.abort();
            }
            kept
        });
        let state = &mut *state;
        state.monitors.sync(&keep, state.metrics.as_ref());
        // Targets of backends no longer linked are forgotten: a backend that comes back gets
        // its endpoints from the next `set_endpoints` / `update_endpoints`.
        state.targets.retain(|id, _| keep.contains_key(id));
        state.backends = keep;
        linked
    }

    /// Sets the desired endpoints of every backend (the fast path: no route table changes).
    /// Backends whose targets did not change are not touched.
    pub fn set_endpoints(&self, desired: HashMap<BackendId, Vec<EndpointTarget>>) {
        let mut state = self.lock();
        let state = &mut *state;
        let mut next: HashMap<BackendId, Arc<[EndpointTarget]>> =
            HashMap::with_capacity(desired.len());
        for (id, targets) in desired {
            let targets: Arc<[EndpointTarget]> = targets.into();
            let changed = state.targets.get(&id).is_none_or(|old| *old != targets);
            if changed && let Some(runtime) = state.backends.get(&id) {
                apply_targets(&mut state.resolvers, runtime, &targets);
            }
            next.insert(id, targets);
        }
        // Linked backends that lost every endpoint source now have none.
        for (id, runtime) in &state.backends {
            if !next.contains_key(id) && state.targets.contains_key(id) {
                apply_targets(&mut state.resolvers, runtime, &[]);
            }
        }
        state.targets = next;
    }

    /// Sets the desired endpoints of these backends only (an incremental change: the others
    /// keep theirs). Backends whose targets did not change are not touched; ids not linked
    /// are remembered for when they are.
    pub fn update_endpoints(&self, desired: HashMap<BackendId, Vec<EndpointTarget>>) {
        let mut state = self.lock();
        let state = &mut *state;
        for (id, targets) in desired {
            let targets: Arc<[EndpointTarget]> = targets.into();
            let changed = state.targets.get(&id).is_none_or(|old| *old != targets);
            if !changed {
                continue;
            }
            if let Some(runtime) = state.backends.get(&id) {
                apply_targets(&mut state.resolvers, runtime, &targets);
            }
            state.targets.insert(id, targets);
        }
    }

    /// The runtime of a linked backend.
    pub fn get(&self, id: &BackendId) -> Option<Arc<BackendRuntime>> {
        self.lock().backends.get(id).cloned()
    }

    /// `/endpoints`: per backend, its protocol and live endpoints with their counters.
    pub fn view(&self) -> serde_json::Value {
        let state = self.lock();
        let mut ids: Vec<&BackendId> = state.backends.keys().collect();
        ids.sort();
        let map: serde_json::Map<String, serde_json::Value> = ids
            .into_iter()
            .map(|id| {
                let view = state.backends[id].view();
                (
                    id.to_string(),
                    serde_json::to_value(view).unwrap_or_default(),
                )
            })
            .collect();
        serde_json::Value::Object(map)
    }
}

/// Applies desired targets to a runtime: literal addresses at once; DNS names through a
/// resolver task that owns the runtime's endpoint set from then on.
fn apply_targets(
    resolvers: &mut HashMap<BackendId, JoinHandle<()>>,
    runtime: &Arc<BackendRuntime>,
    targets: &[EndpointTarget],
) {
    if let Some(task) = resolvers.remove(runtime.id()) {
        task.abort();
    }
    let needs_dns = targets
        .iter()
        .any(|t| matches!(t.address, TargetAddress::Dns(_)));
    if needs_dns {
        let task = dns::spawn_resolver(Arc::clone(runtime), targets.to_vec());
        resolvers.insert(runtime.id().clone(), task);
        return;
    }
    let resolved: Vec<(SocketAddr, u32)> = targets
        .iter()
        .filter_map(|t| match t.address {
            TargetAddress::Ip(ip) => Some((SocketAddr::new(ip, t.port), t.weight)),
            TargetAddress::Dns(_) => None,
        })
        .collect();
    runtime.replace_endpoints(&resolved);
}

#[cfg(test)]
mod tests;

impl EndpointLatencySource for Registry {
    fn for_each_endpoint_latency(&self, visit: &mut dyn FnMut(&str, &str, f64)) {
        let backends: Vec<Arc<BackendRuntime>> = self.lock().backends.values().cloned().collect();
        for backend in backends {
            for endpoint in backend.endpoints().endpoints() {
                let address = endpoint.addr().to_string();
                let seconds = endpoint.latency_estimate().as_secs_f64();
                visit(backend.id().as_str(), &address, seconds);
            }
        }
    }
}
