//! The dashboard reading and the name comparison on their own, without a gateway: the
//! comparison must fail on a dashboard naming a metric that does not exist.

use std::collections::BTreeSet;

use anyhow::ensure;
use serde_json::json;

use super::dashboard::{Dashboard, grafana_regex_escape, variable_expression};
use super::scrape::Scrape;
use super::{missing_names, names_by_query};

/// A scrape with a counter, a histogram (OpenMetrics) and a declared family without series.
const SCRAPE: &str = "\
# HELP portcullis_requests Requests.
# TYPE portcullis_requests counter
portcullis_requests_total{route=\"r\",backend=\"b\",code=\"200\"} 3
# HELP portcullis_request_duration_seconds Duration.
# TYPE portcullis_request_duration_seconds histogram
# UNIT portcullis_request_duration_seconds seconds
portcullis_request_duration_seconds_sum{route=\"r\",backend=\"b\"} 0.5
portcullis_request_duration_seconds_count{route=\"r\",backend=\"b\"} 3
portcullis_request_duration_seconds_bucket{le=\"+Inf\",route=\"r\",backend=\"b\"} 3 # {trace_id=\"ab\"} 0.1 1.0
# HELP portcullis_retries Retries.
# TYPE portcullis_retries counter
# HELP portcullis_config_generation Generation.
# TYPE portcullis_config_generation gauge
portcullis_config_generation 4
# EOF
";

/// A dashboard whose panels (one nested in a collapsed row) run `exprs`, with variables
/// `datasource`, `route` (`label_values(<route_source>, route)`).
fn synthetic(exprs: &[&str], route_source: &str) -> Dashboard {
    let targets: Vec<_> = exprs
        .iter()
        .enumerate()
        .map(|(index, expr)| json!({"expr": expr, "refId": format!("Q{index}")}))
        .collect();
    let (first, rest) = targets.split_at(1);
    let text = json!({
        "panels": [
            {"type": "timeseries", "title": "top", "targets": first},
            {"type": "row", "title": "row", "collapsed": true, "panels": [
                {"type": "timeseries", "title": "nested", "targets": rest},
            ]},
        ],
        "annotations": {"list": [{"name": "builtin", "builtIn": 1}]},
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus"},
            {"name": "route", "type": "query",
             "query": {"query": format!("label_values({route_source}, route)"), "refId": "V"}},
        ]},
    })
    .to_string();
    Dashboard::parse(&text).unwrap_or_else(|error| panic!("{error:#}"))
}

#[test]
fn a_dashboard_naming_real_series_has_nothing_missing() -> anyhow::Result<()> {
    let dashboard = synthetic(
        &[
            r#"sum by (route) (rate(portcullis_requests_total{route=~"$route"}[$__rate_interval]))"#,
            r#"histogram_quantile(0.9, sum by (le) (rate(portcullis_request_duration_seconds_bucket[5m])))"#,
            "portcullis_config_generation",
        ],
        r#"portcullis_requests_total{route=~".+"}"#,
    );
    let missing = missing_names(&dashboard, &Scrape::parse(SCRAPE))?;
    ensure!(missing.is_empty(), "{missing:?}");
    Ok(())
}

#[test]
fn a_dashboard_naming_a_metric_that_does_not_exist_fails() -> anyhow::Result<()> {
    let dashboard = synthetic(
        &[
            "rate(portcullis_requests_total[1m])",
            // A typo, a histogram's family name (no sample carries it), a declared family with
            // no series, and the counter's OpenMetrics family name (samples carry `_total`).
            "rate(portcullis_request_total[1m]) + portcullis_request_duration_seconds",
            "rate(portcullis_retries_total[1m]) + portcullis_requests",
        ],
        "portcullis_no_such_metric",
    );
    let missing = missing_names(&dashboard, &Scrape::parse(SCRAPE))?;
    let names: BTreeSet<&str> = missing.keys().map(String::as_str).collect();
    ensure!(
        names
            == BTreeSet::from([
                "portcullis_no_such_metric",
                "portcullis_request_duration_seconds",
                "portcullis_request_total",
                "portcullis_requests",
                "portcullis_retries_total",
            ]),
        "{missing:#?}"
    );
    ensure!(
        missing["portcullis_request_total"] == ["panel \"nested\" target Q1"],
        "the nested panel's query is found and named: {missing:#?}"
    );
    ensure!(
        missing["portcullis_no_such_metric"] == ["variable route"],
        "{missing:#?}"
    );
    Ok(())
}

#[test]
fn a_query_without_a_metric_is_reported() -> anyhow::Result<()> {
    let dashboard = synthetic(&["vector(1)"], "portcullis_config_generation");
    let missing = missing_names(&dashboard, &Scrape::parse(SCRAPE))?;
    ensure!(
        missing
            .get("")
            .is_some_and(|at| at == &["panel \"top\" target Q0"]),
        "{missing:?}"
    );
    Ok(())
}

#[test]
fn the_prometheus_text_format_counts_as_well() {
    let scrape = Scrape::parse(
        "# HELP portcullis_requests_total Requests.\n# TYPE portcullis_requests_total counter\n\
         portcullis_requests_total{code=\"200\"} 1\n",
    );
    assert!(scrape.has_series("portcullis_requests_total"));
    assert!(!scrape.has_series("portcullis_requests"));
}

#[test]
fn samples_without_a_type_are_set_apart() {
    let scrape = Scrape::parse("loose_metric 1\n# TYPE typed gauge\ntyped 2\n");
    assert!(!scrape.has_series("loose_metric"));
    assert_eq!(
        scrape.untyped_names,
        BTreeSet::from(["loose_metric".to_owned()])
    );
}

#[test]
fn variables_are_substituted_for_a_test_run() -> anyhow::Result<()> {
    let dashboard = synthetic(&["up"], "up");
    ensure!(
        dashboard.substitute(
            r#"rate(a{route=~"$route", x=~"${route:regex}"}[$__rate_interval]) + b{y=~"[[route]]"}"#
        )? == r#"rate(a{route=~".*", x=~".*"}[1m]) + b{y=~".*"}"#
    );
    ensure!(
        dashboard.substitute(r#"label_replace(a, "d", "$1", "s", "(.*)")"#)?
            == r#"label_replace(a, "d", "$1", "s", "(.*)")"#
    );
    ensure!(
        dashboard.substitute("a{x=~\"$undefined\"}").is_err(),
        "an undefined variable is an error"
    );
    Ok(())
}

#[test]
fn chosen_values_are_escaped_as_grafana_escapes_them() -> anyhow::Result<()> {
    ensure!(grafana_regex_escape("HTTPRoute a/b rules[0]") == r"HTTPRoute a/b rules\\[0\\]");
    ensure!(grafana_regex_escape(r"a.b\c") == r"a\\.b\\\\c");
    let dashboard = synthetic(&["up"], "up");
    ensure!(
        dashboard.substitute_choosing(
            r#"a{route=~"$route"}[$__rate_interval]"#,
            &[("route", "HTTPRoute a/b rules[0]")]
        )? == r#"a{route=~"HTTPRoute a/b rules\\[0\\]"}[1m]"#
    );
    Ok(())
}

#[test]
fn variable_queries_give_their_selector() -> anyhow::Result<()> {
    ensure!(
        variable_expression(
            r#"label_values(portcullis_requests_total{instance=~"$instance"}, route)"#
        )? == r#"portcullis_requests_total{instance=~"$instance"}"#
    );
    ensure!(variable_expression("query_result(sum by (route) (up))")? == "sum by (route) (up)");
    ensure!(variable_expression("label_values(route)").is_err());
    ensure!(variable_expression("label_names()").is_err());
    Ok(())
}

/// The shipped dashboard imports cleanly: schema version, a Prometheus data source variable
/// that every panel and query uses, unique panel ids, and queries the extractor can read.
#[test]
fn the_shipped_dashboard_is_importable() -> anyhow::Result<()> {
    let dashboard = Dashboard::load()?;
    let json = &dashboard.json;
    ensure!(
        json["schemaVersion"]
            .as_u64()
            .is_some_and(|version| version >= 36)
    );
    ensure!(json["uid"].is_string() && json["title"] == "Portcullis");
    let variables = json["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ensure!(
        variables.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "no Prometheus data source variable"
    );
    for name in ["route", "backend"] {
        ensure!(
            variables
                .iter()
                .any(|v| v["name"] == name && v["type"] == "query"),
            "no {name} variable"
        );
    }
    // The string form (`label_values(...)`) is read by every Grafana version; the query
    // editor's object form is rebuilt from its `qryType`, `metric` and `label` fields, and a
    // `{"query": ...}` object without them queries `label_values(undefined)`.
    for variable in variables.iter().filter(|v| v["type"] == "query") {
        ensure!(
            variable["query"].is_string() && variable["definition"] == variable["query"],
            "variable {} does not have its query as a string: {variable}",
            variable["name"]
        );
    }
    let mut ids = BTreeSet::new();
    let mut stack: Vec<&serde_json::Value> =
        json["panels"].as_array().into_iter().flatten().collect();
    let mut panels = 0;
    while let Some(panel) = stack.pop() {
        panels += 1;
        let id = panel["id"].as_u64();
        ensure!(
            id.is_some_and(|id| ids.insert(id)),
            "duplicate or missing id: {panel}"
        );
        ensure!(
            panel["gridPos"]["w"].is_u64(),
            "no gridPos: {}",
            panel["title"]
        );
        if panel["type"] != "row" {
            ensure!(
                panel["datasource"]["uid"] == "${datasource}",
                "panel {} does not use ${{datasource}}",
                panel["title"]
            );
            for target in panel["targets"].as_array().into_iter().flatten() {
                ensure!(
                    target["datasource"]["uid"] == "${datasource}",
                    "a target of {} does not use ${{datasource}}",
                    panel["title"]
                );
            }
        }
        stack.extend(panel["panels"].as_array().into_iter().flatten());
    }
    let queries = names_by_query(&dashboard)?;
    ensure!(
        queries.iter().all(|(_, names)| !names.is_empty()),
        "a query names no metric"
    );
    eprintln!("{panels} panels, {} queries", queries.len());
    Ok(())
}
