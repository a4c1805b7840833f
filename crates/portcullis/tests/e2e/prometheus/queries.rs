//! A real Prometheus scrapes the exercised gateway every second and runs every query of the
//! dashboard through `/api/v1/query`: each must parse; the request rate and latency panels
//! must return data, with every variable at "All" and with one route and backend chosen.

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use serde_json::Value;
use testkit::PrometheusServer;

use super::dashboard::{Dashboard, Query};
use super::traffic::ExercisedGateway;
use crate::fixture::eventually;

/// Panels whose queries must return data after the traffic, not just parse: request rate and
/// latency, by route and by backend.
const PANELS_WITH_DATA: &[&str] = &[
    "Request rate by route",
    "Request rate by backend",
    "Latency p50 / p90 / p99 by route",
    "Latency p50 / p90 / p99 by backend",
    "HTTP server request duration (semantic conventions), with trace exemplars",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_gateway_and_runs_every_dashboard_query() -> anyhow::Result<()> {
    let dashboard = Dashboard::load()?;
    let gateway = ExercisedGateway::start().await?;
    let admin = gateway.gateway.process.admin_addr();
    let prometheus = PrometheusServer::start(&[admin], Duration::from_secs(1)).await?;
    let _steady = gateway.steady_traffic();
    gateway.exercise().await?;
    wait_until_scraped(&prometheus, &dashboard, &admin.to_string()).await?;

    let queries = dashboard.queries()?;
    run_every_query(&prometheus, &dashboard, &queries).await?;
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
    run_main_panels_for(&prometheus, &dashboard, &queries, &route, &backend).await?;
    let exports_exemplars = check_exemplars(&prometheus, &gateway).await?;
    eprintln!(
        "Prometheus (pid {:?}) ran {} dashboard queries, all parsed, {} panels with data (and \
         with route {route:?}, backend {backend:?}); exemplars exported: {exports_exemplars}",
        prometheus.pid(),
        queries.len(),
        PANELS_WITH_DATA.len()
    );
    Ok(())
}

/// Waits until Prometheus has the gateway (`instance`) up, its request counter stored, and
/// enough scrapes after the traffic for the request rate panel to show it.
async fn wait_until_scraped(
    prometheus: &PrometheusServer,
    dashboard: &Dashboard,
    instance: &str,
) -> anyhow::Result<()> {
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

    // Rates need two scrapes after the traffic.
    let request_rate = first_query(dashboard, "Request rate by route")?;
    let request_rate = dashboard.substitute(&request_rate.expr)?;
    eventually(Duration::from_secs(30), async || {
        let answer = prometheus.query(&request_rate).await?;
        ensure!(
            has_positive_value(&answer)?,
            "no request rate yet: {answer}"
        );
        Ok(())
    })
    .await
}

/// Runs every query with every variable at "All": each must parse, and those of
/// [`PANELS_WITH_DATA`] and the variables' must return data. Reports every failure at once.
async fn run_every_query(
    prometheus: &PrometheusServer,
    dashboard: &Dashboard,
    queries: &[Query],
) -> anyhow::Result<()> {
    for panel in PANELS_WITH_DATA {
        first_query(dashboard, panel)?;
    }
    let mut failures = Vec::new();
    for query in queries {
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
    ensure!(
        failures.is_empty(),
        "{} of {} dashboard queries failed in Prometheus:\n{}",
        failures.len(),
        queries.len(),
        failures.join("\n")
    );
    Ok(())
}

/// Runs the queries of [`PANELS_WITH_DATA`] with one route and one backend chosen, as a user
/// picks them from the variables: Grafana escapes them (`rules[0]` has brackets), and the
/// panels must show data of that route and backend only.
async fn run_main_panels_for(
    prometheus: &PrometheusServer,
    dashboard: &Dashboard,
    queries: &[Query],
    route: &str,
    backend: &str,
) -> anyhow::Result<()> {
    for query in queries
        .iter()
        .filter(|query| PANELS_WITH_DATA.contains(&query.panel.as_str()))
    {
        let expr = dashboard
            .substitute_choosing(&query.expr, &[("route", route), ("backend", backend)])?;
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
                route_label.is_none_or(|label| label == route)
                    && metric.get("backend").is_none_or(|label| label == backend),
                "{}: a series of another route or backend: {series}",
                query.location
            );
        }
    }
    Ok(())
}

/// The exemplar query is accepted (exemplar storage is on); once the gateway attaches trace
/// exemplars, Prometheus must have stored them. Returns whether the gateway exports any.
async fn check_exemplars(
    prometheus: &PrometheusServer,
    gateway: &ExercisedGateway,
) -> anyhow::Result<bool> {
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
    Ok(exports_exemplars)
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
