//! Circuit breaking and retry budgets over real sockets (the resilience issue's "error-rate
//! breaker" and "retry storm guard" checks): the error-rate breaker opens, answers 503 at once
//! while open, half-opens and closes; `maxParallelRequests` rejects the excess at once; retries
//! stay within the budget; non-idempotent requests are not retried once sent.
//!
//! The upstreams are [`FaultyUpstream`]s whose answer (status, delay, or a connection reset
//! after reading the request) can be changed while they run, and which count the requests they
//! received and how many they held at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use testkit::{FaultyUpstream, UpstreamBehaviour};

use crate::fixture::manifest::{NS, http_route, path_match, rule, service_backend, service_ref};
use crate::fixture::running::{HOST, TestGateway};

/// A BackendTrafficPolicy on Services `services` with `spec` (targetRefs added).
fn policy(name: &str, services: &[&str], mut spec: Value) -> Value {
    let refs: Vec<Value> = services
        .iter()
        .map(|s| json!({"group": "", "kind": "Service", "name": s}))
        .collect();
    spec["targetRefs"] = json!(refs);
    json!({
        "apiVersion": "portcullis.dev/v1alpha1",
        "kind": "BackendTrafficPolicy",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    })
}

/// Service `name` with one endpoint at `addr`, and HTTPRoute `name` sending `/name` to it.
fn service_and_route(name: &str, addr: SocketAddr) -> Vec<Value> {
    let mut documents = service_backend(NS, name, &[addr]);
    documents.push(http_route(
        name,
        &[],
        vec![rule(
            vec![path_match("PathPrefix", &format!("/{name}"))],
            vec![service_ref(name)],
        )],
    ));
    documents
}

/// Samples of metric `name` in the exposition text: `(labels, value)`.
fn metric_samples(text: &str, name: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = if let Some(rest) = rest.strip_prefix('{') {
                let (labels, value) = rest.split_once('}')?;
                (labels.to_owned(), value)
            } else if rest.starts_with(' ') {
                (String::new(), rest)
            } else {
                return None;
            };
            Some((labels, value.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
}

/// The value of metric `name` on the series whose labels contain `label_part` (0 when absent).
async fn metric(gateway: &TestGateway, name: &str, label_part: &str) -> anyhow::Result<f64> {
    let text = gateway.admin_text("/metrics").await?;
    Ok(metric_samples(&text, name)
        .into_iter()
        .filter(|(labels, _)| labels.contains(label_part))
        .map(|(_, value)| value)
        .sum())
}

fn median_and_max(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    (samples[samples.len() / 2], samples[samples.len() - 1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_rate_breaker_opens_half_opens_and_closes() -> anyhow::Result<()> {
    let _timed_load = crate::fixture::timed_load().await;
    let backend = FaultyUpstream::start(
        "flaky",
        UpstreamBehaviour::answer(StatusCode::INTERNAL_SERVER_ERROR),
    )
    .await?;
    let mut documents = service_and_route("flaky", backend.addr());
    documents.push(policy(
        "flaky",
        &["flaky"],
        json!({"circuitBreaker": {"errorRate": {
            "threshold": 0.5, "minRequests": 10, "window": "2s", "openFor": "1s",
            "halfOpenRequests": 2,
        }}}),
    ));
    let gateway = TestGateway::start(&documents).await?;
    let state = async || metric(&gateway, "portcullis_circuit_breaker_state", "flaky").await;

    // Failing traffic until the breaker opens.
    let mut sent = 0;
    let opened_at = loop {
        ensure!(
            sent < 40,
            "breaker still closed after {sent} failing requests"
        );
        let response = gateway.get(HOST, "/flaky", &[]).await?;
        let now = Instant::now();
        sent += 1;
        match response.header("x-portcullis-error") {
            Some("circuit-open") => {
                ensure!(response.status == StatusCode::SERVICE_UNAVAILABLE);
                break now;
            }
            _ => ensure!(
                response.status == StatusCode::INTERNAL_SERVER_ERROR,
                "failing request {sent}: {} {:?}",
                response.status,
                response.text()
            ),
        }
    };
    let hits_when_open = backend.requests();
    eprintln!("breaker opened at request {sent}; backend saw {hits_when_open}");
    ensure!(
        (10..=12).contains(&hits_when_open),
        "minRequests 10 at 100% errors: expected to open after 10 errors, backend saw {hits_when_open}"
    );
    ensure!(state().await? == 1.0, "gauge should be 1 (open)");

    // While open: answered by the gateway at once, nothing reaches the backend. Stay well
    // inside openFor (1 s) so no probe is admitted.
    let mut samples = Vec::new();
    while samples.len() < 50 && opened_at.elapsed() < Duration::from_millis(700) {
        let start = Instant::now();
        let response = gateway.get(HOST, "/flaky", &[]).await?;
        samples.push(start.elapsed());
        ensure!(
            response.status == StatusCode::SERVICE_UNAVAILABLE
                && response.header("x-portcullis-error") == Some("circuit-open"),
            "while open: {} {:?}",
            response.status,
            response.header("x-portcullis-error")
        );
    }
    ensure!(
        backend.requests() == hits_when_open,
        "requests reached the backend while open"
    );
    let count = samples.len();
    let (median, max) = median_and_max(&mut samples);
    eprintln!("open-breaker answers: {count} requests, median {median:?}, max {max:?}");
    ensure!(count >= 20, "only {count} requests fitted in 700 ms");
    ensure!(median < Duration::from_millis(5), "median {median:?}");
    ensure!(max < Duration::from_millis(50), "max {max:?}");

    // Backend recovers; after openFor, probes pass, then the breaker closes.
    backend.set_behaviour(UpstreamBehaviour::answer(StatusCode::OK));
    tokio::time::sleep(
        (opened_at + Duration::from_millis(1_100)).saturating_duration_since(Instant::now()),
    )
    .await;
    let first = gateway.get(HOST, "/flaky", &[]).await?;
    ensure!(
        first.status == StatusCode::OK,
        "first probe: {} {:?}",
        first.status,
        first.header("x-portcullis-error")
    );
    let after_first_probe = state().await?;
    let second = gateway.get(HOST, "/flaky", &[]).await?;
    ensure!(
        second.status == StatusCode::OK,
        "second probe: {}",
        second.status
    );
    let after_second_probe = state().await?;
    for index in 0..20 {
        let response = gateway.get(HOST, "/flaky", &[]).await?;
        ensure!(
            response.status == StatusCode::OK,
            "request {index} after closing: {}",
            response.status
        );
    }
    eprintln!(
        "breaker gauge: open 1, after probe 1 {after_first_probe}, after probe 2 {after_second_probe}; \
         backend hits {} ({} since recovery)",
        backend.requests(),
        backend.requests() - hits_when_open
    );
    ensure!(
        after_first_probe == 2.0,
        "gauge after the first probe: {after_first_probe} (half-open is 2)"
    );
    ensure!(
        after_second_probe == 0.0,
        "gauge after the second probe: {after_second_probe} (closed is 0)"
    );
    ensure!(backend.requests() == hits_when_open + 22);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_limit_answers_503_immediately() -> anyhow::Result<()> {
    let _timed_load = crate::fixture::timed_load().await;
    let backend = FaultyUpstream::start(
        "held",
        UpstreamBehaviour::slow(Duration::from_millis(1_000)),
    )
    .await?;
    let mut documents = service_and_route("held", backend.addr());
    documents.push(policy(
        "held",
        &["held"],
        json!({"circuitBreaker": {"maxParallelRequests": 2}}),
    ));
    let gateway = TestGateway::start(&documents).await?;
    let listener = gateway.listener();
    let client = Arc::new(testkit::HttpClient::new());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let client = Arc::clone(&client);
        tasks.spawn(async move {
            let start = Instant::now();
            let response = client.get(listener, HOST, "/held", &[]).await?;
            anyhow::Ok((
                response.status,
                response.header("x-portcullis-error").map(str::to_owned),
                start.elapsed(),
            ))
        });
    }
    let mut ok = Vec::new();
    let mut rejected = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (status, error, elapsed) = joined??;
        match (status, error.as_deref()) {
            (StatusCode::OK, _) => ok.push(elapsed),
            (StatusCode::SERVICE_UNAVAILABLE, Some("overloaded-parallel")) => {
                rejected.push(elapsed)
            }
            other => anyhow::bail!("unexpected answer {other:?}"),
        }
    }
    let hits = backend.requests();
    let max_in_flight = backend.max_in_flight();
    let (median, max) = median_and_max(&mut rejected);
    eprintln!(
        "10 concurrent: {} ok ({ok:?}), {} rejected (median {median:?}, max {max:?}); backend hits {hits}, max in flight {max_in_flight}",
        ok.len(),
        rejected.len()
    );
    ensure!(hits == 2 && ok.len() == 2 && rejected.len() == 8);
    ensure!(max_in_flight <= 2);
    ensure!(
        max < Duration::from_millis(250),
        "a rejection took {max:?} (backend holds 1 s)"
    );
    Ok(())
}

/// Sends `n` GETs to `path`, one every `pace`, and returns the elapsed time.
async fn paced_load(
    gateway: &TestGateway,
    path: &str,
    n: u64,
    pace: Duration,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut interval = tokio::time::interval(pace);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for _ in 0..n {
        interval.tick().await;
        let response = gateway.get(HOST, path, &[]).await?;
        ensure!(
            response.status == StatusCode::SERVICE_UNAVAILABLE,
            "{path}: {}",
            response.status
        );
    }
    Ok(start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_storm_stays_within_budget() -> anyhow::Result<()> {
    const N: u64 = 300;
    const PERCENT: f64 = 20.0;
    const MIN_PER_SECOND: f64 = 1.0;

    let _timed_load = crate::fixture::timed_load().await;
    let unavailable = UpstreamBehaviour::answer(StatusCode::SERVICE_UNAVAILABLE);
    let budgeted = FaultyUpstream::start("budgeted", unavailable).await?;
    let unbudgeted = FaultyUpstream::start("unbudgeted", unavailable).await?;
    let retry = json!({
        "numRetries": 3,
        "retryOn": {"triggers": ["retriable-status-codes"], "httpStatusCodes": [503]},
        "perRetry": {"backOff": {"baseInterval": "1ms", "maxInterval": "2ms"}},
    });
    let mut with_budget = retry.clone();
    with_budget["budget"] = json!({"percent": 20, "minRetriesPerSecond": 1});
    let mut documents = service_and_route("budgeted", budgeted.addr());
    documents.extend(service_and_route("unbudgeted", unbudgeted.addr()));
    documents.push(policy(
        "budgeted",
        &["budgeted"],
        json!({"retry": with_budget}),
    ));
    documents.push(policy(
        "unbudgeted",
        &["unbudgeted"],
        json!({"retry": retry}),
    ));
    let gateway = TestGateway::start(&documents).await?;

    let elapsed = paced_load(&gateway, "/budgeted", N, Duration::from_millis(10)).await?;
    let retries = budgeted.requests() - N;
    let exhausted = metric(
        &gateway,
        "portcullis_retry_budget_exhausted_total",
        "budgeted",
    )
    .await?;
    let counted = metric(&gateway, "portcullis_retries_total", "budgeted").await?;
    // The budget (tower's TpsBudget): each request deposits `percent`, and a reserve of
    // minRetriesPerSecond x the 10 s window is always available.
    let budget_window = snapshot_budget_window_secs();
    let allowed = N as f64 * PERCENT / 100.0 + MIN_PER_SECOND * budget_window;
    eprintln!(
        "with budget: {N} requests in {elapsed:?}, backend attempts {}, retries {retries} \
         (allowed {allowed}: 20% of N + {MIN_PER_SECOND}/s x {budget_window} s reserve), \
         portcullis_retries_total {counted}, portcullis_retry_budget_exhausted_total {exhausted}",
        budgeted.requests()
    );
    ensure!(
        retries as f64 <= allowed + 3.0,
        "retries {retries} over the budget {allowed}"
    );
    ensure!(
        retries as f64 >= N as f64 * PERCENT / 100.0 * 0.8,
        "retries {retries}: the budget's share was not used"
    );
    ensure!(exhausted > 0.0, "no budget exhaustion counted");
    ensure!(
        counted == retries as f64,
        "portcullis_retries_total {counted} != retries {retries}"
    );

    let elapsed = paced_load(&gateway, "/unbudgeted", N, Duration::from_millis(10)).await?;
    let retries = unbudgeted.requests() - N;
    eprintln!(
        "without budget: {N} requests in {elapsed:?}, backend attempts {}, retries {retries} (3N = {})",
        unbudgeted.requests(),
        3 * N
    );
    ensure!(
        retries == 3 * N,
        "without a budget every request should be retried 3 times"
    );
    Ok(())
}

/// A reload that leaves a rule unchanged keeps its retry budget window (DESIGN §2: state lives
/// in registries keyed by a stable identity). Five reloads during a retry storm would each
/// have restored the budget's reserve (10 retries at 1/s over the 10 s window) when the window
/// lived in the snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_storm_across_reloads_stays_within_budget() -> anyhow::Result<()> {
    const N: u64 = 300;
    const RELOADS: u64 = 5;
    const PERCENT: f64 = 20.0;
    const MIN_PER_SECOND: f64 = 1.0;
    let _timed_load = crate::fixture::timed_load().await;
    let unavailable = UpstreamBehaviour::answer(StatusCode::SERVICE_UNAVAILABLE);
    let budgeted = FaultyUpstream::start("budgeted", unavailable).await?;
    let retry = json!({
        "numRetries": 3,
        "retryOn": {"triggers": ["retriable-status-codes"], "httpStatusCodes": [503]},
        "perRetry": {"backOff": {"baseInterval": "1ms", "maxInterval": "2ms"}},
        "budget": {"percent": 20, "minRetriesPerSecond": 1},
    });
    let mut documents = service_and_route("budgeted", budgeted.addr());
    documents.push(policy("budgeted", &["budgeted"], json!({"retry": retry})));
    let gateway = TestGateway::start(&documents).await?;

    let per_phase = N / (RELOADS + 1);
    for phase in 0..=RELOADS {
        if phase > 0 {
            // An unrelated change: a full compile that leaves the budgeted rule as it was.
            let generation = metric(&gateway, "portcullis_config_generation", "").await?;
            let namespace = json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": format!("unrelated-{phase}")},
            });
            gateway
                .config
                .write(&format!("unrelated-{phase}.yaml"), &[namespace])?;
            crate::fixture::eventually(Duration::from_secs(10), async || {
                let now = metric(&gateway, "portcullis_config_generation", "").await?;
                ensure!(now > generation, "generation still {now}");
                Ok(())
            })
            .await?;
        }
        paced_load(&gateway, "/budgeted", per_phase, Duration::from_millis(10)).await?;
    }
    let requests = per_phase * (RELOADS + 1);
    let retries = budgeted.requests() - requests;
    let budget_window = snapshot_budget_window_secs();
    let allowed = requests as f64 * PERCENT / 100.0 + MIN_PER_SECOND * budget_window;
    eprintln!(
        "{requests} requests across {RELOADS} reloads: retries {retries} (allowed {allowed})"
    );
    ensure!(
        retries as f64 <= allowed + 3.0,
        "retries {retries} over the budget {allowed}: a reload reset the budget window"
    );
    Ok(())
}

/// The retry budget's window in seconds (`upstream::retry_budget::BUDGET_WINDOW`, 10 s).
fn snapshot_budget_window_secs() -> f64 {
    10.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_idempotent_post_is_not_retried_after_sending() -> anyhow::Result<()> {
    let _timed_load = crate::fixture::timed_load().await;
    let unavailable = FaultyUpstream::start(
        "unavailable",
        UpstreamBehaviour::answer(StatusCode::SERVICE_UNAVAILABLE),
    )
    .await?;
    let resetting = FaultyUpstream::start("resetting", UpstreamBehaviour::Reset).await?;
    let mut documents = service_and_route("unavailable", unavailable.addr());
    documents.extend(service_and_route("resetting", resetting.addr()));
    documents.push(policy(
        "retries",
        &["unavailable", "resetting"],
        json!({"retry": {
            "numRetries": 3,
            "retryOn": {"triggers": ["retriable-status-codes", "reset"], "httpStatusCodes": [503]},
            "perRetry": {"backOff": {"baseInterval": "1ms", "maxInterval": "2ms"}},
        }}),
    ));
    let gateway = TestGateway::start(&documents).await?;
    let body = Bytes::from_static(b"{\"order\": 1}");

    for (name, upstream, expected_status) in [
        ("unavailable", &unavailable, "503 from the backend"),
        ("resetting", &resetting, "503 upstream-reset"),
    ] {
        let path = format!("/{name}");
        let before = upstream.requests();
        let post = gateway
            .request(
                Method::POST,
                HOST,
                &path,
                &[("content-type", "application/json")],
                body.clone(),
            )
            .await
            .with_context(|| format!("POST {path}"))?;
        let post_attempts = upstream.requests() - before;
        let before = upstream.requests();
        let get = gateway.get(HOST, &path, &[]).await?;
        let get_attempts = upstream.requests() - before;
        eprintln!(
            "{name}: POST -> {} {:?}, {post_attempts} attempt(s); GET -> {} {:?}, {get_attempts} attempt(s) ({expected_status})",
            post.status,
            post.header("x-portcullis-error"),
            get.status,
            get.header("x-portcullis-error")
        );
        ensure!(
            post.status == StatusCode::SERVICE_UNAVAILABLE
                && get.status == StatusCode::SERVICE_UNAVAILABLE
        );
        ensure!(
            post_attempts == 1,
            "{name}: POST reached the backend {post_attempts} times"
        );
        ensure!(
            get_attempts == 4,
            "{name}: GET reached the backend {get_attempts} times (1 + numRetries 3)"
        );
    }
    ensure!(resetting.requests() == 5);
    Ok(())
}
