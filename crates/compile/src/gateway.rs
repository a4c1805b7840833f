//! GatewayClasses and Gateways: which are ours, where their listeners bind, listener validation
//! and conflicts, and their status.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use model::Store;
use model::gateway_api::{
    Gateway, GatewayListeners, GatewayListenersAllowedRoutesNamespacesFrom, GatewayListenersTlsMode,
};
use rustls::sign::CertifiedKey;
use snapshot::Scheme;

use crate::CompileOptions;
use crate::hostname;
use crate::l4_route::{self, L4Slot};
use crate::listener::{AllowedNamespaces, ListenerSlot, Listeners};
use crate::problems::{FieldPath, Problem, Problems};
use crate::status::{Condition, ListenerStatus, ObjectStatus, RouteKind, StatusReport};
use crate::tls::{CertificateRef, resolve_certificate};
use crate::tls_listener::{self, TlsSlot};

const GATEWAY_GROUP: &str = model::kind::GATEWAY_GROUP;
/// Route kinds an HTTP or HTTPS listener accepts.
const HTTP_ROUTE_KINDS: &[&str] = &["HTTPRoute", "GRPCRoute"];

/// Who serves each (transport, socket, hostname), across Gateways.
type Claimed = HashMap<(Transport, SocketAddr, Option<String>), Claim>;

/// The transport a listener's socket uses: a UDP socket and a TCP socket may share an address
/// and port (TCP and UDP port numbers are separate spaces); HTTP, HTTPS, TLS and TCP listeners
/// all take TCP sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    /// The transport of a listener protocol.
    pub(crate) fn of(scheme: Scheme) -> Transport {
        match scheme {
            Scheme::Udp => Transport::Udp,
            Scheme::Http | Scheme::Https | Scheme::Tls | Scheme::Tcp => Transport::Tcp,
        }
    }
}

/// Validates our GatewayClasses and Gateways; returns their listeners with routes not yet
/// attached. Gateways are processed oldest first (then by namespace/name), which decides who
/// wins a listener conflict across Gateways.
pub(crate) fn compile_gateways(
    store: &Store,
    options: &CompileOptions,
    status: &mut StatusReport,
) -> Listeners {
    let ours = accept_gateway_classes(store, options, status);
    let mut gateways: Vec<(&model::NamespacedName, &Gateway)> = store
        .gateways
        .iter()
        .filter(|(_, gw)| ours.contains(&gw.spec.gateway_class_name.as_str()))
        .map(|(key, gw)| (key, gw.as_ref()))
        .collect();
    gateways.sort_by_key(|((ns, name), gw)| {
        (
            gw.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_second()),
            ns.clone(),
            name.clone(),
        )
    });

    let mut listeners = Listeners::default();
    let mut claimed = Claimed::new();
    for ((namespace, name), gateway) in gateways {
        let owner = (namespace.as_str(), name.as_str(), status.objects.len());
        let object = compile_gateway(store, options, owner, gateway, &mut listeners, &mut claimed);
        status.objects.push(object);
    }
    listeners
}

/// The GatewayClasses whose `controllerName` is ours, each `Accepted`: their names.
fn accept_gateway_classes<'a>(
    store: &'a Store,
    options: &CompileOptions,
    status: &mut StatusReport,
) -> Vec<&'a str> {
    let mut ours = Vec::new();
    for (name, class) in &store.gateway_classes {
        if *class.spec.controller_name != *options.controller_name {
            continue;
        }
        ours.push(name.as_str());
        let mut object = ObjectStatus::new("GatewayClass", "", name);
        object.conditions.push(Condition::yes(
            "Accepted",
            "Accepted",
            "handled by Portcullis",
        ));
        object.conditions.push(Condition::yes(
            "SupportedVersion",
            "SupportedVersion",
            "Gateway API v1",
        ));
        object.supported_features = crate::SUPPORTED_FEATURES;
        status.objects.push(object);
    }
    ours
}

/// One Gateway (`namespace`, `name`, and the index its status will have): its addresses, its
/// listeners and their conflicts with other Gateways', and its conditions. Returns its status;
/// its listeners go to `listeners`, its claims on (socket, hostname) pairs to `claimed`.
fn compile_gateway(
    store: &Store,
    options: &CompileOptions,
    (namespace, name, object_index): (&str, &str, usize),
    gateway: &Gateway,
    listeners: &mut Listeners,
    claimed: &mut Claimed,
) -> ObjectStatus {
    let path = FieldPath::object("Gateway", namespace, name);
    let mut object = ObjectStatus::new("Gateway", namespace, name);
    let addresses = match gateway_addresses(&path, gateway, options) {
        Ok(addresses) => addresses,
        Err(problem) => {
            // Without addresses nothing can bind: the whole Gateway is rejected.
            let message = problem.to_string();
            object.conditions.push(Condition::no(
                "Accepted",
                "UnsupportedAddress",
                message.clone(),
            ));
            object
                .conditions
                .push(Condition::no("Programmed", "AddressNotUsable", message));
            return object;
        }
    };
    object.addresses = addresses.iter().map(ToString::to_string).collect();

    let owner = ListenerOwner {
        kind: "Gateway",
        path: path.clone(),
        namespace,
        name,
        listeners: &gateway.spec.listeners,
        addresses: &addresses,
        object_index,
    };
    let mut slots = Vec::new();
    for index in 0..owner.listeners.len() {
        let (listener_status, slot) = compile_listener(store, &owner, index);
        object.listeners.push(listener_status);
        slots.push(slot);
    }
    claim_sockets(&path, &mut slots, &mut object.listeners, claimed);
    let usable = slots.iter().filter(|slot| slot.usable).count();
    object.conditions = gateway_conditions(&path, usable, slots.len());

    let first = listeners.slots.len();
    listeners.by_gateway.insert(
        model::key(namespace, name),
        (first..first + slots.len()).collect(),
    );
    listeners.slots.extend(slots);
    object
}

/// Listeners of different Gateways on one socket merge when their hostnames differ; the
/// older Gateway keeps a contested (socket, hostname) and the newer listener is Conflicted.
/// Claims the pairs of this Gateway's usable listeners that win.
fn claim_sockets(
    gateway: &FieldPath,
    slots: &mut [ListenerSlot],
    statuses: &mut [ListenerStatus],
    claimed: &mut Claimed,
) {
    let list = gateway.field("spec.listeners");
    for (index, slot) in slots.iter_mut().enumerate() {
        if !slot.usable {
            continue;
        }
        if let Some((reason, problem)) = cross_gateway_conflict(&list.index(index), slot, claimed) {
            slot.usable = false;
            mark_conflicted(&mut statuses[index], reason, &problem.to_string());
            continue;
        }
        let claim = Claim {
            listener: slot.label(),
            scheme: slot.scheme,
        };
        let transport = Transport::of(slot.scheme);
        for socket in &slot.sockets {
            claimed.insert((transport, *socket, slot.hostname.clone()), claim.clone());
        }
    }
}

/// Why a listener (`at`) cannot serve next to the listeners older Gateways claimed: another
/// protocol on its socket, or its (socket, hostname) already served. The reason is its
/// `Conflicted` reason.
fn cross_gateway_conflict(
    at: &FieldPath,
    slot: &ListenerSlot,
    claimed: &Claimed,
) -> Option<(&'static str, Problem)> {
    // Another Gateway's listener on the same socket with another scheme (HTTP, HTTPS,
    // TLS, TCP) cannot share it: a socket serves one protocol. UDP sockets are apart.
    let transport = Transport::of(slot.scheme);
    let scheme_clash = claimed.iter().find_map(|((on, socket, _), claim)| {
        (*on == transport && slot.sockets.contains(socket) && claim.scheme != slot.scheme)
            .then(|| claim.listener.clone())
    });
    if let Some(other) = scheme_clash {
        let message = format!("{other} uses the same address and port with another protocol");
        return Some(("ProtocolConflict", at.problem(message)));
    }
    let taken = slot.sockets.iter().find_map(|socket| {
        claimed
            .get(&(transport, *socket, slot.hostname.clone()))
            .map(|claim| claim.listener.clone())
    });
    taken.map(|other| {
        let message = format!("{other} on the same address, port and hostname already serves this");
        ("HostnameConflict", at.problem(message))
    })
}

/// A Gateway's `Accepted` and `Programmed`: accepted while any listener is usable (reason
/// `ListenersNotValid` unless all are), not accepted when none is.
fn gateway_conditions(gateway: &FieldPath, usable: usize, listeners: usize) -> Vec<Condition> {
    if usable == listeners {
        return vec![
            Condition::yes("Accepted", "Accepted", format!("{gateway} is accepted")),
            Condition::yes("Programmed", "Programmed", "listeners are bound"),
        ];
    }
    if usable > 0 {
        let message = gateway.problem("some listeners are not valid; see their conditions");
        return vec![
            Condition::yes("Accepted", "ListenersNotValid", message.to_string()),
            Condition::yes("Programmed", "Programmed", "listeners are bound"),
        ];
    }
    let message = gateway
        .problem("no listener is valid; see their conditions")
        .to_string();
    vec![
        Condition::no("Accepted", "ListenersNotValid", message.clone()),
        Condition::no("Programmed", "Invalid", message),
    ]
}

/// Who serves a (socket, hostname) pair, for conflicts across Gateways.
#[derive(Clone)]
pub(crate) struct Claim {
    listener: String,
    scheme: Scheme,
}

/// Marks a listener `Conflicted` (with `reason`) and not `Programmed`, with the same message.
pub(crate) fn mark_conflicted(status: &mut ListenerStatus, reason: &'static str, message: &str) {
    status
        .conditions
        .retain(|c| c.kind != "Conflicted" && c.kind != "Programmed");
    status
        .conditions
        .push(Condition::yes("Conflicted", reason, message.to_owned()));
    status
        .conditions
        .push(Condition::no("Programmed", "Invalid", message.to_owned()));
}

/// `spec.addresses` of type IPAddress (the default type), or the default bind addresses.
/// `path` is the Gateway's path.
pub(crate) fn gateway_addresses(
    path: &FieldPath,
    gateway: &Gateway,
    options: &CompileOptions,
) -> Result<Vec<IpAddr>, Problem> {
    let Some(addresses) = gateway.spec.addresses.as_ref().filter(|a| !a.is_empty()) else {
        return Ok(options.default_addresses.clone());
    };
    let list = path.field("spec.addresses");
    let mut ips = Vec::new();
    for (index, address) in addresses.iter().enumerate() {
        let kind = address.r#type.as_deref().unwrap_or("IPAddress");
        if kind != "IPAddress" {
            return Err(list.index(index).problem(format!(
                "address type {kind:?} is not supported (only IPAddress)"
            )));
        }
        let Some(value) = address.value.as_deref() else {
            // An IPAddress entry without a value asks the implementation to pick one.
            ips.extend(options.default_addresses.iter().copied());
            continue;
        };
        let ip: IpAddr = value.parse().map_err(|_| {
            list.index(index)
                .field("value")
                .problem(format!("{value:?} is not an IP address"))
        })?;
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    Ok(ips)
}

/// The object listeners belong to (a Gateway, or a ListenerSet adding listeners to one), as
/// listener compilation needs it.
pub(crate) struct ListenerOwner<'a> {
    /// `Gateway` or `ListenerSet`.
    pub(crate) kind: &'static str,
    /// Its field path: `Gateway ns/name`.
    pub(crate) path: FieldPath,
    /// Its namespace: certificate Secrets are looked up from here, and `allowedRoutes`
    /// `from: Same` means it.
    pub(crate) namespace: &'a str,
    /// Its name.
    pub(crate) name: &'a str,
    /// All its listeners: ports and hostnames must not clash among them.
    pub(crate) listeners: &'a [GatewayListeners],
    /// Where its listeners bind.
    pub(crate) addresses: &'a [IpAddr],
    /// The index its status has in the report.
    pub(crate) object_index: usize,
}

/// Compiles listener `index` of `owner`: its conditions (`Accepted`, `ResolvedRefs`,
/// `Conflicted`, `Programmed`, in that order) and its slot, usable only when it is accepted,
/// its references resolve and it conflicts with no other listener of the owner.
pub(crate) fn compile_listener(
    store: &Store,
    owner: &ListenerOwner<'_>,
    index: usize,
) -> (ListenerStatus, ListenerSlot) {
    let spec = &owner.listeners[index];
    let at = owner.path.field("spec.listeners").index(index);
    let mut conditions = Vec::new();

    // Accepted: one False condition per invalid field, each with its own reason.
    let (port, protocol, field_problems) = check_fields(&at, spec);
    let accepted = field_problems.is_empty();
    for problem in &field_problems {
        conditions.push(Condition::no(
            "Accepted",
            problem.reason_or("Invalid"),
            problem.to_string(),
        ));
    }
    if accepted {
        conditions.push(Condition::yes("Accepted", "Accepted", "listener is valid"));
    }

    // ResolvedRefs: unsupported route kinds are only reported (the supported ones still
    // attach); a certificate that does not resolve stops the listener from serving.
    let references = resolve_references(store, owner.namespace, &at, spec, protocol);
    conditions.extend(references.conditions);

    let conflict = conflict_within(&at, owner.listeners, index);
    let usable = accepted && references.certificate_resolved && conflict.is_none();
    conditions.extend(serving_conditions(conflict, usable));

    let status = ListenerStatus {
        name: spec.name.clone(),
        attached_routes: 0,
        supported_kinds: references.allowed_kinds.clone(),
        conditions,
    };
    let slot = ListenerSlot {
        owner_kind: owner.kind,
        gateway_namespace: owner.namespace.to_owned(),
        gateway_name: owner.name.to_owned(),
        name: spec.name.clone(),
        port: port.unwrap_or(0),
        hostname: listener_hostname(spec, protocol),
        sockets: sockets(owner.addresses, port),
        allowed_namespaces: allowed_namespaces(spec),
        allowed_kinds: references.allowed_kinds,
        usable,
        status_at: (owner.object_index, index),
        scheme: protocol.unwrap_or(Scheme::Http),
        certificate: references.certificate,
        tls: (protocol == Some(Scheme::Tls)).then(|| TlsSlot::new(tls_listener::mode(spec))),
        l4: matches!(protocol, Some(Scheme::Tcp | Scheme::Udp)).then(L4Slot::default),
        route_views: Vec::new(),
    };
    (status, slot)
}

/// The listener's hostname, lower case; none for TCP and UDP listeners, which cannot route by
/// hostname (the spec has their `hostname` ignored).
fn listener_hostname(spec: &GatewayListeners, protocol: Option<Scheme>) -> Option<String> {
    if matches!(protocol, Some(Scheme::Tcp | Scheme::Udp)) {
        return None;
    }
    spec.hostname.as_ref().map(|h| h.to_ascii_lowercase())
}

/// `Conflicted` (with the conflict's reason) and `Programmed` (whether the listener serves).
fn serving_conditions(conflict: Option<(&'static str, Problem)>, usable: bool) -> [Condition; 2] {
    let conflicted = match conflict {
        Some((reason, problem)) => Condition::yes("Conflicted", reason, problem.to_string()),
        None => Condition::no("Conflicted", "NoConflicts", "no conflicts"),
    };
    let programmed = if usable {
        Condition::yes("Programmed", "Programmed", "listener is serving")
    } else {
        Condition::no(
            "Programmed",
            "Invalid",
            "listener is not valid; see its other conditions",
        )
    };
    [conflicted, programmed]
}

/// The listener's own fields (`at` is its path), for `Accepted`: the port, the protocol
/// (HTTP, HTTPS or TLS) and the hostname. Every problem carries its `Accepted` reason.
fn check_fields(
    at: &FieldPath,
    spec: &GatewayListeners,
) -> (Option<u16>, Option<Scheme>, Problems) {
    let mut problems = Problems::default();
    let port = u16::try_from(spec.port).ok().filter(|p| *p != 0);
    if port.is_none() {
        problems.report(
            at.field("port")
                .problem(format!("{} is not a valid port", spec.port))
                .because("PortUnavailable"),
        );
    }
    let protocol = match spec.protocol.as_str() {
        "HTTP" => Some(Scheme::Http),
        "HTTPS" => Some(Scheme::Https),
        "TLS" => Some(Scheme::Tls),
        "TCP" => Some(Scheme::Tcp),
        "UDP" => Some(Scheme::Udp),
        other => {
            problems.report(
                at.field("protocol")
                    .problem(format!(
                        "{other:?} is not supported (HTTP, HTTPS, TLS, TCP and UDP are)"
                    ))
                    .because("UnsupportedProtocol"),
            );
            None
        }
    };
    if let Some(host) = &spec.hostname
        && let Err(message) = hostname::validate(host)
    {
        problems.report(
            at.field("hostname")
                .problem(message)
                .because("UnsupportedValue"),
        );
    }
    (port, protocol, problems)
}

/// What a listener references, for `ResolvedRefs`: the route kinds it allows and its
/// certificate.
struct References {
    /// `supportedKinds`: the requested kinds this listener supports.
    allowed_kinds: Vec<RouteKind>,
    /// The certificate of an HTTPS listener, or of a TLS listener in `Terminate` mode.
    certificate: Option<Arc<CertifiedKey>>,
    /// Whether the certificate (when one is needed) resolved; a listener without it cannot
    /// serve.
    certificate_resolved: bool,
    /// `ResolvedRefs`: False once per problem, else True.
    conditions: Vec<Condition>,
}

/// Resolves a listener's references (`at` is its path): `allowedRoutes.kinds` against what
/// its protocol supports, and the certificate of an HTTPS or TLS listener.
fn resolve_references(
    store: &Store,
    namespace: &str,
    at: &FieldPath,
    spec: &GatewayListeners,
    protocol: Option<Scheme>,
) -> References {
    let route_kinds = match protocol {
        Some(Scheme::Tls) => tls_listener::TLS_ROUTE_KINDS,
        Some(Scheme::Tcp) => l4_route::TCP_ROUTE_KINDS,
        Some(Scheme::Udp) => l4_route::UDP_ROUTE_KINDS,
        _ => HTTP_ROUTE_KINDS,
    };
    let (allowed_kinds, invalid_kinds) = allowed_kinds(at, spec, route_kinds);
    let mut conditions = Vec::new();
    if let Some(problem) = &invalid_kinds {
        conditions.push(Condition::no(
            "ResolvedRefs",
            problem.reason_or("InvalidRouteKinds"),
            problem.to_string(),
        ));
    }
    let certificate = match protocol {
        Some(Scheme::Https) => listener_certificate(store, at, namespace, spec).map(Some),
        Some(Scheme::Tls) => tls_listener::certificate(store, at, namespace, spec),
        _ => Ok(None),
    };
    let (certificate, certificate_resolved) = match certificate {
        Ok(certificate) => (certificate, true),
        Err(problem) => {
            conditions.push(Condition::no(
                "ResolvedRefs",
                problem.reason_or("InvalidCertificateRef"),
                problem.to_string(),
            ));
            (None, false)
        }
    };
    if conditions.is_empty() {
        conditions.push(Condition::yes(
            "ResolvedRefs",
            "ResolvedRefs",
            "all references resolved",
        ));
    }
    References {
        allowed_kinds,
        certificate,
        certificate_resolved,
        conditions,
    }
}

/// Within one owner, listeners on one port must agree on protocol, and (port, hostname) must
/// be unique. Both sides of a conflict are Conflicted: the conflict of listener `index`, with
/// its reason, if it has one.
fn conflict_within(
    at: &FieldPath,
    listeners: &[GatewayListeners],
    index: usize,
) -> Option<(&'static str, Problem)> {
    let spec = &listeners[index];
    // UDP listeners share port numbers with TCP-based ones without conflict.
    let is_udp = |l: &GatewayListeners| l.protocol == "UDP";
    // TCP and UDP listeners have no hostname to tell them apart (theirs is ignored).
    fn hostname(l: &GatewayListeners) -> Option<&String> {
        match l.protocol.as_str() {
            "TCP" | "UDP" => None,
            _ => l.hostname.as_ref(),
        }
    }
    let same_port = listeners
        .iter()
        .enumerate()
        .filter(|(other, l)| l.port == spec.port && *other != index && is_udp(l) == is_udp(spec))
        .map(|(_, l)| l);
    let mut conflict = None;
    for other in same_port {
        if other.protocol != spec.protocol {
            let message = format!(
                "listener {:?} uses port {} with protocol {}",
                other.name, spec.port, other.protocol
            );
            return Some(("ProtocolConflict", at.problem(message)));
        }
        if hostname(other) == hostname(spec) {
            let message = format!("listener {:?} has the same port and hostname", other.name);
            conflict = Some(("HostnameConflict", at.problem(message)));
        }
    }
    conflict
}

/// Where a listener binds: its port on each of the owner's addresses (none without a port).
fn sockets(addresses: &[IpAddr], port: Option<u16>) -> Vec<SocketAddr> {
    match port {
        Some(port) => addresses
            .iter()
            .map(|ip| SocketAddr::new(*ip, port))
            .collect(),
        None => Vec::new(),
    }
}

/// The certificate of an HTTPS listener (`tls.mode` Terminate, the default).
fn listener_certificate(
    store: &Store,
    at: &FieldPath,
    namespace: &str,
    spec: &GatewayListeners,
) -> Result<Arc<CertifiedKey>, Problem> {
    let Some(tls) = &spec.tls else {
        return Err(at
            .field("tls")
            .problem("an HTTPS listener needs tls.certificateRefs")
            .because("InvalidCertificateRef"));
    };
    if tls.mode == Some(GatewayListenersTlsMode::Passthrough) {
        return Err(at
            .field("tls.mode")
            .problem("Passthrough is not valid for HTTPS (use a TLS listener)")
            .because("InvalidCertificateRef"));
    }
    let refs: Vec<CertificateRef<'_>> = tls
        .certificate_refs
        .iter()
        .flatten()
        .map(|r| CertificateRef {
            group: r.group.as_deref(),
            kind: r.kind.as_deref(),
            name: &r.name,
            namespace: r.namespace.as_deref(),
        })
        .collect();
    resolve_certificate(store, at, "Gateway", namespace, &refs)
}

/// `allowedRoutes.kinds` against the kinds the listener's protocol supports
/// (`supported_kinds`): the listener's `supportedKinds`, and the problem (`InvalidRouteKinds`)
/// when some requested kind is not supported.
fn allowed_kinds(
    at: &FieldPath,
    spec: &GatewayListeners,
    supported_kinds: &[&str],
) -> (Vec<RouteKind>, Option<Problem>) {
    let supported = |kind: &str| supported_kinds.contains(&kind);
    let requested = spec.allowed_routes.as_ref().and_then(|r| r.kinds.as_ref());
    let Some(requested) = requested.filter(|k| !k.is_empty()) else {
        let all = supported_kinds
            .iter()
            .map(|k| RouteKind {
                group: GATEWAY_GROUP.to_owned(),
                kind: (*k).to_owned(),
            })
            .collect();
        return (all, None);
    };
    let mut kinds = Vec::new();
    let mut invalid = Vec::new();
    for kind in requested {
        let group = kind.group.as_deref().unwrap_or(GATEWAY_GROUP);
        if group == GATEWAY_GROUP && supported(&kind.kind) {
            kinds.push(RouteKind {
                group: group.to_owned(),
                kind: kind.kind.clone(),
            });
        } else {
            invalid.push(format!("{group}/{}", kind.kind));
        }
    }
    if invalid.is_empty() {
        return (kinds, None);
    }
    let problem = at
        .field("allowedRoutes.kinds")
        .problem(format!(
            "{} not supported on this listener",
            invalid.join(", ")
        ))
        .because("InvalidRouteKinds");
    (kinds, Some(problem))
}

fn allowed_namespaces(spec: &GatewayListeners) -> AllowedNamespaces {
    let Some(namespaces) = spec
        .allowed_routes
        .as_ref()
        .and_then(|r| r.namespaces.as_ref())
    else {
        return AllowedNamespaces::Same;
    };
    match namespaces.from {
        Some(GatewayListenersAllowedRoutesNamespacesFrom::All) => AllowedNamespaces::All,
        Some(GatewayListenersAllowedRoutesNamespacesFrom::Selector) => {
            let selector = namespaces.selector.as_ref();
            AllowedNamespaces::Selector {
                labels: selector.and_then(|s| s.match_labels.clone()),
                expressions: selector
                    .and_then(|s| s.match_expressions.as_ref())
                    .into_iter()
                    .flatten()
                    .map(|e| {
                        (
                            e.key.clone(),
                            e.operator.clone(),
                            e.values.clone().unwrap_or_default(),
                        )
                    })
                    .collect(),
            }
        }
        Some(GatewayListenersAllowedRoutesNamespacesFrom::Same) | None => AllowedNamespaces::Same,
    }
}
