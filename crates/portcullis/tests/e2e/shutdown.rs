//! Graceful shutdown on SIGTERM: in-flight requests finish, new connections are refused, idle
//! connections do not hold the process, and `--drain-timeout` bounds the wait.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, ensure};
use http::StatusCode;
use testkit::HttpClient;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::fixture::eventually;
use crate::fixture::manifest::{NS, http_route, rule, service_backend, service_ref};
use crate::fixture::running::{ConfigDir, Echoes, HOST, TestGateway};

/// Starts echo `slow` and a gateway routing everything to it, run with `args`.
async fn serve_slow(args: &[&str]) -> anyhow::Result<(Echoes, TestGateway)> {
    let echoes = Echoes::start(&["slow"]).await?;
    let config = ConfigDir::new()?;
    config.write_gateway(None)?;
    let mut documents = service_backend(NS, "slow", &[echoes.addr("slow")]);
    documents.push(http_route(
        "slow",
        &[],
        vec![rule(vec![], vec![service_ref("slow")])],
    ));
    config.write("config.yaml", &documents)?;
    let gateway = config.start(args).await?;
    Ok((echoes, gateway))
}

/// Waits until the echo server has received `count` requests, so a request is known to be in
/// flight at the backend.
async fn wait_for_requests(echoes: &Echoes, count: u64) -> anyhow::Result<()> {
    eventually(Duration::from_secs(10), async || {
        let seen = echoes.server("slow").requests();
        ensure!(seen >= count, "the backend has seen {seen} requests");
        Ok(())
    })
    .await
}

/// Waits until connecting to `listener` is refused.
async fn wait_until_refused(listener: SocketAddr) -> anyhow::Result<()> {
    eventually(Duration::from_secs(5), async || {
        match TcpStream::connect(listener).await {
            Err(error) if error.kind() == ErrorKind::ConnectionRefused => Ok(()),
            Err(error) => bail!("connect failed, but not with a refusal: {error}"),
            Ok(_stream) => bail!("{listener} still accepts connections"),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish() -> anyhow::Result<()> {
    let drain = Duration::from_secs(10);
    let (echoes, mut gateway) = serve_slow(&["--drain-timeout", "10s"]).await?;
    let listener = gateway.listener();
    // One slow request over HTTP/1.1 and one over h2c.
    let mut in_flight = Vec::new();
    for client in [HttpClient::new(), HttpClient::h2c()] {
        in_flight.push(tokio::spawn(async move {
            client.get(listener, HOST, "/slow?delay=3s", &[]).await
        }));
    }
    wait_for_requests(&echoes, 2).await?;

    gateway.process.signal_term()?;
    let signalled = Instant::now();
    wait_until_refused(listener).await?;
    let (ready, _) = gateway.process.get_admin("/ready").await?;
    ensure!(
        ready == StatusCode::SERVICE_UNAVAILABLE,
        "/ready answered {ready} while draining"
    );
    // Both checks above happened while the slow requests were still being served.
    ensure!(
        in_flight.iter().all(|request| !request.is_finished()),
        "a slow request finished before the checks ran"
    );

    for request in in_flight {
        let response = request.await??;
        ensure!(
            response.status == StatusCode::OK,
            "an in-flight {:?} request got {} {:?}",
            response.version,
            response.status,
            response.text()
        );
        ensure!(
            response.echo()?.pod == "slow",
            "the in-flight request got the backend's reply"
        );
    }
    let status = gateway.process.wait_exit(drain).await?;
    ensure!(status.success(), "the gateway exited with {status}");
    ensure!(
        signalled.elapsed() < drain,
        "exit took {:?}",
        signalled.elapsed()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_do_not_delay_shutdown() -> anyhow::Result<()> {
    // A long drain timeout that idle keep-alive connections (HTTP/1.1 and h2c) must not use up.
    let (_echoes, mut gateway) = serve_slow(&["--drain-timeout", "60s"]).await?;
    let http1 = HttpClient::new();
    let h2c = HttpClient::h2c();
    for client in [&http1, &h2c] {
        let response = client.get(gateway.listener(), HOST, "/", &[]).await?;
        ensure!(
            response.status == StatusCode::OK,
            "warm-up request got {}",
            response.status
        );
    }
    // The HTTP/1.1 one hibernates after a second (`proxy/src/idle.rs`): parked connections
    // must not hold the exit either.
    eventually(Duration::from_secs(10), async || {
        let metrics = gateway.admin_text("/metrics").await?;
        ensure!(
            metrics
                .lines()
                .any(|line| line == "portcullis_downstream_connections_hibernated 1"),
            "the idle HTTP/1.1 connection has not hibernated"
        );
        Ok(())
    })
    .await?;

    gateway.process.signal_term()?;
    let signalled = Instant::now();
    let status = gateway.process.wait_exit(Duration::from_secs(10)).await?;
    ensure!(status.success(), "the gateway exited with {status}");
    ensure!(
        signalled.elapsed() < Duration::from_secs(10),
        "idle connections held the exit for {:?}",
        signalled.elapsed()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_timeout_bounds_shutdown() -> anyhow::Result<()> {
    let (echoes, mut gateway) = serve_slow(&["--drain-timeout", "1s"]).await?;
    let listener = gateway.listener();
    let in_flight = tokio::spawn(async move {
        HttpClient::new()
            .with_timeout(Duration::from_secs(60))
            .get(listener, HOST, "/slow?delay=30s", &[])
            .await
    });
    wait_for_requests(&echoes, 1).await?;

    gateway.process.signal_term()?;
    let signalled = Instant::now();
    let status = gateway.process.wait_exit(Duration::from_secs(10)).await?;
    let took = signalled.elapsed();
    ensure!(status.success(), "the gateway exited with {status}");
    // Drain 1 s; anything near the 30 s request means the timeout was ignored.
    ensure!(
        took < Duration::from_secs(10),
        "exit took {took:?} with a 1 s drain timeout"
    );
    ensure!(
        took >= Duration::from_millis(900),
        "exit took only {took:?}: the drain did not wait"
    );
    let cut = in_flight.await?;
    ensure!(
        cut.as_ref()
            .map_or(true, |response| response.status != StatusCode::OK),
        "a request cut by the drain timeout cannot have completed: {:?}",
        cut.map(|response| response.status)
    );
    Ok(())
}
