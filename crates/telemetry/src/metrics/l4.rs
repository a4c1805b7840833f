//! [`L4Metrics`]: the series of forwarded connections and UDP flows (TCPRoute, TLSRoute,
//! UDPRoute), by route rule. Registered under `portcullis_` with the rest.
//!
//! Every label value is the route's name or a fixed word the caller chooses, never client
//! data. Per-connection updates only (a TCP connection's bytes are added once, when it ends);
//! UDP adds per datagram to handles the flow holds, so no label lookup is made per datagram.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::{HistogramFamily, registered};
use crate::label_value::LabelValue;

/// Connection durations: from 1 ms to 1 h (a database connection lives for minutes).
const CONNECTION_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteResultLabels {
    route: LabelValue,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteDirectionLabels {
    route: LabelValue,
    /// `client_to_backend` or `backend_to_client`.
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteReasonLabels {
    route: LabelValue,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteOnlyLabels {
    route: LabelValue,
}

/// The `direction` of bytes and datagrams from the client to the backend.
const CLIENT_TO_BACKEND: &str = "client_to_backend";
/// The `direction` of bytes and datagrams from the backend to the client.
const BACKEND_TO_CLIENT: &str = "backend_to_client";

/// The L4 series.
#[derive(Clone, Debug)]
pub struct L4Metrics {
    tcp_connections: Family<RouteResultLabels, Counter>,
    stream_bytes: Family<RouteDirectionLabels, Counter>,
    stream_duration: HistogramFamily<RouteOnlyLabels>,
    udp_flows: Family<RouteResultLabels, Counter>,
    udp_flows_active: Family<RouteOnlyLabels, Gauge>,
    udp_datagrams: Family<RouteDirectionLabels, Counter>,
    udp_bytes: Family<RouteDirectionLabels, Counter>,
    udp_dropped: Family<RouteReasonLabels, Counter>,
}

/// Per-datagram counters of one UDP flow's route, looked up once when the flow starts.
#[derive(Clone, Debug)]
pub struct UdpFlowCounters {
    /// Datagrams client → backend.
    pub datagrams_in: Counter,
    /// Bytes client → backend.
    pub bytes_in: Counter,
    /// Datagrams backend → client.
    pub datagrams_out: Counter,
    /// Bytes backend → client.
    pub bytes_out: Counter,
}

impl L4Metrics {
    /// Registers the families in `registry` (the `portcullis_` one).
    pub(super) fn register(registry: &mut Registry) -> L4Metrics {
        L4Metrics {
            tcp_connections: registered(
                registry,
                "tcp_connections",
                "Connections on TCP listeners (TCPRoute), by route rule and result (forwarded, \
                 or why not)",
                Family::default(),
            ),
            stream_bytes: registered(
                registry,
                "stream_bytes",
                "Bytes forwarded on TCPRoute and TLSRoute connections, by route rule and \
                 direction, added when a connection ends",
                Family::default(),
            ),
            stream_duration: stream_duration_seconds_family(registry),
            udp_flows: registered(
                registry,
                "udp_flows",
                "UDP flows (one per client address and port) on UDP listeners, by route rule \
                 and result (ended after their idle timeout, or why none was started)",
                Family::default(),
            ),
            udp_flows_active: registered(
                registry,
                "udp_flows_active",
                "UDP flows open now, by route rule",
                Family::default(),
            ),
            udp_datagrams: registered(
                registry,
                "udp_datagrams",
                "UDP datagrams forwarded, by route rule and direction",
                Family::default(),
            ),
            udp_bytes: registered(
                registry,
                "udp_bytes",
                "UDP payload bytes forwarded, by route rule and direction",
                Family::default(),
            ),
            udp_dropped: registered(
                registry,
                "udp_datagrams_dropped",
                "UDP datagrams dropped, by route rule (empty: no route) and reason",
                Family::default(),
            ),
        }
    }

    /// A TCP listener's connection ended: `portcullis_tcp_connections_total{route,result}`.
    /// `route` is empty when no route serves the listener.
    pub fn tcp_connection_finished(&self, route: &str, result: &'static str) {
        let labels = RouteResultLabels {
            route: LabelValue::from(route),
            result,
        };
        self.tcp_connections.get_or_create(&labels).inc();
    }

    /// A forwarded connection (TCPRoute or TLSRoute) ended after `seconds`, having copied
    /// `to_backend` and `to_client` bytes.
    pub fn stream_finished(&self, route: &str, to_backend: u64, to_client: u64, seconds: f64) {
        let route = LabelValue::from(route);
        for (direction, bytes) in [
            (CLIENT_TO_BACKEND, to_backend),
            (BACKEND_TO_CLIENT, to_client),
        ] {
            let labels = RouteDirectionLabels {
                route: route.clone(),
                direction,
            };
            self.stream_bytes.get_or_create(&labels).inc_by(bytes);
        }
        self.stream_duration
            .get_or_create(&RouteOnlyLabels { route })
            .observe(seconds);
    }

    /// A UDP flow of `route` started: counts it active and returns its per-datagram counters.
    pub fn udp_flow_started(&self, route: &str) -> UdpFlowCounters {
        let route = LabelValue::from(route);
        let labels = RouteOnlyLabels {
            route: route.clone(),
        };
        self.udp_flows_active.get_or_create(&labels).inc();
        let direction = |direction| RouteDirectionLabels {
            route: route.clone(),
            direction,
        };
        UdpFlowCounters {
            datagrams_in: self
                .udp_datagrams
                .get_or_create(&direction(CLIENT_TO_BACKEND))
                .clone(),
            bytes_in: self
                .udp_bytes
                .get_or_create(&direction(CLIENT_TO_BACKEND))
                .clone(),
            datagrams_out: self
                .udp_datagrams
                .get_or_create(&direction(BACKEND_TO_CLIENT))
                .clone(),
            bytes_out: self
                .udp_bytes
                .get_or_create(&direction(BACKEND_TO_CLIENT))
                .clone(),
        }
    }

    /// A UDP flow of `route` ended (`result`: `idle_timeout`, `closed`, ...), or none was
    /// started for a datagram (`result` says why; `route` empty when there is none).
    pub fn udp_flow_finished(&self, route: &str, result: &'static str, was_active: bool) {
        let route = LabelValue::from(route);
        if was_active {
            let labels = RouteOnlyLabels {
                route: route.clone(),
            };
            self.udp_flows_active.get_or_create(&labels).dec();
        }
        let labels = RouteResultLabels { route, result };
        self.udp_flows.get_or_create(&labels).inc();
    }

    /// A UDP datagram was dropped (`reason`: `too_large`, `flow_limit`, `no_route`, ...).
    pub fn udp_dropped(&self, route: &str, reason: &'static str) {
        let labels = RouteReasonLabels {
            route: LabelValue::from(route),
            reason,
        };
        self.udp_dropped.get_or_create(&labels).inc();
    }
}

/// `portcullis_stream_duration_seconds{route}`.
fn stream_duration_seconds_family(registry: &mut Registry) -> HistogramFamily<RouteOnlyLabels> {
    registered(
        registry,
        "stream_duration_seconds",
        "How long TCPRoute and TLSRoute connections lasted, from accept to close, by route rule",
        Family::new_with_constructor(|| Histogram::new(CONNECTION_BUCKETS)),
    )
}
