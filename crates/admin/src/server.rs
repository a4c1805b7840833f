//! [`serve`]: the accept loop and HTTP/1.1 connections of the admin server.
//!
//! Plain HTTP/1.1 on a TCP listener, one task per connection. The admin port is for operators
//! and scrapers on a trusted network (it listens on loopback by default); it has no TLS and no
//! authentication.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tracing::{debug, warn};

use crate::routes::respond;
use crate::state::AdminState;
use crate::ui;

/// A client must send its request head within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for in-flight admin requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Pause after a failed accept (usually out of file descriptors) before trying again.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);

/// Serves the admin endpoints on `listener` until `shutdown` resolves:
///
/// - `GET /ready`: 200 `ready` once [`AdminState::ready`] is true, else 503 `not ready`;
/// - `GET /healthz`: 200 `ok` while the process can answer;
/// - `GET /metrics`: [`telemetry::Metrics::encode`], as OpenMetrics text (with exemplars) when
///   `Accept` asks for `application/openmetrics-text` (Prometheus does), else in the Prometheus
///   text format 0.0.4 ([`telemetry::prometheus_text`]);
/// - `GET /status`, `GET /config`: the JSON bodies stored in [`AdminState`];
/// - `GET /endpoints`: the JSON that [`AdminState::endpoints`] computes on each request;
/// - `GET /ui` (with `/ui/app.js` and `/ui/app.css`): the dashboard, embedded in the binary;
/// - `GET /ui/api/live`: the dashboard's traffic samples, request totals and reloads.
/// - `GET /explain?url=...&method=...&header=...&gateway=...`: what the [`crate::Explainer`]
///   the binary set says of that request against the live config (400 for a bad query, 503
///   before the first config).
///
/// While it runs it also samples [`telemetry::Metrics::live_stats`] once a second (the
/// dashboard's plots); the sampling stops with the server.
///
/// HEAD is answered like GET without a body. An unknown path is 404 and another method on a
/// known path 405, both with a JSON `{"error": ...}` body. Every response has
/// `Cache-Control: no-store`.
///
/// After `shutdown` resolves, no new connection is accepted; idle keep-alive connections are
/// closed and in-flight requests get a few seconds to finish.
///
/// # Errors
///
/// None today: a failed accept (such as running out of file descriptors) is logged and retried
/// after a short pause, because the admin server must outlive a transient overload.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AdminState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let graceful = GracefulShutdown::new();
    let _sampler = AbortOnDrop(tokio::spawn(sample_live_stats(Arc::clone(&state))));
    let mut shutdown = std::pin::pin!(shutdown);
    // A descriptor held in reserve for the admin server: when the process runs out of file
    // descriptors (clients took them all), it is let go so that /ready, /metrics and /status
    // still answer, one connection at a time, and taken back when one is free again.
    let mut reserve = reserve_descriptor();
    loop {
        if reserve.is_none() {
            reserve = reserve_descriptor();
        }
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                if is_descriptor_exhaustion(&error) && reserve.take().is_some() {
                    debug!("admin server out of file descriptors: using its reserve");
                    continue;
                }
                warn!(%error, "admin server cannot accept a connection; retrying");
                tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                continue;
            }
        };
        let state = Arc::clone(&state);
        let service = service_fn(move |request: Request<Incoming>| {
            let state = Arc::clone(&state);
            async move {
                let uri = request.uri();
                let response = respond(
                    &state,
                    request.method(),
                    uri.path(),
                    uri.query(),
                    request.headers(),
                )
                .await;
                Ok::<_, Infallible>(response)
            }
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                debug!(%peer, %error, "admin connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        debug!("admin requests still in flight at shutdown; abandoning them");
    }
    Ok(())
}

/// Closes an interval of [`telemetry::LiveStats`] every [`ui::SAMPLE_INTERVAL_MS`], forever.
/// A tick that comes late (a stalled runtime) is taken late, not made up in a burst: each
/// sample divides by the time it really covers.
async fn sample_live_stats(state: Arc<AdminState>) {
    let mut ticks = tokio::time::interval(Duration::from_millis(ui::SAMPLE_INTERVAL_MS));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        state
            .metrics
            .live_stats()
            .sample(std::time::Instant::now(), std::time::SystemTime::now());
    }
}

/// Aborts its task when dropped, so that the sampler ends with [`serve`] however that ends
/// (returned, or its future dropped).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// EMFILE / ENFILE: no file descriptor left in the process or the system.
fn is_descriptor_exhaustion(error: &io::Error) -> bool {
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    matches!(error.raw_os_error(), Some(ENFILE | EMFILE))
}

fn reserve_descriptor() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

#[cfg(test)]
mod tests;
