//! RateLimitPolicy through the binary: local limits (per replica) with the 429's headers, and
//! global limits counted in a real `redis-server` shared by two gateway processes, with the
//! declared failure mode while Redis is down and recovery once it is back.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde_json::{Value, json};
use testkit::redis::RedisServer;
use testkit::{EchoConfig, EchoServer};

use super::policy;
use crate::fixture::manifest::{NS, http_route, path_match, rule, service_backend, service_ref};
use crate::fixture::running::{ConfigDir, HOST, TestGateway};
use crate::fixture::{eventually, timed_load};

/// The documents of a gateway routing `/open` and `/closed` (and everything else) to an echo
/// pod, with `limits` (RateLimitPolicy specs by route: `open`, `closed`, `app`).
async fn documents(limits: &[(&str, Value)]) -> anyhow::Result<(Vec<Value>, EchoServer)> {
    let pod = EchoServer::start(EchoConfig::new("app", NS)).await?;
    let mut documents = service_backend(NS, "app", &[pod.addr()]);
    for (name, prefix) in [("open", "/open"), ("closed", "/closed"), ("app", "/")] {
        documents.push(http_route(
            name,
            &[],
            vec![rule(
                vec![path_match("PathPrefix", prefix)],
                vec![service_ref("app")],
            )],
        ));
    }
    for (route, spec) in limits {
        documents.push(policy("RateLimitPolicy", route, Some(route), spec.clone()));
    }
    Ok((documents, pod))
}

async fn start_with(documents: &[Value], args: &[&str]) -> anyhow::Result<TestGateway> {
    let config = ConfigDir::new()?;
    config.write_gateway(None)?;
    config.write("config.yaml", documents)?;
    config.start(args).await
}

#[tokio::test]
async fn local_limits_count_per_distinct_value_and_say_when_to_come_back() -> anyhow::Result<()> {
    let spec = json!({"local": {"rules": [{
        "name": "per-user",
        "clientSelectors": [{"headers": [{"name": "x-user", "type": "Distinct"}]}],
        "limit": {"requests": 5, "unit": "Minute"},
    }]}});
    let (documents, _pod) = documents(&[("app", spec)]).await?;
    let gateway = TestGateway::start(&documents).await?;
    for attempt in 1..=5 {
        let response = gateway.get(HOST, "/x", &[("x-user", "ana")]).await?;
        ensure!(
            response.status == 200,
            "request {attempt}: {}",
            response.status
        );
        ensure!(
            response
                .header("ratelimit")
                .is_some_and(|v| v.contains(&format!("r={}", 5 - attempt))),
            "admitted responses say what is left: {:?}",
            response.headers
        );
    }
    let refused = gateway.get(HOST, "/x", &[("x-user", "ana")]).await?;
    ensure!(refused.status == 429, "the sixth: {}", refused.status);
    let retry_after: u64 = refused
        .header("retry-after")
        .context("Retry-After")?
        .parse()?;
    ensure!(
        (1..=12).contains(&retry_after),
        "one request per 12 s comes back: {retry_after}"
    );
    let policy_header = refused
        .header("ratelimit-policy")
        .context("RateLimit-Policy")?;
    ensure!(
        policy_header.contains("q=5") && policy_header.contains("w=60"),
        "{policy_header}"
    );
    ensure!(
        refused.header("x-portcullis-error") == Some("rate-limited"),
        "{:?}",
        refused.headers
    );
    // Another user has a bucket of their own; a request without the header is not counted.
    ensure!(gateway.get(HOST, "/x", &[("x-user", "bo")]).await?.status == 200);
    for _ in 0..8 {
        ensure!(gateway.get(HOST, "/x", &[]).await?.status == 200);
    }
    let metrics = gateway.admin_text("/metrics").await?;
    ensure!(
        metrics.contains("portcullis_rate_limit_decisions_total{rule=\"RateLimitPolicy e2e/app local[0] per-user\",scope=\"local\",result=\"limited\"} 1"),
        "{metrics}"
    );
    Ok(())
}

/// Sends `GET path` to `gateway` every `interval` for `duration`, returning when (since
/// `start`) each admitted request was sent and the refused count.
async fn drive(
    gateway: &TestGateway,
    path: &str,
    interval: Duration,
    duration: Duration,
    start: Instant,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let mut admitted = Vec::new();
    let mut refused = 0;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    while start.elapsed() < duration {
        ticker.tick().await;
        let sent = start.elapsed();
        match gateway.get(HOST, path, &[]).await?.status.as_u16() {
            200 => admitted.push(sent),
            429 => refused += 1,
            other => anyhow::bail!("{path}: unexpected status {other}"),
        }
    }
    Ok((admitted, refused))
}

#[tokio::test]
async fn a_global_limit_is_shared_by_two_replicas() -> anyhow::Result<()> {
    let _one_at_a_time = timed_load().await;
    let redis = RedisServer::start().await?;
    let url = redis.url();
    let spec = json!({"global": {"rules": [{
        "limit": {"requests": 100, "unit": "Second", "burst": 10},
    }]}});
    let (documents, _pod) = documents(&[("app", spec)]).await?;
    let first = start_with(&documents, &["--redis", &url]).await?;
    let second = start_with(&documents, &["--redis", &url]).await?;
    // 400 requests per second in all: two clients on each replica, one every 10 ms each.
    let start = Instant::now();
    let duration = Duration::from_secs(3);
    let interval = Duration::from_millis(10);
    let (a, b, c, d) = tokio::join!(
        drive(&first, "/x", interval, duration, start),
        drive(&first, "/y", interval, duration, start),
        drive(&second, "/x", interval, duration, start),
        drive(&second, "/y", interval, duration, start),
    );
    let mut admitted = Vec::new();
    let mut refused = 0;
    for result in [a, b, c, d] {
        let (times, count) = result?;
        admitted.extend(times);
        refused += count;
    }
    let sent = admitted.len() + refused;
    // After the first second the bucket's burst is spent: 100 per second is the rate, from
    // both replicas together (the Lua script spaces admissions 10 ms apart in Redis' clock).
    let steady = admitted
        .iter()
        .filter(|t| **t >= Duration::from_secs(1) && **t < Duration::from_secs(3))
        .count();
    eprintln!(
        "global limit: {} admitted of {sent} sent, {steady} in the last 2 s",
        admitted.len()
    );
    ensure!(sent >= 800, "the load reached {sent} requests in 3 s");
    ensure!(
        (190..=210).contains(&steady),
        "100 ± 5 per second in total over the last 2 s, got {steady}"
    );
    Ok(())
}

#[tokio::test]
async fn redis_down_applies_the_failure_mode_and_recovers() -> anyhow::Result<()> {
    let _one_at_a_time = timed_load().await;
    let mut redis = RedisServer::start().await?;
    let limit = |mode: &str| {
        json!({"global": {"failureMode": mode, "rules": [{
            "limit": {"requests": 2, "unit": "Minute"},
        }]}})
    };
    let (documents, _pod) =
        documents(&[("open", limit("FailOpen")), ("closed", limit("FailClosed"))]).await?;
    let gateway = start_with(&documents, &["--redis", &redis.url()]).await?;
    for path in ["/open", "/closed"] {
        for _ in 0..2 {
            ensure!(gateway.get(HOST, path, &[]).await?.status == 200);
        }
        ensure!(
            gateway.get(HOST, path, &[]).await?.status == 429,
            "{path} limited"
        );
    }

    redis.kill()?;
    let killed = Instant::now();
    let switched = eventually(Duration::from_secs(5), async || {
        let closed = gateway.get(HOST, "/closed", &[]).await?;
        ensure!(closed.status == 503, "closed: {}", closed.status);
        ensure!(closed.header("x-portcullis-error") == Some("rate-limit-unavailable"));
        Ok(killed.elapsed())
    })
    .await?;
    eprintln!("fail mode applied {switched:?} after Redis was killed");
    ensure!(
        gateway.get(HOST, "/open", &[]).await?.status == 200,
        "fail open admits"
    );

    redis.restart().await?;
    let restarted = Instant::now();
    // A fresh Redis has no counters: two admitted, then limited again, without a restart of
    // the gateway.
    eventually(Duration::from_secs(10), async || {
        let statuses = [
            gateway.get(HOST, "/closed", &[]).await?.status,
            gateway.get(HOST, "/closed", &[]).await?.status,
            gateway.get(HOST, "/closed", &[]).await?.status,
        ];
        ensure!(
            statuses.iter().any(|s| *s == 429),
            "limited again: {statuses:?}"
        );
        Ok(())
    })
    .await?;
    eprintln!(
        "global limiting back {:?} after Redis restarted",
        restarted.elapsed()
    );
    let status = gateway.status().await?;
    ensure!(status.to_string().contains("RateLimitPolicy"), "{status}");
    Ok(())
}
