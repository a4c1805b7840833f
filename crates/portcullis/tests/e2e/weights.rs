//! Weighted traffic splitting over real sockets: backendRef weights within a rule, and endpoint
//! weights within a `Backend`. Each test sends 1,000 requests and checks every share is within
//! 5 percentage points of its weight, and that weight 0 gets nothing.
//!
//! The picks are random, so a correct gateway can still miss: 5 points is 3.4 standard
//! deviations for 70/30 (a false failure about once in 1,800 runs) and 3.7 for 75/25 (once in
//! 3,800). Endpoint shares are checked under RoundRobin (set by a BackendTrafficPolicy), which
//! follows weights exactly; the default PeakEWMA also follows latency.

use std::collections::BTreeMap;

use anyhow::ensure;

use crate::fixture::manifest::{
    NS, backend, backend_ref, http_route, rule, service_backend, service_ref, weighted,
};
use crate::fixture::running::{Echoes, HOST, TestGateway};

/// Requests per test.
const REQUESTS: u32 = 1_000;

/// Allowed distance of a share from its expected value, in percentage points.
const TOLERANCE: f64 = 5.0;

/// Sends [`REQUESTS`] requests over four keep-alive connections in parallel and counts the
/// answering pods.
async fn count_pods(gateway: &TestGateway) -> anyhow::Result<BTreeMap<String, u32>> {
    let listener = gateway.listener();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        tasks.spawn(async move {
            let client = testkit::HttpClient::new();
            let mut counts = BTreeMap::<String, u32>::new();
            for _ in 0..REQUESTS / 4 {
                let response = client.get(listener, HOST, "/", &[]).await?;
                let pod = crate::fixture::running::pod_of(&response)?;
                *counts.entry(pod).or_default() += 1;
            }
            anyhow::Ok(counts)
        });
    }
    let mut total = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        for (pod, count) in joined?? {
            *total.entry(pod).or_default() += count;
        }
    }
    Ok(total)
}

/// A BackendTrafficPolicy selecting RoundRobin for one Service or Backend.
fn round_robin(group: &str, kind: &str, name: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "portcullis.dev/v1alpha1",
        "kind": "BackendTrafficPolicy",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "targetRefs": [{"group": group, "kind": kind, "name": name}],
            "loadBalancer": {"type": "RoundRobin"},
        },
    })
}

/// Asserts that `pod` answered `expected_percent` of the requests, within [`TOLERANCE`].
fn ensure_share(
    counts: &BTreeMap<String, u32>,
    pod: &str,
    expected_percent: f64,
) -> anyhow::Result<()> {
    let count = counts.get(pod).copied().unwrap_or(0);
    let percent = f64::from(count) * 100.0 / f64::from(REQUESTS);
    ensure!(
        (percent - expected_percent).abs() <= TOLERANCE,
        "{pod} answered {percent:.1}% of requests, expected {expected_percent}% ± {TOLERANCE}: {counts:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_ref_weights_split_traffic() -> anyhow::Result<()> {
    let _timed_load = crate::fixture::timed_load().await;
    let echoes = Echoes::start(&["seventy", "thirty", "zero"]).await?;
    let mut documents = Vec::new();
    for name in ["seventy", "thirty", "zero"] {
        documents.extend(service_backend(NS, name, &[echoes.addr(name)]));
    }
    documents.push(http_route(
        "split",
        &[],
        vec![rule(
            vec![],
            vec![
                weighted(service_ref("seventy"), 70),
                weighted(service_ref("thirty"), 30),
                weighted(service_ref("zero"), 0),
            ],
        )],
    ));
    let gateway = TestGateway::start(&documents).await?;

    let counts = count_pods(&gateway).await?;
    ensure_share(&counts, "seventy", 70.0)?;
    ensure_share(&counts, "thirty", 30.0)?;
    ensure!(
        !counts.contains_key("zero"),
        "the weight-0 backend answered: {counts:?}"
    );
    ensure!(
        echoes.server("zero").requests() == 0,
        "the weight-0 backend was contacted"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_endpoint_weights_split_traffic() -> anyhow::Result<()> {
    let _timed_load = crate::fixture::timed_load().await;
    let echoes = Echoes::start(&["three", "one", "zero"]).await?;
    let documents = vec![
        backend(
            NS,
            "weighted",
            &[
                (echoes.addr("three"), 3),
                (echoes.addr("one"), 1),
                (echoes.addr("zero"), 0),
            ],
        ),
        http_route(
            "split",
            &[],
            vec![rule(vec![], vec![backend_ref("weighted")])],
        ),
        // Shares follow weights exactly under RoundRobin; PeakEWMA (the default) would let
        // latency decide among endpoints too.
        round_robin("portcullis.dev", "Backend", "weighted"),
    ];
    let gateway = TestGateway::start(&documents).await?;

    let counts = count_pods(&gateway).await?;
    ensure_share(&counts, "three", 75.0)?;
    ensure_share(&counts, "one", 25.0)?;
    ensure!(
        !counts.contains_key("zero"),
        "the weight-0 endpoint answered: {counts:?}"
    );
    ensure!(
        echoes.server("zero").requests() == 0,
        "the weight-0 endpoint was contacted"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_weights_round_robin_over_endpoints() -> anyhow::Result<()> {
    let _timed_load = crate::fixture::timed_load().await;
    // Endpoints of one Service with equal weight under RoundRobin: each serves a third. (The
    // default balancer, PeakEWMA, follows latency instead, so its shares are not exact.)
    let echoes = Echoes::start(&["e1", "e2", "e3"]).await?;
    let mut documents = service_backend(
        NS,
        "pool",
        &[echoes.addr("e1"), echoes.addr("e2"), echoes.addr("e3")],
    );
    documents.push(round_robin("", "Service", "pool"));
    documents.push(http_route(
        "pool",
        &[],
        vec![rule(vec![], vec![service_ref("pool")])],
    ));
    let gateway = TestGateway::start(&documents).await?;

    let counts = count_pods(&gateway).await?;
    for pod in ["e1", "e2", "e3"] {
        ensure_share(&counts, pod, 100.0 / 3.0)?;
    }
    Ok(())
}
