//! backendRef resolution: kind checks, ReferenceGrant, Service and `Backend` lookup,
//! BackendTLSPolicy application, and the table of backends a snapshot uses.

use std::collections::HashMap;
use std::sync::Arc;

use model::Backend;
use model::Store;
use model::core::Service;
use snapshot::BackendIndex;
use snapshot::backend::{AppProtocol, BackendId, CompiledBackend};

use crate::backend_tls::{BackendTlsPolicies, TargetKind};
use crate::endpoints::{EndpointPlan, EndpointSource, TargetPort};
use crate::problems::{FieldPath, Problem};
use crate::route_policy::RoutePolicies;
use crate::traffic_policy::{AppliedPolicy, TrafficPolicies};

/// Why a backend cannot be used, before it is known where it was referenced: the route's
/// `ResolvedRefs` reason plus a message about the target. [`BackendTable::resolve`] places it
/// at the backendRef's field path.
#[derive(Debug, Clone)]
pub(crate) struct RefProblem {
    pub(crate) reason: &'static str,
    pub(crate) message: String,
}

impl RefProblem {
    /// The problem, reported at the path of the reference that hit it.
    fn at(self, path: &FieldPath) -> Problem {
        path.problem(self.message).because(self.reason)
    }
}

/// A backendRef as the route wrote it, with defaults applied.
pub(crate) struct BackendRefSpec<'a> {
    pub(crate) group: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) name: &'a str,
    pub(crate) namespace: &'a str,
    pub(crate) port: Option<i32>,
}

/// The object doing the referencing (a route, a Gateway, a SecurityPolicy), for ReferenceGrant
/// checks.
pub(crate) struct Referrer<'a> {
    /// Its API group (`gateway.networking.k8s.io`, `portcullis.dev`).
    pub(crate) group: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) namespace: &'a str,
}

/// A store object a route's compilation looked up (found or not): when it changes, the
/// route must be compiled again (`incremental`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum ReadKey {
    /// A Service, by namespace and name.
    Service(model::Name, model::Name),
    /// One of our `Backend` objects, by namespace and name.
    Backend(model::Name, model::Name),
    /// The ReferenceGrants of a namespace (a reference into it from another namespace).
    Grants(model::Name),
    /// The labels of a Namespace (a listener selects the route's namespace by label).
    Namespace(model::Name),
    /// A `Composition` a rule's `ExtensionRef` filter names, by namespace and name.
    Composition(model::Name, model::Name),
}

/// Backends used by the snapshot being built, deduplicated by identity.
///
/// Indices are stable while a backend stays in the table: the incremental compiler removes
/// the backends no route holds any more ([`BackendTable::remove`]) and closes the holes by
/// moving the last backends into them ([`BackendTable::compact`]), recompiling the routes
/// whose rules name a moved backend.
#[derive(Default)]
pub(crate) struct BackendTable {
    index: HashMap<BackendId, BackendIndex>,
    /// `None`: a hole left by [`BackendTable::remove`], filled by the next intern or by
    /// [`BackendTable::compact`].
    specs: Vec<Option<CompiledBackend>>,
    sources: Vec<Option<EndpointSource>>,
    /// The BackendTrafficPolicy applied to each backend that has one, by index.
    applied: Vec<Option<Arc<AppliedPolicy>>>,
    /// Holes, lowest last (`pop` fills the lowest first).
    free: Vec<BackendIndex>,
    /// BackendTLSPolicies: the TLS each resolved backend gets.
    tls_policies: Arc<BackendTlsPolicies>,
    /// BackendTrafficPolicies: the resilience settings each resolved backend gets.
    traffic: Arc<TrafficPolicies>,
    /// SecurityPolicies and RateLimitPolicies, which the rules being compiled look up.
    route_policies: Arc<RoutePolicies>,
    /// The route-level policy of the rule being compiled.
    scope: Option<Arc<AppliedPolicy>>,
    /// What the route being compiled looked up and used (see [`BackendTable::record`]).
    recording: Option<Recording>,
    /// Where given backends must go (tests: a full compile numbered like an incremental one).
    numbering: Option<HashMap<BackendId, BackendIndex>>,
    /// Backends added since [`BackendTable::track_added`], when tracking.
    added: Option<Vec<BackendId>>,
    /// The backends whose endpoints come from each Service or `Backend` object.
    /// A `Vec`: a Service port or `Backend` rarely makes more than one backend (one per
    /// BackendTrafficPolicy scope), and a set of one allocates a whole table.
    by_source: HashMap<ReadKey, Vec<BackendId>>,
}

/// The lookups and backends of one route's compilation.
#[derive(Default)]
pub(crate) struct Recording {
    pub(crate) reads: Vec<ReadKey>,
    pub(crate) used: Vec<BackendId>,
}

impl BackendTable {
    /// An empty table whose backends get TLS from `policies`.
    pub(crate) fn with_tls_policies(policies: Arc<BackendTlsPolicies>) -> BackendTable {
        BackendTable {
            tls_policies: policies,
            ..BackendTable::default()
        }
    }

    /// Uses the BackendTrafficPolicies in `traffic` for the backends resolved from now on.
    pub(crate) fn with_traffic_policies(mut self, traffic: Arc<TrafficPolicies>) -> BackendTable {
        self.traffic = traffic;
        self
    }

    /// The route- or Gateway-level policy of the rule whose backendRefs are resolved next
    /// (`None` outside rules or when no such policy applies).
    pub(crate) fn enter_rule(&mut self, scope: Option<Arc<AppliedPolicy>>) {
        self.scope = scope;
    }

    /// The SecurityPolicies and RateLimitPolicies, for rules to look up theirs.
    pub(crate) fn route_policies(&self) -> &RoutePolicies {
        &self.route_policies
    }

    /// Uses these SecurityPolicies and RateLimitPolicies for the rules compiled from now on.
    pub(crate) fn set_route_policies(&mut self, policies: Arc<RoutePolicies>) {
        self.route_policies = policies;
    }

    /// The traffic policies, for route compilation to look up its scope.
    pub(crate) fn traffic(&self) -> &TrafficPolicies {
        &self.traffic
    }

    /// Applies the most specific BackendTrafficPolicy: the backend's own (`own`: Service port,
    /// Service or Backend), else the rule's scope, which gives the backend an identity of its
    /// own so its state is not shared with routes under other policies.
    fn with_traffic_policy(
        &self,
        mut spec: CompiledBackend,
        own: Option<Arc<AppliedPolicy>>,
    ) -> (CompiledBackend, Option<Arc<AppliedPolicy>>) {
        if let Some(own) = own {
            spec.policy = Arc::clone(&own.backend);
            return (spec, Some(own));
        }
        if let Some(scope) = &self.scope {
            spec.id = BackendId::new(format!("{} [{}]", spec.id, scope.label));
            spec.policy = Arc::clone(&scope.backend);
        }
        (spec, self.scope.clone())
    }

    /// Interns a backend and remembers the traffic policy it got.
    fn intern_applied(
        &mut self,
        (spec, applied): (CompiledBackend, Option<Arc<AppliedPolicy>>),
        source: EndpointSource,
    ) -> BackendIndex {
        let index = self.intern(spec, source);
        if let Some(applied) = applied {
            self.applied[index] = Some(applied);
        }
        index
    }

    /// The BackendTrafficPolicy a resolved backend got, if any.
    pub(crate) fn applied_policy(&self, index: BackendIndex) -> Option<&Arc<AppliedPolicy>> {
        self.applied.get(index).and_then(Option::as_ref)
    }

    fn intern(&mut self, spec: CompiledBackend, source: EndpointSource) -> BackendIndex {
        if let Some(recording) = &mut self.recording {
            recording.used.push(spec.id.clone());
        }
        if let Some(&index) = self.index.get(&spec.id) {
            return index;
        }
        let index = match self.numbering.as_ref().and_then(|n| n.get(&spec.id)) {
            Some(&wanted) => wanted,
            None => self.free.pop().unwrap_or(self.specs.len()),
        };
        if index >= self.specs.len() {
            self.specs.resize_with(index + 1, || None);
            self.sources.resize_with(index + 1, || None);
            self.applied.resize_with(index + 1, || None);
        }
        self.index.insert(spec.id.clone(), index);
        if let Some(added) = &mut self.added {
            added.push(spec.id.clone());
        }
        if let Some(key) = source_key(&source) {
            // A backend new to the table: not in its source's list yet.
            self.by_source.entry(key).or_default().push(spec.id.clone());
        }
        self.specs[index] = Some(spec);
        self.sources[index] = Some(source);
        index
    }

    /// Starts listing the backends added to the table.
    pub(crate) fn track_added(&mut self) {
        self.added = Some(Vec::new());
    }

    /// The backends added since [`BackendTable::track_added`]; stops listing them.
    pub(crate) fn take_added(&mut self) -> Vec<BackendId> {
        self.added.take().unwrap_or_default()
    }

    /// Starts recording what the next compilation looks up and uses.
    pub(crate) fn record(&mut self) {
        self.recording = Some(Recording::default());
    }

    /// Ends the recording started by [`BackendTable::record`].
    pub(crate) fn recorded(&mut self) -> Recording {
        self.recording.take().unwrap_or_default()
    }

    /// Records that the compilation being recorded looked `key` up (see
    /// [`BackendTable::record`]); backendRefs record their own lookups.
    pub(crate) fn read(&mut self, key: ReadKey) {
        if let Some(recording) = &mut self.recording {
            recording.reads.push(key);
        }
    }

    /// Removes a backend nothing uses any more, leaving a hole.
    pub(crate) fn remove(&mut self, id: &BackendId) {
        if let Some(index) = self.index.remove(id) {
            if let Some(key) = self.sources[index].as_ref().and_then(source_key)
                && let Some(ids) = self.by_source.get_mut(&key)
            {
                ids.retain(|other| other != id);
                if ids.is_empty() {
                    self.by_source.remove(&key);
                }
            }
            self.specs[index] = None;
            self.sources[index] = None;
            self.applied[index] = None;
            self.free.push(index);
            self.free.sort_unstable_by(|a, b| b.cmp(a));
        }
    }

    /// Closes every hole by moving the last backends into them. Returns the ids of the
    /// backends that moved: rules naming them must be compiled again.
    pub(crate) fn compact(&mut self) -> Vec<BackendId> {
        let mut moved = Vec::new();
        while self.specs.last().is_some_and(Option::is_none) {
            self.pop_last();
        }
        while let Some(hole) = self.free.pop() {
            if hole >= self.specs.len() {
                continue;
            }
            let last = self.specs.len() - 1;
            let spec = self.specs[last].take();
            self.specs[hole] = spec;
            self.sources.swap(hole, last);
            self.applied.swap(hole, last);
            if let Some(spec) = &self.specs[hole] {
                self.index.insert(spec.id.clone(), hole);
                moved.push(spec.id.clone());
            }
            self.pop_last();
            while self.specs.last().is_some_and(Option::is_none) {
                self.pop_last();
            }
        }
        moved
    }

    /// Makes room for `backends` more backends at once (a full compile: see
    /// `Compiler::reserve_indexes` for why).
    pub(crate) fn reserve(&mut self, backends: usize) {
        self.index.reserve(backends);
        self.by_source.reserve(backends);
        self.specs.reserve_exact(backends);
        self.sources.reserve_exact(backends);
        self.applied.reserve_exact(backends);
    }

    /// Drops the spare room of the index-aligned lists and of each source's backends, once a
    /// full compile has filled them: they grew by doubling, and a source rarely has more than
    /// one backend (a list grown by `push` has room for four). A backend added later grows
    /// them again.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.specs.shrink_to_fit();
        self.sources.shrink_to_fit();
        self.applied.shrink_to_fit();
        for backends in self.by_source.values_mut() {
            backends.shrink_to_fit();
        }
    }

    fn pop_last(&mut self) {
        self.specs.pop();
        self.sources.pop();
        self.applied.pop();
    }

    /// The backends, index-aligned. Holes (none after [`BackendTable::compact`]) are left out.
    pub(crate) fn specs(&self) -> Vec<CompiledBackend> {
        self.specs.iter().flatten().cloned().collect()
    }

    /// Every backend's endpoint source.
    pub(crate) fn endpoint_plan(&self) -> EndpointPlan {
        EndpointPlan::new(
            self.specs
                .iter()
                .zip(&self.sources)
                .filter_map(|(spec, source)| Some((spec.as_ref()?.id.clone(), source.clone()?)))
                .collect(),
        )
    }

    /// The backends whose endpoints come from a Service or `Backend` object.
    pub(crate) fn backends_of(&self, key: &ReadKey) -> impl Iterator<Item = &BackendId> {
        self.by_source.get(key).into_iter().flatten()
    }

    /// A backend's endpoint source.
    pub(crate) fn source_of(&self, id: &BackendId) -> Option<&EndpointSource> {
        let index = *self.index.get(id)?;
        self.sources.get(index)?.as_ref()
    }

    /// Numbers backends as `numbering` says (tests: a full compile numbered like an
    /// incremental one, so the two snapshots can be compared as they are).
    #[cfg(test)]
    pub(crate) fn set_numbering(&mut self, numbering: HashMap<BackendId, BackendIndex>) {
        self.numbering = Some(numbering);
    }

    /// Every backend's index, for [`BackendTable::set_numbering`].
    #[cfg(test)]
    pub(crate) fn numbering(&self) -> HashMap<BackendId, BackendIndex> {
        self.index.clone()
    }

    /// Whether the table has holes.
    #[cfg(test)]
    pub(crate) fn has_holes(&self) -> bool {
        self.specs.iter().any(Option::is_none)
    }

    /// The backend to use for gRPC traffic to backend `index`: the same endpoints over h2c,
    /// since gRPC needs HTTP/2 whatever the Service port's `appProtocol` says. A backend that
    /// already speaks h2c is returned as is; otherwise a twin identity (`... (h2c)`) shares
    /// its endpoint source.
    pub(crate) fn as_h2c(&mut self, index: BackendIndex) -> BackendIndex {
        let Some(spec) = self.specs.get(index).and_then(Option::as_ref) else {
            return index;
        };
        if spec.protocol == AppProtocol::H2c {
            return index;
        }
        // The twin keeps the backend's TLS, offering h2 instead of http/1.1. Rebuilding
        // settings that already built once cannot fail; if it did, the HTTP/1.1 settings are
        // kept: never cleartext.
        let tls = spec.tls.as_ref().map(|tls| {
            tls.for_protocol(AppProtocol::H2c)
                .map_or_else(|_| Arc::clone(tls), Arc::new)
        });
        let twin = CompiledBackend {
            id: BackendId::new(format!("{} (h2c)", spec.id)),
            protocol: AppProtocol::H2c,
            tls,
            policy: Arc::clone(&spec.policy),
        };
        let Some(source) = self.sources[index].clone() else {
            return index;
        };
        self.intern(twin, source)
    }

    /// Resolves one backendRef to a backend of the snapshot. `at` is the backendRef's field
    /// path: the problem, when it does not resolve, is reported there with its `ResolvedRefs`
    /// reason.
    pub(crate) fn resolve(
        &mut self,
        store: &Store,
        referrer: &Referrer<'_>,
        reference: &BackendRefSpec<'_>,
        at: &FieldPath,
    ) -> Result<BackendIndex, Problem> {
        self.resolve_reference(store, referrer, reference)
            .map_err(|problem| problem.at(at))
    }

    /// Kind, ReferenceGrant and existence checks, then the `Backend` or Service port.
    fn resolve_reference(
        &mut self,
        store: &Store,
        referrer: &Referrer<'_>,
        reference: &BackendRefSpec<'_>,
    ) -> Result<BackendIndex, RefProblem> {
        let target = format!(
            "{} {}/{}",
            reference.kind, reference.namespace, reference.name
        );
        let kind_key = match (reference.group, reference.kind) {
            ("", "Service") => "Service",
            (model::kind::PORTCULLIS_GROUP, "Backend") => "Backend",
            (group, kind) => {
                let group = if group.is_empty() { "core" } else { group };
                return Err(RefProblem {
                    reason: "InvalidKind",
                    message: format!(
                        "{group}/{kind} is not a supported backend kind (Service, portcullis.dev/Backend)"
                    ),
                });
            }
        };
        // GEP-709: a reference across namespaces needs a ReferenceGrant in the target's.
        if reference.namespace != referrer.namespace {
            self.read(ReadKey::Grants(reference.namespace.into()));
        }
        if reference.namespace != referrer.namespace
            && !reference_granted(store, referrer, reference)
        {
            return Err(RefProblem {
                reason: "RefNotPermitted",
                message: format!(
                    "{target} is in another namespace and no ReferenceGrant in {} allows {} from {}",
                    reference.namespace, referrer.kind, referrer.namespace
                ),
            });
        }
        let key = model::key(reference.namespace, reference.name);
        self.read(if kind_key == "Backend" {
            ReadKey::Backend(key.0.clone(), key.1.clone())
        } else {
            ReadKey::Service(key.0.clone(), key.1.clone())
        });
        if kind_key == "Backend" {
            let Some(backend) = store.backends.get(&key) else {
                return Err(not_found(format!("{target} not found")));
            };
            return self.resolve_backend(reference, backend);
        }
        let Some(service) = store.services.get(&key) else {
            return Err(not_found(format!("{target} not found")));
        };
        let Some(port) = reference.port else {
            return Err(not_found(format!(
                "{target}: port is required for a Service backendRef"
            )));
        };
        // A UDPRoute wants the Service's UDP port of that number (a DNS Service has a TCP and
        // a UDP port 53); every other route its TCP port.
        let transport = if referrer.kind == "UDPRoute" {
            "UDP"
        } else {
            "TCP"
        };
        self.resolve_service(reference, service, port, transport)
    }

    /// A `Backend` (our kind): its endpoints are listed in it, its protocol is its
    /// `appProtocol`.
    fn resolve_backend(
        &mut self,
        reference: &BackendRefSpec<'_>,
        backend: &Backend,
    ) -> Result<BackendIndex, RefProblem> {
        let protocol = AppProtocol::from_app_protocol(backend.spec.app_protocol.as_deref());
        let id = BackendId::new(format!(
            "Backend {}/{}",
            reference.namespace, reference.name
        ));
        let tls = self.tls_for(TargetKind::Backend, reference, None, protocol)?;
        let source = EndpointSource::Backend {
            namespace: reference.namespace.into(),
            name: reference.name.into(),
        };
        let own = self
            .traffic
            .for_backend(reference.namespace, reference.name)
            .cloned();
        let spec = self.with_traffic_policy(
            CompiledBackend {
                id,
                protocol,
                tls,
                policy: default_policy(),
            },
            own,
        );
        Ok(self.intern_applied(spec, source))
    }

    /// The backend of a Service's port `port`: the port of that number with protocol
    /// `transport` (`TCP` or `UDP`; unset means TCP), else the first of that number whatever
    /// its protocol. Backends of UDP ports are told apart from TCP ports of the same number by
    /// their id (`Service ns/name:53/UDP`).
    fn resolve_service(
        &mut self,
        reference: &BackendRefSpec<'_>,
        service: &Service,
        port: i32,
        transport: &str,
    ) -> Result<BackendIndex, RefProblem> {
        let target = format!("Service {}/{}", reference.namespace, reference.name);
        let spec = service.spec.as_ref();
        let id = match transport {
            "UDP" => BackendId::new(format!("{target}:{port}/UDP")),
            _ => BackendId::new(format!("{target}:{port}")),
        };
        let of_port = |p: &&model::core::ServicePort| p.port == port;
        let same_transport = |p: &&model::core::ServicePort| {
            p.port == port && p.protocol.as_deref().unwrap_or("TCP") == transport
        };
        let to_port = |p: i32| u16::try_from(p).ok().filter(|p| *p != 0);
        if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName") {
            let host = spec
                .and_then(|s| s.external_name.clone())
                .unwrap_or_default();
            let Some(port) = to_port(port) else {
                return Err(not_found(format!("{target}: port {port} is not valid")));
            };
            if host.is_empty() {
                return Err(not_found(format!(
                    "{target}: ExternalName Service without spec.externalName"
                )));
            }
            let ports = spec.and_then(|s| s.ports.as_ref()).into_iter().flatten();
            let port_name = ports
                .clone()
                .find(same_transport)
                .or_else(|| ports.clone().find(of_port))
                .and_then(|p| p.name.as_deref());
            let source = EndpointSource::Dns { host, port };
            return self.service_backend(reference, id, port_name, AppProtocol::Http1, source);
        }
        let ports = spec.and_then(|s| s.ports.as_ref()).into_iter().flatten();
        let found = ports.clone().find(same_transport);
        let Some(service_port) = found.or_else(|| ports.clone().find(of_port)) else {
            return Err(not_found(format!("{target} has no port {port}")));
        };
        let target_port = match &service_port.target_port {
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n)) => {
                to_port(*n).map_or(TargetPort::Same, TargetPort::Number)
            }
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(name)) => {
                TargetPort::Named(name.clone())
            }
            None => TargetPort::Same,
        };
        let protocol = AppProtocol::from_app_protocol(service_port.app_protocol.as_deref());
        let source = EndpointSource::ServicePort {
            namespace: reference.namespace.into(),
            service: reference.name.into(),
            port_name: service_port.name.clone().unwrap_or_default(),
            port: u16::try_from(port).unwrap_or(0),
            target_port,
        };
        let port_name = service_port.name.as_deref();
        self.service_backend(reference, id, port_name, protocol, source)
    }

    /// A Service port's backend: its BackendTLSPolicy and BackendTrafficPolicy (by the port's
    /// name, for policies with a sectionName) applied, interned with its endpoint source.
    fn service_backend(
        &mut self,
        reference: &BackendRefSpec<'_>,
        id: BackendId,
        port_name: Option<&str>,
        protocol: AppProtocol,
        source: EndpointSource,
    ) -> Result<BackendIndex, RefProblem> {
        let tls = self.tls_for(TargetKind::Service, reference, port_name, protocol)?;
        let own = self
            .traffic
            .for_service(reference.namespace, reference.name, port_name.unwrap_or(""))
            .cloned();
        let spec = self.with_traffic_policy(
            CompiledBackend {
                id,
                protocol,
                tls,
                policy: default_policy(),
            },
            own,
        );
        Ok(self.intern_applied(spec, source))
    }

    /// The TLS of a backend from the BackendTLSPolicy targeting it (`port_name`: the Service
    /// port's name, for policies with a sectionName). An unusable policy fails the reference.
    fn tls_for(
        &self,
        kind: TargetKind,
        reference: &BackendRefSpec<'_>,
        port_name: Option<&str>,
        protocol: AppProtocol,
    ) -> Result<Option<Arc<snapshot::backend::tls::UpstreamTls>>, RefProblem> {
        match self.tls_policies.lookup(
            kind,
            reference.namespace,
            reference.name,
            port_name,
            protocol,
        ) {
            None => Ok(None),
            Some(Ok(tls)) => Ok(Some(tls)),
            Some(Err(problem)) => Err(problem),
        }
    }
}

fn not_found(message: String) -> RefProblem {
    RefProblem {
        reason: "BackendNotFound",
        message,
    }
}

/// Whether a ReferenceGrant in the target namespace allows this reference (GEP-709).
pub(crate) fn reference_granted(
    store: &Store,
    referrer: &Referrer<'_>,
    reference: &BackendRefSpec<'_>,
) -> bool {
    let start = (
        model::Name::from(reference.namespace),
        model::Name::default(),
    );
    store
        .reference_grants
        .range(start..)
        .take_while(|((ns, _), _)| ns == reference.namespace)
        .any(|(_, grant)| {
            let from_ok = grant.spec.from.iter().any(|from| {
                from.group == referrer.group
                    && from.kind == referrer.kind
                    && from.namespace == referrer.namespace
            });
            let to_ok = grant.spec.to.iter().any(|to| {
                to.group == reference.group
                    && to.kind == reference.kind
                    && to
                        .name
                        .as_deref()
                        .is_none_or(|n| n.is_empty() || n == reference.name)
            });
            from_ok && to_ok
        })
}

/// The object an endpoint source reads (none for a DNS name).
fn source_key(source: &EndpointSource) -> Option<ReadKey> {
    match source {
        EndpointSource::ServicePort {
            namespace, service, ..
        } => Some(ReadKey::Service(namespace.clone(), service.clone())),
        EndpointSource::Backend { namespace, name } => {
            Some(ReadKey::Backend(namespace.clone(), name.clone()))
        }
        EndpointSource::Dns { .. } => None,
    }
}

/// The policy of backends no BackendTrafficPolicy applies to: one shared `Arc`, not one
/// allocation per backend.
fn default_policy() -> Arc<snapshot::backend::policy::BackendPolicy> {
    static DEFAULT: std::sync::LazyLock<Arc<snapshot::backend::policy::BackendPolicy>> =
        std::sync::LazyLock::new(Arc::default);
    Arc::clone(&DEFAULT)
}
