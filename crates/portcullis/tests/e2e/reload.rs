//! Hot reload under traffic: routes added, changed and removed, and EndpointSlices changed,
//! while clients keep sending requests on keep-alive connections. Files are replaced
//! atomically (write then rename), as editors and ConfigMap volumes do.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{bail, ensure};
use http::StatusCode;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::fixture::eventually;
use crate::fixture::manifest::{
    NS, endpoint_slice, http_route, path_match, rule, service_backend, service_ref,
};
use crate::fixture::running::{ConfigDir, Echoes, HOST, TestGateway};

/// How soon after the write a new route must answer.
const RELOAD_BUDGET: Duration = Duration::from_secs(1);

/// How long the clients keep sending, at least.
const TRAFFIC_DURATION: Duration = Duration::from_secs(6);

/// Hard stop for the clients, should the test body stall.
const TRAFFIC_LIMIT: Duration = Duration::from_secs(30);

/// Concurrent clients, each on its own keep-alive connection.
const CLIENTS: usize = 4;

/// What the background clients saw on the stable route.
#[derive(Default)]
struct Tally {
    ok: u64,
    failures: Vec<String>,
}

/// Sends `GET /stable` in a loop until `stop` is set (or [`TRAFFIC_LIMIT`]), recording every
/// answer that is not a 200 from pod `stable`.
async fn hammer_stable_route(listener: std::net::SocketAddr, stop: Arc<AtomicBool>) -> Tally {
    let client = testkit::HttpClient::new().with_timeout(Duration::from_secs(5));
    let limit = Instant::now() + TRAFFIC_LIMIT;
    let mut tally = Tally::default();
    while !stop.load(Ordering::Relaxed) && Instant::now() < limit {
        let outcome = match client.get(listener, HOST, "/stable", &[]).await {
            Ok(response) => match crate::fixture::running::pod_of(&response) {
                Ok(pod) if pod == "stable" => Ok(()),
                Ok(pod) => Err(format!("answered by {pod}")),
                Err(error) => Err(format!("{error:#}")),
            },
            Err(error) => Err(format!("{error:#}")),
        };
        match outcome {
            Ok(()) => tally.ok += 1,
            Err(failure) => tally.failures.push(failure),
        }
    }
    tally
}

/// Polls `GET /fresh` every 20 ms from `written` until `accept` holds; returns the time from
/// the write.
async fn time_until(
    gateway: &TestGateway,
    written: Instant,
    accept: impl Fn(&testkit::TestResponse) -> bool,
) -> anyhow::Result<Duration> {
    eventually(Duration::from_secs(10), async || {
        let response = gateway.get(HOST, "/fresh", &[]).await?;
        if accept(&response) {
            Ok(written.elapsed())
        } else {
            bail!("GET /fresh: {} {:?}", response.status, response.text())
        }
    })
    .await
}

/// Whether the response is a 200 echo from `pod`.
fn answered_by(response: &testkit::TestResponse, pod: &str) -> bool {
    response.status == StatusCode::OK && response.echo().is_ok_and(|reply| reply.pod == pod)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_added_changed_and_removed_under_traffic() -> anyhow::Result<()> {
    let _timed_load = crate::fixture::timed_load().await;
    let echoes = Echoes::start(&["stable", "first", "second"]).await?;
    let config = ConfigDir::new()?;
    config.write_gateway(None)?;
    let mut backends = Vec::new();
    for name in ["stable", "first", "second"] {
        backends.extend(service_backend(NS, name, &[echoes.addr(name)]));
    }
    config.write("backends.yaml", &backends)?;
    config.write(
        "route-stable.yaml",
        &[http_route(
            "stable",
            &[],
            vec![rule(
                vec![path_match("PathPrefix", "/stable")],
                vec![service_ref("stable")],
            )],
        )],
    )?;
    let gateway = config.start(&[]).await?;
    ensure!(
        gateway.pod(HOST, "/stable", &[]).await? == "stable",
        "the stable route serves"
    );
    ensure!(
        gateway.status_of(HOST, "/fresh").await? == StatusCode::NOT_FOUND,
        "/fresh has no route yet"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let traffic_started = Instant::now();
    let mut clients = JoinSet::new();
    for _ in 0..CLIENTS {
        clients.spawn(hammer_stable_route(gateway.listener(), Arc::clone(&stop)));
    }

    let fresh_route = |service: &str| {
        http_route(
            "fresh",
            &[],
            vec![rule(
                vec![path_match("PathPrefix", "/fresh")],
                vec![service_ref(service)],
            )],
        )
    };

    // Add a route.
    let written = Instant::now();
    gateway
        .config
        .write("route-fresh.yaml", &[fresh_route("first")])?;
    let added = time_until(&gateway, written, |r| answered_by(r, "first")).await?;

    // Change it to another backend.
    let written = Instant::now();
    gateway
        .config
        .write("route-fresh.yaml", &[fresh_route("second")])?;
    let changed = time_until(&gateway, written, |r| answered_by(r, "second")).await?;

    // Remove it.
    let written = Instant::now();
    gateway.config.remove("route-fresh.yaml")?;
    let removed = time_until(&gateway, written, |r| r.status == StatusCode::NOT_FOUND).await?;

    // Keep the clients going for the whole traffic window, then collect.
    tokio::time::sleep_until(traffic_started + TRAFFIC_DURATION).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = Tally::default();
    while let Some(joined) = clients.join_next().await {
        let tally = joined?;
        total.ok += tally.ok;
        total.failures.extend(tally.failures);
    }

    eprintln!(
        "stable route: {} ok, {} failed; new route after {added:?}, change after {changed:?}, \
         removal after {removed:?}",
        total.ok,
        total.failures.len()
    );
    ensure!(
        total.failures.is_empty(),
        "{} of {} requests on the stable route failed during reloads; first: {:?}",
        total.failures.len(),
        total.ok + total.failures.len() as u64,
        total.failures.first()
    );
    ensure!(
        total.ok >= 100,
        "too little traffic to mean anything: {} requests",
        total.ok
    );
    ensure!(
        added < RELOAD_BUDGET,
        "the new route answered {added:?} after the write, budget {RELOAD_BUDGET:?}"
    );
    ensure!(
        changed < RELOAD_BUDGET,
        "the changed route answered {changed:?} after the write, budget {RELOAD_BUDGET:?}"
    );
    ensure!(
        removed < RELOAD_BUDGET,
        "the removed route was gone {removed:?} after the delete, budget {RELOAD_BUDGET:?}"
    );
    ensure!(
        gateway.pod(HOST, "/stable", &[]).await? == "stable",
        "the stable route still serves afterwards"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_slice_change_moves_traffic() -> anyhow::Result<()> {
    let _timed_load = crate::fixture::timed_load().await;
    let echoes = Echoes::start(&["old", "new"]).await?;
    let config = ConfigDir::new()?;
    config.write_gateway(None)?;
    config.write(
        "route.yaml",
        &[
            crate::fixture::manifest::service(NS, "web", None),
            http_route("web", &[], vec![rule(vec![], vec![service_ref("web")])]),
        ],
    )?;
    config.write(
        "slice.yaml",
        &[endpoint_slice(NS, "web", "web-1", echoes.addr("old"))],
    )?;
    let gateway = config.start(&[]).await?;
    ensure!(
        gateway.pod(HOST, "/", &[]).await? == "old",
        "the first endpoint serves"
    );
    let generation_before = gateway.status().await?["generation"].as_u64();

    // Only the EndpointSlice changes: its endpoint now has the other echo's address.
    let written = Instant::now();
    gateway.config.write(
        "slice.yaml",
        &[endpoint_slice(NS, "web", "web-1", echoes.addr("new"))],
    )?;
    eventually(Duration::from_secs(10), async || {
        let pod = gateway.pod(HOST, "/", &[]).await?;
        ensure!(pod == "new", "still answered by {pod}");
        Ok(())
    })
    .await?;
    let switched = written.elapsed();

    // Every later request goes to the new endpoint: the old address left the set.
    let old_requests = echoes.server("old").requests();
    for _ in 0..20 {
        let pod = gateway.pod(HOST, "/", &[]).await?;
        ensure!(pod == "new", "a request went to {pod} after the switch");
    }
    ensure!(
        echoes.server("old").requests() == old_requests,
        "the removed endpoint still got traffic"
    );
    ensure!(switched < RELOAD_BUDGET, "the switch took {switched:?}");
    let generation_after = gateway.status().await?["generation"].as_u64();
    ensure!(
        generation_after > generation_before,
        "/status reports the new generation: {generation_before:?} -> {generation_after:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_added_to_an_existing_route_stops_500s() -> anyhow::Result<()> {
    let _timed_load = crate::fixture::timed_load().await;
    // A route first references a Service that does not exist yet (500, BackendNotFound); once
    // the Service and its EndpointSlice appear, the same route serves.
    let echoes = Echoes::start(&["late"]).await?;
    let gateway = TestGateway::start(&[http_route(
        "late",
        &[],
        vec![rule(vec![], vec![service_ref("late")])],
    )])
    .await?;
    ensure!(
        gateway.status_of(HOST, "/").await? == StatusCode::INTERNAL_SERVER_ERROR,
        "a missing Service answers 500"
    );
    gateway.config.write(
        "late.yaml",
        &service_backend(NS, "late", &[echoes.addr("late")]),
    )?;
    eventually(Duration::from_secs(10), async || {
        let pod = gateway.pod(HOST, "/", &[]).await?;
        ensure!(pod == "late", "answered by {pod}");
        Ok(())
    })
    .await?;
    crate::fixture::running::ensure_route_condition(
        &gateway.status().await?,
        "late",
        "ResolvedRefs",
        "True",
        "ResolvedRefs",
    )?;
    Ok(())
}

/// KiB of the gateway's executable resident in its memory (code and constants).
fn executable_resident_kib(pid: u32) -> anyhow::Result<u64> {
    let executable = std::fs::read_link(format!("/proc/{pid}/exe"))?;
    let executable = executable.to_string_lossy();
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps"))?;
    let mut total = 0;
    let mut in_executable = false;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            in_executable = fields.nth(4) == Some(&*executable);
        } else if in_executable && first == "Rss:" {
            total += fields
                .next()
                .and_then(|kib| kib.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok(total)
}

/// Applying a change runs code the request path never does (parsing, compiling); once the
/// config is quiet, that code leaves the gateway's resident set again, as start-up's did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_that_applied_a_change_leaves_the_resident_set_once_quiet() -> anyhow::Result<()> {
    let _timed_load = crate::fixture::timed_load().await;
    let echoes = Echoes::start(&["web"]).await?;
    let config = ConfigDir::new()?;
    config.write_gateway(None)?;
    let gateway = config.start(&[]).await?;
    let pid = gateway.process.pid();

    let routes: Vec<serde_json::Value> = (0..20)
        .flat_map(|i| {
            let name = format!("web{i}");
            [
                crate::fixture::manifest::service(NS, &name, None),
                endpoint_slice(NS, &name, &format!("{name}-1"), echoes.addr("web")),
                http_route(
                    &name,
                    &[],
                    vec![rule(
                        vec![path_match("PathPrefix", &format!("/r{i}"))],
                        vec![service_ref(&name)],
                    )],
                ),
            ]
        })
        .collect();
    gateway.config.write("routes.yaml", &routes)?;
    eventually(Duration::from_secs(10), async || {
        let status = gateway.status_of(HOST, "/r19").await?;
        ensure!(status == StatusCode::OK, "/r19 answers {status}");
        Ok(())
    })
    .await?;
    let applied = executable_resident_kib(pid)?;
    ensure!(applied > 0, "the executable's pages are found in smaps");

    // A second after the last change the code is released; the request path, idle, does not
    // map it back.
    let mut now = applied;
    let deadline = Instant::now() + Duration::from_secs(10);
    while now * 2 > applied && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        now = executable_resident_kib(pid)?;
    }
    ensure!(
        now * 2 <= applied,
        "the executable's resident pages stayed at {now} KiB (after the change: {applied} KiB)"
    );
    Ok(())
}
