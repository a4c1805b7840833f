//! What Prometheus and Grafana see (issue 14): `promtool check metrics` finds no problem in a
//! `/metrics` scrape, a real Prometheus scrapes the gateway and runs every query of the Grafana
//! dashboard in `deploy/grafana/portcullis.json`, every metric name the dashboard uses is a
//! series the gateway exports, and the trace exemplars of the semantic-convention histogram are
//! stored by Prometheus ([`exemplars`]). The Prometheus run is in [`queries`].
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
mod queries;
mod scrape;
mod tests;
mod traffic;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{Context, ensure};

use dashboard::{Dashboard, Query};
use scrape::Scrape;
use traffic::ExercisedGateway;

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
