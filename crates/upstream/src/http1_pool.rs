//! [`Http1Pool`]: keep-alive HTTP/1.1 connections to endpoints, over hyper's connection API.
//!
//! Why not hyper-util's legacy client: per request it builds a pool key from the URI, races a
//! pool checkout against a lazily built connect future, and spawns a task that waits for the
//! connection to become idle again; its request future is several kilobytes, copied on every
//! request. Here a request takes an idle connection from a per-endpoint stack under one short
//! lock, sends on it, and the response body ([`UpstreamBody`]) puts the connection back when it
//! has been read to the end. Connecting is the only slow path, and it is boxed.
//!
//! - A connection is reused only when hyper says it is ready (its previous exchange is over
//!   and it is not closed); a connection that the backend closed while idle is dropped at
//!   checkout, and a request that could not even be queued on a stale connection goes to the
//!   next one (it never left the gateway).
//! - Idle connections are kept per endpoint, most recently used first, at most
//!   `max_idle_per_endpoint`, and closed after `idle_timeout` by a sweeper task that ends with
//!   the pool. With a `max_lifetime` (`maxConnectionDuration`), a connection older than that
//!   is not used for another request: it finishes the exchange in flight and closes.
//! - A response body dropped before its end, an error, or an upgrade (101) closes the
//!   connection instead of pooling it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode, Uri};
use hyper::client::conn::http1;
use hyper::rt::{Read, Write};

use crate::pool::{BoxError, RequestBody, UpstreamError, error_chain};
use crate::response_body::UpstreamBody;
use snapshot::fast_hash::FastHashBuilder;

/// Opens a connection to an endpoint (TCP, or TCP + TLS).
pub(crate) trait Connect: Send + Sync + 'static {
    /// The connection.
    type Io: Read + Write + Unpin + Send + 'static;

    /// Connects to `endpoint`; errors are connect errors (never sent anything).
    fn connect(
        &self,
        endpoint: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = Result<Self::Io, BoxError>> + Send + 'static>>;
}

/// A pool of HTTP/1.1 connections, shared by clones.
pub(crate) struct Http1Pool<C> {
    connector: Arc<C>,
    idle: Arc<IdleConnections>,
}

impl<C> Clone for Http1Pool<C> {
    fn clone(&self) -> Self {
        Http1Pool {
            connector: Arc::clone(&self.connector),
            idle: Arc::clone(&self.idle),
        }
    }
}

impl<C> std::fmt::Debug for Http1Pool<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http1Pool")
            .field("lifetimes", &self.idle.lifetimes)
            .finish_non_exhaustive()
    }
}

/// How long connections of a pool live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Lifetimes {
    /// An idle connection is closed after this long.
    pub(crate) idle_timeout: Duration,
    /// At most this many idle connections are kept per endpoint.
    pub(crate) max_idle_per_endpoint: usize,
    /// A connection is not reused once this old (`None`: no limit).
    pub(crate) max_lifetime: Option<Duration>,
}

impl<C: Connect> Http1Pool<C> {
    pub(crate) fn new(connector: C, lifetimes: Lifetimes) -> Http1Pool<C> {
        Http1Pool {
            connector: Arc::new(connector),
            idle: Arc::new(IdleConnections {
                lifetimes,
                endpoints: Mutex::new(Endpoints::default()),
            }),
        }
    }

    /// Sends `request` to `endpoint` on an idle connection, or a new one. The request's URI is
    /// sent in origin form (`/path?query`); its `Host` header must already be set.
    pub(crate) async fn send(
        &self,
        endpoint: SocketAddr,
        mut request: Request<RequestBody>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        origin_form(request.uri_mut());
        loop {
            let (mut connection, reused) = match self.idle.checkout(endpoint) {
                Some(connection) => (connection, true),
                None => (self.connect(endpoint).await?, false),
            };
            match connection.sender.try_send_request(request).await {
                Ok(response) => return Ok(self.pooled_response(endpoint, connection, response)),
                Err(mut error) => match error.take_message() {
                    // The idle connection closed before the request could be queued on it:
                    // nothing left the gateway, so the next connection gets it.
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(UpstreamError::after_connect(error.error())),
                },
            }
        }
    }

    fn connect(
        &self,
        endpoint: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = Result<PooledConnection, UpstreamError>> + Send>> {
        let connecting = self.connector.connect(endpoint);
        Box::pin(async move {
            let io = connecting.await.map_err(UpstreamError::connecting)?;
            let (mut sender, connection) = http1::Builder::new()
                .handshake(io)
                .await
                .map_err(|error| UpstreamError::Connect(error_chain(&error)))?;
            tokio::spawn(async move {
                if let Err(error) = connection.with_upgrades().await {
                    tracing::debug!(%endpoint, %error, "upstream connection ended");
                }
            });
            sender
                .ready()
                .await
                .map_err(|error| UpstreamError::Connect(error_chain(&error)))?;
            Ok(PooledConnection {
                sender,
                born: Instant::now(),
            })
        })
    }

    fn pooled_response(
        &self,
        endpoint: SocketAddr,
        connection: PooledConnection,
        response: Response<hyper::body::Incoming>,
    ) -> Response<UpstreamBody> {
        // After a 101 the connection belongs to the upgrade.
        let release = (response.status() != StatusCode::SWITCHING_PROTOCOLS).then(|| Release {
            connection,
            endpoint,
            idle: Arc::clone(&self.idle),
        });
        let (parts, body) = response.into_parts();
        Response::from_parts(parts, UpstreamBody::new(body, release))
    }

    /// Idle connections to `endpoint`.
    #[cfg(test)]
    pub(crate) fn idle_count(&self, endpoint: SocketAddr) -> usize {
        self.idle.lock().map.get(&endpoint).map_or(0, Vec::len)
    }
}

/// A connection whose exchange is in flight; [`Release::release`] puts it back when the
/// response body has ended. Dropped without release, the connection closes.
pub(crate) struct Release {
    connection: PooledConnection,
    endpoint: SocketAddr,
    idle: Arc<IdleConnections>,
}

impl Release {
    pub(crate) fn release(self) {
        IdleConnections::checkin(&self.idle, self.endpoint, self.connection);
    }
}

/// A connection's request sender and when it was opened.
struct PooledConnection {
    sender: http1::SendRequest<RequestBody>,
    born: Instant,
}

struct IdleConnections {
    lifetimes: Lifetimes,
    endpoints: Mutex<Endpoints>,
}

#[derive(Default)]
struct Endpoints {
    map: HashMap<SocketAddr, Vec<Idle>, FastHashBuilder>,
    sweeping: bool,
}

struct Idle {
    connection: PooledConnection,
    since: Instant,
}

impl Idle {
    /// Still worth keeping: open, not idle too long, not too old.
    fn is_usable(&self, lifetimes: &Lifetimes, now: Instant) -> bool {
        !self.connection.sender.is_closed()
            && now.saturating_duration_since(self.since) <= lifetimes.idle_timeout
            && lifetimes
                .max_lifetime
                .is_none_or(|max| now.saturating_duration_since(self.connection.born) < max)
    }
}

impl IdleConnections {
    fn lock(&self) -> std::sync::MutexGuard<'_, Endpoints> {
        self.endpoints.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most recently used ready connection to `endpoint`. Closed and expired ones are
    /// dropped on the way; one still finishing its previous exchange is left for later.
    fn checkout(&self, endpoint: SocketAddr) -> Option<PooledConnection> {
        let mut endpoints = self.lock();
        let stack = endpoints.map.get_mut(&endpoint)?;
        let now = Instant::now();
        let mut index = stack.len();
        while index > 0 {
            index -= 1;
            let idle = &stack[index];
            if !idle.is_usable(&self.lifetimes, now) {
                stack.swap_remove(index);
            } else if idle.connection.sender.is_ready() {
                return Some(stack.swap_remove(index).connection);
            }
        }
        None
    }

    fn checkin(this: &Arc<Self>, endpoint: SocketAddr, connection: PooledConnection) {
        let now = Instant::now();
        let idle = Idle {
            connection,
            since: now,
        };
        if !idle.is_usable(&this.lifetimes, now) {
            return;
        }
        let mut endpoints = this.lock();
        let stack = endpoints.map.entry(endpoint).or_default();
        if stack.len() >= this.lifetimes.max_idle_per_endpoint {
            return;
        }
        stack.push(idle);
        if !endpoints.sweeping {
            endpoints.sweeping = Self::start_sweeper(Arc::downgrade(this), &this.lifetimes);
        }
    }

    /// Closes expired idle connections periodically, until the pool is gone.
    fn start_sweeper(idle: Weak<IdleConnections>, lifetimes: &Lifetimes) -> bool {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        let shortest = lifetimes
            .max_lifetime
            .map_or(lifetimes.idle_timeout, |max| {
                max.min(lifetimes.idle_timeout)
            });
        let period = (shortest / 2).clamp(Duration::from_millis(100), Duration::from_secs(30));
        runtime.spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(idle) = idle.upgrade() else { return };
                idle.sweep();
            }
        });
        true
    }

    fn sweep(&self) {
        let now = Instant::now();
        let mut endpoints = self.lock();
        endpoints.map.retain(|_, stack| {
            stack.retain(|idle| idle.is_usable(&self.lifetimes, now));
            !stack.is_empty()
        });
    }
}

/// `http://ip:port/path?q` → `/path?q` (what an HTTP/1.1 origin server expects).
fn origin_form(uri: &mut Uri) {
    if uri.scheme().is_none() && uri.authority().is_none() {
        return;
    }
    let path = match uri.path_and_query() {
        Some(path) if path.as_str() != "" => path.clone(),
        _ => http::uri::PathAndQuery::from_static("/"),
    };
    *uri = Uri::from(path);
}

#[cfg(test)]
mod tests;
