//! RequestMirror and CORS over real sockets: mirrors get copies without the client waiting or
//! noticing their failures, percentages hold over many requests, and CORS preflights are
//! answered by the gateway while actual requests get their headers on the way back.

use std::time::Duration;

use anyhow::{Context, ensure};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use testkit::{TestResponse, reserve_closed_port};

use crate::fixture::eventually;
use crate::fixture::manifest::{NS, http_route, path_match, rule, service_backend, service_ref};
use crate::fixture::running::{Echoes, HOST, TestGateway, ensure_route_condition, pod_of};

/// The route rule label the metrics use for rule 0 of HTTPRoute `name`.
fn rule_label(name: &str) -> String {
    format!("HTTPRoute {NS}/{name} rules[0]")
}

/// A rule on `prefix` forwarding to `backend` with `filters`.
fn rule_with_filters(prefix: &str, backend: &str, filters: Vec<Value>) -> Value {
    let mut rule = rule(
        vec![path_match("PathPrefix", prefix)],
        vec![service_ref(backend)],
    );
    rule["filters"] = Value::Array(filters);
    rule
}

/// A RequestMirror filter to Service `backend`, with extra fields (`percent`, `fraction`).
fn mirror_to(backend: &str, extra: Value) -> Value {
    let mut mirror = json!({"backendRef": service_ref(backend)});
    if let (Some(mirror), Value::Object(extra)) = (mirror.as_object_mut(), extra) {
        mirror.extend(extra);
    }
    json!({"type": "RequestMirror", "requestMirror": mirror})
}

/// The value of one series of `portcullis_mirror_requests_total`.
fn mirror_count(metrics: &str, route: &str, result: &str) -> f64 {
    let series =
        format!("portcullis_mirror_requests_total{{route=\"{route}\",result=\"{result}\"}}");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_receives_a_copy_and_the_client_gets_the_main_answer() -> anyhow::Result<()> {
    let echoes = Echoes::start(&["main", "shadow"]).await?;
    let mut documents = service_backend(NS, "main", &[echoes.addr("main")]);
    documents.extend(service_backend(NS, "shadow", &[echoes.addr("shadow")]));
    documents.push(http_route(
        "mirrored",
        &[],
        vec![rule_with_filters(
            "/mirror",
            "main",
            vec![mirror_to("shadow", json!({}))],
        )],
    ));
    let gateway = TestGateway::start(&documents).await?;

    let path = "/mirror/get?request-id=first";
    ensure!(gateway.pod(HOST, path, &[]).await? == "main");
    let shadow = echoes.server("shadow");
    eventually(Duration::from_secs(5), async || {
        ensure!(
            shadow.has_logged(path),
            "the mirror has not logged {path}: {:?}",
            shadow.logs()
        );
        Ok(())
    })
    .await?;

    // A body is teed: the mirror's copy completes (a cut-off copy would count as aborted).
    let body = Bytes::from(vec![b'x'; 200 * 1024]);
    let response = gateway
        .request(
            Method::POST,
            HOST,
            "/mirror/post?request-id=body",
            &[],
            body,
        )
        .await?;
    ensure!(pod_of(&response)? == "main");
    eventually(Duration::from_secs(5), async || {
        let metrics = gateway.admin_text("/metrics").await?;
        let sent = mirror_count(&metrics, &rule_label("mirrored"), "success");
        ensure!(sent >= 2.0, "mirror successes: {sent}\n{metrics}");
        Ok(())
    })
    .await?;
    ensure!(shadow.has_logged("/mirror/post?request-id=body"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn main_request_is_unaffected_when_the_mirror_is_down() -> anyhow::Result<()> {
    let echoes = Echoes::start(&["main"]).await?;
    let mut documents = service_backend(NS, "main", &[echoes.addr("main")]);
    let down = reserve_closed_port();
    documents.extend(service_backend(NS, "down", &[down.addr()]));
    documents.push(http_route(
        "mirrored",
        &[],
        vec![rule_with_filters(
            "/",
            "main",
            vec![mirror_to("down", json!({}))],
        )],
    ));
    let gateway = TestGateway::start(&documents).await?;

    for i in 0..20 {
        let body = Bytes::from(format!("request {i}"));
        let response = gateway
            .request(Method::POST, HOST, &format!("/down/{i}"), &[], body)
            .await?;
        ensure!(pod_of(&response)? == "main", "request {i}");
    }
    eventually(Duration::from_secs(5), async || {
        let metrics = gateway.admin_text("/metrics").await?;
        let failed = mirror_count(&metrics, &rule_label("mirrored"), "error");
        ensure!(failed >= 20.0, "mirror errors counted: {failed}\n{metrics}");
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percentage_mirror_roughly_matches_its_share() -> anyhow::Result<()> {
    let echoes = Echoes::start(&["main", "shadow"]).await?;
    let mut documents = service_backend(NS, "main", &[echoes.addr("main")]);
    documents.extend(service_backend(NS, "shadow", &[echoes.addr("shadow")]));
    documents.push(http_route(
        "sampled",
        &[],
        vec![rule_with_filters(
            "/",
            "main",
            vec![mirror_to("shadow", json!({"percent": 30}))],
        )],
    ));
    let gateway = TestGateway::start(&documents).await?;

    const REQUESTS: usize = 500;
    let path = "/sampled?request-id=share";
    for _ in 0..REQUESTS {
        ensure!(gateway.pod(HOST, path, &[]).await? == "main");
    }
    let shadow = echoes.server("shadow");
    let count = || {
        shadow
            .logs()
            .iter()
            .filter(|line| line.contains(path))
            .count()
    };
    // Mirrors are fire-and-forget: wait until the count stops moving.
    let mut copies = count();
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = count();
        if now == copies {
            break;
        }
        copies = now;
    }
    ensure!(
        (100..=200).contains(&copies),
        "30% of {REQUESTS} requests should be mirrored, got {copies}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unresolvable_mirror_is_reported_and_skipped() -> anyhow::Result<()> {
    let echoes = Echoes::start(&["main"]).await?;
    let mut documents = service_backend(NS, "main", &[echoes.addr("main")]);
    documents.push(http_route(
        "mirrored",
        &[],
        vec![rule_with_filters(
            "/",
            "main",
            vec![mirror_to("missing", json!({}))],
        )],
    ));
    let gateway = TestGateway::start(&documents).await?;

    ensure!(gateway.pod(HOST, "/any", &[]).await? == "main");
    let status = gateway.status().await?;
    ensure_route_condition(
        &status,
        "mirrored",
        "ResolvedRefs",
        "False",
        "BackendNotFound",
    )?;
    ensure_route_condition(&status, "mirrored", "Accepted", "True", "Accepted")
}

/// A route with two CORS rules: `/cors` with listed origins, methods and headers and
/// credentials, `/open` allowing any origin without credentials.
async fn cors_gateway(echoes: &Echoes) -> anyhow::Result<TestGateway> {
    let mut documents = service_backend(NS, "main", &[echoes.addr("main")]);
    let listed = json!({"type": "CORS", "cors": {
        "allowOrigins": ["https://www.foo.com", "https://*.bar.com"],
        "allowMethods": ["GET", "PUT"],
        "allowHeaders": ["x-header-1", "x-header-2"],
        "exposeHeaders": ["x-header-3"],
        "allowCredentials": true,
        "maxAge": 600,
    }});
    let open = json!({"type": "CORS", "cors": {"allowOrigins": ["*"], "allowMethods": ["*"]}});
    documents.push(http_route(
        "cors",
        &[],
        vec![
            rule_with_filters("/cors", "main", vec![listed]),
            rule_with_filters("/open", "main", vec![open]),
        ],
    ));
    TestGateway::start(&documents).await
}

fn header<'a>(response: &'a TestResponse, name: &str) -> Option<&'a str> {
    response.header(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_is_answered_by_the_gateway() -> anyhow::Result<()> {
    let echoes = Echoes::start(&["main"]).await?;
    let gateway = cors_gateway(&echoes).await?;
    let main = echoes.server("main");

    let preflight = |origin: &'static str, path: &'static str| {
        let gateway = &gateway;
        async move {
            gateway
                .request(
                    Method::OPTIONS,
                    HOST,
                    path,
                    &[
                        ("origin", origin),
                        ("access-control-request-method", "PUT"),
                        ("access-control-request-headers", "x-header-1"),
                    ],
                    Bytes::new(),
                )
                .await
        }
    };
    let before = main.requests();
    let response = preflight("https://api.eu.bar.com", "/cors/preflight").await?;
    ensure!(response.status == StatusCode::OK, "{}", response.status);
    let expected = [
        ("access-control-allow-origin", "https://api.eu.bar.com"),
        ("access-control-allow-methods", "GET, PUT"),
        ("access-control-allow-headers", "x-header-1, x-header-2"),
        ("access-control-allow-credentials", "true"),
        ("access-control-max-age", "600"),
        ("vary", "Origin"),
    ];
    for (name, value) in expected {
        ensure!(
            header(&response, name) == Some(value),
            "{name}: {:?} (want {value:?})",
            header(&response, name)
        );
    }

    let refused = preflight("https://foobar.com", "/cors/preflight").await?;
    ensure!(refused.status == StatusCode::OK);
    ensure!(
        header(&refused, "access-control-allow-origin").is_none(),
        "a non-matching origin gets no CORS headers"
    );

    let open = preflight("https://anyone.example", "/open/preflight").await?;
    ensure!(header(&open, "access-control-allow-origin") == Some("*"));
    ensure!(header(&open, "access-control-allow-methods") == Some("*"));
    ensure!(header(&open, "access-control-allow-credentials").is_none());

    ensure!(
        main.requests() == before,
        "preflights must not reach the backend: {:?}",
        main.logs()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_actual_requests_are_forwarded_and_marked() -> anyhow::Result<()> {
    let echoes = Echoes::start(&["main"]).await?;
    let gateway = cors_gateway(&echoes).await?;

    let response = gateway
        .get(HOST, "/cors/get", &[("origin", "https://www.foo.com")])
        .await?;
    ensure!(pod_of(&response)? == "main");
    let expected = [
        ("access-control-allow-origin", "https://www.foo.com"),
        ("access-control-allow-credentials", "true"),
        ("access-control-expose-headers", "x-header-3"),
        ("vary", "Origin"),
    ];
    for (name, value) in expected {
        ensure!(
            header(&response, name) == Some(value),
            "{name}: {:?} (want {value:?})",
            header(&response, name)
        );
    }

    let other = gateway
        .get(HOST, "/cors/get", &[("origin", "https://foobar.com")])
        .await?;
    ensure!(pod_of(&other)? == "main");
    ensure!(header(&other, "access-control-allow-origin").is_none());

    let plain = gateway.get(HOST, "/cors/get", &[]).await?;
    ensure!(pod_of(&plain)? == "main");
    ensure!(header(&plain, "access-control-allow-origin").is_none());

    // An OPTIONS without Access-Control-Request-Method is an ordinary request.
    let options = gateway
        .request(
            Method::OPTIONS,
            HOST,
            "/open/options",
            &[("origin", "https://anyone.example")],
            Bytes::new(),
        )
        .await?;
    ensure!(pod_of(&options).context("forwarded OPTIONS")? == "main");
    ensure!(header(&options, "access-control-allow-origin") == Some("*"));
    Ok(())
}
