//! The data plane: listeners, the HTTP server, and the per-request stack.
//!
//! [`DataPlane`] holds the live config ([`Live`]: a snapshot linked to backend runtimes) behind an
//! `ArcSwap`; every request loads it once and keeps it to the end, so a reload never changes a
//! request midway and never closes a connection. [`ListenerManager`] binds and unbinds sockets as
//! snapshots come and go, and drains connections on shutdown. `stack.rs` shows the order of what
//! happens to one request; `tls_route.rs` the same for a connection on a TLS (TLSRoute) socket,
//! `tcp_route.rs` on a TCP (TCPRoute) socket, both through `l4.rs`.

mod access;
mod body;
mod client_hello;
mod client_ip;
mod compose;
mod cors;
mod error;
mod exchange;
mod filter;
mod forward;
mod grpc;
mod guard;
mod h1_server;
mod h2_server;
mod handshake;
mod idle;
mod l4;
mod listener;
mod mirror;
mod plane;
mod prefixed;
mod proxy_protocol;
mod record;
mod replay;
mod retry;
mod rule_state;
mod series_cache;
mod session;
mod stack;
mod tcp_route;
mod tls_route;
mod trace;
mod udp;
mod upgrade;

pub use access::PolicyRuntime;
pub use body::ResponseBody;
pub use listener::{BindError, ListenerManager};
pub use plane::{DataPlane, Live};

/// Entry points for the fuzz targets (`crates/fuzzing`, `fuzz/`); not an API.
#[doc(hidden)]
pub mod fuzzing {
    use crate::client_hello::{Scan, scan};

    /// The ClientHello scanner: `Ok(None)` needs more bytes, `Ok(Some(sni))` is complete (`sni`
    /// is `None` without a server name), `Err(why)` is not a ClientHello we accept.
    pub fn client_hello_scan(bytes: &[u8]) -> Result<Option<Option<String>>, &'static str> {
        match scan(bytes) {
            Scan::Incomplete => Ok(None),
            Scan::Complete(name) => Ok(Some(name)),
            Scan::Invalid(why) => Err(why),
        }
    }
}
