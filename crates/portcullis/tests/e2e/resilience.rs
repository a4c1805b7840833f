//! Fault tests for the resilience stack over real sockets and a real `portcullis` process (the
//! resilience issue's "How it will be checked"): an endpoint killed under paced load, outlier
//! ejection on consecutive 5xx and return after the ejection time, and config reloads under
//! load. Every loop is bounded by a count or a deadline; the measured figures are printed with
//! `eprintln!` (visible with `--nocapture`).
//!
//! The upstreams are [`FaultyUpstream`]s that answer every request with a fixed status and their
//! name as the body, and can be killed: the port then refuses connections and live connections
//! close.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, ensure};
use http::StatusCode;
use serde_json::{Value, json};
use testkit::{FaultyUpstream, UpstreamBehaviour};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use crate::fixture::manifest::{NS, http_route, path_match, rule, service_backend, service_ref};
use crate::fixture::running::{ConfigDir, Echoes, HOST, TestGateway};

/// A BackendTrafficPolicy on Service `service` with `spec` (targetRefs added).
fn policy(service: &str, mut spec: Value) -> Value {
    spec["targetRefs"] = json!([{"group": "", "kind": "Service", "name": service}]);
    json!({
        "apiVersion": "portcullis.dev/v1alpha1",
        "kind": "BackendTrafficPolicy",
        "metadata": {"name": service, "namespace": NS},
        "spec": spec,
    })
}

/// The `/endpoints` entry of the endpoint at `addr`, whatever backend it is under.
fn endpoint_entry(endpoints: &Value, addr: SocketAddr) -> Option<Value> {
    let address = addr.to_string();
    endpoints.as_object()?.values().find_map(|backend| {
        backend["endpoints"]
            .as_array()?
            .iter()
            .find(|endpoint| endpoint["address"] == address.as_str())
            .cloned()
    })
}

/// Out of rotation: marked unhealthy by probes or ejected.
fn out_of_rotation(endpoint: &Value) -> bool {
    endpoint["health"]["healthy"] == false || endpoint["health"].get("ejected_for_ms").is_some()
}

/// Paced clients: each sends `GET /` every `period` on its own keep-alive connection until
/// `duration` has passed; returns (total, failures with their description).
async fn paced_load(
    listener: SocketAddr,
    clients: usize,
    period: Duration,
    duration: Duration,
) -> anyhow::Result<(u64, Vec<String>)> {
    let end = Instant::now() + duration;
    let mut tasks = JoinSet::new();
    for _ in 0..clients {
        tasks.spawn(async move {
            let client = testkit::HttpClient::new().with_timeout(Duration::from_secs(5));
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut total = 0u64;
            let mut failures = Vec::new();
            while Instant::now() < end {
                ticker.tick().await;
                total += 1;
                match client.get(listener, HOST, "/", &[]).await {
                    Ok(response) if response.status == 200 => {}
                    Ok(response) => failures.push(format!(
                        "{} (x-portcullis-error {:?}): {:?}",
                        response.status,
                        response.header("x-portcullis-error"),
                        response.text()
                    )),
                    Err(error) => failures.push(format!("{error:#}")),
                }
            }
            (total, failures)
        });
    }
    let mut total = 0;
    let mut failures = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (count, failed) = joined?;
        total += count;
        failures.extend(failed);
    }
    Ok((total, failures))
}

/// With active TCP probes (200 ms, one failure) and passive detection (2 gateway errors).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_killed_mid_load() -> anyhow::Result<()> {
    let _timed_load = crate::fixture::timed_load().await;
    killed_mid_load("backend_killed_mid_load", true).await
}

/// Passive detection alone (2 consecutive gateway errors) must take the dead endpoint out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_killed_mid_load_passive_only() -> anyhow::Result<()> {
    let _timed_load = crate::fixture::timed_load().await;
    killed_mid_load("backend_killed_mid_load_passive_only", false).await
}

/// 3 endpoints, ~500 req/s paced, endpoint `a` killed at t = 2 s; retries on connect failure
/// and reset. Asserts the error rate and how soon the dead endpoint stops getting attempts.
async fn killed_mid_load(test: &str, active_checks: bool) -> anyhow::Result<()> {
    const CLIENTS: usize = 10;
    const PERIOD: Duration = Duration::from_millis(20);
    const LOAD: Duration = Duration::from_secs(6);
    const KILL_AT: Duration = Duration::from_secs(2);

    let upstreams = [
        FaultyUpstream::start("a", UpstreamBehaviour::answer(StatusCode::OK)).await?,
        FaultyUpstream::start("b", UpstreamBehaviour::answer(StatusCode::OK)).await?,
        FaultyUpstream::start("c", UpstreamBehaviour::answer(StatusCode::OK)).await?,
    ];
    let addrs: Vec<SocketAddr> = upstreams.iter().map(|u| u.addr()).collect();
    let mut documents = service_backend(NS, "pool", &addrs);
    documents.push(http_route(
        "pool",
        &[],
        vec![rule(vec![], vec![service_ref("pool")])],
    ));
    documents.push(policy("pool", {
        let mut spec = json!({
            "healthCheck": {
                "passive": {"consecutiveGatewayErrors": 2, "baseEjectionTime": "10s",
                            "maxEjectionPercent": 50},
            },
            "retry": {
                "numRetries": 2,
                "retryOn": {"triggers": ["connect-failure", "reset"]},
                "perRetry": {"backOff": {"baseInterval": "10ms", "maxInterval": "50ms"}},
            },
        });
        if active_checks {
            spec["healthCheck"]["active"] = json!({
                "type": "TCP", "interval": "200ms", "timeout": "100ms",
                "unhealthyThreshold": 1, "healthyThreshold": 2,
            });
        }
        spec
    }));
    let gateway = TestGateway::start(&documents).await?;
    let listener = gateway.listener();

    let started = Instant::now();
    let load = tokio::spawn(paced_load(listener, CLIENTS, PERIOD, LOAD));

    tokio::time::sleep_until(started + KILL_AT).await;
    let victim = &upstreams[0];
    let served_before_kill = victim.requests();
    victim.kill().await;
    let killed = Instant::now();

    // Watch the victim in /endpoints (every 20 ms) until the load ends: when it went out of
    // rotation, and when its attempt counter last moved (the first sample's time when it never
    // moved after that sample).
    let mut out_after: Option<Duration> = None;
    let mut last_attempts: Option<u64> = None;
    let mut last_change = Duration::ZERO;
    let mut first_sample = None;
    let mut last_view = Value::Null;
    while started.elapsed() < LOAD + Duration::from_millis(200) {
        let endpoints = gateway.admin_json("/endpoints").await?;
        let entry = endpoint_entry(&endpoints, victim.addr())
            .with_context(|| format!("no endpoint {} in /endpoints: {endpoints}", victim.addr()))?;
        if out_after.is_none() && out_of_rotation(&entry) {
            out_after = Some(killed.elapsed());
        }
        let attempts = entry["requests"].as_u64().context("requests counter")?;
        if first_sample.is_none() {
            first_sample = Some(killed.elapsed());
            last_change = killed.elapsed();
        }
        if last_attempts.is_some_and(|last| last != attempts) {
            last_change = killed.elapsed();
        }
        last_attempts = Some(attempts);
        last_view = entry;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (total, failures) = load.await??;
    let elapsed = started.elapsed();
    let shares: BTreeMap<&str, u64> = upstreams.iter().map(|u| (u.name(), u.requests())).collect();
    let rate = failures.len() as f64 * 100.0 / total.max(1) as f64;
    eprintln!(
        "{test}: {total} requests in {elapsed:.2?} ({:.0} req/s), {} errors \
         ({rate:.3}%); victim served {served_before_kill} before the kill; \
         out of rotation {out_after:?} after the kill (first /endpoints sample at \
         {first_sample:?}); victim's attempt counter last moved {last_change:.2?} after the kill; served per endpoint {shares:?}; victim at the end: {last_view}",
        total as f64 / elapsed.as_secs_f64(),
        failures.len(),
    );
    for failure in failures.iter().take(5) {
        eprintln!("  failure: {failure}");
    }
    ensure!(total >= 2_000, "only {total} requests were sent");
    ensure!(
        (failures.len() as f64) < total as f64 * 0.001,
        "{} of {total} requests failed: {:?}",
        failures.len(),
        failures.iter().take(5).collect::<Vec<_>>()
    );
    let out_after = out_after.context("the killed endpoint never went out of rotation")?;
    ensure!(
        out_after <= Duration::from_secs(2),
        "out of rotation only {out_after:?} after the kill"
    );
    ensure!(
        last_change <= Duration::from_secs(2),
        "the killed endpoint still got attempts {last_change:?} after the kill"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consecutive_5xx_ejects_then_returns() -> anyhow::Result<()> {
    const AFTER_EJECTION: usize = 30;
    const EJECTION: Duration = Duration::from_secs(2);

    let _timed_load = crate::fixture::timed_load().await;
    let good = FaultyUpstream::start("good", UpstreamBehaviour::answer(StatusCode::OK)).await?;
    let bad = FaultyUpstream::start(
        "bad",
        UpstreamBehaviour::answer(StatusCode::INTERNAL_SERVER_ERROR),
    )
    .await?;
    let mut documents = service_backend(NS, "pool", &[good.addr(), bad.addr()]);
    documents.push(http_route(
        "pool",
        &[],
        vec![rule(vec![], vec![service_ref("pool")])],
    ));
    documents.push(policy(
        "pool",
        json!({
            "loadBalancer": {"type": "RoundRobin"},
            "healthCheck": {
                "passive": {"consecutive5XxErrors": 3, "baseEjectionTime": "2s",
                            "maxEjectionPercent": 50},
            },
        }),
    ));
    let gateway = TestGateway::start(&documents).await?;

    // Round robin until the bad endpoint answered 3 times (bounded).
    let mut errors = 0;
    let mut sent = 0;
    while errors < 3 {
        ensure!(sent < 50, "only {errors} 500s in {sent} requests");
        sent += 1;
        let response = gateway.get(HOST, "/", &[]).await?;
        match response.status.as_u16() {
            200 => {}
            500 => errors += 1,
            other => anyhow::bail!("unexpected status {other}: {:?}", response.text()),
        }
    }
    let ejected = Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..AFTER_EJECTION {
        statuses.push(gateway.get(HOST, "/", &[]).await?.status.as_u16());
    }
    let during = ejected.elapsed();
    let after_ejection_500s = statuses.iter().filter(|s| **s != 200).count();

    // Every 50 ms until the bad endpoint answers again (at most 6 s).
    let mut returned = None;
    let mut probes = 0;
    while ejected.elapsed() < Duration::from_secs(6) {
        probes += 1;
        if gateway.get(HOST, "/", &[]).await?.status == 500 {
            returned = Some(ejected.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "consecutive_5xx_ejects_then_returns: {errors} 500s in the first {sent} requests, then \
         {after_ejection_500s} non-200 of the next {AFTER_EJECTION} (sent in {during:.2?}); the \
         bad endpoint answered again {returned:?} after its 3rd 500 ({probes} paced probes); \
         bad endpoint served {} in all, good {}",
        bad.requests(),
        good.requests(),
    );
    ensure!(
        after_ejection_500s == 0,
        "after the 3rd 500, {after_ejection_500s} of {AFTER_EJECTION} requests were not 200: {statuses:?}"
    );
    let returned = returned.context("the bad endpoint never got traffic again within 6 s")?;
    ensure!(
        returned >= EJECTION - Duration::from_millis(100) && returned <= EJECTION * 2,
        "the bad endpoint came back {returned:?} after ejection (base ejection time {EJECTION:?})"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_load_drop_nothing() -> anyhow::Result<()> {
    const CLIENTS: usize = 4;
    const RELOADS: usize = 20;
    const RELOAD_EVERY: Duration = Duration::from_millis(350);
    const TRAFFIC_LIMIT: Duration = Duration::from_secs(20);

    let _timed_load = crate::fixture::timed_load().await;
    let echoes = Echoes::start(&["blue", "green"]).await?;
    let config = ConfigDir::new()?;
    config.write_gateway(None)?;
    let mut backends = service_backend(NS, "blue", &[echoes.addr("blue")]);
    backends.extend(service_backend(NS, "green", &[echoes.addr("green")]));
    config.write("backends.yaml", &backends)?;
    // Version `n` of the route: all traffic to blue or green, and on odd versions an extra
    // header-matched rule, so every reload changes the route table.
    let route = |version: usize| {
        let target = if version.is_multiple_of(2) {
            "blue"
        } else {
            "green"
        };
        let mut rules = vec![rule(vec![], vec![service_ref(target)])];
        if !version.is_multiple_of(2) {
            let mut matched = path_match("PathPrefix", "/");
            matched["headers"] = json!([{"name": "x-canary", "value": format!("v{version}")}]);
            rules.push(rule(vec![matched], vec![service_ref("blue")]));
        }
        vec![http_route("app", &[], rules)]
    };
    config.write("route.yaml", &route(0))?;
    let gateway = config.start(&[]).await?;
    let listener = gateway.listener();

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut clients = JoinSet::new();
    for _ in 0..CLIENTS {
        let stop = Arc::clone(&stop);
        clients.spawn(async move {
            let client = testkit::HttpClient::new().with_timeout(Duration::from_secs(5));
            let mut ok = 0u64;
            let mut pods = BTreeMap::<String, u64>::new();
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) && started.elapsed() < TRAFFIC_LIMIT {
                match client.get(listener, HOST, "/", &[]).await {
                    Ok(response) => match crate::fixture::running::pod_of(&response) {
                        Ok(pod) => {
                            ok += 1;
                            *pods.entry(pod).or_default() += 1;
                        }
                        Err(error) => failures.push(format!("{error:#}")),
                    },
                    Err(error) => failures.push(format!("{error:#}")),
                }
                // A short pause keeps the load bounded on shared cores.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            (ok, pods, failures)
        });
    }

    tokio::time::sleep(Duration::from_millis(500)).await;
    for version in 1..=RELOADS {
        config_write(&gateway, "route.yaml", &route(version))?;
        tokio::time::sleep(RELOAD_EVERY).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);

    let mut ok = 0;
    let mut pods = BTreeMap::<String, u64>::new();
    let mut failures = Vec::new();
    while let Some(joined) = clients.join_next().await {
        let (count, seen, failed) = joined?;
        ok += count;
        for (pod, count) in seen {
            *pods.entry(pod).or_default() += count;
        }
        failures.extend(failed);
    }
    let elapsed = started.elapsed();
    let metrics = gateway.admin_text("/metrics").await?;
    let reload_count = |result: &str| -> u64 {
        let prefix = format!("portcullis_config_reloads_total{{result=\"{result}\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .map_or(0, |value| value as u64)
    };
    let (reloaded, reload_errors) = (reload_count("success"), reload_count("error"));
    eprintln!(
        "reloads_under_load_drop_nothing: {RELOADS} reloads, {} requests in {elapsed:.2?} \
         ({:.0} req/s), {} failed; answered by {pods:?}; reloads counted by the gateway: \
         {reloaded} successful, {reload_errors} failed",
        ok + failures.len() as u64,
        (ok + failures.len() as u64) as f64 / elapsed.as_secs_f64(),
        failures.len(),
    );
    ensure!(
        failures.is_empty(),
        "{} failed requests: {:?}",
        failures.len(),
        failures.iter().take(5).collect::<Vec<_>>()
    );
    ensure!(ok >= 500, "only {ok} requests during the reloads");
    ensure!(reload_errors == 0, "{reload_errors} reloads failed");
    // Both versions of the route served traffic, so the reloads took effect.
    ensure!(
        pods.get("blue").copied().unwrap_or(0) > 0 && pods.get("green").copied().unwrap_or(0) > 0,
        "the reloads did not switch backends: {pods:?}"
    );
    Ok(())
}

fn config_write(gateway: &TestGateway, file: &str, documents: &[Value]) -> anyhow::Result<()> {
    gateway.config.write(file, documents)
}
