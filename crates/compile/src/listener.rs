//! Compiled listeners: what a route needs to attach to one, and how listeners become sockets.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use router::{HostMap, HostPattern};
use rustls::sign::CertifiedKey;
use snapshot::backend::tls::ClientCertificate;
use snapshot::l4::{TcpListenerRoutes, UdpSocketRoutes};
use snapshot::tls::{ClientValidation, SocketTls};
use snapshot::tls_route::TlsListenerRoutes;
use snapshot::{ListenerRoutes, RouteRule, Scheme, SocketRoutes, UdpSocketMap};

use crate::client_policy::{self, ClientPlan, SocketClient};
use crate::l4_route::L4Slot;
use crate::route_policy::{AppliedRoutePolicies, RoutePolicies};
use crate::selector::{self, Expression};
use crate::status::{RouteKind, StatusReport};
use crate::tls_listener::{self, TlsSlot};
use model::Store;

/// Which namespaces may attach routes (`allowedRoutes.namespaces`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AllowedNamespaces {
    Same,
    All,
    Selector {
        labels: Option<BTreeMap<String, String>>,
        expressions: Vec<(String, String, Vec<String>)>,
    },
}

impl AllowedNamespaces {
    pub(crate) fn allows(
        &self,
        gateway_namespace: &str,
        route_namespace: &str,
        namespace_labels: Option<&model::core::Labels>,
    ) -> bool {
        match self {
            AllowedNamespaces::Same => gateway_namespace == route_namespace,
            AllowedNamespaces::All => true,
            AllowedNamespaces::Selector {
                labels,
                expressions,
            } => {
                let expressions: Vec<Expression<'_>> = expressions
                    .iter()
                    .map(|(key, operator, values)| Expression {
                        key,
                        operator,
                        values,
                    })
                    .collect();
                selector::matches(namespace_labels, labels.as_ref(), &expressions)
            }
        }
    }
}

/// One listener of one Gateway after validation.
pub(crate) struct ListenerSlot {
    /// `Gateway`, or `ListenerSet` for a listener a ListenerSet contributes to its Gateway.
    pub(crate) owner_kind: &'static str,
    /// Namespace and name of the owner (the Gateway, or the ListenerSet). `allowedRoutes`
    /// `from: Same` means this namespace.
    pub(crate) gateway_namespace: String,
    pub(crate) gateway_name: String,
    pub(crate) name: String,
    pub(crate) port: u16,
    pub(crate) hostname: Option<String>,
    pub(crate) sockets: Vec<SocketAddr>,
    pub(crate) allowed_namespaces: AllowedNamespaces,
    pub(crate) allowed_kinds: Vec<RouteKind>,
    /// Accepted, not conflicted: traffic can reach it.
    pub(crate) usable: bool,
    /// Position of its status: (object index, listener index) in the StatusReport.
    pub(crate) status_at: (usize, usize),
    /// HTTP, HTTPS, TLS, TCP or UDP.
    pub(crate) scheme: Scheme,
    /// The certificate of an HTTPS listener or of a TLS listener in `Terminate` mode.
    pub(crate) certificate: Option<Arc<CertifiedKey>>,
    /// TLS listeners: the mode and the TLSRoutes by SNI (`None` for the other protocols).
    pub(crate) tls: Option<TlsSlot>,
    /// TCP and UDP listeners: the route serving them (`None` for the other protocols).
    pub(crate) l4: Option<L4Slot>,
    pub(crate) route_views: Vec<serde_json::Value>,
}

impl ListenerSlot {
    pub(crate) fn label(&self) -> String {
        format!(
            "{} {}/{} listener {}",
            self.owner_kind, self.gateway_namespace, self.gateway_name, self.name
        )
    }

    pub(crate) fn allows_kind(&self, kind: &str) -> bool {
        self.allowed_kinds.iter().any(|k| k.kind == kind)
    }

    /// Whether routes attach to `other` as to this slot: the same owner, name, port,
    /// hostname, sockets, scheme, allowed kinds and namespaces, usability and status position
    /// (its certificate and TLS routes may differ).
    fn same_attachment(&self, other: &ListenerSlot) -> bool {
        self.owner_kind == other.owner_kind
            && self.gateway_namespace == other.gateway_namespace
            && self.gateway_name == other.gateway_name
            && self.name == other.name
            && self.port == other.port
            && self.hostname == other.hostname
            && self.sockets == other.sockets
            && self.scheme == other.scheme
            && self.allowed_namespaces == other.allowed_namespaces
            && self.allowed_kinds == other.allowed_kinds
            && self.usable == other.usable
            && self.status_at == other.status_at
    }
}

/// All listeners of all our Gateways, in Gateway precedence order.
#[derive(Default)]
pub(crate) struct Listeners {
    pub(crate) slots: Vec<ListenerSlot>,
    /// (namespace, name) of each Gateway we own → its slots' indices.
    pub(crate) by_gateway: HashMap<model::NamespacedName, Vec<usize>>,
    /// (namespace, name) of each accepted ListenerSet → its slots' indices (not in its
    /// Gateway's entry: a parentRef to the Gateway does not select them).
    pub(crate) by_listener_set: HashMap<model::NamespacedName, Vec<usize>>,
    /// Client certificate validation of HTTPS slots, by slot index (`frontend_tls`).
    pub(crate) frontend_validation: HashMap<usize, Arc<ClientValidation>>,
    /// The backend client certificate of each slot's Gateway, by slot index
    /// (`client_certificate`).
    pub(crate) backend_client_certificates: HashMap<usize, Arc<ClientCertificate>>,
    /// What each listener and socket allows its clients (`client_policy`).
    pub(crate) clients: ClientPlan,
    /// The SecurityPolicy and RateLimitPolicy of each slot's listener or Gateway, by slot
    /// index (`route_policy`).
    pub(crate) route_policies: HashMap<usize, AppliedRoutePolicies>,
}

impl Listeners {
    /// Finds the listener- or Gateway-level SecurityPolicy and RateLimitPolicy of every slot.
    /// A ListenerSet's listeners get their parent Gateway's (a policy cannot name them).
    pub(crate) fn set_route_policies(&mut self, store: &Store, policies: &RoutePolicies) {
        self.route_policies.clear();
        for (index, slot) in self.slots.iter().enumerate() {
            let applied = if slot.owner_kind == "ListenerSet" {
                let key = model::key(&slot.gateway_namespace, &slot.gateway_name);
                store
                    .listener_sets
                    .get(&key)
                    .and_then(|set| crate::listener_set::parent_gateway(&key.0, set))
                    .map(|(ns, name)| policies.for_listener(&ns, &name, None))
                    .unwrap_or_default()
            } else {
                policies.for_listener(
                    &slot.gateway_namespace,
                    &slot.gateway_name,
                    Some(&slot.name),
                )
            };
            if applied.security.is_some() || applied.rate_limit.is_some() {
                self.route_policies.insert(index, applied);
            }
        }
    }

    /// Whether routes attach to `other` exactly as to these listeners: the same slots (see
    /// `ListenerSlot::same_attachment`), named by the same Gateways and ListenerSets.
    /// Certificates, client certificate validation and client settings may differ.
    pub(crate) fn same_attachment(&self, other: &Listeners) -> bool {
        self.by_gateway == other.by_gateway
            && self.by_listener_set == other.by_listener_set
            && self.slots.len() == other.slots.len()
            && self
                .slots
                .iter()
                .zip(&other.slots)
                .all(|(a, b)| a.same_attachment(b))
    }

    /// Slots of the accepted ListenerSets of a Gateway (their listeners serve on its
    /// addresses and take its TLS settings).
    pub(crate) fn listener_set_slots(
        &self,
        store: &model::Store,
        gateway_namespace: &str,
        gateway_name: &str,
    ) -> Vec<usize> {
        let mut slots = Vec::new();
        for (key, set_slots) in &self.by_listener_set {
            let Some(set) = store.listener_sets.get(key) else {
                continue;
            };
            let parent = &set.spec.parent_ref;
            let namespace = parent.namespace.as_deref().unwrap_or(&key.0);
            if namespace == gateway_namespace && parent.name == gateway_name {
                slots.extend(set_slots.iter().copied());
            }
        }
        slots.sort_unstable();
        slots
    }

    /// Records a route's attachment in the listener status count.
    pub(crate) fn count_attached(&self, slot: usize, status: &mut StatusReport) {
        let (object, listener) = self.slots[slot].status_at;
        status.objects[object].listeners[listener].attached_routes += 1;
    }

    /// `/config` view: per socket, the listeners, the routes attached to them (`routes`: the
    /// views of the routes on a slot) and what they allow their clients (before listeners
    /// sharing a socket are merged).
    pub(crate) fn view(
        &self,
        routes: impl Fn(usize) -> Vec<serde_json::Value>,
    ) -> serde_json::Value {
        let listeners: Vec<serde_json::Value> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.usable)
            .map(|(index, slot)| {
                let mut attached = slot.route_views.clone();
                attached.extend(routes(index));
                serde_json::json!({
                    "listener": slot.label(),
                    "sockets": slot.sockets.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "hostname": slot.hostname,
                    "routes": attached,
                    "client": client_policy::view(&self.clients.listener(index)),
                })
            })
            .collect();
        serde_json::json!({ "listeners": listeners })
    }

    /// Builds the tables of the TLS, TCP and UDP listeners (once their routes are attached),
    /// by slot.
    pub(crate) fn take_stream_tables(&mut self) -> StreamTables {
        let mut tables = StreamTables::default();
        for (index, slot) in self.slots.iter_mut().enumerate() {
            if !slot.usable {
                continue;
            }
            if let Some(tls) = slot.tls.take() {
                tables
                    .tls
                    .insert(index, Arc::new(tls.build(slot.label().into())));
            }
            let Some(l4) = slot.l4.take() else {
                continue;
            };
            let name: Arc<str> = slot.label().into();
            if slot.scheme == Scheme::Udp {
                let limits = self.clients.listener(index).settings.udp;
                let routes = UdpSocketRoutes {
                    name,
                    route: l4.route,
                    limits,
                };
                tables.udp.insert(index, Arc::new(routes));
            } else {
                let routes = TcpListenerRoutes {
                    name,
                    route: l4.route,
                };
                tables.tcp.insert(index, Arc::new(routes));
            }
        }
        tables
    }

    /// The UDP sockets: each usable UDP listener on each of its sockets (one listener per UDP
    /// socket: a second conflicts).
    pub(crate) fn build_udp_sockets(&self, tables: &StreamTables) -> UdpSocketMap {
        let mut sockets = UdpSocketMap::default();
        for (index, routes) in &tables.udp {
            for socket in &self.slots[*index].sockets {
                sockets.entry(*socket).or_insert_with(|| Arc::clone(routes));
            }
        }
        sockets
    }

    /// The route table of an HTTP (or HTTPS) slot, from its routes.
    pub(crate) fn http_table(
        &self,
        index: usize,
        table: router::RouteTable<Arc<RouteRule>>,
    ) -> Arc<ListenerRoutes> {
        Arc::new(ListenerRoutes {
            name: self.slots[index].label().into(),
            table,
            backend_client_certificate: self.backend_client_certificates.get(&index).cloned(),
            path: self.clients.listener(index).path,
            tracing: self.clients.listener(index).tracing,
            security: self
                .route_policies
                .get(&index)
                .and_then(|p| p.security.clone()),
            rate_limit: self
                .route_policies
                .get(&index)
                .and_then(|p| p.rate_limit.clone()),
        })
    }

    /// Groups usable listeners by socket into the snapshot's TCP socket tables. `http` has
    /// the route table of every usable HTTP slot, `streams` the tables of every usable TLS and
    /// TCP slot (UDP sockets are [`Listeners::build_udp_sockets`]').
    pub(crate) fn build_sockets(
        &self,
        http: &HashMap<usize, Arc<ListenerRoutes>>,
        streams: &StreamTables,
    ) -> snapshot::SocketMap {
        let mut per_socket: HashMap<SocketAddr, SocketDraft> = HashMap::new();
        let usable = self.slots.iter().enumerate().filter(|(_, s)| s.usable);
        for (index, slot) in usable {
            let table = if let Some(table) = streams.tls.get(&index) {
                ListenerTable::Tls(Arc::clone(table))
            } else if let Some(table) = streams.tcp.get(&index) {
                ListenerTable::Tcp(Arc::clone(table))
            } else if let Some(table) = http.get(&index) {
                ListenerTable::Http(Arc::clone(table))
            } else {
                continue;
            };
            let listener = DraftListener {
                pattern: HostPattern::parse(slot.hostname.as_deref().unwrap_or("")),
                scheme: slot.scheme,
                table,
                certificate: slot.certificate.clone(),
                validation: self.frontend_validation.get(&index).cloned(),
            };
            for socket in &slot.sockets {
                per_socket.entry(*socket).or_default().add(&listener);
            }
        }
        per_socket
            .into_iter()
            .map(|(address, socket)| {
                let client = self.clients.socket(&address);
                (address, Arc::new(socket.build(client)))
            })
            .collect()
    }
}

/// The tables of the TLS, TCP and UDP listeners, by slot index (usable slots only).
#[derive(Clone, Default)]
pub(crate) struct StreamTables {
    /// TLSRoutes by SNI, per TLS listener.
    pub(crate) tls: HashMap<usize, Arc<TlsListenerRoutes>>,
    /// The TCPRoute of each TCP listener.
    pub(crate) tcp: HashMap<usize, Arc<TcpListenerRoutes>>,
    /// The UDPRoute and limits of each UDP listener.
    pub(crate) udp: HashMap<usize, Arc<UdpSocketRoutes>>,
}

impl StreamTables {
    /// Whether the slot is a TLS, TCP or UDP listener's (it has no HTTP route table).
    pub(crate) fn contains(&self, slot: usize) -> bool {
        self.tls.contains_key(&slot) || self.tcp.contains_key(&slot) || self.udp.contains_key(&slot)
    }
}

/// The route table of one listener: HTTP routes (HTTP and HTTPS listeners), TLSRoutes by
/// SNI (TLS listeners) or the TCPRoute (TCP listeners).
enum ListenerTable {
    Http(Arc<ListenerRoutes>),
    Tls(Arc<TlsListenerRoutes>),
    Tcp(Arc<TcpListenerRoutes>),
}

/// One usable listener as its sockets take it.
struct DraftListener {
    pattern: HostPattern,
    scheme: Scheme,
    table: ListenerTable,
    certificate: Option<Arc<CertifiedKey>>,
    validation: Option<Arc<ClientValidation>>,
}

/// One socket's listeners while they are grouped (see [`Listeners::build_sockets`]).
#[derive(Default)]
struct SocketDraft {
    scheme: Option<Scheme>,
    listeners: HostMap<Arc<ListenerRoutes>>,
    tls_listeners: HostMap<Arc<TlsListenerRoutes>>,
    tcp: Option<Arc<TcpListenerRoutes>>,
    certificates: HostMap<Arc<CertifiedKey>>,
    validation: HostMap<Option<Arc<ClientValidation>>>,
}

impl SocketDraft {
    /// Adds a listener under its hostname pattern.
    fn add(&mut self, listener: &DraftListener) {
        let pattern = &listener.pattern;
        // Conflicts (hostname or protocol) were resolved before routes attached: the first
        // listener for a (socket, hostname) pair is the only usable one, and all listeners of
        // a socket share its scheme, so nothing is replaced here.
        self.scheme.get_or_insert(listener.scheme);
        match &listener.table {
            ListenerTable::Tls(table) => {
                self.tls_listeners
                    .entry_or_insert_with(pattern, || Arc::clone(table));
            }
            ListenerTable::Http(table) => {
                self.listeners
                    .entry_or_insert_with(pattern, || Arc::clone(table));
            }
            ListenerTable::Tcp(table) => {
                self.tcp.get_or_insert_with(|| Arc::clone(table));
            }
        }
        if let Some(certificate) = &listener.certificate {
            self.certificates
                .entry_or_insert_with(pattern, || Arc::clone(certificate));
            self.validation
                .entry_or_insert_with(pattern, || listener.validation.clone());
        }
    }

    /// The snapshot's view of the socket: its scheme, its TLS (certificates by SNI, the
    /// merged handshake settings of its listeners), its listeners by hostname and what it
    /// allows its clients.
    fn build(self, client: SocketClient) -> SocketRoutes {
        let scheme = self.scheme.unwrap_or(Scheme::Http);
        // SocketTls only fails if rustls rejects the protocol versions it implements; a
        // socket without TLS then refuses handshakes, visibly.
        let handshake = client.handshake;
        let tls = match scheme {
            Scheme::Https => {
                SocketTls::with_handshake(self.certificates, self.validation, handshake).ok()
            }
            // TLS sockets need it only for their Terminate listeners.
            Scheme::Tls if !self.certificates.is_empty() => {
                SocketTls::with_handshake(self.certificates, HostMap::new(), handshake)
                    .ok()
                    .map(tls_listener::without_alpn)
            }
            Scheme::Http | Scheme::Tls | Scheme::Tcp | Scheme::Udp => None,
        };
        SocketRoutes {
            scheme,
            tls,
            listeners: self.listeners,
            tls_listeners: self.tls_listeners,
            tcp: self.tcp,
            client: client.settings,
        }
    }
}
