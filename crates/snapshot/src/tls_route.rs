//! What a TLS socket serves (Gateway listeners with `protocol: TLS`, GEP-2643): its listeners
//! by SNI hostname, whether each passes the TLS session through or terminates it, and the
//! TLSRoutes attached to each listener by SNI hostname.
//!
//! Plain data, built by `compile` and read by the proxy once per connection. Certificates of
//! `Terminate` listeners live in the socket's [`crate::tls::SocketTls`], like an HTTPS
//! socket's; this module only says where the bytes go.

use std::sync::Arc;

use router::HostMap;

use crate::l4::Forward;

/// `tls.mode` of a TLS listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// The client's TLS session goes to the backend untouched: the gateway reads the
    /// ClientHello's SNI to route and forwards every byte, the ClientHello included.
    Passthrough,
    /// The gateway completes the TLS handshake with the listener's certificate and forwards the
    /// decrypted byte stream to the backend over plain TCP.
    Terminate,
}

impl TlsMode {
    /// `Passthrough` or `Terminate`, as the Gateway API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Passthrough => "Passthrough",
            TlsMode::Terminate => "Terminate",
        }
    }
}

/// One TLS listener: its mode and the TLSRoutes attached to it.
///
/// The proxy picks the listener by the most specific hostname matching the connection's SNI
/// (listener isolation, as for HTTP), then the route by the most specific route hostname
/// within that listener only.
#[derive(Debug)]
pub struct TlsListenerRoutes {
    /// `Gateway ns/name listener NAME`, for logs.
    pub name: Arc<str>,
    /// Pass through or terminate.
    pub mode: TlsMode,
    /// Routes by their effective SNI hostname (the intersection of the route's hostnames with
    /// the listener's). Where two TLSRoutes claim one hostname, the older route holds it.
    pub routes: HostMap<Arc<Forward>>,
}
