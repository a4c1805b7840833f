//! GatewayClasses and Gateways: which are ours, where their listeners bind, listener validation
//! and conflicts, and their status.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use model::Store;
use model::gateway_api::{
    Gateway, GatewayListeners, GatewayListenersAllowedRoutesNamespacesFrom, GatewayListenersTlsMode,
};
use router::RouteTableBuilder;
use rustls::sign::CertifiedKey;
use snapshot::Scheme;

use crate::CompileOptions;
use crate::hostname;
use crate::listener::{AllowedNamespaces, ListenerSlot, Listeners};
use crate::status::{Condition, ListenerStatus, ObjectStatus, RouteKind, StatusReport};
use crate::tls::{CertificateProblem, CertificateRef, resolve_certificate};
use crate::tls_listener::{self, TlsSlot};

const GATEWAY_GROUP: &str = model::kind::GATEWAY_GROUP;
/// Route kinds an HTTP or HTTPS listener accepts.
const HTTP_ROUTE_KINDS: &[&str] = &["HTTPRoute", "GRPCRoute"];

/// Validates our GatewayClasses and Gateways; returns their listeners with routes not yet
/// attached. Gateways are processed oldest first (then by namespace/name), which decides who
/// wins a listener conflict across Gateways.
pub(crate) fn compile_gateways(
    store: &Store,
    options: &CompileOptions,
    status: &mut StatusReport,
) -> Listeners {
    let mut ours = Vec::new();
    for (name, class) in &store.gateway_classes {
        if class.spec.controller_name != options.controller_name {
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
        status.objects.push(object);
    }

    let mut gateways: Vec<(&(String, String), &Gateway)> = store
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
    // (socket, hostname) → first listener slot claiming it, across Gateways.
    let mut claimed: HashMap<(SocketAddr, Option<String>), Claim> = HashMap::new();
    for ((namespace, name), gateway) in gateways {
        compile_gateway(
            store,
            namespace,
            name,
            gateway,
            options,
            status,
            &mut listeners,
            &mut claimed,
        );
    }
    listeners
}

#[allow(clippy::too_many_arguments)]
fn compile_gateway(
    store: &Store,
    namespace: &str,
    name: &str,
    gateway: &Gateway,
    options: &CompileOptions,
    status: &mut StatusReport,
    listeners: &mut Listeners,
    claimed: &mut HashMap<(SocketAddr, Option<String>), Claim>,
) {
    let label = format!("Gateway {namespace}/{name}");
    let object_index = status.objects.len();
    let mut object = ObjectStatus::new("Gateway", namespace, name);

    let addresses = match gateway_addresses(gateway, options) {
        Ok(addresses) => addresses,
        Err(message) => {
            let message = format!("{label} {message}");
            object
                .conditions
                .push(Condition::no("Accepted", "UnsupportedAddress", &message));
            object
                .conditions
                .push(Condition::no("Programmed", "AddressNotUsable", message));
            status.objects.push(object);
            return;
        }
    };
    object.addresses = addresses.iter().map(ToString::to_string).collect();

    let specs = &gateway.spec.listeners;
    let mut slots = Vec::new();
    let mut valid_listeners = 0;
    for (index, spec) in specs.iter().enumerate() {
        let at = format!("{label} spec.listeners[{index}]");
        let (listener_status, slot) = compile_listener(
            store,
            namespace,
            name,
            &at,
            spec,
            specs,
            &addresses,
            (object_index, index),
        );
        if slot.usable {
            valid_listeners += 1;
        }
        object.listeners.push(listener_status);
        slots.push(slot);
    }

    // Listeners of different Gateways on one socket merge when their hostnames differ; the
    // older Gateway keeps a contested (socket, hostname) and the newer listener is Conflicted.
    for (index, slot) in slots.iter_mut().enumerate() {
        if !slot.usable {
            continue;
        }
        let key_host = slot.hostname.clone();
        let taken: Vec<String> = slot
            .sockets
            .iter()
            .filter_map(|socket| {
                claimed
                    .get(&(*socket, key_host.clone()))
                    .map(|claim| claim.listener.clone())
            })
            .collect();
        // Another Gateway's listener on the same socket with another scheme (HTTP, HTTPS,
        // TLS) cannot share it: a socket serves one protocol.
        let scheme_clash = claimed.iter().find_map(|((socket, _), claim)| {
            (slot.sockets.contains(socket) && claim.scheme != slot.scheme)
                .then(|| claim.listener.clone())
        });
        if let Some(other) = scheme_clash {
            slot.usable = false;
            valid_listeners -= 1;
            let message = format!(
                "{label} spec.listeners[{index}]: {other} uses the same address and port with another protocol"
            );
            mark_conflicted(&mut object.listeners[index], "ProtocolConflict", &message);
        } else if let Some(other) = taken.first() {
            slot.usable = false;
            valid_listeners -= 1;
            let message = format!(
                "{label} spec.listeners[{index}]: {} on the same address, port and hostname already serves this",
                other
            );
            mark_conflicted(&mut object.listeners[index], "HostnameConflict", &message);
        } else {
            let claim = Claim {
                listener: slot.label(),
                scheme: slot.scheme,
            };
            for socket in &slot.sockets {
                claimed.insert((*socket, key_host.clone()), claim.clone());
            }
        }
    }

    let (accepted, reason, message) = if valid_listeners == specs.len() {
        (true, "Accepted", format!("{label} is accepted"))
    } else if valid_listeners > 0 {
        (
            true,
            "ListenersNotValid",
            format!("{label}: some listeners are not valid; see their conditions"),
        )
    } else {
        (
            false,
            "ListenersNotValid",
            format!("{label}: no listener is valid; see their conditions"),
        )
    };
    if accepted {
        object
            .conditions
            .push(Condition::yes("Accepted", reason, message));
        object.conditions.push(Condition::yes(
            "Programmed",
            "Programmed",
            "listeners are bound",
        ));
    } else {
        object
            .conditions
            .push(Condition::no("Accepted", reason, message.clone()));
        object
            .conditions
            .push(Condition::no("Programmed", "Invalid", message));
    }
    status.objects.push(object);

    let first = listeners.slots.len();
    listeners.by_gateway.insert(
        (namespace.to_owned(), name.to_owned()),
        (first..first + slots.len()).collect(),
    );
    listeners.slots.extend(slots);
}

/// Who serves a (socket, hostname) pair, for conflicts across Gateways.
#[derive(Clone)]
pub(crate) struct Claim {
    listener: String,
    scheme: Scheme,
}

pub(crate) fn mark_conflicted(status: &mut ListenerStatus, reason: &'static str, message: &str) {
    status
        .conditions
        .retain(|c| c.kind != "Conflicted" && c.kind != "Programmed");
    status
        .conditions
        .push(Condition::yes("Conflicted", reason, message));
    status
        .conditions
        .push(Condition::no("Programmed", "Invalid", message));
}

/// `spec.addresses` of type IPAddress (the default type), or the default bind addresses.
pub(crate) fn gateway_addresses(
    gateway: &Gateway,
    options: &CompileOptions,
) -> Result<Vec<IpAddr>, String> {
    let Some(addresses) = gateway.spec.addresses.as_ref().filter(|a| !a.is_empty()) else {
        return Ok(options.default_addresses.clone());
    };
    let mut ips = Vec::new();
    for (index, address) in addresses.iter().enumerate() {
        let kind = address.r#type.as_deref().unwrap_or("IPAddress");
        if kind != "IPAddress" {
            return Err(format!(
                "spec.addresses[{index}]: address type {kind:?} is not supported (only IPAddress)"
            ));
        }
        let Some(value) = address.value.as_deref() else {
            // An IPAddress entry without a value asks the implementation to pick one.
            ips.extend(options.default_addresses.iter().copied());
            continue;
        };
        let ip: IpAddr = value.parse().map_err(|_| {
            format!("spec.addresses[{index}].value: {value:?} is not an IP address")
        })?;
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    Ok(ips)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn compile_listener(
    store: &Store,
    namespace: &str,
    gateway_name: &str,
    at: &str,
    spec: &GatewayListeners,
    all: &[GatewayListeners],
    addresses: &[IpAddr],
    status_at: (usize, usize),
) -> (ListenerStatus, ListenerSlot) {
    let mut conditions = Vec::new();
    let mut usable = true;
    let mut reject = |conditions: &mut Vec<Condition>, reason: &'static str, message: String| {
        usable = false;
        conditions.push(Condition::no("Accepted", reason, message));
    };

    let port = u16::try_from(spec.port).ok().filter(|p| *p != 0);
    if port.is_none() {
        reject(
            &mut conditions,
            "PortUnavailable",
            format!("{at}.port: {} is not a valid port", spec.port),
        );
    }
    let protocol = match spec.protocol.as_str() {
        "HTTP" => Some(Scheme::Http),
        "HTTPS" => Some(Scheme::Https),
        "TLS" => Some(Scheme::Tls),
        other => {
            reject(
                &mut conditions,
                "UnsupportedProtocol",
                format!("{at}.protocol: {other:?} is not supported yet (HTTP, HTTPS and TLS are)"),
            );
            None
        }
    };
    if let Some(host) = &spec.hostname
        && let Err(message) = hostname::validate(host)
    {
        reject(
            &mut conditions,
            "UnsupportedValue",
            format!("{at}.hostname: {message}"),
        );
    }
    if usable {
        conditions.push(Condition::yes("Accepted", "Accepted", "listener is valid"));
    }

    let route_kinds = match protocol {
        Some(Scheme::Tls) => tls_listener::TLS_ROUTE_KINDS,
        _ => HTTP_ROUTE_KINDS,
    };
    let (allowed_kinds, mut kinds_ok) = allowed_kinds(at, spec, route_kinds, &mut conditions);
    let certificate = match protocol {
        Some(Scheme::Https) => listener_certificate(store, at, namespace, spec).map(Some),
        Some(Scheme::Tls) => tls_listener::certificate(store, at, namespace, spec),
        _ => Ok(None),
    };
    let certificate = match certificate {
        Ok(certificate) => certificate,
        Err(problem) => {
            usable = false;
            kinds_ok = false;
            conditions.push(Condition::no(
                "ResolvedRefs",
                problem.reason,
                problem.message,
            ));
            None
        }
    };
    if kinds_ok {
        conditions.push(Condition::yes(
            "ResolvedRefs",
            "ResolvedRefs",
            "all references resolved",
        ));
    }

    // Within one Gateway, listeners on one port must agree on protocol, and (port, hostname)
    // must be unique. Both sides of a conflict are Conflicted.
    let same_port = all
        .iter()
        .filter(|l| l.port == spec.port && !std::ptr::eq(*l, spec));
    let mut conflict = None;
    for other in same_port {
        if other.protocol != spec.protocol {
            conflict = Some((
                "ProtocolConflict",
                format!(
                    "{at}: listener {:?} uses port {} with protocol {}",
                    other.name, spec.port, other.protocol
                ),
            ));
            break;
        }
        if other.hostname == spec.hostname {
            conflict = Some((
                "HostnameConflict",
                format!(
                    "{at}: listener {:?} has the same port and hostname",
                    other.name
                ),
            ));
        }
    }
    if let Some((reason, message)) = &conflict {
        usable = false;
        conditions.push(Condition::yes("Conflicted", reason, message.clone()));
    } else {
        conditions.push(Condition::no("Conflicted", "NoConflicts", "no conflicts"));
    }
    if usable {
        conditions.push(Condition::yes(
            "Programmed",
            "Programmed",
            "listener is serving",
        ));
    } else {
        conditions.push(Condition::no(
            "Programmed",
            "Invalid",
            "listener is not valid; see its other conditions",
        ));
    }

    let sockets = match port {
        Some(port) => addresses
            .iter()
            .map(|ip| SocketAddr::new(*ip, port))
            .collect(),
        None => Vec::new(),
    };
    let status = ListenerStatus {
        name: spec.name.clone(),
        attached_routes: 0,
        supported_kinds: allowed_kinds.clone(),
        conditions,
    };
    let slot = ListenerSlot {
        owner_kind: "Gateway",
        gateway_namespace: namespace.to_owned(),
        gateway_name: gateway_name.to_owned(),
        name: spec.name.clone(),
        port: port.unwrap_or(0),
        hostname: spec.hostname.as_ref().map(|h| h.to_ascii_lowercase()),
        sockets,
        allowed_namespaces: allowed_namespaces(spec),
        allowed_kinds,
        usable,
        status_at,
        scheme: protocol.unwrap_or(Scheme::Http),
        certificate,
        tls: (protocol == Some(Scheme::Tls)).then(|| TlsSlot::new(tls_listener::mode(spec))),
        builder: RouteTableBuilder::new(),
        route_views: Vec::new(),
    };
    (status, slot)
}

/// The certificate of an HTTPS listener (`tls.mode` Terminate, the default).
fn listener_certificate(
    store: &Store,
    at: &str,
    namespace: &str,
    spec: &GatewayListeners,
) -> Result<Arc<CertifiedKey>, CertificateProblem> {
    let Some(tls) = &spec.tls else {
        return Err(CertificateProblem {
            reason: "InvalidCertificateRef",
            message: format!("{at}.tls: an HTTPS listener needs tls.certificateRefs"),
        });
    };
    if tls.mode == Some(GatewayListenersTlsMode::Passthrough) {
        return Err(CertificateProblem {
            reason: "InvalidCertificateRef",
            message: format!(
                "{at}.tls.mode: Passthrough is not valid for HTTPS (use a TLS listener)"
            ),
        });
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
/// (`supported_kinds`): the listener's `supportedKinds`, and whether every requested kind is
/// supported (else `ResolvedRefs` False, `InvalidRouteKinds`).
fn allowed_kinds(
    at: &str,
    spec: &GatewayListeners,
    supported_kinds: &[&str],
    conditions: &mut Vec<Condition>,
) -> (Vec<RouteKind>, bool) {
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
        return (all, true);
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
        return (kinds, true);
    }
    conditions.push(Condition::no(
        "ResolvedRefs",
        "InvalidRouteKinds",
        format!(
            "{at}.allowedRoutes.kinds: {} not supported on this listener",
            invalid.join(", ")
        ),
    ));
    (kinds, false)
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
