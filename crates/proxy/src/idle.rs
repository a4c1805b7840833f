//! Hibernation: idle HTTP/1.1 keep-alive connections wait without a task, a buffer or a
//! registration with tokio.
//!
//! A keep-alive connection waiting for its next request used to keep everything it served the
//! last one with: its task (the request's future is part of it), the read and write buffers,
//! the guard's timer and tokio's registration, about 12.5 KB; NGINX keeps about 560 bytes,
//! because it frees a keep-alive connection's buffers while it waits. Here a plain-TCP
//! connection on our HTTP/1.1 server that has been idle for [`HIBERNATE_AFTER`] (the guard's
//! timer, armed for the idle timeout anyway, fires earlier: no cost per request) leaves its
//! task: the socket is taken off tokio's reactor and registered, one-shot, with this set's own
//! `epoll` instance, and what the connection needs to be served again (its addresses and
//! settings, the listener's stop signal and the count it holds) is kept inline in a slab,
//! about 140 bytes. The
//! set's one thread waits on that instance, until the earliest idle deadline (a thread rather
//! than a task: tokio can wait for another `epoll` instance only through `AsyncFd`, whose safe
//! constructor is deprecated and whose other one is `unsafe`, which this workspace forbids):
//!
//! - bytes (or the client's close) on a parked socket: the socket goes back to tokio and a new
//!   task serves it from the start of its next head, with fresh buffers and guard;
//! - the connection's idle timeout: it is closed, as the guard would have closed it (counted
//!   as `idle_timeout`);
//! - the listener removed, or the gateway stopping: its parked connections are closed at once
//!   (they have no request in flight to finish).
//!
//! What it does not do: TLS connections (rustls's state would have to be kept), HTTP/2
//! connections and connections behind the PROXY protocol (their socket is wrapped) stay in
//! their tasks, and so does a connection that hyper serves (one that sent a request our server
//! does not take). The first request of a connection is never parked: the
//! header timeout governs it.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Token};
use slab::Slab;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::listener::ConnectionGuard;
use snapshot::client::ClientSettings;

use crate::guard::{CloseReason, ConnectionState};
use crate::stack::Connection;

/// How long an HTTP/1.1 keep-alive connection waits for its next request in its task before it
/// hibernates. A second: a client sending a steady stream of requests never pays for parking
/// and waking (an `epoll_ctl` each way, a task and its buffers), one that went quiet costs
/// almost nothing after a second. (NGINX frees a waiting connection's buffers at once.)
pub(crate) const HIBERNATE_AFTER: Duration = Duration::from_secs(1);

/// A connection parked while idle: what it needs to be served again. Plain data, kept inline
/// in the set: a parked connection owns no allocation of its own (a small one left behind
/// would pin the allocator's page that the connection's freed buffers shared with it).
pub(crate) struct Parked {
    /// The socket, off tokio's reactor (non-blocking).
    pub(crate) stream: std::net::TcpStream,
    /// The listener's address ([`Connection::local`]).
    pub(crate) local: SocketAddr,
    /// The client's address ([`Connection::peer`]).
    pub(crate) peer: SocketAddr,
    /// What the socket allowed its clients when the connection was accepted.
    pub(crate) settings: Arc<ClientSettings>,
    /// The listener's stop signal.
    pub(crate) stop: watch::Receiver<bool>,
    /// Keeps the connection counted (and the gateway's shutdown waiting for it).
    pub(crate) guard: ConnectionGuard,
}

impl Parked {
    /// What parks of `connection` (its state is made anew when it resumes:
    /// [`Parked::connection`]).
    pub(crate) fn of(
        stream: std::net::TcpStream,
        connection: &Connection,
        stop: watch::Receiver<bool>,
        guard: ConnectionGuard,
    ) -> Parked {
        Parked {
            stream,
            local: connection.local,
            peer: connection.peer,
            settings: Arc::clone(&connection.settings),
            stop,
            guard,
        }
    }

    /// The connection, served again: past its first request, idle since now. Plain TCP, so
    /// without a server name.
    pub(crate) fn connection(&self) -> Connection {
        Connection {
            local: self.local,
            peer: self.peer,
            sni: None,
            settings: Arc::clone(&self.settings),
            state: ConnectionState::resumed(),
        }
    }
}

/// The parked connections of one [`ListenerManager`](crate::ListenerManager).
pub(crate) struct IdleSet {
    /// Registers parked sockets with the set's `epoll` instance (the set's thread owns the
    /// instance itself).
    registry: mio::Registry,
    state: Mutex<State>,
    /// Wakes the set's thread: an earlier deadline than it sleeps until, or the set closed or
    /// dropped.
    waker: mio::Waker,
    /// Serves a connection again (`listener::resume`).
    resume: fn(Parked, Arc<IdleSet>),
}

struct State {
    entries: Slab<Entry>,
    /// No entry's deadline is earlier (it may be later: entries leave without updating it).
    earliest: Option<Instant>,
    /// The gateway is stopping: nothing is parked any more.
    closed: bool,
}

struct Entry {
    parked: Parked,
    /// When the idle timeout closes it.
    deadline: Option<Instant>,
}

/// Parked sockets are read from this many at a time.
const EVENTS: usize = 256;

/// The token of the set's waker (slab keys stay far below it).
const WAKER: Token = Token(usize::MAX);

/// Idle deadlines are looked for by a scan of the whole set, at most this often: an idle
/// connection closes up to this late, and a set of 10,000 costs a few microseconds per scan
/// rather than an ordered index (and its memory) per connection.
const SCAN_INTERVAL: Duration = Duration::from_millis(100);

impl IdleSet {
    /// A set with its own `epoll` instance and thread; woken connections are served on the
    /// current tokio runtime by `resume`.
    pub(crate) fn start(resume: fn(Parked, Arc<IdleSet>)) -> io::Result<Arc<IdleSet>> {
        let poll = mio::Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        let runtime = tokio::runtime::Handle::current();
        let set = Arc::new(IdleSet {
            registry,
            waker,
            state: Mutex::new(State {
                entries: Slab::new(),
                earliest: None,
                closed: false,
            }),
            resume,
        });
        let weak = Arc::downgrade(&set);
        std::thread::Builder::new()
            .name("portcullis-idle".into())
            // It runs no request code: a small stack is plenty.
            .stack_size(256 * 1024)
            .spawn(move || run(weak, poll, runtime))?;
        Ok(set)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent whatever panicked while holding it: every change is one
        // insert or remove of an entry (`earliest` may only be too early, which costs a scan).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Parks an idle connection until its client sends something, its idle timeout passes or
    /// its listener stops. `idle_since`: when its last request ended. `Err` gives it back when
    /// the socket cannot be watched (the caller closes it).
    pub(crate) fn park(&self, parked: Parked, idle_since: Instant) -> Result<(), Parked> {
        let deadline = parked.settings.timeouts.idle.map(|idle| idle_since + idle);
        let fd = parked.stream.as_raw_fd();
        let mut state = self.lock();
        if state.closed {
            drop(state);
            drop(parked);
            return Ok(());
        }
        let key = state.entries.vacant_key();
        // Registered under the lock: an event for the key finds its entry. Edge-triggered: a
        // socket that became readable before this still reports it.
        if self
            .registry
            .register(&mut SourceFd(&fd), Token(key), Interest::READABLE)
            .is_err()
        {
            return Err(parked);
        }
        // A listener stopped after this connection's last look at its signal, and before
        // `close_listener` could see it here: it must not stay parked.
        if *parked.stop.borrow() {
            let _ = self.registry.deregister(&mut SourceFd(&fd));
            drop(state);
            drop(parked);
            return Ok(());
        }
        // Counted before the entry can be woken (and counted out) by the set's thread.
        parked
            .guard
            .plane
            .metrics
            .downstream_connection_hibernated(1);
        state.entries.insert(Entry { parked, deadline });
        let earlier = deadline.filter(|&at| state.earliest.is_none_or(|earliest| at < earliest));
        if earlier.is_some() {
            state.earliest = earlier;
        }
        drop(state);
        if earlier.is_some() {
            self.wake_thread();
        }
        Ok(())
    }

    /// Takes the entry `key` out (deregistered from the `epoll` instance), if it is there.
    fn take(&self, state: &mut State, key: usize) -> Option<Parked> {
        let entry = state.entries.try_remove(key)?;
        // Counted out where it leaves, as it was counted in where it entered (`park`).
        entry
            .parked
            .guard
            .plane
            .metrics
            .downstream_connection_hibernated(-1);
        let fd = entry.parked.stream.as_raw_fd();
        // The socket must leave the instance before it goes back to tokio (or the key is used
        // again); a closed one leaves it anyway.
        let _ = self.registry.deregister(&mut SourceFd(&fd));
        Some(entry.parked)
    }

    /// Takes out the entries `pick` selects.
    fn take_where(&self, state: &mut State, pick: impl Fn(&Entry) -> bool) -> Vec<Parked> {
        let keys: Vec<usize> = state
            .entries
            .iter()
            .filter(|(_, entry)| pick(entry))
            .map(|(key, _)| key)
            .collect();
        keys.into_iter()
            .filter_map(|key| self.take(state, key))
            .collect()
    }

    /// Closes the parked connections of the listener on `local` (removed from the config).
    pub(crate) fn close_listener(&self, local: SocketAddr) {
        let closed = self.take_where(&mut self.lock(), |entry| entry.parked.local == local);
        // Their sockets close as they drop, outside the lock.
        drop(closed);
    }

    /// Closes every parked connection and ends the set's thread; nothing is parked after this.
    pub(crate) fn close(&self) {
        let closed = {
            let mut state = self.lock();
            state.closed = true;
            self.take_where(&mut state, |_| true)
        };
        // Their sockets close as they drop, outside the lock.
        drop(closed);
        self.wake_thread();
    }

    /// Closes the connections whose idle timeout has passed, if the earliest one has; returns
    /// the earliest deadline left.
    fn expire(&self) -> Option<Instant> {
        let now = Instant::now();
        let (expired, earliest) = {
            let mut state = self.lock();
            if state.earliest.is_none_or(|earliest| earliest > now) {
                return state.earliest;
            }
            let expired = self.take_where(&mut state, |entry| {
                entry.deadline.is_some_and(|at| at <= now)
            });
            state.earliest = state
                .entries
                .iter()
                .filter_map(|(_, entry)| entry.deadline)
                .min();
            (expired, state.earliest)
        };
        closed_at_idle_timeout(expired);
        earliest
    }

    /// Serves the connections of `keys` again (their sockets turned readable).
    fn wake(self: &Arc<Self>, keys: &[usize]) {
        let woken: Vec<Parked> = {
            let mut state = self.lock();
            keys.iter()
                .filter_map(|&key| self.take(&mut state, key))
                .collect()
        };
        for parked in woken {
            (self.resume)(parked, Arc::clone(self));
        }
    }

    /// Makes the set's thread look at the set again.
    fn wake_thread(&self) {
        if let Err(error) = self.waker.wake() {
            tracing::warn!(%error, "waking the idle connection set failed");
        }
    }

    fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

impl Drop for IdleSet {
    fn drop(&mut self) {
        // The thread holds only a weak reference while it waits: let it see that the set is
        // gone, and end.
        let _ = self.waker.wake();
    }
}

/// Closes connections whose idle timeout passed (their sockets close as they drop), counted as
/// the guard counts its own idle closes.
fn closed_at_idle_timeout(expired: Vec<Parked>) {
    for parked in &expired {
        parked
            .guard
            .plane
            .metrics
            .downstream_connection_closed_by_gateway(CloseReason::IdleTimeout.as_str());
    }
}

/// The set's thread: wakes parked connections whose sockets turned readable, closes those whose
/// idle timeout passed, until the set is closed or dropped. It holds the set only between
/// waits, so that the set drops (and its parked connections close) with its last user.
fn run(set: Weak<IdleSet>, mut poll: mio::Poll, runtime: tokio::runtime::Handle) {
    let mut events = Events::with_capacity(EVENTS);
    let mut keys = Vec::with_capacity(EVENTS);
    let mut next_scan = Instant::now();
    loop {
        let timeout = {
            let Some(set) = set.upgrade() else {
                return;
            };
            if set.is_closed() {
                return;
            }
            let now = Instant::now();
            let earliest = if now >= next_scan {
                next_scan = now + SCAN_INTERVAL;
                set.expire()
            } else {
                set.lock().earliest
            };
            earliest.map(|at| at.max(next_scan).saturating_duration_since(now))
        };
        match poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => {
                // Not expected of epoll_wait with a valid instance; parked connections close
                // with the set.
                tracing::error!(%error, "waiting for idle connections failed");
                return;
            }
        }
        keys.clear();
        keys.extend(
            events
                .iter()
                .map(|event| event.token())
                .filter(|&token| token != WAKER)
                .map(|token| token.0),
        );
        if keys.is_empty() {
            continue;
        }
        let Some(set) = set.upgrade() else {
            return;
        };
        // Resuming registers the sockets with tokio's reactor and spawns their tasks.
        let _runtime = runtime.enter();
        set.wake(&keys);
    }
}
