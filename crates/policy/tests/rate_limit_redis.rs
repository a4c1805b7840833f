//! Global rate limits against a real `redis-server` (one per test, on its own loopback port,
//! started and killed by PID through `testkit::RedisServer`). Without `redis-server` installed
//! these tests fail, saying so.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use http::request::Parts;
use http::{HeaderName, Method, StatusCode};
use policy::rate_limit::{Quota, RateLimiter};
use policy::{Denial, Identity, JwtIdentity};
use snapshot::rate_limit::{
    GlobalLimits, Limit, RateLimitPolicy, RateLimitRule, Selector, ValueMatch,
};
use telemetry::Metrics;
use testkit::RedisServer;
use tokio::time::Instant;

const LABEL: &str = "RateLimitPolicy default/limits";
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));

fn global_policy(
    requests: u64,
    period: Duration,
    selectors: Vec<Selector>,
    fail_open: bool,
    timeout: Duration,
) -> RateLimitPolicy {
    RateLimitPolicy {
        label: Arc::from(LABEL),
        local: Vec::new(),
        global: Some(GlobalLimits {
            rules: vec![RateLimitRule {
                id: Arc::from(format!("{LABEL} global[0]")),
                selectors,
                limit: Limit {
                    requests,
                    period,
                    burst: requests,
                },
                shadow: false,
            }],
            fail_open,
            timeout,
        }),
    }
}

fn request(headers: &[(&str, &str)]) -> anyhow::Result<Parts> {
    let mut builder = http::Request::builder()
        .method(Method::GET)
        .uri("/api/items");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    Ok(builder.body(())?.into_parts().0)
}

fn subject(sub: &str) -> Identity {
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), serde_json::Value::from(sub));
    Identity {
        jwt: Some(JwtIdentity {
            provider: "main".into(),
            claims,
        }),
        client: None,
    }
}

fn limiter(redis: &RedisServer) -> anyhow::Result<(RateLimiter, Arc<Metrics>)> {
    let metrics = Arc::new(Metrics::new());
    let limiter = RateLimiter::new(Some(&redis.url()), Arc::clone(&metrics))?;
    Ok((limiter, metrics))
}

/// Whether Redis decided: the global rule's quota came back (admitted) or it refused (429).
fn redis_decided(decision: &Result<Option<Quota>, Denial>) -> bool {
    match decision {
        Ok(Some(quota)) => quota.rule.ends_with("global[0]"),
        Ok(None) => false,
        Err(denial) => denial.status == StatusCode::TOO_MANY_REQUESTS,
    }
}

/// Two replicas share one global limit of 100 requests/s (burst 100), driven at 400
/// requests/s in total for 3 s.
///
/// GCRA admits at most `burst + span · rate` requests over a span, and, since requests arrive
/// every 2.5 ms (faster than the 10 ms the limit allows), the bucket never idles once drained,
/// so it admits at least one fewer than that. Over the whole run that is 100 + 100·span; over
/// the last two seconds (the burst is spent after ~0.33 s) 200. Both are asserted ± 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_global_limit() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let policy = Arc::new(global_policy(
        100,
        Duration::from_secs(1),
        Vec::new(),
        false,
        Duration::from_millis(500),
    ));
    let started = Instant::now();
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let (limiter, _) = limiter(&redis)?;
        let policy = Arc::clone(&policy);
        replicas.push(tokio::spawn(async move {
            let parts = request(&[])?;
            let identity = Identity::default();
            let mut ticks = tokio::time::interval(Duration::from_millis(5));
            let mut admitted = Vec::new();
            for _ in 0..600 {
                ticks.tick().await;
                match limiter.check(&policy, &parts, CLIENT, &identity).await {
                    Ok(_) => admitted.push(started.elapsed()),
                    Err(denial) if denial.status == StatusCode::TOO_MANY_REQUESTS => {}
                    Err(denial) => bail!(
                        "Redis failed a decision: {} {}",
                        denial.status,
                        denial.reason
                    ),
                }
            }
            anyhow::Ok(admitted)
        }));
    }
    let mut per_replica = Vec::new();
    for replica in replicas {
        per_replica.push(replica.await??);
    }
    let span = started.elapsed().as_secs_f64();
    eprintln!(
        "two replicas: {} + {} admitted in {span:.3} s",
        per_replica[0].len(),
        per_replica[1].len()
    );
    let all: Vec<Duration> = per_replica.iter().flatten().copied().collect();
    let expected = 100.0 + 100.0 * span;
    let total = all.len() as f64;
    ensure!(
        (total - expected).abs() <= 5.0,
        "admitted {total} in {span:.3} s, expected {expected:.0} ± 5"
    );
    let steady = all
        .iter()
        .filter(|at| at.as_secs_f64() >= span - 2.0)
        .count() as f64;
    ensure!(
        (steady - 200.0).abs() <= 5.0,
        "admitted {steady} in the last 2 s, expected 200 ± 5"
    );
    for (replica, admitted) in per_replica.iter().enumerate() {
        ensure!(
            admitted.len() as f64 > total * 0.1,
            "replica {replica} got only {} of {total}",
            admitted.len()
        );
    }
    Ok(())
}

/// Kills Redis while a replica decides every 5 ms: within 100 ms plus the decision timeout the
/// decisions follow `fail_open`; Redis restarted on the same port takes over again within 2 s,
/// with the same `RateLimiter`.
async fn fail_mode_then_recovery(fail_open: bool) -> anyhow::Result<()> {
    let timeout = Duration::from_millis(50);
    let mut redis = RedisServer::start().await?;
    let (limiter, metrics) = limiter(&redis)?;
    let policy = global_policy(
        100_000,
        Duration::from_secs(1),
        Vec::new(),
        fail_open,
        timeout,
    );
    let parts = request(&[])?;
    let identity = Identity::default();
    let follows_fail_mode = |decision: &Result<Option<Quota>, Denial>| match decision {
        Ok(None) => fail_open,
        Err(denial) => !fail_open && denial.status == StatusCode::SERVICE_UNAVAILABLE,
        Ok(Some(_)) => false,
    };
    let decide = || limiter.check(&policy, &parts, CLIENT, &identity);

    ensure!(
        redis_decided(&decide().await),
        "Redis did not decide before the kill"
    );
    redis.kill()?;
    let killed = Instant::now();
    let switched = loop {
        let decision = decide().await;
        if follows_fail_mode(&decision) {
            break killed.elapsed();
        }
        ensure!(
            killed.elapsed() < Duration::from_secs(2),
            "still {decision:?} 2 s after the kill"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    eprintln!("fail_open={fail_open}: fail mode {switched:?} after the kill");
    ensure!(
        switched <= Duration::from_millis(100) + timeout,
        "fail mode after {switched:?}"
    );
    // While Redis is down, every decision follows the fail mode.
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let decision = decide().await;
        ensure!(
            follows_fail_mode(&decision),
            "while Redis is down: {decision:?}"
        );
    }

    redis.restart().await?;
    let restarted = Instant::now();
    loop {
        if redis_decided(&decide().await) {
            break;
        }
        ensure!(
            restarted.elapsed() < Duration::from_secs(2),
            "Redis did not take over within 2 s of its restart"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!(
        "fail_open={fail_open}: Redis decided {:?} after its restart",
        restarted.elapsed()
    );
    let text = metrics.encode();
    let result = if fail_open {
        "failed_open"
    } else {
        "failed_closed"
    };
    ensure!(
        text.contains(&format!("result=\"{result}\"")),
        "no {result} decision counted: {text}"
    );
    ensure!(
        text.contains("reason=\"connection\""),
        "no connection failure counted: {text}"
    );
    Ok(())
}

#[tokio::test]
async fn fail_open_admits_while_redis_is_down_and_recovers() -> anyhow::Result<()> {
    fail_mode_then_recovery(true).await
}

#[tokio::test]
async fn fail_closed_refuses_while_redis_is_down_and_recovers() -> anyhow::Result<()> {
    fail_mode_then_recovery(false).await
}

/// Admitted requests until the first refusal (at most `limit + 1` tries).
async fn admitted_until_refused(
    limiter: &RateLimiter,
    policy: &RateLimitPolicy,
    parts: &Parts,
    identity: &Identity,
    limit: usize,
) -> anyhow::Result<(usize, Option<Denial>)> {
    for admitted in 0..=limit {
        match limiter.check(policy, parts, CLIENT, identity).await {
            Ok(_) => {}
            Err(denial) if denial.status == StatusCode::TOO_MANY_REQUESTS => {
                return Ok((admitted, Some(denial)));
            }
            Err(denial) => bail!("unexpected {} {}", denial.status, denial.reason),
        }
    }
    Ok((limit + 1, None))
}

#[tokio::test]
async fn distinct_api_keys_and_subjects_have_their_own_global_buckets() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let (limiter, _) = limiter(&redis)?;
    let minute = Duration::from_secs(60);
    let timeout = Duration::from_millis(500);
    let none = Identity::default();

    let per_key = Selector::Header {
        name: HeaderName::from_static("x-api-key"),
        matching: ValueMatch::Distinct,
    };
    let per_key = global_policy(3, minute, vec![per_key], false, timeout);
    let key_a = request(&[("x-api-key", "a")])?;
    let key_b = request(&[("x-api-key", "b")])?;
    let (admitted, denial) = admitted_until_refused(&limiter, &per_key, &key_a, &none, 3).await?;
    ensure!(admitted == 3, "key a: {admitted} admitted");
    let denial = denial.context("key a is refused")?;
    let header = |name: &str| {
        denial
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    };
    // 3 per minute: one request every 20 s.
    ensure!(
        header("retry-after") == "20",
        "Retry-After {:?}",
        header("retry-after")
    );
    ensure!(
        header("ratelimit-policy") == "\"global[0]\";q=3;w=60",
        "{:?}",
        header("ratelimit-policy")
    );
    ensure!(
        header("ratelimit").starts_with("\"global[0]\";r=0;t="),
        "{:?}",
        header("ratelimit")
    );
    let (admitted, _) = admitted_until_refused(&limiter, &per_key, &key_b, &none, 3).await?;
    ensure!(
        admitted == 3,
        "key b shares key a's bucket: {admitted} admitted"
    );
    let (admitted, _) =
        admitted_until_refused(&limiter, &per_key, &request(&[])?, &none, 3).await?;
    ensure!(
        admitted == 4,
        "a request without the key is not selected: {admitted}"
    );

    let per_sub = Selector::JwtClaim {
        name: "sub".into(),
        matching: ValueMatch::Distinct,
    };
    let mut per_sub = global_policy(2, minute, vec![per_sub], false, timeout);
    if let Some(global) = &mut per_sub.global {
        for rule in &mut global.rules {
            rule.id = Arc::from(format!("{LABEL} global[1] per-sub"));
        }
    }
    let plain = request(&[])?;
    for sub in ["ana", "bob"] {
        let (admitted, _) =
            admitted_until_refused(&limiter, &per_sub, &plain, &subject(sub), 2).await?;
        ensure!(admitted == 2, "sub {sub}: {admitted} admitted");
    }

    let mut shared = global_policy(3, minute, Vec::new(), false, timeout);
    if let Some(global) = &mut shared.global {
        for rule in &mut global.rules {
            rule.id = Arc::from(format!("{LABEL} global[2] shared"));
        }
    }
    let mut admitted = 0;
    for parts in [&key_a, &key_b, &plain, &key_a, &key_b] {
        if limiter
            .check(&shared, parts, CLIENT, &subject("ana"))
            .await
            .is_ok()
        {
            admitted += 1;
        }
    }
    ensure!(
        admitted == 3,
        "a rule without distinct selectors shares one bucket: {admitted} admitted"
    );
    Ok(())
}

/// A second limiter (another replica) sees the counts of the first: the keys are the same on
/// every replica.
#[tokio::test]
async fn replicas_compute_the_same_keys() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let (first, _) = limiter(&redis)?;
    let (second, _) = limiter(&redis)?;
    let per_key = Selector::Header {
        name: HeaderName::from_static("x-api-key"),
        matching: ValueMatch::Distinct,
    };
    let policy = global_policy(
        4,
        Duration::from_secs(60),
        vec![per_key],
        false,
        Duration::from_millis(500),
    );
    let parts = request(&[("x-api-key", "shared")])?;
    let none = Identity::default();
    for _ in 0..2 {
        ensure!(first.check(&policy, &parts, CLIENT, &none).await.is_ok());
        ensure!(second.check(&policy, &parts, CLIENT, &none).await.is_ok());
    }
    ensure!(
        first.check(&policy, &parts, CLIENT, &none).await.is_err(),
        "the fifth request is admitted"
    );
    Ok(())
}

/// A limiter created while Redis is down decides by its fail mode, and uses Redis as soon as it
/// is up, without being recreated.
#[tokio::test]
async fn a_limiter_created_while_redis_is_down_uses_it_once_it_is_up() -> anyhow::Result<()> {
    let mut redis = RedisServer::start().await?;
    redis.kill()?;
    let (limiter, metrics) = limiter(&redis)?;
    let policy = global_policy(
        10,
        Duration::from_secs(1),
        Vec::new(),
        false,
        Duration::from_millis(50),
    );
    let parts = request(&[])?;
    let none = Identity::default();
    let decision = limiter.check(&policy, &parts, CLIENT, &none).await;
    ensure!(
        matches!(&decision, Err(denial) if denial.status == StatusCode::SERVICE_UNAVAILABLE),
        "with Redis down: {decision:?}"
    );
    redis.restart().await?;
    let restarted = Instant::now();
    while !redis_decided(&limiter.check(&policy, &parts, CLIENT, &none).await) {
        ensure!(
            restarted.elapsed() < Duration::from_secs(2),
            "Redis did not take over within 2 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    ensure!(
        metrics
            .encode()
            .contains("portcullis_redis_request_duration_seconds_count")
    );
    Ok(())
}

/// Several global rules are decided in one script call: a request one of them refuses is not
/// counted by the others, and a shadow rule never refuses.
#[tokio::test]
async fn global_rules_count_a_request_only_when_all_admit_it() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let (limiter, metrics) = limiter(&redis)?;
    let per_key = |shadow: bool, id: &str| RateLimitRule {
        id: Arc::from(format!("{LABEL} {id}")),
        selectors: vec![Selector::Header {
            name: HeaderName::from_static("x-api-key"),
            matching: ValueMatch::Distinct,
        }],
        limit: Limit {
            requests: 1,
            period: Duration::from_secs(60),
            burst: 1,
        },
        shadow,
    };
    let build = |shadow: bool, suffix: &str| {
        let mut policy = global_policy(
            3,
            Duration::from_secs(60),
            Vec::new(),
            false,
            Duration::from_millis(500),
        );
        if let Some(global) = &mut policy.global {
            for rule in &mut global.rules {
                rule.id = Arc::from(format!("{LABEL} global[0] {suffix}"));
            }
            global
                .rules
                .push(per_key(shadow, &format!("global[1] {suffix}")));
        }
        policy
    };
    let none = Identity::default();
    let keyed = request(&[("x-api-key", "k")])?;
    let plain = request(&[])?;

    let enforced = build(false, "enforced");
    ensure!(
        limiter
            .check(&enforced, &keyed, CLIENT, &none)
            .await
            .is_ok()
    );
    for _ in 0..3 {
        let decision = limiter.check(&enforced, &keyed, CLIENT, &none).await;
        ensure!(
            matches!(&decision, Err(denial) if denial.status == StatusCode::TOO_MANY_REQUESTS),
            "{decision:?}"
        );
    }
    // global[0] counted only the admitted request: two more fit.
    let (admitted, _) = admitted_until_refused(&limiter, &enforced, &plain, &none, 3).await?;
    ensure!(
        admitted == 2,
        "the shared rule counted refused requests: {admitted} admitted after"
    );

    let shadowed = build(true, "shadowed");
    let (admitted, _) = admitted_until_refused(&limiter, &shadowed, &keyed, &none, 3).await?;
    ensure!(admitted == 3, "a shadow rule refused: {admitted} admitted");
    ensure!(metrics.encode().contains("result=\"shadow_limited\""));
    Ok(())
}

/// A "Redis" that accepts connections and never answers (a stalled server, a black hole): every
/// decision ends by its timeout in the declared fail mode, counted as `timeout`.
#[tokio::test]
async fn a_redis_that_never_answers_fails_by_the_timeout() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let url = format!("redis://{}", listener.local_addr()?);
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let metrics = Arc::new(Metrics::new());
    let limiter = RateLimiter::new(Some(&url), Arc::clone(&metrics))?;
    let timeout = Duration::from_millis(50);
    let policy = global_policy(10, Duration::from_secs(1), Vec::new(), true, timeout);
    let parts = request(&[])?;
    let none = Identity::default();
    for _ in 0..10 {
        let started = Instant::now();
        let decision = limiter.check(&policy, &parts, CLIENT, &none).await;
        let took = started.elapsed();
        ensure!(matches!(decision, Ok(None)), "failing open: {decision:?}");
        ensure!(
            took <= timeout + Duration::from_millis(100),
            "a decision took {took:?}"
        );
    }
    silent.abort();
    let text = metrics.encode();
    ensure!(text.contains("reason=\"timeout\""), "{text}");
    ensure!(text.contains("result=\"failed_open\""), "{text}");
    Ok(())
}
