//! Kubernetes mode against a real API server (`scripts/k8s-apiserver`): objects created through
//! the API reach the real `portcullis` binary, EndpointSlice edits move traffic, and the gateway
//! keeps serving while the API server restarts.
//!
//! Backends run in a network namespace the test creates ([`test_host`]), on addresses the API
//! server accepts in EndpointSlices. Needs root and Go (the first run builds kube-apiserver into
//! `~/.cache/portcullis-k8s`, minutes); without them the tests fail, saying why.

mod cluster;
mod test_host;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::{Value, json};
use testkit::{EchoConfig, EchoServer, GatewayProcess, HttpClient, free_port};

use crate::fixture::eventually;
use crate::fixture::manifest::{
    NS, endpoint_slice, gateway, gateway_class, http_route, rule, service, service_ref,
};
use cluster::TestCluster;
use test_host::{ECHO_BACKEND_ENV, TestHost};

/// How long a change may take to reach the gateway (generous: it includes the watcher's
/// backoff after an API-server restart).
const PROPAGATION: Duration = Duration::from_secs(30);

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// The pod of the echo backend that answers `GET /` on `listener`.
async fn answering_pod(client: &HttpClient, listener: SocketAddr) -> anyhow::Result<String> {
    let response = client.get(listener, "shop.example", "/", &[]).await?;
    ensure!(
        response.status == 200,
        "status {} {:?}",
        response.status,
        response.text()
    );
    Ok(response.echo()?.pod)
}

/// Waits until `pod` answers.
async fn until_pod(client: &HttpClient, listener: SocketAddr, pod: &str) -> anyhow::Result<()> {
    eventually(PROPAGATION, async || {
        let answered = answering_pod(client, listener).await?;
        ensure!(answered == pod, "{answered} answered, waiting for {pod}");
        Ok(())
    })
    .await
}

#[tokio::test]
async fn gateway_follows_the_api_server_and_survives_its_restart() -> anyhow::Result<()> {
    let cluster = TestCluster::start().await?;
    let mut host = TestHost::create()?;
    let first = SocketAddr::from((host.address(2), 8080));
    let second = SocketAddr::from((host.address(3), 8080));
    host.start_echo(first, "first").await?;
    host.start_echo(second, "second").await?;

    let port = free_port();
    for object in [
        namespace(NS),
        gateway_class(),
        gateway(port, None),
        http_route(
            "shop",
            &["shop.example"],
            vec![rule(vec![], vec![service_ref("cart")])],
        ),
        service(NS, "cart", None),
        endpoint_slice(NS, "cart", "cart-1", first),
    ] {
        cluster.apply(&object).await?;
    }
    let kubeconfig = cluster.kubeconfig();
    let kubeconfig = kubeconfig.to_str().context("kubeconfig path")?;
    let gateway = GatewayProcess::start_without_config(
        std::path::Path::new(env!("CARGO_BIN_EXE_portcullis")),
        &[
            "--kubernetes",
            "--kubeconfig",
            kubeconfig,
            "--bind",
            "127.0.0.1",
            "--access-log",
            "off",
        ],
    )
    .await?;
    let listener = SocketAddr::from(([127, 0, 0, 1], port));
    let client = HttpClient::without_keep_alive().with_timeout(Duration::from_secs(5));
    until_pod(&client, listener, "first").await?;

    // An EndpointSlice edit moves the traffic.
    let edited = std::time::Instant::now();
    cluster
        .apply(&endpoint_slice(NS, "cart", "cart-1", second))
        .await?;
    until_pod(&client, listener, "second").await?;
    eprintln!("EndpointSlice edit served after {:?}", edited.elapsed());

    // The API server goes away: the last good config keeps serving, and the gateway stays ready.
    cluster.stop_apiserver()?;
    for _ in 0..20 {
        assert_eq!(answering_pod(&client, listener).await?, "second");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ready, _) = gateway.get_admin("/ready").await?;
    assert_eq!(ready, 200, "/ready while the API server is down");

    // It comes back: the watches resume and follow the next edit.
    cluster.start_apiserver()?;
    assert_eq!(answering_pod(&client, listener).await?, "second");
    let edited = std::time::Instant::now();
    cluster
        .apply(&endpoint_slice(NS, "cart", "cart-1", first))
        .await?;
    until_pod(&client, listener, "first").await?;
    eprintln!(
        "after the API-server restart, an edit served after {:?}",
        edited.elapsed()
    );
    let (ready, _) = gateway.get_admin("/ready").await?;
    assert_eq!(ready, 200);
    drop(gateway);
    drop(host);
    drop(cluster);
    Ok(())
}

/// Not a test: the echo backend [`TestHost::start_echo`] runs inside the test's network
/// namespace, by running this test binary again with [`ECHO_BACKEND_ENV`] set to `ADDR POD`.
/// Without it (a plain `--ignored` run) it returns at once.
#[tokio::test]
#[ignore = "helper process of the Kubernetes tests (an echo backend in their network namespace), not a test"]
async fn echo_backend() -> anyhow::Result<()> {
    let Ok(spec) = std::env::var(ECHO_BACKEND_ENV) else {
        return Ok(());
    };
    let (addr, pod) = spec.split_once(' ').context("ADDR POD")?;
    let mut config = EchoConfig::new(pod, NS);
    config.bind = addr.parse().context("backend address")?;
    let _server = EchoServer::start(config).await?;
    // Serves until the test kills this process.
    std::future::pending::<()>().await;
    Ok(())
}
