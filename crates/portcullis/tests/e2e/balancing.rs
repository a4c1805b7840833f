//! Load balancing over real sockets: PeakEWMA moves traffic away from a slow endpoint, where
//! RoundRobin keeps giving it a third (the resilience issue's "one endpoint 10x slower" check).
//!
//! The upstreams are [`FaultyUpstream`]s that answer every request after a fixed delay with
//! their name as the body: the echo server's delay is per request, not per endpoint.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::ensure;
use testkit::{FaultyUpstream, UpstreamBehaviour};

use crate::fixture::manifest::{NS, http_route, rule, service_backend, service_ref};
use crate::fixture::running::{HOST, TestGateway};

/// Requests per test, sent over [`CLIENTS`] keep-alive connections in parallel.
const REQUESTS: u32 = 1_200;
const CLIENTS: u32 = 6;

/// Starts `fast1`, `fast2` (2 ms) and `slow` (20 ms) behind Service `pool`, optionally with a
/// BackendTrafficPolicy balancer, and counts who answered [`REQUESTS`] requests.
async fn shares(balancer: Option<&str>) -> anyhow::Result<BTreeMap<String, u32>> {
    let fast = Duration::from_millis(2);
    let upstreams = [
        FaultyUpstream::start("fast1", UpstreamBehaviour::slow(fast)).await?,
        FaultyUpstream::start("fast2", UpstreamBehaviour::slow(fast)).await?,
        FaultyUpstream::start("slow", UpstreamBehaviour::slow(fast * 10)).await?,
    ];
    let endpoints: Vec<SocketAddr> = upstreams.iter().map(FaultyUpstream::addr).collect();
    let mut documents = service_backend(NS, "pool", &endpoints);
    documents.push(http_route(
        "pool",
        &[],
        vec![rule(vec![], vec![service_ref("pool")])],
    ));
    if let Some(balancer) = balancer {
        documents.push(serde_json::json!({
            "apiVersion": "portcullis.dev/v1alpha1",
            "kind": "BackendTrafficPolicy",
            "metadata": {"name": "pool", "namespace": NS},
            "spec": {
                "targetRefs": [{"group": "", "kind": "Service", "name": "pool"}],
                "loadBalancer": {"type": balancer},
            },
        }));
    }
    let gateway = TestGateway::start(&documents).await?;
    let listener = gateway.listener();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        tasks.spawn(async move {
            let client = testkit::HttpClient::new();
            let mut counts = BTreeMap::<String, u32>::new();
            for _ in 0..REQUESTS / CLIENTS {
                let response = client.get(listener, HOST, "/", &[]).await?;
                ensure!(response.status == 200, "status {}", response.status);
                *counts.entry(response.text()).or_default() += 1;
            }
            anyhow::Ok(counts)
        });
    }
    let mut total = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        for (name, count) in joined?? {
            *total.entry(name).or_default() += count;
        }
    }
    Ok(total)
}

fn share(counts: &BTreeMap<String, u32>, name: &str) -> f64 {
    let total: u32 = counts.values().sum();
    f64::from(counts.get(name).copied().unwrap_or(0)) * 100.0 / f64::from(total.max(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peak_ewma_sends_a_slow_endpoint_under_ten_percent() -> anyhow::Result<()> {
    let _timed_load = crate::fixture::timed_load().await;
    // PeakEWMA is the default: no policy needed.
    let counts = shares(None).await?;
    let slow = share(&counts, "slow");
    println!("PeakEWMA shares: {counts:?} (slow {slow:.1}%)");
    ensure!(slow < 10.0, "slow endpoint got {slow:.1}%: {counts:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_gives_a_slow_endpoint_a_third() -> anyhow::Result<()> {
    let _timed_load = crate::fixture::timed_load().await;
    let counts = shares(Some("RoundRobin")).await?;
    let slow = share(&counts, "slow");
    println!("RoundRobin shares: {counts:?} (slow {slow:.1}%)");
    ensure!(
        (100.0 / 3.0 - 5.0..100.0 / 3.0 + 5.0).contains(&slow),
        "slow endpoint got {slow:.1}%: {counts:?}"
    );
    Ok(())
}
