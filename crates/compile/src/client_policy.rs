//! `ClientTrafficPolicy` (`portcullis.dev/v1alpha1`): validation, attachment to Gateways and
//! listeners through `spec.targetRefs`, the settings each listener and each socket ends up
//! with, and the policies' status.
//!
//! - **Targets.** A Gateway (`group: gateway.networking.k8s.io, kind: Gateway`) in the
//!   policy's namespace (a target reference has no namespace, so a policy can only reach
//!   Gateways of its own namespace), whole or one listener by `sectionName`. A whole-Gateway
//!   policy also covers the listeners the Gateway's ListenerSets add (they serve on its
//!   addresses, as its frontend TLS validation does); a listener-level policy names one of the
//!   Gateway's own listeners.
//! - **Precedence.** A listener's policy is the one on the listener, else the one on its
//!   Gateway: whole policy, no field merging. A listener without either gets the defaults of
//!   `snapshot::client`.
//! - **Conflicts.** Two policies on one target: the older (creation time, then namespace/name)
//!   keeps it; the other is `Conflicted` there, as with BackendTrafficPolicy. An invalid policy
//!   (`Accepted=False`, reason `Invalid`, every problem named by field) claims nothing, so the
//!   next less specific policy applies and the rest of the config keeps working.
//! - **Per request, per listener:** `path` goes to the listener's `ListenerRoutes.path`.
//! - **Per connection, per socket:** HTTP/1.1 versus HTTP/2 and TLS are settled before a
//!   request names its host, so the connection settings of every listener sharing a socket are
//!   merged (see `socket`): the strictest value of each limit, the newest `tls.minVersion`,
//!   the ALPN list of the first listener whose policy sets one, and the PROXY protocol setting
//!   of the first listener. A later listener that disagrees on PROXY protocol or ALPN makes
//!   its policy (or, when it has none, the first listener's) `Conflicted`, while it stays
//!   Accepted: the rest of it applies.
//!
//! It does not enforce anything: the proxy reads the resulting `SocketRoutes.client`,
//! `ListenerRoutes.path` and TLS configs.

mod socket;
mod spec;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use model::client_policy::ClientTrafficPolicy;
use model::policy::PolicyTargetRef;
use model::{Store, kind::GATEWAY_GROUP};
use snapshot::client::{ClientSettings, PathPolicy};
use snapshot::tls::{AlpnProtocol, HandshakeSettings, MinTlsVersion};

use crate::CompileOptions;
use crate::ancestors::gateway_ancestor;
use crate::listener::Listeners;
use crate::problems::{FieldPath, Problem, Problems};
use crate::status::{Condition, ObjectStatus, StatusReport};

/// The kind, as status spells it.
const KIND: &str = "ClientTrafficPolicy";

/// What one listener allows its clients: its policy's settings, or the defaults.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ListenerClient {
    /// Connection-level settings, before the listeners of a socket are merged.
    pub(crate) settings: ClientSettings,
    /// Path normalization of the listener's requests.
    pub(crate) path: PathPolicy,
    /// Trace sampling of the listener's requests (`None`: the gateway's default).
    pub(crate) tracing: Option<snapshot::client::TraceSampling>,
    /// The oldest TLS version the listener wants accepted.
    pub(crate) min_tls_version: MinTlsVersion,
    /// The ALPN protocols the listener's policy sets (`None`: the socket's default).
    pub(crate) alpn: Option<Vec<AlpnProtocol>>,
    /// The policy these settings come from: its index among this compile's policies and
    /// its label (`ClientTrafficPolicy ns/name`). `None`: the defaults.
    pub(crate) policy: Option<(usize, Arc<str>)>,
}

/// What one socket allows its clients, merged over its listeners.
#[derive(Clone, Debug, Default)]
pub(crate) struct SocketClient {
    /// `SocketRoutes.client`.
    pub(crate) settings: Arc<ClientSettings>,
    /// The TLS versions and ALPN protocols of the socket's handshakes.
    pub(crate) handshake: HandshakeSettings,
}

/// Every listener's and socket's client settings, for `Listeners::build_sockets`.
#[derive(Debug, Default)]
pub(crate) struct ClientPlan {
    /// By listener slot index; a slot missing here has the defaults.
    pub(crate) listeners: HashMap<usize, ListenerClient>,
    /// By socket; a socket missing here has the defaults.
    pub(crate) sockets: HashMap<SocketAddr, SocketClient>,
}

impl ClientPlan {
    /// The settings of one listener slot.
    pub(crate) fn listener(&self, slot: usize) -> ListenerClient {
        self.listeners.get(&slot).cloned().unwrap_or_default()
    }

    /// The settings of one socket.
    pub(crate) fn socket(&self, address: &SocketAddr) -> SocketClient {
        self.sockets.get(address).cloned().unwrap_or_default()
    }
}

/// Where a policy attaches: a Gateway, or one of its listeners.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Target {
    namespace: model::Name,
    gateway: model::Name,
    listener: Option<String>,
}

/// Who holds each target: the policy's index and label.
type Targets = HashMap<Target, (usize, Arc<str>)>;

/// One policy while compile works on it.
struct PolicyState {
    /// The policy's path (`ClientTrafficPolicy ns/name`).
    path: FieldPath,
    status: ObjectStatus,
    /// The validated settings; `None` when the policy is invalid.
    client: Option<ListenerClient>,
    /// Targets it holds, as `Gateway ns/name` or `Gateway ns/name listener x`.
    attached: Vec<String>,
    not_found: Problems,
    /// Targets an older policy holds, and disagreements with listeners sharing a socket.
    conflicts: Problems,
    /// Serving listeners it applies to (their labels).
    applies_to: Vec<String>,
    /// The Gateways of ours it targets (a listener when `sectionName` names one), in
    /// targetRefs order: its `status.ancestors`.
    ancestors: Vec<(model::NamespacedName, Option<String>)>,
}

/// Validates every ClientTrafficPolicy, attaches the valid ones, records each listener's and
/// socket's settings in `listeners.clients`, and writes the policies' status. Runs once the
/// Gateways and ListenerSets are compiled (it needs to know which listeners serve).
pub(crate) fn apply_client_policies(
    store: &Store,
    options: &CompileOptions,
    listeners: &mut Listeners,
    status: &mut StatusReport,
) {
    let mut ordered: Vec<_> = store.client_traffic_policies.iter().collect();
    ordered.sort_by_key(|((namespace, name), policy)| {
        (created(policy), namespace.clone(), name.clone())
    });
    let mut policies = Vec::with_capacity(ordered.len());
    let mut by_target = Targets::new();
    for ((namespace, name), policy) in ordered {
        let index = policies.len();
        let mut state = validate(namespace, name, policy, index);
        state.ancestors = ancestors(store, listeners, namespace, &policy.spec.target_refs);
        if state.client.is_some() {
            attach(
                store,
                listeners,
                namespace,
                &policy.spec.target_refs,
                (index, &mut state),
                &mut by_target,
            );
        }
        policies.push(state);
    }
    let clients = listener_clients(store, listeners, &by_target, &mut policies);
    let (sockets, conflicts) = socket::merge(listeners, &clients);
    for (index, field, message) in conflicts {
        let problem = policies[index].path.field(field).problem(message);
        policies[index].conflicts.report(problem);
    }
    listeners.clients = ClientPlan {
        listeners: clients,
        sockets,
    };
    let controller_name = &options.controller_name;
    let statuses = policies.into_iter().map(|mut policy| {
        let ancestors = std::mem::take(&mut policy.ancestors);
        let mut status = policy.finish();
        // GEP-713: the policy's conditions on each Gateway it targets (the Kubernetes status
        // has no object-level conditions; `/status` and `check` show both).
        status.ancestors = ancestors
            .into_iter()
            .map(|(gateway, listener)| {
                let conditions = status.conditions.clone();
                gateway_ancestor(gateway, listener, controller_name, conditions)
            })
            .collect();
        status
    });
    status.objects.extend(statuses);
}

/// `metadata.creationTimestamp` in unix seconds: the age that decides conflicts.
fn created(policy: &ClientTrafficPolicy) -> Option<i64> {
    policy
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.as_second())
}

/// One policy's spec, validated (`index`: its position among the policies, oldest first).
fn validate(
    namespace: &str,
    name: &str,
    policy: &ClientTrafficPolicy,
    index: usize,
) -> PolicyState {
    let path = FieldPath::object(KIND, namespace, name);
    let mut status = ObjectStatus::new(KIND, namespace, name);
    let client = match spec::compile_spec(&path, &policy.spec) {
        Ok(client) => Some(ListenerClient {
            policy: Some((index, path.to_string().into())),
            ..client
        }),
        Err(problems) => {
            status
                .conditions
                .push(Condition::no("Accepted", "Invalid", problems.join()));
            status.problems = problems.lines();
            None
        }
    };
    PolicyState {
        path,
        status,
        client,
        attached: Vec::new(),
        not_found: Problems::default(),
        conflicts: Problems::default(),
        applies_to: Vec::new(),
        ancestors: Vec::new(),
    }
}

/// Claims each target a valid policy names, unless an older policy holds it.
fn attach(
    store: &Store,
    listeners: &Listeners,
    namespace: &str,
    refs: &[PolicyTargetRef],
    (index, state): (usize, &mut PolicyState),
    by_target: &mut Targets,
) {
    let list = state.path.field("spec.targetRefs");
    if refs.is_empty() {
        let problem = list.problem("at least one target is required");
        state.not_found.report(problem);
    }
    for (position, reference) in refs.iter().enumerate() {
        let at = list.index(position);
        let found = target_of(store, listeners, namespace, &at, reference);
        let Some(target) = state.not_found.ok(found) else {
            continue;
        };
        let describe = match &target.listener {
            Some(listener) => format!("Gateway {namespace}/{} listener {listener}", target.gateway),
            None => format!("Gateway {namespace}/{}", target.gateway),
        };
        match by_target.get(&target) {
            // The same target named twice by one policy.
            Some((holder, _)) if *holder == index => {}
            // Policies are taken oldest first: whoever holds a target is older.
            Some((_, holder)) => {
                let message = format!("{describe} already has {holder}, which is older");
                state.conflicts.report(at.problem(message));
            }
            None => {
                by_target.insert(target, (index, state.path.to_string().into()));
                state.attached.push(describe);
            }
        }
    }
}

/// The Gateways of ours (a listener when `sectionName` names one) a policy's targets name,
/// whether or not the policy is valid or holds them: each gets the policy's conditions. A
/// listener that is not found makes its Gateway the ancestor; a Gateway that is not found or
/// not ours is no ancestor.
fn ancestors(
    store: &Store,
    listeners: &Listeners,
    namespace: &str,
    refs: &[PolicyTargetRef],
) -> Vec<(model::NamespacedName, Option<String>)> {
    let list = FieldPath::object(KIND, namespace, "").field("spec.targetRefs");
    let mut ancestors = Vec::new();
    for (position, reference) in refs.iter().enumerate() {
        let at = list.index(position);
        let ancestor = match target_of(store, listeners, namespace, &at, reference) {
            Ok(target) => ((target.namespace, target.gateway), target.listener),
            // A listener that is not there: the Gateway (ours) shows why the policy does
            // nothing.
            Err(_) => {
                let gateway = model::key(namespace, &reference.name);
                let is_gateway = (reference.group.as_str(), reference.kind.as_str())
                    == (GATEWAY_GROUP, "Gateway");
                if !is_gateway || !listeners.by_gateway.contains_key(&gateway) {
                    continue;
                }
                (gateway, None)
            }
        };
        if !ancestors.contains(&ancestor) {
            ancestors.push(ancestor);
        }
    }
    ancestors
}

/// The target one `targetRefs` entry (`at`) names: a Gateway of ours in the policy's
/// namespace, whole or one of its listeners.
fn target_of(
    store: &Store,
    listeners: &Listeners,
    namespace: &str,
    at: &FieldPath,
    reference: &PolicyTargetRef,
) -> Result<Target, Problem> {
    if (reference.group.as_str(), reference.kind.as_str()) != (GATEWAY_GROUP, "Gateway") {
        return Err(at.problem(format!(
            "{}/{} is not a supported target (only {GATEWAY_GROUP}/Gateway, whole or one listener by sectionName)",
            reference.group, reference.kind
        )));
    }
    let key = model::key(namespace, &reference.name);
    let gateway = format!("Gateway {namespace}/{}", reference.name);
    if !store.gateways.contains_key(&key) {
        return Err(at.problem(format!("{gateway} not found")));
    }
    let Some(slots) = listeners.by_gateway.get(&key) else {
        return Err(at.problem(format!(
            "{gateway} is not served by Portcullis (its GatewayClass is not ours, or it is not accepted)"
        )));
    };
    if let Some(section) = &reference.section_name
        && !slots
            .iter()
            .any(|&slot| listeners.slots[slot].name == *section)
    {
        return Err(at.problem(format!("{gateway} has no listener named {section:?}")));
    }
    Ok(Target {
        namespace: key.0,
        gateway: key.1,
        listener: reference.section_name.clone(),
    })
}

/// Each listener slot's settings: its own policy, else its Gateway's (for a ListenerSet's
/// listener, its parent Gateway's). Records in each policy the serving listeners it applies
/// to. Slots without a policy are left out (they have the defaults).
fn listener_clients(
    store: &Store,
    listeners: &Listeners,
    by_target: &Targets,
    policies: &mut [PolicyState],
) -> HashMap<usize, ListenerClient> {
    let mut clients = HashMap::new();
    for ((namespace, gateway), own) in &listeners.by_gateway {
        let target = |listener: Option<&str>| Target {
            namespace: namespace.clone(),
            gateway: gateway.clone(),
            listener: listener.map(str::to_owned),
        };
        let holder = |target: Target| by_target.get(&target).map(|(index, _)| *index);
        let whole = holder(target(None));
        let set_slots = listeners.listener_set_slots(store, namespace, gateway);
        let own = own.iter().map(|&slot| {
            let name = listeners.slots[slot].name.as_str();
            (slot, holder(target(Some(name))).or(whole))
        });
        let from_sets = set_slots.into_iter().map(|slot| (slot, whole));
        for (slot, policy) in own.chain(from_sets) {
            let Some(policy) = policy else { continue };
            let Some(client) = &policies[policy].client else {
                continue;
            };
            clients.insert(slot, client.clone());
            if listeners.slots[slot].usable {
                policies[policy]
                    .applies_to
                    .push(listeners.slots[slot].label());
            }
        }
    }
    clients
}

impl PolicyState {
    /// The policy's status. GEP-713: a valid policy that attaches to at least one target is
    /// accepted, and says which serving listeners it applies to; one that attaches nowhere is
    /// not, and says why (lost conflicts first, else the missing targets).
    fn finish(mut self) -> ObjectStatus {
        if self.client.is_none() {
            return self.status;
        }
        let mut status = self.status;
        status.problems.extend(self.not_found.lines());
        status.problems.extend(self.conflicts.lines());
        if self.attached.is_empty() {
            let (reason, message) = if self.conflicts.is_empty() {
                ("TargetNotFound", self.not_found.join())
            } else {
                ("Conflicted", self.conflicts.join())
            };
            status
                .conditions
                .push(Condition::no("Accepted", reason, message));
            return status;
        }
        // Listener labels are sorted for a stable message (slots of several Gateways are
        // visited in hash order).
        self.applies_to.sort();
        self.applies_to.dedup();
        let message = if self.applies_to.is_empty() {
            format!(
                "attached to {}, but no serving listener takes it (a more specific policy wins, or the listeners are not programmed)",
                self.attached.join(", ")
            )
        } else {
            format!("applies to {}", self.applies_to.join(", "))
        };
        status
            .conditions
            .push(Condition::yes("Accepted", "Accepted", message));
        if !self.conflicts.is_empty() {
            status.conditions.push(Condition::yes(
                "Conflicted",
                "Conflicted",
                self.conflicts.join(),
            ));
        }
        status
    }
}

/// The listener's effective client settings for `/config`, in the policy's field names.
pub(crate) fn view(client: &ListenerClient) -> serde_json::Value {
    let settings = &client.settings;
    let duration = |d: Option<std::time::Duration>| d.map(|d| format!("{d:?}"));
    let alpn = client
        .alpn
        .clone()
        .unwrap_or_else(|| HandshakeSettings::default().alpn);
    serde_json::json!({
        "policy": client.policy.as_ref().map(|(_, label)| label.to_string()),
        "headers": {
            "maxRequestHeadersBytes": settings.headers.max_request_headers_bytes,
            "maxHeadersCount": settings.headers.max_headers_count,
            "maxUriBytes": settings.headers.max_uri_bytes,
        },
        "path": {
            "mergeSlashes": client.path.merge_slashes,
            "escapedSlashesAction": spec::escaped_slashes_name(client.path.escaped_slashes),
        },
        "timeout": {
            "requestHeaderTimeout": duration(Some(settings.timeouts.request_header)),
            "requestBodyTimeout": duration(settings.timeouts.request_body),
            "idleTimeout": duration(settings.timeouts.idle),
            "tcpIdleTimeout": duration(settings.stream_idle),
        },
        "udp": {
            "idleTimeout": duration(Some(settings.udp.idle_timeout)),
            "maxFlows": settings.udp.max_flows,
            "maxDatagramBytes": settings.udp.max_datagram_bytes,
        },
        "connection": {
            "maxConnections": settings.max_connections,
            "bufferLimit": settings.buffer_limit,
        },
        "http2": {
            "maxConcurrentStreams": settings.http2.max_concurrent_streams,
            "maxResetsPerConnection": settings.http2.max_resets_per_connection,
            "maxControlFramesPerSecond": settings.http2.max_control_frames_per_second,
            "initialStreamWindowSize": settings.http2.initial_stream_window_size,
            "initialConnectionWindowSize": settings.http2.initial_connection_window_size,
        },
        "clientIPDetection": {"xForwardedFor": {"numTrustedHops": settings.client_ip.xff_trusted_hops}},
        "proxyProtocol": {"enabled": settings.proxy_protocol},
        "tls": {
            "minVersion": client.min_tls_version.as_str(),
            "alpnProtocols": alpn.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        },
    })
}

#[cfg(test)]
mod tests;
