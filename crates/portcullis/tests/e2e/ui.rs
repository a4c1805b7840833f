//! The dashboard at `/ui` on the admin port, loaded in real headless Chromium against a
//! running gateway with traffic: its tables show the listeners, routes, backends and endpoints
//! of the config, its plots have the sampled traffic and grow as traffic goes on, its header and
//! reload table show a rejected reload, and a screenshot is written.
//!
//! Set `PORTCULLIS_UPDATE_SCREENSHOT=1` to copy the screenshot to `docs/ui.png` (the README's).

mod chromium;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, ensure};
use http::StatusCode;
use tokio::task::JoinHandle;

use self::chromium::{Chromium, attribute, element, number, text};
use crate::fixture::eventually;
use crate::fixture::manifest::{NS, http_route, path_match, rule, service_backend, service_ref};
use crate::fixture::running::{ConfigDir, Echoes, HOST, TestGateway};

/// The screenshot's window, as the README shows it.
const SCREENSHOT_SIZE: (u32, u32) = (1400, 1000);

/// Busy seconds sampled before the screenshot is taken.
const SCREENSHOT_SAMPLES: usize = 15;

/// Echoes `shop` and `payments` behind routes `storefront` (`/shop`) and `payments`
/// (`/status`, which the echo answers with the status the path names), and route `legacy`
/// whose Service does not exist.
async fn serve() -> anyhow::Result<(Echoes, TestGateway)> {
    let echoes = Echoes::start(&["shop", "payments"]).await?;
    let config = ConfigDir::new()?;
    config.write_gateway(None)?;
    let mut documents = service_backend(NS, "shop", &[echoes.addr("shop")]);
    documents.extend(service_backend(NS, "payments", &[echoes.addr("payments")]));
    documents.push(http_route(
        "storefront",
        &[],
        vec![rule(
            vec![path_match("PathPrefix", "/shop")],
            vec![service_ref("shop")],
        )],
    ));
    documents.push(http_route(
        "payments",
        &[],
        vec![rule(
            vec![path_match("PathPrefix", "/status")],
            vec![service_ref("payments")],
        )],
    ));
    // A route whose Service does not exist: the dashboard lists it first, with its problem.
    documents.push(http_route(
        "legacy",
        &[],
        vec![rule(
            vec![path_match("PathPrefix", "/legacy")],
            vec![service_ref("retired")],
        )],
    ));
    config.write("config.yaml", &documents)?;
    let gateway = config.start(&[]).await?;
    Ok((echoes, gateway))
}

/// Requests in a loop until stopped: per round two 200s from the shop, a 200 and a 503 from
/// payments (one answer in four is a 5xx), then a pause of varying length. Fails on the first answer that is
/// not the expected one.
struct Traffic {
    stop: Arc<AtomicBool>,
    task: JoinHandle<anyhow::Result<u64>>,
}

impl Traffic {
    fn start(gateway: &TestGateway) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let client = testkit::HttpClient::new();
        let listener = gateway.listener();
        let stopping = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let mut sent = 0;
            let mut round: u64 = 0;
            while !stopping.load(Ordering::Relaxed) {
                for (path, expected) in [
                    ("/shop/cart", StatusCode::OK),
                    ("/shop/items?page=2", StatusCode::OK),
                    ("/status/200", StatusCode::OK),
                    ("/status/503", StatusCode::SERVICE_UNAVAILABLE),
                ] {
                    let response = client.get(listener, HOST, path, &[]).await?;
                    ensure!(
                        response.status == expected,
                        "GET {path} answered {}",
                        response.status
                    );
                    sent += 1;
                }
                // The pause steps between 5 and 35 ms every 25 rounds, so the rate plot moves.
                round += 1;
                let pause = 5 + 10 * ((round / 25) % 4);
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            Ok(sent)
        });
        Traffic { stop, task }
    }

    /// Stops the loop and returns how many requests it sent.
    async fn stop(self) -> anyhow::Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.context("the traffic task panicked")?
    }
}

/// Waits until the gateway has sampled at least `count` seconds with traffic.
async fn wait_for_samples(gateway: &TestGateway, count: usize) -> anyhow::Result<()> {
    eventually(Duration::from_secs(20), async || {
        let live = gateway.admin_json("/ui/api/live").await?;
        let busy = live["samples"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|sample| sample["requests"].as_u64().is_some_and(|n| n > 0))
            .count();
        ensure!(busy >= count, "{busy} of {count} busy samples so far");
        Ok(())
    })
    .await
}

/// What one DOM dump of the dashboard shows about traffic.
#[derive(Debug)]
struct Plotted {
    /// Samples drawn in the request-rate chart.
    points: f64,
    /// The header's "requests served".
    requests: f64,
    /// The header's "5xx served".
    errors: f64,
}

/// Reads the plots and the header totals, checking that every series has points.
fn plotted(dom: &str) -> anyhow::Result<Plotted> {
    let points = number(element(dom, "id=\"chart-rate\"")?, "data-points")?;
    for (chart, series) in [
        ("chart-rate", "req/s"),
        ("chart-errors", "5xx"),
        ("chart-latency", "p50"),
        ("chart-latency", "p90"),
        ("chart-latency", "p99"),
    ] {
        let chart_element = element(dom, &format!("id=\"{chart}\""))?;
        let line = element(chart_element, &format!("data-series=\"{series}\""))?;
        let drawn = number(line, "data-points")?;
        ensure!(drawn > 0.0, "{chart} draws no {series} point: {line}");
        ensure!(
            attribute(line, "d")?.starts_with('M'),
            "{chart} {series} has no path: {line}"
        );
    }
    Ok(Plotted {
        points,
        requests: number(element(dom, "id=\"total-requests\"")?, "data-value")?,
        errors: number(element(dom, "id=\"total-errors\"")?, "data-value")?,
    })
}

/// The tables: listener `http` with its conditions, both routes accepted, each echo as a
/// healthy endpoint of a backend whose breaker is closed, and the generation of `/status`.
fn ensure_tables(dom: &str, echoes: &Echoes, generation: u64) -> anyhow::Result<()> {
    let listener = element(dom, "data-listener=\"Gateway e2e/gw listener http\"")?;
    for condition in ["Accepted", "Programmed", "ResolvedRefs"] {
        ensure!(
            listener.contains(&format!(
                "data-condition=\"{condition}\" data-status=\"True\""
            )),
            "listener http lacks {condition}=True: {listener}"
        );
    }
    ensure!(
        text(element(listener, "class=\"num\"")?) == "3",
        "three routes attached to listener http: {listener}"
    );
    for route in ["storefront", "payments"] {
        let row = element(dom, &format!("data-route=\"HTTPRoute e2e/{route}\""))?;
        for condition in ["Accepted", "ResolvedRefs"] {
            ensure!(
                row.contains(&format!(
                    "data-condition=\"{condition}\" data-status=\"True\""
                )),
                "route {route} lacks {condition}=True: {row}"
            );
        }
        ensure!(
            text(row).contains("Gateway e2e/gw"),
            "route {route} names its parent: {row}"
        );
    }
    // The route with a problem comes first, its problem in the row and in the problem list.
    let routes = element(dom, "id=\"routes\"")?;
    let first = element(routes, "data-route=")?;
    ensure!(
        attribute(first, "data-route")? == "HTTPRoute e2e/legacy"
            && first.contains("data-condition=\"ResolvedRefs\" data-status=\"False\"")
            && text(first).contains("retired"),
        "the broken route is listed first, with ResolvedRefs=False and its problem: {first}"
    );
    let problems = element(dom, "id=\"problems-card\"")?;
    let opening_tag = &problems[..problems.find('>').unwrap_or(problems.len())];
    ensure!(
        !opening_tag.contains(" hidden") && text(problems).contains("retired"),
        "the problem list is shown and names the missing Service: {problems}"
    );
    for name in ["shop", "payments"] {
        let backend = element(dom, &format!("data-backend=\"Service e2e/{name}:80\""))?;
        ensure!(
            attribute(backend, "data-breaker")? == "closed",
            "backend {name}'s breaker: {backend}"
        );
        let address = echoes.addr(name).to_string();
        let endpoint = element(dom, &format!("data-endpoint=\"{address}\""))?;
        ensure!(
            attribute(endpoint, "data-health")? == "healthy",
            "endpoint {address} of {name}: {endpoint}"
        );
        let shown = text(endpoint);
        ensure!(
            shown.contains(" ms") || shown.contains(" s"),
            "endpoint {address} shows its EWMA latency: {endpoint}"
        );
    }
    let shown = text(element(dom, "id=\"generation\"")?);
    ensure!(
        shown == generation.to_string(),
        "the header shows generation {shown:?}, /status has {generation}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_gateway_and_its_traffic_in_chromium() -> anyhow::Result<()> {
    let chromium = Chromium::find()?;
    let (echoes, gateway) = serve().await?;
    let url = format!("http://{}/ui", gateway.process.admin_addr());
    let traffic = Traffic::start(&gateway);
    wait_for_samples(&gateway, 3).await?;

    let first = chromium.dump_dom(&url).await?;
    let refreshes = number(element(&first, "<body")?, "data-refreshes")?;
    ensure!(
        refreshes >= 3.0,
        "the page refreshed itself {refreshes} times in its virtual-time budget"
    );
    let generation = gateway.status().await?["generation"]
        .as_u64()
        .context("/status has a generation")?;
    ensure_tables(&first, &echoes, generation)?;
    let before = plotted(&first)?;
    ensure!(
        before.points >= 3.0 && before.requests > 0.0 && before.errors > 0.0,
        "the first load plots traffic: {before:?}"
    );
    let errors_now = text(element(&first, "id=\"now-errors\"")?);
    ensure!(
        errors_now.ends_with("% 5xx") && !errors_now.starts_with("0.0"),
        "the error plot's figure shows the 5xx share: {errors_now:?}"
    );
    let reload = element(&first, &format!("data-generation=\"{generation}\""))?;
    ensure!(
        text(reload).contains("1 problem"),
        "the reload table has generation {generation} with its problem: {reload}"
    );

    // Two more busy seconds: the next load plots more samples and counts more requests.
    let sampled = before.points as usize;
    eventually(Duration::from_secs(20), async || {
        let live = gateway.admin_json("/ui/api/live").await?;
        let now = live["samples"].as_array().map_or(0, Vec::len);
        ensure!(
            now >= sampled + 2,
            "{now} samples, waiting for {}",
            sampled + 2
        );
        Ok(())
    })
    .await?;
    let second = chromium.dump_dom(&url).await?;
    let after = plotted(&second)?;
    ensure!(
        after.points > before.points
            && after.requests > before.requests
            && after.errors > before.errors,
        "the plots and totals grew: {before:?} then {after:?}"
    );

    // The screenshot (the README's) with a quarter of a minute of traffic plotted.
    wait_for_samples(&gateway, SCREENSHOT_SAMPLES).await?;
    let screenshot = chromium
        .screenshot(&url, SCREENSHOT_SIZE.0, SCREENSHOT_SIZE.1)
        .await?;
    let png = std::fs::read(&screenshot)?;
    // The PNG signature, then the IHDR chunk: width and height, big-endian, at bytes 16 and 20.
    let dimension = |at: usize| {
        png.get(at..at + 4)
            .and_then(|bytes| bytes.try_into().ok())
            .map(u32::from_be_bytes)
    };
    ensure!(
        png.starts_with(b"\x89PNG\r\n\x1a\n")
            && (dimension(16), dimension(20)) == (Some(SCREENSHOT_SIZE.0), Some(SCREENSHOT_SIZE.1))
            && png.len() > 30_000,
        "the screenshot is a {SCREENSHOT_SIZE:?} PNG with content ({} bytes, {:?}×{:?})",
        png.len(),
        dimension(16),
        dimension(20)
    );
    if std::env::var_os("PORTCULLIS_UPDATE_SCREENSHOT").is_some_and(|v| v == "1") {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ui.png");
        std::fs::copy(&screenshot, &docs)
            .with_context(|| format!("copying the screenshot to {}", docs.display()))?;
    }
    let sent = traffic.stop().await?;
    ensure!(sent > 0, "traffic was sent");

    // A rejected file: the header and the reload table say so, with the file's error.
    gateway
        .config
        .write_text("broken.yaml", "kind: HTTPRoute\n  : not yaml: [\n")?;
    let rejected = eventually(Duration::from_secs(10), async || {
        let live = gateway.admin_json("/ui/api/live").await?;
        let last = live["reloads"]
            .as_array()
            .and_then(|reloads| reloads.last())
            .cloned()
            .context("no reload")?;
        ensure!(last["outcome"] == "rejected", "last reload: {last}");
        Ok(last)
    })
    .await?;
    let third = chromium.dump_dom(&url).await?;
    let header = element(&third, "id=\"last-reload\"")?;
    ensure!(
        attribute(header, "data-outcome")? == "rejected" && text(header).contains("file rejected"),
        "the header shows the rejected reload: {header}"
    );
    let row = element(
        &third,
        &format!("data-generation=\"{}\"", rejected["generation"]),
    )?;
    ensure!(
        text(row).contains("broken.yaml"),
        "the reload table quotes the rejected file: {row}"
    );
    Ok(())
}
