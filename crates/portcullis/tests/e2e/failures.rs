//! Failure handling over real sockets: a config file that stops parsing, backends that refuse
//! connections, have no endpoints, or reset the connection. The gateway answers each with the
//! status `proxy/src/error.rs` assigns and keeps serving everything else.

use std::time::Duration;

use anyhow::{Context, ensure};
use http::StatusCode;
use serde_json::Value;
use testkit::reserve_closed_port;

use crate::fixture::eventually;
use crate::fixture::manifest::{
    NS, endpoint_slice, http_route, path_match, rule, service, service_backend, service_ref,
};
use crate::fixture::running::{ConfigDir, Echoes, HOST, TestGateway};

/// The file the bad-YAML test breaks.
const ROUTES_FILE: &str = "routes.yaml";

/// The `files[]` entry of `/status` for the file whose path ends with `file`.
fn file_report<'a>(status: &'a Value, file: &str) -> anyhow::Result<&'a Value> {
    status["files"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|report| {
            report["path"]
                .as_str()
                .is_some_and(|path| path.ends_with(file))
        })
        .with_context(|| format!("/status lists no file {file}: {status}"))
}

/// The `problems` of `/status` as strings.
fn problems(status: &Value) -> Vec<String> {
    status["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|problem| problem.as_str().map(str::to_owned))
        .collect()
}

/// The value of the unlabelled metric `name` in Prometheus text.
fn metric_value(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (series, value) = line.split_once(' ')?;
        (series == name).then(|| value.trim().parse().ok())?
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_yaml_keeps_the_last_good_config() -> anyhow::Result<()> {
    let echoes = Echoes::start(&["a", "b"]).await?;
    let config = ConfigDir::new()?;
    config.write_gateway(None)?;
    let mut backends = service_backend(NS, "a", &[echoes.addr("a")]);
    backends.extend(service_backend(NS, "b", &[echoes.addr("b")]));
    config.write("backends.yaml", &backends)?;
    let route_to = |backend: &str| {
        http_route(
            "web",
            &[],
            vec![rule(
                vec![path_match("PathPrefix", "/")],
                vec![service_ref(backend)],
            )],
        )
    };
    config.write(ROUTES_FILE, &[route_to("a")])?;
    let gateway = config.start(&[]).await?;
    ensure!(
        gateway.pod(HOST, "/", &[]).await? == "a",
        "the good config serves"
    );
    ensure!(
        problems(&gateway.status().await?).is_empty(),
        "a good config has no problems"
    );

    gateway.config.write_text(
        ROUTES_FILE,
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: web\nspec: [\n",
    )?;
    let status = eventually(Duration::from_secs(10), async || {
        let status = gateway.status().await?;
        let report = file_report(&status, ROUTES_FILE)?;
        ensure!(
            report["error"].is_string(),
            "no error reported yet: {report}"
        );
        Ok(status)
    })
    .await?;
    let file_error = file_report(&status, ROUTES_FILE)?["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    ensure!(
        problems(&status)
            .iter()
            .any(|problem| problem.contains(ROUTES_FILE) && problem.contains(&file_error)),
        "the problems name the file and its error ({file_error}): {:?}",
        problems(&status)
    );
    ensure!(
        status["healthy"] == false,
        "/status is not healthy with a broken file: {status}"
    );

    // The last good version of the file keeps serving.
    for _ in 0..20 {
        ensure!(
            gateway.pod(HOST, "/", &[]).await? == "a",
            "the last good route keeps serving"
        );
    }
    let metrics = gateway.admin_text("/metrics").await?;
    ensure!(
        metric_value(&metrics, "portcullis_config_last_reload_success") == Some(0.0),
        "the failed reload shows in the metrics:\n{metrics}"
    );

    // A fixed file (now routing to `b`, to prove it is the new version) is picked up.
    gateway.config.write(ROUTES_FILE, &[route_to("b")])?;
    eventually(Duration::from_secs(10), async || {
        let pod = gateway.pod(HOST, "/", &[]).await?;
        ensure!(pod == "b", "still answered by {pod}");
        Ok(())
    })
    .await?;
    let status = eventually(Duration::from_secs(10), async || {
        let status = gateway.status().await?;
        ensure!(
            file_report(&status, ROUTES_FILE)?["error"].is_null(),
            "error still reported: {status}"
        );
        Ok(status)
    })
    .await?;
    ensure!(
        problems(&status).is_empty(),
        "problems remain: {:?}",
        problems(&status)
    );
    ensure!(
        status["healthy"] == true,
        "/status is healthy again: {status}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connection_answers_503_and_the_gateway_stays_up() -> anyhow::Result<()> {
    let echoes = Echoes::start(&["up"]).await?;
    let mut documents = service_backend(NS, "up", &[echoes.addr("up")]);
    let down = reserve_closed_port();
    documents.extend(service_backend(NS, "down", &[down.addr()]));
    documents.push(http_route(
        "mixed",
        &[],
        vec![
            rule(
                vec![path_match("PathPrefix", "/up")],
                vec![service_ref("up")],
            ),
            rule(
                vec![path_match("PathPrefix", "/down")],
                vec![service_ref("down")],
            ),
        ],
    ));
    let gateway = TestGateway::start(&documents).await?;

    for _ in 0..3 {
        let response = gateway.get(HOST, "/down", &[]).await?;
        ensure!(
            response.status == StatusCode::SERVICE_UNAVAILABLE
                && response.text().contains("upstream connect error"),
            "expected 503 upstream connect error, got {} {:?}",
            response.status,
            response.text()
        );
        ensure!(
            response.header("x-portcullis-error") == Some("upstream-connect-error"),
            "x-portcullis-error: {:?}",
            response.header("x-portcullis-error")
        );
        ensure!(
            gateway.pod(HOST, "/up", &[]).await? == "up",
            "the good route still serves"
        );
    }
    let (health, _) = gateway.process.get_admin("/healthz").await?;
    ensure!(health == StatusCode::OK, "/healthz answered {health}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_without_ready_endpoints_answers_503_no_healthy_upstream() -> anyhow::Result<()> {
    let echoes = Echoes::start(&["unready"]).await?;
    let mut unready_slice = endpoint_slice(NS, "unready", "unready-1", echoes.addr("unready"));
    unready_slice["endpoints"][0]["conditions"]["ready"] = Value::Bool(false);
    let documents = vec![
        // No EndpointSlice at all.
        service(NS, "empty", None),
        // An EndpointSlice whose only endpoint is not ready.
        service(NS, "unready", None),
        unready_slice,
        http_route(
            "nobody",
            &[],
            vec![
                rule(
                    vec![path_match("PathPrefix", "/empty")],
                    vec![service_ref("empty")],
                ),
                rule(
                    vec![path_match("PathPrefix", "/unready")],
                    vec![service_ref("unready")],
                ),
            ],
        ),
    ];
    let gateway = TestGateway::start(&documents).await?;
    for path in ["/empty", "/unready"] {
        let response = gateway.get(HOST, path, &[]).await?;
        ensure!(
            response.status == StatusCode::SERVICE_UNAVAILABLE
                && response.text().contains("no healthy upstream"),
            "GET {path}: expected 503 no healthy upstream, got {} {:?}",
            response.status,
            response.text()
        );
    }
    ensure!(
        echoes.server("unready").requests() == 0,
        "a not-ready endpoint got traffic"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_reset_before_the_response_answers_503() -> anyhow::Result<()> {
    let echoes = Echoes::start(&["flaky"]).await?;
    let mut documents = service_backend(NS, "flaky", &[echoes.addr("flaky")]);
    documents.push(http_route(
        "flaky",
        &[],
        vec![rule(vec![], vec![service_ref("flaky")])],
    ));
    let gateway = TestGateway::start(&documents).await?;

    // The echo's retry simulator resets the connection on the first attempt of a uuid.
    let response = gateway
        .get(HOST, "/retry/reset?uuid=reset-1&succeedAfter=1", &[])
        .await?;
    // A reset before the response head means nothing usable came back: 503, as Envoy
    // answers (502 is kept for responses that are not valid HTTP).
    ensure!(
        response.status == StatusCode::SERVICE_UNAVAILABLE,
        "expected 503 after an upstream reset, got {} {:?}",
        response.status,
        response.text()
    );
    ensure!(
        response.text().contains("reset"),
        "the body says what happened: {:?}",
        response.text()
    );
    ensure!(
        echoes.server("flaky").requests() >= 1,
        "the request reached the backend"
    );
    // The next request on the same backend works (no broken pooled connection is reused).
    ensure!(
        gateway.pod(HOST, "/after", &[]).await? == "flaky",
        "the backend serves again"
    );
    Ok(())
}

/// A client that breaks its own chunked request body (an LF inside a chunk line, RFC 9112
/// §7.1.1) gets a 400 and its connection closed, and the backend is not blamed: with outlier
/// detection ejecting after one gateway error, the endpoint keeps serving afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_client_body_is_the_clients_fault_not_the_backends() -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let echoes = Echoes::start(&["only"]).await?;
    let mut documents = service_backend(NS, "only", &[echoes.addr("only")]);
    documents.push(http_route(
        "upload",
        &[],
        vec![rule(vec![], vec![service_ref("only")])],
    ));
    documents.push(serde_json::json!({
        "apiVersion": "portcullis.dev/v1alpha1",
        "kind": "BackendTrafficPolicy",
        "metadata": {"name": "only", "namespace": NS},
        "spec": {
            "targetRefs": [{"group": "", "kind": "Service", "name": "only"}],
            "healthCheck": {"passive": {"consecutiveGatewayErrors": 1, "baseEjectionTime": "30s",
                                        "maxEjectionPercent": 100}},
        },
    }));
    let gateway = TestGateway::start(&documents).await?;

    for attempt in 0..3 {
        let mut stream = tokio::net::TcpStream::connect(gateway.listener()).await?;
        let request = format!(
            "POST /upload HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n\
             5\r\nhello\r\n1;ext\nb\r\nx\r\n0\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        // The gateway closes the connection after its answer: read to the end (bounded).
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
            .await
            .context("the gateway kept the broken connection open")??;
        let answer = String::from_utf8_lossy(&answer);
        ensure!(
            answer.starts_with("HTTP/1.1 400"),
            "attempt {attempt}: expected 400, got {answer:?}"
        );
        ensure!(
            answer.contains("x-portcullis-error: client-body-error"),
            "attempt {attempt}: {answer:?}"
        );
    }
    // Not ejected: one gateway error would have taken the only endpoint out for 30 s.
    for _ in 0..3 {
        let response = gateway.get(HOST, "/upload", &[]).await?;
        ensure!(
            response.status == StatusCode::OK,
            "the backend was blamed for the client's body: {} {:?}",
            response.status,
            response.text()
        );
    }
    Ok(())
}
