//! The immutable [`Snapshot`] that `compile` builds and the data plane reads.
//!
//! Plain data: listener sockets with their host-indexed route tables, compiled rules, and the
//! backends those rules forward to. A snapshot is published through an `ArcSwap`; the data
//! plane loads it once per request and never sees a half-applied config. Backends are referred
//! to by index into [`Snapshot::backends`]; the runtime links that list to live endpoint state
//! in `upstream::Registry`, which outlives snapshots.
//!
//! Settings are data, state is runtime (DESIGN §2): this crate depends on no runtime crate
//! (no tokio, hyper or resolver), and nothing in a snapshot changes after it is built. State a
//! setting governs (retry budget windows, mirror sampling windows, endpoint health) lives in
//! registries of the runtime crates, keyed by the stable identities defined here.

pub mod backend;
pub mod client;
pub mod composition;
pub mod cors;
pub mod fast_hash;
pub mod filter;
pub mod l4;
pub mod mirror;
pub mod rate_limit;
pub mod security;
pub mod session;
pub mod tls;
pub mod tls_route;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use backend::CompiledBackend;
use bytes::Bytes;
use http::StatusCode;
use router::{HostMap, RouteTable};

/// Listener sockets by local address, looked up on every request (hence the fast hasher:
/// the keys are our own addresses, not client input).
pub type SocketMap = HashMap<SocketAddr, Arc<SocketRoutes>, fast_hash::FastHashBuilder>;

/// UDP sockets by local address (looked up once per new flow).
pub type UdpSocketMap = HashMap<SocketAddr, Arc<l4::UdpSocketRoutes>, fast_hash::FastHashBuilder>;

/// One compiled config.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Source generation this snapshot was compiled from.
    pub generation: u64,
    /// Every socket to listen on, with what to serve there.
    pub sockets: SocketMap,
    /// Backends referenced by rules, by [`BackendIndex`].
    pub backends: Vec<CompiledBackend>,
    /// UDP sockets (listeners with `protocol: UDP`), by local address. Apart from
    /// [`Snapshot::sockets`]: a UDP socket may share its address and port with a TCP one.
    pub udp_sockets: UdpSocketMap,
}

impl Snapshot {
    /// The addresses the data plane must listen on with TCP.
    pub fn addresses(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.sockets.keys().copied()
    }

    /// The addresses the data plane must listen on with UDP.
    pub fn udp_addresses(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.udp_sockets.keys().copied()
    }
}

/// What one socket serves: its listeners by hostname. A request is matched against the routes of
/// the most specific listener whose hostname matches its host only (Gateway API listener
/// isolation); no listener matching means 404. A [`Scheme::Tls`] socket serves no HTTP: its
/// connections are routed by SNI through `tls_listeners`.
#[derive(Debug)]
pub struct SocketRoutes {
    /// Scheme clients use to reach this socket, for `X-Forwarded-Proto` and redirects.
    pub scheme: Scheme,
    /// TLS termination, for HTTPS sockets and TLS sockets with `Terminate` listeners.
    pub tls: Option<tls::SocketTls>,
    /// Listeners by hostname.
    pub listeners: HostMap<Arc<ListenerRoutes>>,
    /// TLS listeners by hostname (TLS sockets only; empty otherwise).
    pub tls_listeners: HostMap<Arc<tls_route::TlsListenerRoutes>>,
    /// The TCP listener (TCP sockets only: a TCP socket has exactly one).
    pub tcp: Option<Arc<l4::TcpListenerRoutes>>,
    /// What the socket allows its clients (ClientTrafficPolicy, merged over its listeners).
    pub client: Arc<client::ClientSettings>,
}

/// Scheme of a listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Cleartext HTTP (HTTP/1.1 and h2c).
    Http,
    /// HTTP over TLS (HTTP/1.1 and HTTP/2 by ALPN).
    Https,
    /// TLS connections routed by SNI to TLSRoute backends, passed through or terminated.
    Tls,
    /// TCP connections forwarded to the TCPRoute's backends.
    Tcp,
    /// UDP flows forwarded to the UDPRoute's backends (UDP sockets, [`Snapshot::udp_sockets`]).
    Udp,
}

impl Scheme {
    /// `http`, `https`, `tls`, `tcp` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Tls => "tls",
            Scheme::Tcp => "tcp",
            Scheme::Udp => "udp",
        }
    }

    /// Whether the socket serves HTTP (HTTP and HTTPS); TLS, TCP and UDP sockets forward
    /// connections or datagrams without reading them.
    pub fn is_http(self) -> bool {
        matches!(self, Scheme::Http | Scheme::Https)
    }
}

/// The routes attached to one listener.
#[derive(Debug)]
pub struct ListenerRoutes {
    /// `Gateway ns/name listener NAME`, for logs.
    pub name: Arc<str>,
    /// The route table.
    pub table: RouteTable<Arc<RouteRule>>,
    /// The client certificate the listener's Gateway presents to backends reached over TLS
    /// (`spec.tls.backend.clientCertificateRef`, GEP-3155); `None` presents none.
    pub backend_client_certificate: Option<Arc<backend::tls::ClientCertificate>>,
    /// How request paths are normalized before matching (ClientTrafficPolicy `path`).
    pub path: client::PathPolicy,
    /// How the listener samples requests for tracing (ClientTrafficPolicy `tracing`); `None`:
    /// the gateway's default sampler.
    pub tracing: Option<client::TraceSampling>,
    /// The SecurityPolicy of the listener (or its Gateway), for rules without their own.
    pub security: Option<Arc<security::SecurityPolicy>>,
    /// The RateLimitPolicy of the listener (or its Gateway), for rules without their own.
    pub rate_limit: Option<Arc<rate_limit::RateLimitPolicy>>,
}

impl ListenerRoutes {
    /// The SecurityPolicy a request matched to `rule` on this listener runs: the rule's (or
    /// its route's), else the listener's (or its Gateway's).
    pub fn security_of<'a>(&'a self, rule: &'a RouteRule) -> Option<&'a security::SecurityPolicy> {
        rule.security.as_deref().or(self.security.as_deref())
    }

    /// The RateLimitPolicy a request matched to `rule` on this listener counts in.
    pub fn rate_limit_of<'a>(
        &'a self,
        rule: &'a RouteRule,
    ) -> Option<&'a rate_limit::RateLimitPolicy> {
        rule.rate_limit.as_deref().or(self.rate_limit.as_deref())
    }
}

pub use cors::{CorsList, CorsPolicy, OriginHost, OriginPattern};
pub use filter::{
    Backoff, Filters, HeaderModifier, PathModifier, RETRY_BODY_LIMIT, Redirect,
    RetryBudgetSettings, RetryPolicy, RetryTriggers, Timeouts, UrlRewrite,
};
pub use mirror::{Mirror, MirrorShare};

/// One compiled route rule.
#[derive(Debug)]
pub struct RouteRule {
    /// `HTTPRoute ns/name rules[i]` (or the rule's `name` when set): access logs and metrics.
    pub name: Arc<str>,
    /// Rule-level filters.
    pub filters: Filters,
    /// Rule timeouts.
    pub timeouts: Timeouts,
    /// Rule retry policy. Boxed, as `session` is: most rules have neither, and thousands of
    /// rules would carry their empty room.
    pub retry: Option<Box<RetryPolicy>>,
    /// What to do with a matching request (after a redirect filter, which answers first).
    pub action: RuleAction,
    /// `sessionPersistence`: pins a client to an endpoint.
    pub session: Option<Box<session::SessionPersistence>>,
    /// The SecurityPolicy attached to the rule or its route (a listener's or Gateway's is
    /// on [`ListenerRoutes::security`]).
    pub security: Option<Arc<security::SecurityPolicy>>,
    /// The RateLimitPolicy attached to the rule or its route.
    pub rate_limit: Option<Arc<rate_limit::RateLimitPolicy>>,
}

/// What a rule does with a request.
#[derive(Debug)]
pub enum RuleAction {
    /// Forward to one of these backends, chosen by weight.
    Forward(BackendChoice),
    /// Answer directly (for example 500 when no backendRef of the rule can be used).
    Respond(DirectResponse),
}

/// A fixed response.
#[derive(Debug, Clone)]
pub struct DirectResponse {
    /// Status code.
    pub status: StatusCode,
    /// Plain-text body explaining why.
    pub body: Bytes,
}

/// Weighted backends of a rule.
#[derive(Debug)]
pub struct BackendChoice {
    /// Candidates with their weights (weight 0 entries are dropped by compile).
    pub candidates: Vec<WeightedBackend>,
    /// Sum of the weights; compile guarantees it is > 0.
    pub total_weight: u64,
}

/// One weighted backendRef.
#[derive(Debug)]
pub struct WeightedBackend {
    /// Relative weight.
    pub weight: u64,
    /// Where its share of traffic goes.
    pub target: BackendTarget,
    /// Filters of this backendRef only (applied after the rule's); `None` when it has none,
    /// as most have: an empty `Filters` takes about 190 bytes ([`Filters::boxed`]).
    pub filters: Option<Box<Filters>>,
}

impl WeightedBackend {
    /// The filters of this backendRef (none: an empty set).
    pub fn filters(&self) -> &Filters {
        /// A `static`, not the `const` itself: a `Vec` field keeps a `const` from being
        /// promoted to a reference that outlives the call.
        static NONE: Filters = Filters::NONE;
        self.filters.as_deref().unwrap_or(&NONE)
    }
}

/// Index into [`Snapshot::backends`].
pub type BackendIndex = usize;

/// Where a weighted share of a rule's traffic goes.
#[derive(Debug)]
pub enum BackendTarget {
    /// A resolved backend.
    Backend(BackendIndex),
    /// A backendRef that cannot be used (not found, not permitted, unsupported kind): its share
    /// of requests gets this response (500, as the Gateway API requires).
    Invalid(DirectResponse),
}

impl BackendChoice {
    /// Picks a candidate given a ticket drawn uniformly from `0..total_weight`.
    pub fn pick(&self, mut ticket: u64) -> Option<&WeightedBackend> {
        for candidate in &self.candidates {
            if ticket < candidate.weight {
                return Some(candidate);
            }
            ticket -= candidate.weight;
        }
        self.candidates.last()
    }
}
