//! Connections on TCP sockets (Gateway listeners with `protocol: TCP`, TCPRoute): the
//! listener's route (the oldest attached; none: the connection is closed), then the L4 path
//! shared with TLSRoute (`l4.rs`): weighted backend, endpoint, admission, connect, optional
//! PROXY protocol header, bytes copied both ways with half-close, the listener's
//! `timeout.tcp.idleTimeout`, and a drain when the socket closes.
//!
//! A connection that cannot be forwarded is closed: TCP has no error response. Each outcome is
//! counted in `portcullis_tcp_connections_total{route,result}` and logged at debug; a forwarded
//! one's bytes and duration in `portcullis_stream_bytes_total` and
//! `portcullis_stream_duration_seconds`.

use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpStream;
use tokio::sync::watch;
use upstream::StreamTls;

use crate::l4::{self, L4Error};
use crate::plane::{DataPlane, Live};
use crate::stack::Connection;

/// Serves one connection of a TCP socket to its end, with the config `live` loaded at accept.
/// `guard` is dropped when the connection ends (the accept loop's connection count).
pub(crate) async fn serve<G: Send + 'static>(
    plane: Arc<DataPlane>,
    live: Arc<Live>,
    mut stream: TcpStream,
    connection: Connection,
    stop: watch::Receiver<bool>,
    guard: G,
) {
    let started = Instant::now();
    let forward = live
        .snapshot
        .sockets
        .get(&connection.local)
        .and_then(|socket| socket.tcp.as_ref())
        .and_then(|listener| listener.route.as_ref());
    let Some(forward) = forward else {
        tracing::debug!(peer = %connection.peer, "TCP connection closed: no route");
        plane.metrics.l4.tcp_connection_finished("", "no_route");
        return;
    };
    let route = &*forward.name;
    let forwarded = async {
        let target = l4::pick(&live, forward, connection.peer.ip())?;
        let addresses = (connection.peer, connection.local);
        let mut upstream = l4::connect(&plane, &target, addresses, StreamTls::Originate).await?;
        let idle = connection.settings.stream_idle;
        Ok::<_, L4Error>(l4::relay(&mut stream, &mut upstream.stream, idle, stop).await)
    };
    match forwarded.await {
        Ok(relayed) => {
            let result = if relayed.idle {
                "idle_timeout"
            } else {
                "forwarded"
            };
            let metrics = &plane.metrics.l4;
            metrics.tcp_connection_finished(route, result);
            let seconds = started.elapsed().as_secs_f64();
            metrics.stream_finished(route, relayed.to_backend, relayed.to_client, seconds);
        }
        Err(error) => {
            tracing::debug!(peer = %connection.peer, route, %error, "TCP connection closed");
            plane
                .metrics
                .l4
                .tcp_connection_finished(route, error.result());
        }
    }
    drop(guard);
}
