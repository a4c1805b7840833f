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
    use std::cell::Cell;
    use std::net::{Ipv4Addr, SocketAddr};
    use std::sync::Arc;
    use std::time::Duration;

    use snapshot::client::ClientSettings;
    use telemetry::{AccessLog, AccessLogFormat, Metrics};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::watch;
    use upstream::pool::{PoolSettings, Pools};

    use crate::client_hello::{Scan, scan};
    use crate::guard::{ConnectionState, H2_PREFACE};
    use crate::plane::DataPlane;
    use crate::stack::Connection;

    /// Room in each direction of the in-memory connection: more than any input and everything
    /// the server writes for it, so a write never waits for the other side to read.
    const PIPE_CAPACITY: usize = 16 << 20;

    /// Polls in a row without new output after which the client takes the server to be done
    /// with its input, and at most how many polls it waits for that.
    const QUIET_POLLS: u32 = 8;
    const MAX_WAIT_POLLS: u32 = 4096;

    /// What the client reads at a time.
    const READ_CHUNK: usize = 16 * 1024;

    /// The whole exchange must be over by then: the server ends when the client closes.
    const TIME_LIMIT: Duration = Duration::from_secs(5);

    /// The ClientHello scanner: `Ok(None)` needs more bytes, `Ok(Some(sni))` is complete (`sni`
    /// is `None` without a server name), `Err(why)` is not a ClientHello we accept.
    pub fn client_hello_scan(bytes: &[u8]) -> Result<Option<Option<String>>, &'static str> {
        match scan(bytes) {
            Scan::Incomplete => Ok(None),
            Scan::Complete(name) => Ok(Some(name)),
            Scan::Invalid(why) => Err(why),
        }
    }

    /// Our HTTP/2 server (`h2_server::serve`) on an in-memory connection, on a current-thread
    /// runtime of its own, with an empty config (every request gets 404) and the default socket
    /// settings. As the client: reads everything the server writes; writes the connection
    /// preface, then each of `writes` in turn, each time waiting until the server has written
    /// nothing for a few polls; then closes its sending side. Returns the server's bytes once
    /// it has ended, or `None` when the exchange was not over within a few seconds (a hang: the
    /// server must end when the client closes).
    pub fn h2_server_bytes(writes: &[&[u8]]) -> Option<Vec<u8>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime without I/O driver builds");
        runtime.block_on(async {
            tokio::time::timeout(TIME_LIMIT, h2_exchange(writes))
                .await
                .ok()
        })
    }

    /// A data plane with an empty config and no access log, and a connection to it with the
    /// default socket settings.
    fn empty_gateway() -> (Arc<DataPlane>, Arc<Connection>) {
        let metrics = Arc::new(Metrics::new());
        let plane = Arc::new(DataPlane::new(
            Pools::new(Arc::clone(&metrics), &PoolSettings::default()),
            metrics,
            AccessLog::new(AccessLogFormat::Off),
        ));
        let connection = Arc::new(Connection {
            local: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            peer: SocketAddr::from((Ipv4Addr::LOCALHOST, 40000)),
            sni: None,
            settings: Arc::new(ClientSettings::default()),
            state: ConnectionState::new(),
        });
        (plane, connection)
    }

    async fn h2_exchange(writes: &[&[u8]]) -> Vec<u8> {
        let (plane, connection) = empty_gateway();
        // The sender stays: a dropped one would read as "stop" (GOAWAY, drain).
        let (_stop, stop) = watch::channel(false);
        let (server_io, client_io) = tokio::io::duplex(PIPE_CAPACITY);
        let (mut from_server, mut to_server) = tokio::io::split(client_io);
        let received = Cell::new(0);
        let server = async {
            let _ = crate::h2_server::serve(server_io, &plane, &connection, stop).await;
        };
        let reader = async {
            let mut output = Vec::new();
            loop {
                output.reserve(READ_CHUNK);
                match from_server.read_buf(&mut output).await {
                    Ok(1..) => received.set(output.len()),
                    Ok(0) | Err(_) => break,
                }
            }
            output
        };
        // Until the server has gone quiet: the client's next bytes come after its answers.
        let quiet = || async {
            let (mut seen, mut quiet) = (received.get(), 0);
            for _ in 0..MAX_WAIT_POLLS {
                tokio::task::yield_now().await;
                quiet = if received.get() == seen { quiet + 1 } else { 0 };
                seen = received.get();
                if quiet == QUIET_POLLS {
                    break;
                }
            }
        };
        let writer = async {
            let _ = to_server.write_all(H2_PREFACE).await;
            for bytes in writes {
                let _ = to_server.write_all(bytes).await;
                quiet().await;
            }
            let _ = to_server.shutdown().await;
        };
        let ((), output, ()) = tokio::join!(server, reader, writer);
        output
    }
}
