//! What TCP and UDP sockets serve (Gateway listeners with `protocol: TCP` or `UDP`, TCPRoute,
//! UDPRoute), and [`Forward`], where the connections of one stream route go (TCPRoute and
//! TLSRoute alike) or the flows of one UDPRoute.
//!
//! A TCP or UDP listener has no hostname to route on: one route serves it. When several
//! routes attach to one listener, every one is accepted and counted, and the oldest (creation
//! time, then `namespace/name`) is the one that serves (the Gateway API's conflict rule); the
//! others serve as soon as it goes. Plain data, built by `compile`, read by the proxy once per
//! connection (TCP) or per new flow (UDP).

use std::sync::Arc;
use std::time::Duration;

use crate::BackendChoice;

/// Where the connections (or UDP flows) of one route go.
#[derive(Debug)]
pub struct Forward {
    /// `TCPRoute ns/name rules[0]` (or with the rule's `name`): logs and metrics.
    pub name: Arc<str>,
    /// Weighted backends; `None` when the route has no backendRef with a non-zero weight, in
    /// which case connections are closed. A candidate whose backendRef does not resolve
    /// ([`crate::BackendTarget::Invalid`]) also closes the connections its weight draws (the
    /// TCP counterpart of HTTP's 500).
    pub backends: Option<BackendChoice>,
}

/// One TCP listener (one per TCP socket: a second listener on the same socket conflicts).
#[derive(Debug)]
pub struct TcpListenerRoutes {
    /// `Gateway ns/name listener NAME`, for logs.
    pub name: Arc<str>,
    /// The route that serves the listener (the oldest attached); `None` when no route is
    /// attached, in which case connections are closed at once.
    pub route: Option<Arc<Forward>>,
}

/// One UDP socket: its listener, its route and its limits.
#[derive(Debug)]
pub struct UdpSocketRoutes {
    /// `Gateway ns/name listener NAME`, for logs.
    pub name: Arc<str>,
    /// The route that serves the listener (the oldest attached); `None`: datagrams are
    /// dropped.
    pub route: Option<Arc<Forward>>,
    /// Flow limits.
    pub limits: UdpLimits,
}

/// Limits of a UDP listener's flows (ClientTrafficPolicy `udp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpLimits {
    /// A flow (one client address and port) with no datagram either way for this long is
    /// forgotten, and its upstream socket closed.
    pub idle_timeout: Duration,
    /// At most this many flows at once per listener: a datagram that would start one more is
    /// dropped (and counted).
    pub max_flows: usize,
    /// Datagrams larger than this (payload bytes), either way, are dropped (and counted).
    pub max_datagram_bytes: usize,
}

impl Default for UdpLimits {
    /// 60 s idle (DNS and most request/response protocols need far less; game and VoIP
    /// sessions send more often than that), 65,536 flows, and 65,507 bytes, the largest UDP
    /// payload over IPv4.
    fn default() -> UdpLimits {
        UdpLimits {
            idle_timeout: Duration::from_secs(60),
            max_flows: 65_536,
            max_datagram_bytes: MAX_UDP_PAYLOAD,
        }
    }
}

/// The largest UDP payload over IPv4 (65,535 − 8 bytes of UDP header − 20 of IP header).
pub const MAX_UDP_PAYLOAD: usize = 65_507;
