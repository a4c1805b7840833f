//! [`Compiler`]: compiles a store once, then each change in proportion to what it affects.
//!
//! A compile has two parts. The **context** is everything routes attach to or look up through
//! policies: GatewayClasses, Gateways and their listeners, ListenerSets, certificates,
//! ClientTrafficPolicies, BackendTLSPolicies, BackendTrafficPolicies, and the TLSRoutes (whose
//! SNI tables depend on the order of all of them), TCPRoutes and UDPRoutes (one serves each
//! listener: the oldest). The **units** are the HTTPRoutes and
//! GRPCRoutes, each compiled on its own ([`RouteUnit`]): its rules, where it attaches, its
//! status, and what it looked up (Services, Backends, ReferenceGrants, its Namespace) and uses
//! (backends).
//!
//! A change of a route, Service or `Backend` recompiles the units it affects (the route
//! itself, the routes that looked the Service or Backend up), rebuilds the route tables of the
//! listeners those units attach to (before or after), and the sockets around them; every other
//! listener table, unit and backend stays as it was (the same `Arc`s). An EndpointSlice change
//! compiles nothing: it re-resolves the endpoints of the Services whose slices changed.
//!
//! A change of a ReferenceGrant, Namespace, Secret or ConfigMap compiles the context again
//! (a few Gateways: cheap next to the routes) and keeps it when routes attach to its listeners
//! as before and backends get the same TLS (a certificate rotated, a client CA bundle
//! replaced, a listener's certificate reference granted); then only the units that looked up
//! the changed namespace's grants or labels are compiled again, and every listener table is
//! wrapped in its (new) listener's settings. When routes would attach differently (a listener
//! became unusable, a ListenerSet was accepted) or backends' TLS changed, everything is
//! compiled again.
//!
//! Any other change of the context (GatewayClasses, Gateways, ListenerSets, policies,
//! TLS, TCP and UDP routes) compiles everything again ([`Compiler::build`]), and so does a change of a
//! Service, `Backend` or route that a policy targets or a TLS, TCP or UDP route uses: these are rare next
//! to route and endpoint churn, and a full compile keeps their many cross-references (policy
//! targets, SNI tables) in one place.
//!
//! [`crate::compile`] is the reference: `Compiler::build(store)` is exactly it, and the
//! equivalence tests (`incremental/tests.rs`) check after random changes of every kind that
//! the incrementally updated snapshot and status equal a fresh build's.
//!
//! Backends keep their index in the snapshot while a route uses them; when the last user of a
//! backend goes, its index is reused, or filled by moving the last backend there, and the
//! routes naming the moved backend are compiled again (usually one).
//!
//! A `Composition` is compiled into each rule that names it: a change of it compiles again the
//! units that looked it up (`ReadKey::Composition`), and a change of a Service or `Backend` of
//! its parts those that resolved them, as for their own backendRefs. The Compositions'
//! statuses (a few objects, which depend on their parts' Services, Backends and grants and on
//! the routes naming them) are computed again after every change but of EndpointSlices alone.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use model::{ObjectKey, Store};
use router::{HostPattern, HostRoutes, RouteTable};
use snapshot::backend::{BackendId, EndpointTarget};
use snapshot::{ListenerRoutes, Snapshot};

use crate::backend_ref::{BackendTable, ReadKey};
use crate::backend_tls::BackendTlsPolicies;
use crate::changes::{Key, StoreChanges};
use crate::endpoints::{EndpointPlan, SliceIndex, resolve_source};
use crate::explain::{ExplainError, ExplainRequest, Explanation, ListenerOwner, Sources};
use crate::listener::{Listeners, StreamTables};
use crate::route_policy::RoutePolicies;
use crate::route_unit::RouteUnit;
use crate::status::{ObjectStatus, StatusReport};
use crate::traffic_policy::TrafficPolicies;
use crate::{
    CompileOptions, client_certificate, client_policy, frontend_tls, gateway, grpc_route,
    http_route, l4_route, listener_set, tls_route,
};

mod compositions;
#[cfg(test)]
mod tests;
mod unit_set;

use unit_set::UnitSet;

/// The route kinds compiled as units, in the order a full compile takes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum UnitKind {
    Http,
    Grpc,
}

/// A unit: its kind, namespace and name, shared by the maps that name it (one allocation
/// per route, whatever the number of maps).
type UnitKey = Arc<(UnitKind, model::Name, model::Name)>;

/// The compiled state of one store, kept to compile the next change incrementally.
pub struct Compiler {
    options: CompileOptions,
    context: Context,
    units: BTreeMap<UnitKey, Box<RouteUnit>>,
    /// The units that looked each Service or Backend up.
    readers: HashMap<ReadKey, UnitSet>,
    /// The units that use each backend.
    holders: HashMap<BackendId, UnitSet>,
    /// The units attached to each listener slot.
    slot_units: HashMap<usize, UnitSet>,
    /// The units with matches for each hostname of each listener slot.
    host_units: HashMap<usize, HashMap<HostPattern, UnitSet>>,
    /// How many times units count in each slot's `attachedRoutes`.
    slot_counts: HashMap<usize, u32>,
    backends: BackendTable,
    /// The route table of every usable HTTP/HTTPS slot.
    http_tables: HashMap<usize, Arc<ListenerRoutes>>,
    /// EndpointSlices by Service.
    slices: SliceIndex,
    snapshot: Arc<Snapshot>,
    /// BackendTrafficPolicy and BackendTLSPolicy statuses (their ancestors depend on the
    /// routes).
    policy_statuses: Vec<ObjectStatus>,
    /// Composition statuses, by namespace and name (their ancestors depend on the routes).
    composition_statuses: Vec<ObjectStatus>,
}

impl UnitKind {
    /// The route kind, as status spells it.
    fn as_str(self) -> &'static str {
        match self {
            UnitKind::Http => "HTTPRoute",
            UnitKind::Grpc => "GRPCRoute",
        }
    }
}

/// `HTTPRoute namespace/name`: a unit as status labels it.
fn unit_label(key: &UnitKey) -> String {
    let (kind, namespace, name) = &**key;
    format!("{} {namespace}/{name}", kind.as_str())
}

/// Hostnames to rebuild, by listener slot.
type Hosts = HashMap<usize, HashSet<HostPattern>>;

/// Marks every hostname of a unit for rebuilding.
fn add_hosts(hosts: &mut Hosts, unit: &RouteUnit) {
    for (slot, host) in unit.hosts() {
        hosts.entry(slot).or_default().insert(host.clone());
    }
}

/// What the units attach to and look up through (see the module documentation).
struct Context {
    listeners: Listeners,
    /// Statuses of the context's objects, counting the TLS, TCP and UDP routes in
    /// `attachedRoutes`.
    objects: Vec<ObjectStatus>,
    /// TLSRoute, TCPRoute and UDPRoute statuses.
    tls_routes: Vec<ObjectStatus>,
    /// The tables of every usable TLS, TCP and UDP slot.
    stream_tables: StreamTables,
    tls_policies: Arc<BackendTlsPolicies>,
    /// BackendTrafficPolicies (their statuses wait for the routes: their ancestors follow them).
    traffic_policies: Arc<TrafficPolicies>,
    /// SecurityPolicies and RateLimitPolicies (statuses wait for the routes, as above).
    route_policies: Arc<RoutePolicies>,
    /// Services and Backends the TLSRoutes looked up.
    tls_reads: HashSet<ReadKey>,
    /// Backends the TLSRoutes use: their indices are baked in the SNI tables.
    pinned: HashSet<BackendId>,
    /// `(namespace, name)` of every object a BackendTrafficPolicy or BackendTLSPolicy
    /// targets: whether a policy applies depends on whether its target exists.
    policy_targets: HashSet<Key>,
}

impl Context {
    /// Compiles the context of a store, and the backend table the TLSRoutes started
    /// (numbered as `numbering` says, in tests).
    fn compile(
        store: &Store,
        options: &CompileOptions,
        numbering: Option<HashMap<BackendId, usize>>,
    ) -> (Context, BackendTable) {
        let mut status = StatusReport::default();
        let mut listeners = gateway::compile_gateways(store, options, &mut status);
        listener_set::compile_listener_sets(store, options, &mut listeners, &mut status);
        frontend_tls::validate_frontend_clients(store, &mut listeners, &mut status);
        let clients =
            client_certificate::resolve_client_certificates(store, &mut listeners, &mut status);
        client_policy::apply_client_policies(store, options, &mut listeners, &mut status);
        let tls_policies = Arc::new(BackendTlsPolicies::compile(store, options, &clients));
        let traffic_policies = Arc::new(TrafficPolicies::compile(store));
        let mut backends = BackendTable::with_tls_policies(Arc::clone(&tls_policies))
            .with_traffic_policies(Arc::clone(&traffic_policies));
        // Most Services and Backends are some route's backend (a Service once per port used).
        backends.reserve(store.services.len() + store.backends.len());
        #[cfg(test)]
        if let Some(numbering) = numbering {
            backends.set_numbering(numbering);
        }
        #[cfg(not(test))]
        let _ = numbering;
        let context_objects = status.objects.len();
        backends.record();
        tls_route::attach_tls_routes(store, options, &mut listeners, &mut backends, &mut status);
        l4_route::attach_l4_routes(store, options, &mut listeners, &mut backends, &mut status);
        // External authorization services are backends too; recorded with the TLSRoutes'
        // backends, their indices stay put (`pinned`) and a change of their Services
        // compiles everything.
        let route_policies = Arc::new(RoutePolicies::compile(store, options, &mut backends));
        backends.set_route_policies(Arc::clone(&route_policies));
        listeners.set_route_policies(store, &route_policies);
        let tls_recording = backends.recorded();
        let tls_routes = status.objects.split_off(context_objects);
        let stream_tables = listeners.take_stream_tables();
        let context = Context {
            listeners,
            objects: status.objects,
            tls_routes,
            stream_tables,
            tls_policies,
            traffic_policies,
            route_policies,
            tls_reads: tls_recording.reads.into_iter().collect(),
            pinned: tls_recording.used.into_iter().collect(),
            policy_targets: policy_targets(store),
        };
        (context, backends)
    }
}

/// What one [`Compiler::update`] did.
#[derive(Debug, Default)]
pub struct Step {
    /// Everything was compiled again.
    pub full: bool,
    /// The snapshot was replaced ([`Compiler::snapshot`]).
    pub snapshot_changed: bool,
    /// Endpoint targets of the backends whose endpoints may have changed: every backend after
    /// a full compile (see [`Step::full`]), otherwise only those.
    pub endpoints: HashMap<BackendId, Vec<EndpointTarget>>,
    /// Objects compiled again, whose status may have changed (`Kind namespace/name`),
    /// after an incremental compile.
    pub recompiled: Vec<String>,
    /// The status of those of them that still exist (and are ours).
    pub statuses: Vec<ObjectStatus>,
}

impl Compiler {
    /// Compiles a whole store.
    pub fn build(store: &Store, options: CompileOptions) -> Compiler {
        Compiler::build_numbered(store, options, None)
    }

    /// Compiles a whole store, placing backends at the indices `numbering` gives (tests).
    fn build_numbered(
        store: &Store,
        options: CompileOptions,
        numbering: Option<HashMap<BackendId, usize>>,
    ) -> Compiler {
        let (context, backends) = Context::compile(store, &options, numbering);
        let mut compiler = Compiler {
            options,
            context,
            units: BTreeMap::new(),
            readers: HashMap::new(),
            holders: HashMap::new(),
            slot_units: HashMap::new(),
            host_units: HashMap::new(),
            slot_counts: HashMap::new(),
            backends,
            http_tables: HashMap::new(),
            slices: SliceIndex::of(store),
            snapshot: Arc::default(),
            policy_statuses: Vec::new(),
            composition_statuses: Vec::new(),
        };
        let keys = store
            .http_routes
            .keys()
            .map(|(ns, name)| Arc::new((UnitKind::Http, ns.clone(), name.clone())))
            .chain(
                store
                    .grpc_routes
                    .keys()
                    .map(|(ns, name)| Arc::new((UnitKind::Grpc, ns.clone(), name.clone()))),
            );
        let units: Vec<(UnitKey, RouteUnit)> = keys
            .filter_map(|key| Some((key.clone(), compiler.compile_unit(store, &key)?)))
            .collect();
        compiler.reserve_indexes(&units);
        for (key, unit) in units {
            compiler.insert_unit(key, unit);
        }
        // Every slot gets a table, an empty one if no route attaches there.
        let hosts: Hosts = (0..compiler.context.listeners.slots.len())
            .map(|slot| {
                let slot_hosts = compiler.host_units.get(&slot).into_iter().flatten();
                (slot, slot_hosts.map(|(host, _)| host.clone()).collect())
            })
            .collect();
        compiler.rebuild_tables(hosts);
        compiler.report_policies(store);
        compiler.composition_statuses = compiler.composition_statuses(store);
        compiler.finish();
        compiler.backends.shrink_to_fit();
        compiler
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snapshot
    }

    /// Where each backend of the snapshot gets its endpoints.
    pub fn endpoint_plan(&self) -> EndpointPlan {
        self.backends.endpoint_plan()
    }

    /// Every backend's endpoints in `store` (after [`Compiler::build`]).
    pub fn all_endpoints(&self, store: &Store) -> HashMap<BackendId, Vec<EndpointTarget>> {
        self.snapshot
            .backends
            .iter()
            .filter_map(|backend| {
                let source = self.backends.source_of(&backend.id)?;
                Some((
                    backend.id.clone(),
                    resolve_source(store, &self.slices, source),
                ))
            })
            .collect()
    }

    /// The endpoints of the backends of these Services and `Backend` objects, and of the
    /// backends `added`: what a change of them can affect, found through the table's index
    /// (no walk over every backend).
    fn changed_endpoints(
        &self,
        store: &Store,
        sources: &HashSet<ReadKey>,
        added: &[BackendId],
    ) -> HashMap<BackendId, Vec<EndpointTarget>> {
        let ids = sources
            .iter()
            .flat_map(|key| self.backends.backends_of(key))
            .chain(added);
        ids.filter_map(|id| {
            let source = self.backends.source_of(id)?;
            Some((id.clone(), resolve_source(store, &self.slices, source)))
        })
        .collect()
    }

    /// Applies the change from `old` (the store of the last build or update) to `new`.
    /// `generation` is stamped on a new snapshot.
    pub fn update(&mut self, old: &Store, new: &Store, generation: u64) -> Step {
        self.apply(StoreChanges::between(old, new), old, new, generation)
    }

    /// [`Compiler::update`] told which objects differ between `old` and `new`: `changed` holds
    /// the key of every object added, removed or changed, each once (`source::SourceUpdate`'s
    /// `changed`). Saves comparing the stores, whose cost grows with the config.
    pub fn update_changed(
        &mut self,
        old: &Store,
        new: &Store,
        generation: u64,
        changed: &[ObjectKey],
    ) -> Step {
        self.apply(StoreChanges::of_keys(changed), old, new, generation)
    }

    fn apply(&mut self, changes: StoreChanges, old: &Store, new: &Store, generation: u64) -> Step {
        if changes.is_empty() {
            return Step::default();
        }
        self.options.generation = generation;
        if self.needs_rebuild(&changes) {
            return self.rebuild(new);
        }
        let context_changed = changes.touches_context();
        if context_changed && !self.swap_context(new) {
            return self.rebuild(new);
        }
        let (dirty, sources) = self.affected(&changes, old, new);
        let mut step = Step::default();
        let mut added = Vec::new();
        if !dirty.is_empty() || context_changed {
            // Slots counting a changed route, before and after: their Gateways' statuses.
            let mut counted = self.counted_by(&dirty);
            let Some(new_backends) = self.recompile(new, &dirty) else {
                return self.rebuild(new);
            };
            added = new_backends;
            counted.extend(self.counted_by(&dirty));
            // The Gateways whose listeners count a changed unit; every context object when
            // the context was compiled again (a certificate changes its Gateway's conditions).
            let objects: Vec<usize> = if context_changed {
                self.wrap_tables();
                (0..self.context.objects.len()).collect()
            } else {
                counted
                    .iter()
                    .map(|&slot| self.context.listeners.slots[slot].status_at.0)
                    .collect()
            };
            self.report_policies(new);
            self.finish();
            step.snapshot_changed = true;
            step.statuses = self.changed_statuses(&dirty, objects);
            step.recompiled = dirty.iter().map(unit_label).collect();
        }
        step.endpoints = self.changed_endpoints(new, &sources, &added);
        // A Composition's status reads no EndpointSlice: the fast path stays free of it.
        if !changes.is_endpoints_only() {
            self.report_compositions(new, &changes, &mut step);
        }
        step
    }

    /// Compiles the context again after a change of what only the context and the units'
    /// lookups read (ReferenceGrants, Namespaces, Secrets, ConfigMaps), and takes it when
    /// what the units and backends see of it stayed the same: the listeners as routes attach
    /// to them, the BackendTLSPolicies, the TLSRoutes. A new certificate, a listener's
    /// certificate refused or accepted, a new CA bundle for client validation: the units stay.
    /// Returns `false` when something they see changed (the caller compiles everything).
    fn swap_context(&mut self, store: &Store) -> bool {
        let (context, _) = Context::compile(store, &self.options, None);
        let old = &self.context;
        let same = context.listeners.same_attachment(&old.listeners)
            && *context.tls_policies == *old.tls_policies
            && *context.route_policies == *old.route_policies
            && context.tls_routes == old.tls_routes
            && context.tls_reads == old.tls_reads
            && context.pinned == old.pinned;
        if same {
            // The backend table holds the policies it applied, and the rules theirs: keep
            // the same `Arc`s.
            let tls_policies = Arc::clone(&old.tls_policies);
            let route_policies = Arc::clone(&old.route_policies);
            self.context = Context {
                tls_policies,
                route_policies,
                ..context
            };
        }
        same
    }

    /// Wraps every route table in its listener's settings again (after the context changed:
    /// its backend client certificate, its path settings).
    fn wrap_tables(&mut self) {
        let listeners = &self.context.listeners;
        for (&slot, routes) in &mut self.http_tables {
            *routes = listeners.http_table(slot, routes.table.clone());
        }
    }

    /// The units a change affects (the changed routes, the routes that looked up a changed
    /// Service or `Backend`), and the Services and Backends whose endpoints may have changed
    /// (their slices, their ports, their endpoint lists). Follows the slices in the index.
    fn affected(
        &mut self,
        changes: &StoreChanges,
        old: &Store,
        new: &Store,
    ) -> (BTreeSet<UnitKey>, HashSet<ReadKey>) {
        let mut sources: HashSet<ReadKey> = HashSet::new();
        for key in &changes.endpoint_slices {
            let services = self.slices.update(key, old, new);
            sources.extend(
                services
                    .into_iter()
                    .map(|(ns, name)| ReadKey::Service(ns, name)),
            );
        }
        let routes = changes
            .http_routes
            .iter()
            .map(|(ns, name)| (UnitKind::Http, ns, name))
            .chain(
                changes
                    .grpc_routes
                    .iter()
                    .map(|(ns, name)| (UnitKind::Grpc, ns, name)),
            );
        let mut dirty: BTreeSet<UnitKey> = routes
            .map(|(kind, ns, name)| Arc::new((kind, ns.clone(), name.clone())))
            .collect();
        let reads = changes
            .services
            .iter()
            .map(|(ns, name)| ReadKey::Service(ns.clone(), name.clone()))
            .chain(
                changes
                    .backends
                    .iter()
                    .map(|(ns, name)| ReadKey::Backend(ns.clone(), name.clone())),
            );
        for read in reads {
            dirty.extend(self.readers.get(&read).into_iter().flatten().cloned());
            sources.insert(read);
        }
        let lookups = changes
            .reference_grants
            .iter()
            .map(|(ns, _)| ReadKey::Grants(ns.clone()))
            .chain(
                changes
                    .compositions
                    .iter()
                    .map(|(ns, name)| ReadKey::Composition(ns.clone(), name.clone())),
            )
            .chain(
                changes
                    .namespaces
                    .iter()
                    .map(|ns| ReadKey::Namespace(ns.clone())),
            );
        for read in lookups {
            dirty.extend(self.readers.get(&read).into_iter().flatten().cloned());
        }
        (dirty, sources)
    }

    /// The slots these units count in (`attachedRoutes`).
    fn counted_by(&self, units: &BTreeSet<UnitKey>) -> BTreeSet<usize> {
        units
            .iter()
            .filter_map(|key| self.units.get(key))
            .flat_map(|unit| unit.counted.iter().copied())
            .collect()
    }

    /// The statuses an incremental step may have changed: the units compiled again, these
    /// context `objects`, and the BackendTrafficPolicies and BackendTLSPolicies (their
    /// ancestors follow the routes). The
    /// TLSRoutes' cannot have changed: the context is only kept when they are the same.
    fn changed_statuses(
        &self,
        dirty: &BTreeSet<UnitKey>,
        mut objects: Vec<usize>,
    ) -> Vec<ObjectStatus> {
        objects.sort_unstable();
        objects.dedup();
        let units = dirty
            .iter()
            .filter_map(|key| self.units.get(key))
            .map(|unit| unit.status.clone());
        units
            .chain(
                objects
                    .into_iter()
                    .map(|object| self.context_status(object)),
            )
            .chain(self.policy_statuses.iter().cloned())
            .collect()
    }

    /// Whether a change needs everything compiled again (see the module documentation).
    fn needs_rebuild(&self, changes: &StoreChanges) -> bool {
        if !changes.other.is_empty() {
            return true;
        }
        let targeted = |keys: &[Key]| {
            keys.iter()
                .any(|key| self.context.policy_targets.contains(key))
        };
        let used_by_tls = |keys: &[Key], read: fn(model::Name, model::Name) -> ReadKey| {
            !self.context.tls_reads.is_empty()
                && keys.iter().any(|(ns, name)| {
                    self.context
                        .tls_reads
                        .contains(&read(ns.clone(), name.clone()))
                })
        };
        targeted(&changes.http_routes)
            || targeted(&changes.grpc_routes)
            || targeted(&changes.services)
            || targeted(&changes.backends)
            || used_by_tls(&changes.services, ReadKey::Service)
            || used_by_tls(&changes.backends, ReadKey::Backend)
    }

    fn rebuild(&mut self, store: &Store) -> Step {
        *self = Compiler::build(store, self.options.clone());
        Step {
            full: true,
            snapshot_changed: true,
            endpoints: self.all_endpoints(store),
            recompiled: Vec::new(),
            statuses: Vec::new(),
        }
    }

    /// Compiles the `dirty` units again, then those naming a backend that moved. Returns the
    /// backends added to the table, or `None` when a TLSRoute's backend would have to move
    /// (the caller compiles everything).
    fn recompile(&mut self, store: &Store, dirty: &BTreeSet<UnitKey>) -> Option<Vec<BackendId>> {
        let mut hosts = Hosts::new();
        for key in dirty {
            if let Some(unit) = self.remove_unit(key) {
                add_hosts(&mut hosts, &unit);
            }
        }
        self.backends.track_added();
        for key in dirty {
            if let Some(unit) = self.compile_unit(store, key) {
                add_hosts(&mut hosts, &unit);
                self.insert_unit(key.clone(), unit);
            }
        }
        let moved = self.backends.compact();
        if moved.iter().any(|id| self.context.pinned.contains(id)) {
            return None;
        }
        let renamed: BTreeSet<UnitKey> = moved
            .iter()
            .filter_map(|id| self.holders.get(id))
            .flatten()
            .cloned()
            .collect();
        for key in renamed {
            // Same inputs, so the same lookups, backends and hostnames: only the indices
            // differ.
            if let Some(unit) = self.compile_unit(store, &key) {
                add_hosts(&mut hosts, &unit);
                self.units.insert(key, Box::new(unit));
            }
        }
        let added = self.backends.take_added();
        self.rebuild_tables(hosts);
        Some(added)
    }

    /// Compiles one unit from the store, recording what it looked up and uses.
    fn compile_unit(&mut self, store: &Store, key: &UnitKey) -> Option<RouteUnit> {
        let (kind, namespace, name) = &**key;
        let route_key = (namespace.clone(), name.clone());
        let listeners = &self.context.listeners;
        self.backends.record();
        let unit = match kind {
            UnitKind::Http => store.http_routes.get(&route_key).and_then(|route| {
                http_route::compile_route(
                    store,
                    &self.options,
                    listeners,
                    &mut self.backends,
                    (namespace, name),
                    route,
                )
            }),
            UnitKind::Grpc => store.grpc_routes.get(&route_key).and_then(|route| {
                grpc_route::compile_route(
                    store,
                    &self.options,
                    listeners,
                    &mut self.backends,
                    (namespace, name),
                    route,
                )
            }),
        };
        let recording = self.backends.recorded();
        let mut unit = unit?;
        unit.reads.extend(recording.reads);
        unit.reads.sort_unstable();
        unit.reads.dedup();
        unit.reads.shrink_to_fit();
        unit.backends = recording.used;
        unit.backends.sort_unstable();
        unit.backends.dedup();
        unit.backends.shrink_to_fit();
        Some(unit)
    }

    /// Sizes the indexes for `units` at once. Grown by doubling instead, each table would
    /// leave the one it replaced as a hole in the allocator's large pages, resident for the
    /// life of the process (about 1 MB at 5,000 routes).
    fn reserve_indexes(&mut self, units: &[(UnitKey, RouteUnit)]) {
        let reads: HashSet<&ReadKey> = units.iter().flat_map(|(_, unit)| &unit.reads).collect();
        self.readers.reserve(reads.len());
        drop(reads);
        let used: HashSet<&BackendId> = units.iter().flat_map(|(_, unit)| &unit.backends).collect();
        self.holders.reserve(used.len());
        drop(used);
        let mut hosts: HashMap<usize, HashSet<&HostPattern>> = HashMap::new();
        for (slot, host) in units.iter().flat_map(|(_, unit)| unit.hosts()) {
            hosts.entry(slot).or_default().insert(host);
        }
        for (slot, hosts) in hosts {
            self.host_units
                .entry(slot)
                .or_default()
                .reserve(hosts.len());
        }
    }

    fn insert_unit(&mut self, key: UnitKey, unit: RouteUnit) {
        for read in &unit.reads {
            self.readers
                .entry(read.clone())
                .or_default()
                .insert(key.clone());
        }
        for id in &unit.backends {
            self.holders
                .entry(id.clone())
                .or_default()
                .insert(key.clone());
        }
        for slot in unit.slots() {
            self.slot_units.entry(slot).or_default().insert(key.clone());
        }
        for (slot, host) in unit.hosts() {
            self.host_units
                .entry(slot)
                .or_default()
                .entry(host.clone())
                .or_default()
                .insert(key.clone());
        }
        for &slot in &unit.counted {
            *self.slot_counts.entry(slot).or_default() += 1;
        }
        self.units.insert(key, Box::new(unit));
    }

    /// Removes a unit and every trace of it; backends no other route uses leave the table.
    fn remove_unit(&mut self, key: &UnitKey) -> Option<Box<RouteUnit>> {
        let unit = self.units.remove(key)?;
        for read in &unit.reads {
            if let Some(readers) = self.readers.get_mut(read) {
                readers.remove(key);
                if readers.is_empty() {
                    self.readers.remove(read);
                }
            }
        }
        for id in &unit.backends {
            if let Some(holders) = self.holders.get_mut(id) {
                holders.remove(key);
                if holders.is_empty() {
                    self.holders.remove(id);
                    if !self.context.pinned.contains(id) {
                        self.backends.remove(id);
                    }
                }
            }
        }
        for slot in unit.slots() {
            if let Some(units) = self.slot_units.get_mut(&slot) {
                units.remove(key);
            }
        }
        for (slot, host) in unit.hosts() {
            if let Some(hosts) = self.host_units.get_mut(&slot)
                && let Some(units) = hosts.get_mut(host)
            {
                units.remove(key);
                if units.is_empty() {
                    hosts.remove(host);
                }
            }
        }
        for slot in &unit.counted {
            if let Some(count) = self.slot_counts.get_mut(slot) {
                *count -= 1;
                if *count == 0 {
                    self.slot_counts.remove(slot);
                }
            }
        }
        Some(unit)
    }

    /// Rebuilds the matches of these hostnames of these slots from their units, keeping every
    /// other hostname's (usable HTTP slots only).
    fn rebuild_tables(&mut self, hosts: Hosts) {
        let listeners = &self.context.listeners;
        for (slot, slot_hosts) in hosts {
            let usable = listeners.slots.get(slot).is_some_and(|s| s.usable);
            if !usable || self.context.stream_tables.contains(slot) {
                continue;
            }
            let changes = slot_hosts.into_iter().map(|host| {
                let mut entries = Vec::new();
                let units = self
                    .host_units
                    .get(&slot)
                    .and_then(|hosts| hosts.get(&host));
                for key in units.into_iter().flatten() {
                    if let Some(unit) = self.units.get(key) {
                        unit.add_host(slot, &host, &mut entries);
                    }
                }
                let routes = (!entries.is_empty()).then(|| Arc::new(HostRoutes::new(entries)));
                (host, routes)
            });
            let table = match self.http_tables.get(&slot) {
                Some(current) => current.table.with_hosts(changes),
                None => RouteTable::default().with_hosts(changes),
            };
            self.http_tables
                .insert(slot, listeners.http_table(slot, table));
        }
    }

    /// Recomputes the BackendTrafficPolicy and BackendTLSPolicy statuses (their ancestors
    /// follow the routes).
    fn report_policies(&mut self, store: &Store) {
        let mut report = StatusReport::default();
        self.context.traffic_policies.report(
            store,
            &self.options,
            &self.context.listeners,
            &mut report,
        );
        self.context.tls_policies.report(
            store,
            &self.options,
            &self.context.listeners,
            &mut report,
        );
        self.context.route_policies.report(
            store,
            &self.options,
            &self.context.listeners,
            &mut report,
        );
        self.policy_statuses = report.objects;
    }

    /// Builds the snapshot from the tables and backends.
    fn finish(&mut self) {
        let backends = self.backends.specs();
        let listeners = &self.context.listeners;
        let sockets = listeners.build_sockets(&self.http_tables, &self.context.stream_tables);
        let udp_sockets = listeners.build_udp_sockets(&self.context.stream_tables);
        self.snapshot = Arc::new(Snapshot {
            generation: self.options.generation,
            sockets,
            backends,
            udp_sockets,
        });
    }

    /// The status of every object compiled, in a stable order: the context's objects, the
    /// HTTPRoutes, GRPCRoutes and TLSRoutes, the BackendTrafficPolicies and BackendTLSPolicies,
    /// the Compositions.
    pub fn status(&self) -> StatusReport {
        let mut objects = self.context.objects.clone();
        for (&slot, &count) in &self.slot_counts {
            let (object, listener) = self.context.listeners.slots[slot].status_at;
            objects[object].listeners[listener].attached_routes += count;
        }
        objects.extend(self.units.values().map(|unit| unit.status.clone()));
        objects.extend(self.context.tls_routes.iter().cloned());
        objects.extend(self.policy_statuses.iter().cloned());
        objects.extend(self.composition_statuses.iter().cloned());
        StatusReport { objects }
    }

    /// The status of one context object (a Gateway or ListenerSet), with its listeners'
    /// `attachedRoutes`.
    fn context_status(&self, object: usize) -> ObjectStatus {
        let mut status = self.context.objects[object].clone();
        for (&slot, &count) in &self.slot_counts {
            let (owner, listener) = self.context.listeners.slots[slot].status_at;
            if owner == object {
                status.listeners[listener].attached_routes += count;
            }
        }
        status
    }

    /// Which listener, route, rule, filters, policies and backends `request` would hit in the
    /// current snapshot, and why every other route did not (see [`crate::explain`]). `store`
    /// is the store last compiled; the backends' endpoints are read from it.
    ///
    /// # Errors
    /// [`ExplainError::UnknownGateway`] when the request names a Gateway without usable
    /// listeners.
    pub fn explain(
        &self,
        store: &Store,
        request: &ExplainRequest,
    ) -> Result<Explanation, ExplainError> {
        let listeners = self
            .http_tables
            .iter()
            .filter_map(|(&slot, routes)| {
                let slot = self.context.listeners.slots.get(slot)?;
                Some(ListenerOwner {
                    routes: Arc::clone(routes),
                    kind: slot.owner_kind,
                    namespace: slot.gateway_namespace.clone(),
                    name: slot.gateway_name.clone(),
                    listener: slot.name.clone(),
                })
            })
            .collect();
        let sources = Sources {
            snapshot: &self.snapshot,
            listeners,
            routes: self.units.values().map(|unit| &unit.status).collect(),
            traffic_policy: Box::new(|index| {
                self.backends
                    .applied_policy(index)
                    .map(|policy| Arc::clone(&policy.label))
            }),
            endpoints: Box::new(|id| {
                self.backends
                    .source_of(id)
                    .map(|source| resolve_source(store, &self.slices, source))
                    .unwrap_or_default()
            }),
        };
        crate::explain::explain(&sources, request)
    }

    /// `/config`'s listeners: per listener, its sockets, hostname, routes and client settings.
    pub fn config_view(&self) -> serde_json::Value {
        self.context.listeners.view(|slot| {
            self.slot_units
                .get(&slot)
                .into_iter()
                .flatten()
                .filter_map(|key| self.units.get(key))
                .flat_map(|unit| {
                    unit.views(slot, &self.snapshot.backends)
                        .collect::<Vec<_>>()
                })
                .collect()
        })
    }
}

/// `(namespace, name)` of every object a BackendTrafficPolicy or BackendTLSPolicy targets.
fn policy_targets(store: &Store) -> HashSet<Key> {
    let traffic = store
        .backend_traffic_policies
        .iter()
        .flat_map(|((ns, _), policy)| {
            let names = policy.spec.target_refs.iter().map(|target| &target.name);
            names.map(move |name| (ns.clone(), name.as_str().into()))
        });
    let tls = store
        .backend_tls_policies
        .iter()
        .flat_map(|((ns, _), policy)| {
            let names = policy.spec.target_refs.iter().map(|target| &target.name);
            names.map(move |name| (ns.clone(), name.as_str().into()))
        });
    traffic
        .chain(tls)
        .chain(RoutePolicies::targets(store))
        .collect()
}
