//! UDP sockets (Gateway listeners with `protocol: UDP`, UDPRoute): datagrams forwarded per
//! flow.
//!
//! A flow is one client address and port. Its first datagram picks the route's weighted
//! backend and an endpoint by the backend's balancer (health and outlier ejection respected;
//! the flow counts as one request in flight on the endpoint while it lives), and opens an
//! upstream socket connected to that endpoint; every datagram of the flow then goes through
//! that socket, and every datagram the endpoint sends back on it goes to the client from the
//! listener's socket. A flow with no datagram either way for the listener's idle timeout is
//! forgotten and its socket closed; an upstream socket the endpoint refuses (ICMP port
//! unreachable) ends its flow, and the client's next datagram starts a new one, picked again.
//!
//! Limits (ClientTrafficPolicy `udp`): at most `maxFlows` flows per listener, and datagrams
//! larger than `maxDatagramBytes` either way are dropped. Nothing is allocated per datagram:
//! each direction reads into one buffer of its task, and the flow table is owned by the
//! socket's receive task (no lock).
//!
//! Flows keep their endpoint across config changes until they end; a socket removed from the
//! config ends its flows. Counted in `portcullis_udp_flows_total{route,result}`,
//! `portcullis_udp_flows_active`, `portcullis_udp_datagrams_total`, `portcullis_udp_bytes_total`
//! and `portcullis_udp_datagrams_dropped_total{route,reason}`.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use snapshot::l4::{MAX_UDP_PAYLOAD, UdpSocketRoutes};
use socket2::{Domain, Socket, Type};
use telemetry::UdpFlowCounters;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use upstream::endpoint::InFlight;

use crate::l4::{self, L4Error};
use crate::plane::DataPlane;

/// Kernel receive buffer asked for each listener socket: room for a burst of datagrams while
/// the receive task is busy (the kernel caps it at `net.core.rmem_max`).
const RECEIVE_BUFFER: usize = 4 << 20;

/// How often idle flows are looked for, at most (and at least four times per idle timeout).
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// One bound UDP listener socket and its receive task.
pub(crate) struct UdpListener {
    task: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl UdpListener {
    /// Binds `addr` and starts serving it. Must run inside a tokio runtime.
    pub(crate) fn bind(addr: SocketAddr, plane: Arc<DataPlane>) -> io::Result<UdpListener> {
        let socket = Arc::new(bind(addr)?);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(serve(socket, addr, plane, stopped));
        Ok(UdpListener { task, stop })
    }

    /// Stops serving: the socket closes and every flow with it.
    pub(crate) fn close(self) {
        let _ = self.stop.send(true);
        self.task.abort();
    }
}

fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        // `::` must not also claim the IPv4 wildcard: `0.0.0.0` is bound separately.
        socket.set_only_v6(true)?;
    }
    // Best effort: a smaller buffer only drops more in a burst.
    let _ = socket.set_recv_buffer_size(RECEIVE_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// One client's flow.
struct Flow {
    /// Connected to the flow's endpoint.
    upstream: Arc<UdpSocket>,
    /// Milliseconds since the socket's epoch when a datagram last went either way.
    last_seen: Arc<AtomicU64>,
    /// Set by the return task when the endpoint refused the flow's datagrams.
    ended: Arc<AtomicBool>,
    /// Forwards the endpoint's datagrams back to the client.
    returning: JoinHandle<()>,
    /// The route's name, for metrics.
    route: Arc<str>,
    counters: UdpFlowCounters,
    /// The listener's datagram size limit when the flow started.
    max_datagram_bytes: usize,
    /// The flow counts as a request in flight on its endpoint while it lives.
    _in_flight: InFlight,
}

impl Drop for Flow {
    fn drop(&mut self) {
        self.returning.abort();
    }
}

/// The flows of one listener socket, owned by its receive task.
struct Flows {
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    plane: Arc<DataPlane>,
    epoch: Instant,
    by_client: HashMap<SocketAddr, Flow>,
}

async fn serve(
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    plane: Arc<DataPlane>,
    mut stop: watch::Receiver<bool>,
) {
    let mut flows = Flows {
        socket: Arc::clone(&socket),
        local,
        plane,
        epoch: Instant::now(),
        by_client: HashMap::new(),
    };
    let mut buffer = vec![0u8; MAX_UDP_PAYLOAD + 1];
    let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buffer) => match received {
                Ok((length, client)) => flows.forward(&buffer[..length], client).await,
                // ICMP errors of earlier sends surface here on some systems: not fatal.
                Err(error) => tracing::debug!(%local, %error, "UDP receive failed"),
            },
            _ = sweep.tick() => flows.sweep(),
            _ = stop.changed() => break,
        }
    }
    flows.close_all("closed");
}

impl Flows {
    /// Milliseconds since the epoch, now.
    fn now_millis(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The current routes of this socket.
    fn routes(&self) -> Option<Arc<UdpSocketRoutes>> {
        self.plane
            .live()
            .snapshot
            .udp_sockets
            .get(&self.local)
            .cloned()
    }

    /// Forwards one datagram from `client`, starting its flow when it has none.
    async fn forward(&mut self, datagram: &[u8], client: SocketAddr) {
        let flowing = self
            .by_client
            .get(&client)
            .is_some_and(|flow| !flow.ended.load(Ordering::Relaxed));
        if !flowing && !self.start_flow(datagram, client).await {
            return;
        }
        let now = self.now_millis();
        let Some(flow) = self.by_client.get(&client) else {
            return;
        };
        if datagram.len() > flow.max_datagram_bytes {
            self.plane.metrics.l4.udp_dropped(&flow.route, "too_large");
            return;
        }
        match flow.upstream.send(datagram).await {
            Ok(_) => {
                flow.last_seen.store(now, Ordering::Relaxed);
                flow.counters.datagrams_in.inc();
                flow.counters.bytes_in.inc_by(datagram.len() as u64);
            }
            Err(error) => {
                tracing::debug!(%client, %error, "UDP send to the endpoint failed");
                self.plane
                    .metrics
                    .l4
                    .udp_dropped(&flow.route, "send_failed");
                if error.kind() == io::ErrorKind::ConnectionRefused {
                    flow.ended.store(true, Ordering::Relaxed);
                }
            }
        }
    }

    /// Starts the flow of `client` (ending a refused one first) for its first `datagram`.
    /// Whether there is one now; the datagram is counted as dropped when not.
    async fn start_flow(&mut self, datagram: &[u8], client: SocketAddr) -> bool {
        // A refused flow ends here; the datagram starts a new one.
        if let Some(flow) = self.by_client.remove(&client) {
            self.finished(&flow, "refused");
        }
        let metrics = &self.plane.metrics.l4;
        let Some(routes) = self.routes() else {
            metrics.udp_dropped("", "no_route");
            return false;
        };
        let route = routes.route.as_ref().map_or("", |r| &*r.name);
        if datagram.len() > routes.limits.max_datagram_bytes {
            metrics.udp_dropped(route, "too_large");
            return false;
        }
        if self.by_client.len() >= routes.limits.max_flows {
            metrics.udp_dropped(route, "flow_limit");
            return false;
        }
        match self.start(&routes, client).await {
            Ok(flow) => {
                self.by_client.insert(client, flow);
                true
            }
            Err((route, error)) => {
                tracing::debug!(%client, route = &*route, %error, "UDP flow not started");
                let metrics = &self.plane.metrics.l4;
                metrics.udp_flow_finished(&route, error.result(), false);
                metrics.udp_dropped(&route, error.result());
                false
            }
        }
    }

    /// Starts a flow for `client` on the socket's route: picks the endpoint, opens the
    /// upstream socket and the task returning its datagrams.
    async fn start(
        &self,
        routes: &UdpSocketRoutes,
        client: SocketAddr,
    ) -> Result<Flow, (Arc<str>, L4Error)> {
        let Some(forward) = routes.route.as_ref() else {
            let error = L4Error::InvalidBackend(format!("{} has no UDPRoute", routes.name));
            return Err(("".into(), error));
        };
        let route = Arc::clone(&forward.name);
        let live = self.plane.live();
        let target = l4::pick(&live, forward, client.ip()).map_err(|e| (Arc::clone(&route), e))?;
        let endpoint = target.endpoint.addr();
        let upstream = connect(endpoint).await.map_err(|error| {
            target.endpoint.record_failure();
            (
                Arc::clone(&route),
                L4Error::Connect(endpoint, error.to_string()),
            )
        })?;
        let upstream = Arc::new(upstream);
        let last_seen = Arc::new(AtomicU64::new(self.now_millis()));
        let ended = Arc::new(AtomicBool::new(false));
        let counters = self.plane.metrics.l4.udp_flow_started(&route);
        let returning = tokio::spawn(return_datagrams(ReturnPath {
            upstream: Arc::clone(&upstream),
            socket: Arc::clone(&self.socket),
            client,
            epoch: self.epoch,
            last_seen: Arc::clone(&last_seen),
            ended: Arc::clone(&ended),
            endpoint: Arc::clone(&target.endpoint),
            counters: counters.clone(),
            max_datagram_bytes: routes.limits.max_datagram_bytes,
            plane: Arc::clone(&self.plane),
            route: Arc::clone(&route),
        }));
        Ok(Flow {
            upstream,
            last_seen,
            ended,
            returning,
            route,
            counters,
            max_datagram_bytes: routes.limits.max_datagram_bytes,
            _in_flight: target.endpoint.start_request(),
        })
    }

    /// Ends the flows idle for longer than the listener's idle timeout.
    fn sweep(&mut self) {
        if self.by_client.is_empty() {
            return;
        }
        let idle = self
            .routes()
            .map_or(snapshot::l4::UdpLimits::default().idle_timeout, |r| {
                r.limits.idle_timeout
            });
        let idle = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        let now = self.now_millis();
        let metrics = &self.plane.metrics.l4;
        self.by_client.retain(|_, flow| {
            let quiet = now.saturating_sub(flow.last_seen.load(Ordering::Relaxed));
            let keep = quiet < idle;
            if !keep {
                metrics.udp_flow_finished(&flow.route, "idle_timeout", true);
            }
            keep
        });
    }

    /// Counts a flow's end.
    fn finished(&self, flow: &Flow, result: &'static str) {
        self.plane
            .metrics
            .l4
            .udp_flow_finished(&flow.route, result, true);
    }

    /// Ends every flow (the socket is closing).
    fn close_all(&mut self, result: &'static str) {
        for (_, flow) in self.by_client.drain() {
            self.plane
                .metrics
                .l4
                .udp_flow_finished(&flow.route, result, true);
        }
    }
}

/// A socket on an ephemeral port of the unspecified address of `endpoint`'s family, connected
/// to it: the kernel then only hands it datagrams from the endpoint.
async fn connect(endpoint: SocketAddr) -> io::Result<UdpSocket> {
    let any: IpAddr = match endpoint {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind(SocketAddr::new(any, 0)).await?;
    socket.connect(endpoint).await?;
    Ok(socket)
}

/// What a flow's return task needs.
struct ReturnPath {
    upstream: Arc<UdpSocket>,
    socket: Arc<UdpSocket>,
    client: SocketAddr,
    epoch: Instant,
    last_seen: Arc<AtomicU64>,
    ended: Arc<AtomicBool>,
    endpoint: Arc<upstream::EndpointRuntime>,
    counters: UdpFlowCounters,
    max_datagram_bytes: usize,
    plane: Arc<DataPlane>,
    route: Arc<str>,
}

/// Sends the endpoint's datagrams to the client until the flow ends (aborted when it is
/// dropped) or the endpoint refuses it.
async fn return_datagrams(path: ReturnPath) {
    let mut buffer = vec![0u8; MAX_UDP_PAYLOAD + 1];
    loop {
        let length = match path.upstream.recv(&mut buffer).await {
            Ok(length) => length,
            Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
                // ICMP port unreachable: nothing listens there (any more).
                path.endpoint.record_failure();
                path.ended.store(true, Ordering::Relaxed);
                return;
            }
            Err(error) => {
                tracing::debug!(client = %path.client, %error, "UDP receive from the endpoint failed");
                continue;
            }
        };
        if length > path.max_datagram_bytes {
            path.plane.metrics.l4.udp_dropped(&path.route, "too_large");
            continue;
        }
        match path.socket.send_to(&buffer[..length], path.client).await {
            Ok(_) => {
                let now = u64::try_from(path.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
                path.last_seen.store(now, Ordering::Relaxed);
                path.counters.datagrams_out.inc();
                path.counters.bytes_out.inc_by(length as u64);
            }
            Err(error) => {
                tracing::debug!(client = %path.client, %error, "UDP send to the client failed");
                path.plane
                    .metrics
                    .l4
                    .udp_dropped(&path.route, "send_failed");
            }
        }
    }
}
