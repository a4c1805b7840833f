//! What an operator sees: the JSON access log on stdout (`--access-log json|off`) and the admin
//! endpoints `/metrics`, `/config`, `/endpoints`, `/healthz` and `/ready`, after real traffic.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, ensure};
use http::StatusCode;
use serde_json::Value;
use testkit::{ClosedPort, reserve_closed_port};

use crate::fixture::eventually;
use crate::fixture::manifest::{
    NS, backend, backend_ref, http_route, path_match, rule, service_backend, service_ref,
};
use crate::fixture::running::{ConfigDir, Echoes, HOST, TestGateway};

/// The rule label the proxy reports for route `observed`'s first rule.
const ROUTE_LABEL: &str = "HTTPRoute e2e/observed rules[0]";

/// The backend label of Service `a`.
const BACKEND_LABEL: &str = "Service e2e/a:80";

/// Echo `a`, route `observed` (`/app` to Service `a`, `/direct` to Backend `direct`, `/down` to a
/// Service whose endpoint refuses connections), and a gateway run with `args`.
async fn serve(args: &[&str]) -> anyhow::Result<(Echoes, TestGateway, ClosedPort)> {
    let echoes = Echoes::start(&["a", "direct"]).await?;
    let config = ConfigDir::new()?;
    config.write_gateway(None)?;
    let mut documents = service_backend(NS, "a", &[echoes.addr("a")]);
    let down = reserve_closed_port();
    documents.extend(service_backend(NS, "down", &[down.addr()]));
    documents.push(backend(NS, "direct", &[(echoes.addr("direct"), 1)]));
    documents.push(http_route(
        "observed",
        &[],
        vec![
            rule(
                vec![path_match("PathPrefix", "/app")],
                vec![service_ref("a")],
            ),
            rule(
                vec![path_match("PathPrefix", "/direct")],
                vec![backend_ref("direct")],
            ),
            rule(
                vec![path_match("PathPrefix", "/down")],
                vec![service_ref("down")],
            ),
        ],
    ));
    config.write("config.yaml", &documents)?;
    let gateway = config.start(args).await?;
    Ok((echoes, gateway, down))
}

/// Two requests to `/app` (200) and one that matches no route (404).
async fn send_traffic(gateway: &TestGateway) -> anyhow::Result<()> {
    for path in ["/app/one", "/app/two?x=1"] {
        let status = gateway.status_of(HOST, path).await?;
        ensure!(status == StatusCode::OK, "GET {path} answered {status}");
    }
    let status = gateway.status_of(HOST, "/nowhere").await?;
    ensure!(
        status == StatusCode::NOT_FOUND,
        "GET /nowhere answered {status}"
    );
    Ok(())
}

/// The access log lines on stdout so far, parsed.
fn access_log(gateway: &TestGateway) -> anyhow::Result<Vec<Value>> {
    gateway
        .process
        .stdout_text()
        .lines()
        .map(|line| {
            serde_json::from_str(line).with_context(|| format!("not a JSON line: {line:?}"))
        })
        .collect()
}

/// Waits until the access log has `count` lines.
async fn wait_for_log_lines(gateway: &TestGateway, count: usize) -> anyhow::Result<Vec<Value>> {
    eventually(Duration::from_secs(10), async || {
        let lines = access_log(gateway)?;
        ensure!(
            lines.len() >= count,
            "{} of {count} access log lines so far",
            lines.len()
        );
        Ok(lines)
    })
    .await
}

/// Series of `metric` in Prometheus text, as (labels, value).
fn series(metrics: &str, metric: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    metrics
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(metric)?.strip_prefix('{')?;
            let (labels, value) = rest.rsplit_once("} ")?;
            Some((parse_labels(labels), value.trim().parse().ok()?))
        })
        .collect()
}

/// Parses `a="x",b="y"` (values may contain escaped quotes and commas).
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((name, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((index, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(if escaped == 'n' { '\n' } else { escaped });
                    }
                }
                '"' => {
                    end = index + 1;
                    break;
                }
                other => value.push(other),
            }
        }
        labels.insert(name.trim_start_matches(',').to_owned(), value);
        rest = &after[end..];
    }
    labels
}

/// The value of `portcullis_requests_total` for one (route, backend, code).
fn requests_total(metrics: &str, route: &str, backend: &str, code: &str) -> Option<f64> {
    series(metrics, "portcullis_requests_total")
        .into_iter()
        .find(|(labels, _)| {
            labels.get("route").map(String::as_str) == Some(route)
                && labels.get("backend").map(String::as_str) == Some(backend)
                && labels.get("code").map(String::as_str) == Some(code)
        })
        .map(|(_, value)| value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_json_writes_one_line_per_request() -> anyhow::Result<()> {
    let (echoes, gateway, _down) = serve(&["--access-log", "json"]).await?;
    send_traffic(&gateway).await?;
    let lines = wait_for_log_lines(&gateway, 3).await?;
    ensure!(
        lines.len() == 3,
        "three requests, {} lines: {lines:?}",
        lines.len()
    );

    let line_for = |path: &str| {
        lines
            .iter()
            .find(|line| line["path"] == path)
            .with_context(|| format!("no access log line for {path}: {lines:?}"))
    };
    let endpoint = echoes.addr("a").to_string();
    for path in ["/app/one", "/app/two?x=1"] {
        let line = line_for(path)?;
        ensure!(line["status"] == 200, "status: {line}");
        ensure!(line["route"] == ROUTE_LABEL, "route: {line}");
        ensure!(line["backend"] == BACKEND_LABEL, "backend: {line}");
        ensure!(
            line["endpoint"] == endpoint.as_str(),
            "endpoint {endpoint}: {line}"
        );
        ensure!(
            line["method"] == "GET" && line["host"] == HOST,
            "method and host: {line}"
        );
        ensure!(line["error"].is_null(), "no error: {line}");
        ensure!(
            line["bytes_sent"].as_u64().is_some_and(|sent| sent > 0),
            "bytes_sent: {line}"
        );
    }
    let not_found = line_for("/nowhere")?;
    ensure!(not_found["status"] == 404, "status: {not_found}");
    ensure!(
        not_found["route"].is_null()
            && not_found["backend"].is_null()
            && not_found["endpoint"].is_null(),
        "a 404 has no route, backend or endpoint: {not_found}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_off_writes_nothing() -> anyhow::Result<()> {
    let (_quiet_echoes, quiet, _down) = serve(&["--access-log", "off"]).await?;
    send_traffic(&quiet).await?;
    // Same traffic through a gateway that logs: once its lines are out, the quiet one has had
    // as long to write any.
    let (_echoes, logging, _down) = serve(&["--access-log", "json"]).await?;
    send_traffic(&logging).await?;
    wait_for_log_lines(&logging, 3).await?;
    let stdout = quiet.process.stdout_text();
    ensure!(
        stdout.is_empty(),
        "--access-log off wrote to stdout: {stdout:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_backend_and_code() -> anyhow::Result<()> {
    let (_echoes, gateway, _down) = serve(&[]).await?;
    send_traffic(&gateway).await?;
    let down = gateway.status_of(HOST, "/down").await?;
    ensure!(
        down == StatusCode::SERVICE_UNAVAILABLE,
        "GET /down answered {down}"
    );

    let metrics = gateway.admin_text("/metrics").await?;
    ensure!(
        requests_total(&metrics, ROUTE_LABEL, BACKEND_LABEL, "200") == Some(2.0),
        "two 200s on {ROUTE_LABEL} / {BACKEND_LABEL}:\n{metrics}"
    );
    ensure!(
        requests_total(&metrics, "", "", "404") == Some(1.0),
        "one 404 without route or backend:\n{metrics}"
    );
    ensure!(
        requests_total(
            &metrics,
            "HTTPRoute e2e/observed rules[2]",
            "Service e2e/down:80",
            "503"
        ) == Some(1.0),
        "one 503 on the down backend:\n{metrics}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_lists_the_listener_and_its_routes() -> anyhow::Result<()> {
    let (_echoes, gateway, _down) = serve(&[]).await?;
    let config = gateway.admin_json("/config").await?;
    let listener = config["listeners"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|listener| listener["listener"] == "Gateway e2e/gw listener http")
        .with_context(|| format!("/config lists no listener http: {config}"))?;
    let socket = gateway.listener().to_string();
    ensure!(
        listener["sockets"]
            .as_array()
            .is_some_and(|sockets| sockets.iter().any(|s| *s == socket.as_str())),
        "the listener is bound on {socket}: {listener}"
    );
    ensure!(
        listener["routes"].as_array().is_some_and(|routes| routes
            .iter()
            .any(|route| route["route"] == "HTTPRoute e2e/observed")),
        "the route is attached to the listener: {listener}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_list_backends_with_their_counters() -> anyhow::Result<()> {
    let (echoes, gateway, _down) = serve(&[]).await?;
    send_traffic(&gateway).await?;
    ensure!(
        gateway.pod(HOST, "/direct", &[]).await? == "direct",
        "the Backend kind serves"
    );
    let down = gateway.status_of(HOST, "/down").await?;
    ensure!(
        down == StatusCode::SERVICE_UNAVAILABLE,
        "GET /down answered {down}"
    );

    let endpoints = gateway.admin_json("/endpoints").await?;
    let endpoint_of = |backend: &str| -> anyhow::Result<Value> {
        endpoints[backend]["endpoints"]
            .get(0)
            .cloned()
            .with_context(|| format!("/endpoints has no endpoint for {backend}: {endpoints}"))
    };
    let service = endpoint_of(BACKEND_LABEL)?;
    ensure!(
        service["address"] == echoes.addr("a").to_string().as_str(),
        "address: {service}"
    );
    ensure!(
        service["requests"] == 2 && service["failures"] == 0,
        "counters: {service}"
    );
    let direct = endpoint_of("Backend e2e/direct")?;
    ensure!(
        direct["address"] == echoes.addr("direct").to_string().as_str(),
        "address: {direct}"
    );
    ensure!(direct["requests"] == 1, "counters: {direct}");
    let refused = endpoint_of("Service e2e/down:80")?;
    ensure!(
        refused["failures"] == 1,
        "a refused connection counts as a failure: {refused}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_answer() -> anyhow::Result<()> {
    let (_echoes, gateway, _down) = serve(&[]).await?;
    for path in ["/healthz", "/ready"] {
        let (status, _) = gateway.process.get_admin(path).await?;
        ensure!(status == StatusCode::OK, "{path} answered {status}");
    }
    let (status, _) = gateway.process.get_admin("/no-such-endpoint").await?;
    ensure!(
        status == StatusCode::NOT_FOUND,
        "an unknown admin path answered {status}"
    );
    Ok(())
}
