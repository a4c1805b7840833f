//! [`Http1Pool`]: keep-alive HTTP/1.1 connections to endpoints, spoken by our own client
//! (`h1_client`).
//!
//! Why not hyper-util's legacy client: per request it builds a pool key from the URI, races a
//! pool checkout against a lazily built connect future, and spawns a task that waits for the
//! connection to become idle again. Here a request takes an idle connection from a
//! per-endpoint stack under one short lock, sends on it from its own task, and the response
//! body puts the connection back when it has been read to the end. Connecting is the only slow
//! path, and it is boxed.
//!
//! - A connection is reused only when it is open: at checkout the socket is checked without
//!   waiting (an end of stream, or bytes the backend sent unasked, close it). One that the
//!   backend closes after the request went out is the exchange's error (retry policies decide
//!   what happens next).
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

use http::Response;

use crate::h1_client::{self, Connection, Http1Request, UpstreamBody, UpstreamIo};
use crate::pool::{BoxError, UpstreamError};
use snapshot::fast_hash::FastHashBuilder;

/// Opens a connection to an endpoint (TCP, or TCP + TLS).
pub(crate) trait Connect: Send + Sync + 'static {
    /// Connects to `endpoint`; errors are connect errors (never sent anything).
    fn connect(
        &self,
        endpoint: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = Result<UpstreamIo, BoxError>> + Send + 'static>>;
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

    /// Sends `request` as [`Pools::send`](crate::Pools::send) does (its target in origin form,
    /// its `Host` set already): the tests' way in.
    #[cfg(test)]
    pub(crate) fn send(
        &self,
        endpoint: SocketAddr,
        request: http::Request<crate::RequestBody>,
    ) -> impl Future<Output = Result<Response<UpstreamBody>, UpstreamError>> + Send + '_ {
        self.send_http1(endpoint, Http1Request::from_request(request))
    }

    /// Sends a request already written out to `endpoint`, on an idle connection or a new one.
    /// The idle connection is taken when the future is made (it is awaited right away), so
    /// that the future holds the request once: an async function keeps its arguments twice.
    pub(crate) fn send_http1(
        &self,
        endpoint: SocketAddr,
        request: Http1Request,
    ) -> impl Future<Output = Result<Response<UpstreamBody>, UpstreamError>> + Send + '_ {
        let idle = self.idle.checkout(endpoint, request.sent_at);
        async move {
            let connection = match idle {
                Some(connection) => connection,
                None => self.connect(endpoint).await?,
            };
            let home = Home {
                endpoint,
                idle: Arc::clone(&self.idle),
            };
            h1_client::send(connection, request, home).await
        }
    }

    fn connect(
        &self,
        endpoint: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = Result<Box<Connection>, UpstreamError>> + Send>> {
        let connecting = self.connector.connect(endpoint);
        Box::pin(async move {
            let io = connecting.await.map_err(UpstreamError::connecting)?;
            Ok(Connection::new(io))
        })
    }

    /// Idle connections to `endpoint`.
    #[cfg(test)]
    pub(crate) fn idle_count(&self, endpoint: SocketAddr) -> usize {
        self.idle.lock().map.get(&endpoint).map_or(0, Vec::len)
    }
}

/// Where a connection goes back to when its exchange is over: its endpoint's idle stack.
pub(crate) struct Home {
    endpoint: SocketAddr,
    idle: Arc<IdleConnections>,
}

impl Home {
    /// Gives the connection back, idle since `now` (read here when `None`).
    pub(crate) fn checkin(self, connection: Box<Connection>, now: Option<Instant>) {
        IdleConnections::checkin(&self.idle, self.endpoint, connection, now);
    }
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
    connection: Box<Connection>,
    since: Instant,
}

impl Idle {
    /// Still worth keeping: open, not idle too long, not too old.
    fn is_usable(&mut self, lifetimes: &Lifetimes, now: Instant) -> bool {
        self.is_within_lifetimes(lifetimes, now) && self.connection.is_open()
    }

    fn is_within_lifetimes(&self, lifetimes: &Lifetimes, now: Instant) -> bool {
        now.saturating_duration_since(self.since) <= lifetimes.idle_timeout
            && lifetimes
                .max_lifetime
                .is_none_or(|max| now.saturating_duration_since(self.connection.born) < max)
    }
}

impl IdleConnections {
    fn lock(&self) -> std::sync::MutexGuard<'_, Endpoints> {
        self.endpoints.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most recently used open connection to `endpoint`. Closed and expired ones are
    /// dropped on the way.
    /// An idle connection to `endpoint` that can take a request; `now`: the caller's clock
    /// reading, if it has one.
    fn checkout(&self, endpoint: SocketAddr, now: Option<Instant>) -> Option<Box<Connection>> {
        let mut endpoints = self.lock();
        let stack = endpoints.map.get_mut(&endpoint)?;
        let now = now.unwrap_or_else(Instant::now);
        while let Some(mut idle) = stack.pop() {
            if idle.is_usable(&self.lifetimes, now) {
                return Some(idle.connection);
            }
        }
        None
    }

    fn checkin(
        this: &Arc<Self>,
        endpoint: SocketAddr,
        connection: Box<Connection>,
        now: Option<Instant>,
    ) {
        let now = now.unwrap_or_else(Instant::now);
        let idle = Idle {
            connection,
            since: now,
        };
        // Whether the backend closed it or sent more is checked at checkout (and by the
        // sweeper), when it matters: checking here too would cost a readiness poll per
        // request.
        if !idle.is_within_lifetimes(&this.lifetimes, now) {
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
            stack.retain_mut(|idle| idle.is_usable(&self.lifetimes, now));
            !stack.is_empty()
        });
    }
}

#[cfg(test)]
mod tests;
