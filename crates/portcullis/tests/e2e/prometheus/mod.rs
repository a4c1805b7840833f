//! What Prometheus and Grafana see (issue 14): `promtool check metrics` finds no problem in a
//! `/metrics` scrape, a real Prometheus scrapes the gateway and runs every query of the Grafana
//! dashboard in `deploy/grafana/portcullis.json`, every metric name the dashboard uses is a
//! series the gateway exports, and the trace exemplars of the semantic-convention histogram are
//! stored by Prometheus ([`exemplars`]).
//!
//! The gateway is first put through everything the dashboard shows ([`traffic`]): retries, a
//! breaker trip, an ejection, an unhealthy endpoint, a rejected reload, auth and rate-limit
//! decisions, connection limits. The names are read from the dashboard with
//! [`testkit::promql::metric_names`] and compared with the scrape by [`scrape::Scrape`].
//!
//! `prometheus` and `promtool` come from the Debian package `prometheus` (`scripts/test`
//! installs it); the tests fail when they are missing.

mod dashboard;
mod exemplars;
mod scrape;
mod tests;
mod traffic;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use serde_json::Value;
use testkit::PrometheusServer;

use crate::fixture::eventually;
use dashboard::{Dashboard, Query};
use scrape::Scrape;
use traffic::ExercisedGateway;

/// Panels whose queries must return data after the traffic, not just parse: request rate and
/// latency, by route and by backend.
const PANELS_WITH_DATA: &[&str] = &[
    "Request rate by route",
    "Request rate by backend",
    "Latency p50 / p90 / p99 by route",
    "Latency p50 / p90 / p99 by backend",
    "HTTP server request duration (semantic conventions), with trace exemplars",
];

/// The metric names each query of `dashboard` reads, by query.
fn names_by_query(dashboard: &Dashboard) -> anyhow::Result<Vec<(Query, BTreeSet<String>)>> {
    dashboard
        .queries()?
        .into_iter()
        .map(|query| {
            let names = testkit::promql::metric_names(&query.expr)
                .with_context(|| format!("{}: {}", query.location, query.expr))?;
            Ok((query, names))
        })
        .collect()
}

/// Every name the dashboard uses that `scrape` has no series for, with the queries using it.
/// A query that names no metric at all is reported too (under the empty name): it cannot be
/// checked against anything.
fn missing_names(
    dashboard: &Dashboard,
    scrape: &Scrape,
) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let mut missing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (query, names) in names_by_query(dashboard)? {
        if names.is_empty() {
            missing
                .entry(String::new())
                .or_default()
                .push(query.location.clone());
        }
        for name in names.into_iter().filter(|name| !scrape.has_series(name)) {
            missing
                .entry(name)
                .or_default()
                .push(query.location.clone());
        }
    }
    Ok(missing)
}

/// Runs `promtool check metrics` on `text`: its output (stdout and stderr) and whether it
/// exited 0.
fn promtool_check_metrics(text: &str) -> anyhow::Result<(bool, String)> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context(
            "running promtool (Debian package `prometheus`: `apt-get install -y prometheus`, \
             which scripts/test does)",
        )?;
    let mut stdin = child.stdin.take().context("promtool's stdin")?;
    stdin.write_all(text.as_bytes())?;
    drop(stdin);
    let output = child.wait_with_output()?;
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((output.status.success(), printed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_names_a_series_the_gateway_exports() -> anyhow::Result<()> {
    let dashboard = Dashboard::load()?;
    let gateway = ExercisedGateway::start().await?;
    gateway.exercise().await?;
    let openmetrics = gateway.gateway.openmetrics().await?;
    let scrape = Scrape::parse(&openmetrics);
    ensure!(
        scrape.untyped_names.is_empty(),
        "samples without a # TYPE family: {:?}",
        scrape.untyped_names
    );
    let missing = missing_names(&dashboard, &scrape)?;
    ensure!(
        missing.is_empty(),
        "the dashboard names metrics the gateway does not export (name: queries): \
         {missing:#?}\nscrape:\n{openmetrics}"
    );
    let used: BTreeSet<String> = names_by_query(&dashboard)?
        .into_iter()
        .flat_map(|(_, names)| names)
        .collect();
    eprintln!(
        "{} dashboard queries use {} metric names, all exported: {used:?}",
        dashboard.queries()?.len(),
        used.len()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_check_metrics_finds_no_problem_in_a_scrape() -> anyhow::Result<()> {
    // promtool does find problems: a counter without `_total` and a metric without help.
    let (clean, printed) = promtool_check_metrics(
        "# HELP requests Requests.\n# TYPE requests counter\nrequests 1\n\
         # TYPE no_help gauge\nno_help 1\n",
    )?;
    ensure!(
        !clean && printed.contains("_total") && printed.contains("no help"),
        "promtool accepted known problems: {printed}"
    );

    let gateway = ExercisedGateway::start().await?;
    gateway.exercise().await?;
    let text = gateway.scrape_text().await?;
    let (clean, printed) = promtool_check_metrics(&text)?;
    ensure!(
        clean && printed.trim().is_empty(),
        "promtool check metrics found problems:\n{printed}\nscrape:\n{text}"
    );
    // The scrape checked is the whole surface: every family the OpenMetrics scrape has.
    let openmetrics = Scrape::parse(&gateway.gateway.openmetrics().await?);
    let linted = Scrape::parse(&text);
    for name in &openmetrics.series_names {
        ensure!(
            linted.has_series(name),
            "{name} is in the OpenMetrics scrape but not in the one promtool checked"
        );
    }
    eprintln!(
        "promtool check metrics: no problem in {} families ({} sample names)",
        linted.families.len(),
        linted.series_names.len()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_gateway_and_runs_every_dashboard_query() -> anyhow::Result<()> {
    let dashboard = Dashboard::load()?;
    let gateway = ExercisedGateway::start().await?;
    let admin = gateway.gateway.process.admin_addr();
    let prometheus = PrometheusServer::start(&[admin], Duration::from_secs(1)).await?;
    let _steady = gateway.steady_traffic();
    gateway.exercise().await?;

    // Scraped and up: the target's `up` is 1 and the request counter is stored.
    let instance = admin.to_string();
    eventually(Duration::from_secs(30), async || {
        let up = prometheus
            .query(&format!(
                "up{{job=\"portcullis\", instance=\"{instance}\"}} == 1"
            ))
            .await?;
        ensure!(!results(&up)?.is_empty(), "not up yet: {up}");
        let requests = prometheus.query("portcullis_requests_total").await?;
        ensure!(
            !results(&requests)?.is_empty(),
            "no requests yet: {requests}"
        );
        Ok(())
    })
    .await
    .with_context(|| format!("Prometheus log:\n{}", prometheus.log()))?;

    // Rates need two scrapes after the traffic; wait until the request rate shows it.
    let request_rate = first_query(&dashboard, "Request rate by route")?;
    let request_rate = dashboard.substitute(&request_rate.expr)?;
    eventually(Duration::from_secs(30), async || {
        let answer = prometheus.query(&request_rate).await?;
        ensure!(
            has_positive_value(&answer)?,
            "no request rate yet: {answer}"
        );
        Ok(())
    })
    .await?;

    let mut failures = Vec::new();
    let queries = dashboard.queries()?;
    for query in &queries {
        let expr = dashboard.substitute(&query.expr)?;
        let answer = prometheus.query(&expr).await?;
        if answer["status"] != "success" {
            failures.push(format!("{}: {expr}\n  {answer}", query.location));
            continue;
        }
        let must_have_data = PANELS_WITH_DATA.contains(&query.panel.as_str())
            || query.location.starts_with("variable ");
        if must_have_data && !has_finite_value(&answer)? {
            failures.push(format!("{}: no data: {expr}\n  {answer}", query.location));
        }
    }
    for panel in PANELS_WITH_DATA {
        first_query(&dashboard, panel)?;
    }
    ensure!(
        failures.is_empty(),
        "{} of {} dashboard queries failed in Prometheus:\n{}",
        failures.len(),
        queries.len(),
        failures.join("\n")
    );

    // One route and one backend chosen, as a user picks them from the variables' values:
    // Grafana escapes them (`rules[0]` has brackets), and the main panels show that route and
    // backend only.
    let route = label_value_of(
        &prometheus,
        &dashboard,
        "variable route",
        "route",
        "e2e/shop",
    )
    .await?;
    let backend = label_value_of(
        &prometheus,
        &dashboard,
        "variable backend",
        "backend",
        "e2e/shop",
    )
    .await?;
    for query in queries
        .iter()
        .filter(|query| PANELS_WITH_DATA.contains(&query.panel.as_str()))
    {
        let expr = dashboard.substitute_choosing(
            &query.expr,
            &[("route", route.as_str()), ("backend", backend.as_str())],
        )?;
        let answer = prometheus.query(&expr).await?;
        ensure!(
            has_finite_value(&answer)?,
            "{} with route {route:?} and backend {backend:?}: no data: {expr}\n{answer}",
            query.location
        );
        for series in results(&answer)? {
            let metric = &series["metric"];
            let route_label = metric.get("route").or_else(|| metric.get("http_route"));
            ensure!(
                route_label.is_none_or(|label| *label == route.as_str())
                    && metric
                        .get("backend")
                        .is_none_or(|label| *label == backend.as_str()),
                "{}: a series of another route or backend: {series}",
                query.location
            );
        }
    }

    // Exemplars: the query is accepted (exemplar storage is on); once the gateway attaches
    // trace exemplars, Prometheus must have stored them.
    let exemplars = prometheus
        .query_exemplars(
            "http_server_request_duration_seconds_bucket",
            Duration::from_secs(600),
        )
        .await?;
    ensure!(
        exemplars["status"] == "success",
        "exemplar query: {exemplars}"
    );
    let exports_exemplars = gateway
        .gateway
        .openmetrics()
        .await?
        .contains("# {trace_id=");
    if exports_exemplars {
        ensure!(
            exemplars["data"]
                .as_array()
                .is_some_and(|data| !data.is_empty()),
            "the gateway exports exemplars but Prometheus stored none: {exemplars}"
        );
    }
    eprintln!(
        "Prometheus (pid {:?}) ran {} dashboard queries, all parsed, {} panels with data; \
         exemplars exported: {exports_exemplars}",
        prometheus.pid(),
        queries.len(),
        PANELS_WITH_DATA.len()
    );
    Ok(())
}

/// The value of `label` that contains `part`, among the series of the variable query at
/// `location` (what Grafana offers in that variable's list).
async fn label_value_of(
    prometheus: &PrometheusServer,
    dashboard: &Dashboard,
    location: &str,
    label: &str,
    part: &str,
) -> anyhow::Result<String> {
    let query = dashboard
        .queries()?
        .into_iter()
        .find(|query| query.location == location)
        .with_context(|| format!("the dashboard has no {location}"))?;
    let answer = prometheus
        .query(&dashboard.substitute(&query.expr)?)
        .await?;
    results(&answer)?
        .iter()
        .filter_map(|series| series["metric"][label].as_str())
        .find(|value| value.contains(part))
        .map(str::to_owned)
        .with_context(|| format!("no {label} containing {part:?} in {answer}"))
}

/// The first query of panel `title`.
fn first_query(dashboard: &Dashboard, title: &str) -> anyhow::Result<Query> {
    dashboard
        .queries()?
        .into_iter()
        .find(|query| query.panel == title)
        .with_context(|| format!("the dashboard has no panel {title:?}"))
}

/// The `data.result` of a successful instant query.
fn results(answer: &Value) -> anyhow::Result<&Vec<Value>> {
    if answer["status"] != "success" {
        bail!("query failed: {answer}");
    }
    answer["data"]["result"]
        .as_array()
        .with_context(|| format!("no result array: {answer}"))
}

/// The values of an instant vector (or scalar) answer.
fn values(answer: &Value) -> anyhow::Result<Vec<f64>> {
    if answer["data"]["resultType"] == "scalar" {
        let value = answer["data"]["result"][1].as_str().unwrap_or("NaN");
        return Ok(vec![value.parse().unwrap_or(f64::NAN)]);
    }
    Ok(results(answer)?
        .iter()
        .filter_map(|series| series["value"][1].as_str())
        .map(|value| value.parse().unwrap_or(f64::NAN))
        .collect())
}

/// Whether some series has a finite value (a histogram quantile over no observations is NaN).
fn has_finite_value(answer: &Value) -> anyhow::Result<bool> {
    Ok(values(answer)?.iter().any(|value| value.is_finite()))
}

/// Whether some series has a value above zero.
fn has_positive_value(answer: &Value) -> anyhow::Result<bool> {
    Ok(values(answer)?.iter().any(|value| *value > 0.0))
}
