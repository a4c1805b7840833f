//! External authorization over HTTP: a real authorization service (hyper, on loopback) decides
//! each request; its allowing answer's headers reach the upstream, its refusal reaches the
//! client whole, and a service that cannot be reached applies the policy's `failOpen`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::ensure;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use testkit::{EchoConfig, EchoServer};
use tokio::net::TcpListener;

use super::policy;
use crate::fixture::manifest::{NS, http_route, rule, service_backend, service_ref};
use crate::fixture::running::{HOST, TestGateway};

/// The authorization service: `x-token: good` is allowed (with `x-tenant: acme`, and
/// `x-user` echoed back as `x-seen-user`); anything else gets 401 with `WWW-Authenticate`
/// and a body. Counts the checks it answered.
async fn authorization_service() -> anyhow::Result<(SocketAddr, Arc<AtomicUsize>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let checks = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&checks);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let counted = Arc::clone(&counted);
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    counted.fetch_add(1, Ordering::Relaxed);
                    async move { Ok::<_, Infallible>(decide(request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((addr, checks))
}

async fn decide(request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (head, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let good = head.headers.get("x-token").is_some_and(|v| v == "good");
    let builder = Response::builder();
    let response = if good && head.uri.path().starts_with("/check/") {
        let seen_user = head
            .headers
            .get("x-user")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_owned();
        builder
            .status(StatusCode::OK)
            .header("x-tenant", "acme")
            .header("x-seen-user", seen_user)
            .header("x-seen-body", body.len().to_string())
            .header("x-not-listed", "dropped")
            .body(Full::new(Bytes::new()))
    } else {
        builder
            .status(StatusCode::UNAUTHORIZED)
            .header("www-authenticate", "Bearer realm=\"authz\"")
            .body(Full::new(Bytes::from_static(b"go away\n")))
    };
    response.unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// A gateway routing everything to an echo pod, guarded by an HTTP ext_authz policy whose
/// service is at `service`.
async fn start(service: SocketAddr, extra: Value) -> anyhow::Result<(TestGateway, EchoServer)> {
    let pod = EchoServer::start(EchoConfig::new("app", NS)).await?;
    let mut documents = service_backend(NS, "app", &[pod.addr()]);
    documents.extend(service_backend(NS, "authz", &[service]));
    documents.push(http_route(
        "app",
        &[],
        vec![rule(vec![], vec![service_ref("app")])],
    ));
    let mut ext_auth = json!({
        "http": {
            "backendRefs": [service_ref("authz")],
            "path": "/check",
            "headersToBackend": ["x-token", "x-user"],
            "headersToUpstream": ["x-tenant", "x-seen-user", "x-seen-body"],
        },
        "timeout": "500ms",
    });
    if let (Some(target), Some(extra)) = (ext_auth.as_object_mut(), extra.as_object()) {
        target.extend(extra.clone());
    }
    documents.push(policy(
        "SecurityPolicy",
        "authz",
        Some("app"),
        json!({"extAuth": ext_auth}),
    ));
    Ok((TestGateway::start(&documents).await?, pod))
}

#[tokio::test]
async fn the_service_allows_denies_and_adds_headers() -> anyhow::Result<()> {
    let (service, checks) = authorization_service().await?;
    let (gateway, _pod) = start(service, json!({})).await?;

    let allowed = gateway
        .get(
            HOST,
            "/orders?id=1",
            &[
                ("x-token", "good"),
                ("x-user", "ana"),
                ("x-tenant", "forged"),
            ],
        )
        .await?;
    ensure!(
        allowed.status == 200,
        "allowed: {} {}",
        allowed.status,
        allowed.text()
    );
    let echo = allowed.echo()?;
    ensure!(echo.path == "/orders?id=1", "{}", echo.path);
    ensure!(
        echo.header("x-tenant").as_deref() == Some("acme"),
        "the service's x-tenant replaces the client's: {:?}",
        echo.headers
    );
    ensure!(
        echo.header("x-seen-user").as_deref() == Some("ana"),
        "x-user reached the service: {:?}",
        echo.headers
    );
    ensure!(
        echo.header("x-not-listed").is_none(),
        "only listed headers are copied: {:?}",
        echo.headers
    );

    let denied = gateway.get(HOST, "/orders", &[("x-token", "bad")]).await?;
    ensure!(denied.status == 401, "denied: {}", denied.status);
    ensure!(
        denied.header("www-authenticate") == Some("Bearer realm=\"authz\""),
        "{:?}",
        denied.headers
    );
    ensure!(
        denied.text() == "go away\n",
        "the service's body reaches the client: {:?}",
        denied.text()
    );
    ensure!(checks.load(Ordering::Relaxed) == 2, "one check per request");

    let metrics = gateway.admin_text("/metrics").await?;
    ensure!(
        metrics.contains("portcullis_auth_decisions_total{policy=\"SecurityPolicy e2e/authz\",method=\"ext_auth\",result=\"allowed\"} 1"),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test]
async fn the_body_is_sent_when_asked_and_still_reaches_the_upstream() -> anyhow::Result<()> {
    let (service, _) = authorization_service().await?;
    let (gateway, _pod) = start(service, json!({"withBody": {"maxRequestBytes": 8}})).await?;
    let body = Bytes::from_static(b"0123456789abcdef");
    let response = gateway
        .request(
            http::Method::POST,
            HOST,
            "/upload",
            &[("x-token", "good")],
            body.clone(),
        )
        .await?;
    ensure!(
        response.status == 200,
        "{} {}",
        response.status,
        response.text()
    );
    let echo = response.echo()?;
    ensure!(
        echo.header("x-seen-body").as_deref() == Some("8"),
        "the service saw the first 8 bytes: {:?}",
        echo.headers
    );
    ensure!(
        echo.header("content-length").as_deref() == Some("16"),
        "the upstream got the whole body: {:?}",
        echo.headers
    );
    Ok(())
}

#[tokio::test]
async fn an_unreachable_service_applies_the_failure_mode() -> anyhow::Result<()> {
    // A port nothing listens on.
    let closed = TcpListener::bind("127.0.0.1:0").await?.local_addr()?;
    let (closed_gateway, _pod) = start(closed, json!({})).await?;
    let refused = closed_gateway
        .get(HOST, "/", &[("x-token", "good")])
        .await?;
    ensure!(refused.status == 403, "fail closed: {}", refused.status);
    ensure!(
        refused.header("x-portcullis-error") == Some("ext-auth-unavailable"),
        "{:?}",
        refused.headers
    );

    let (open_gateway, _pod) = start(closed, json!({"failOpen": true})).await?;
    let through = open_gateway.get(HOST, "/", &[]).await?;
    ensure!(
        through.status == 200,
        "fail open: {} {}",
        through.status,
        through.text()
    );
    Ok(())
}

/// The Gateway API `ExternalAuth` filter (experimental channel) on a rule: the same service,
/// with the filter's semantics (every answer header copied, a body over `maxSize` refused).
#[tokio::test]
async fn the_httproute_external_auth_filter_checks_its_rule() -> anyhow::Result<()> {
    let (service, checks) = authorization_service().await?;
    let pod = EchoServer::start(EchoConfig::new("app", NS)).await?;
    let mut documents = service_backend(NS, "app", &[pod.addr()]);
    documents.extend(service_backend(NS, "authz", &[service]));
    let mut guarded = rule(
        vec![crate::fixture::manifest::path_match(
            "PathPrefix",
            "/guarded",
        )],
        vec![service_ref("app")],
    );
    guarded["filters"] = json!([{
        "type": "ExternalAuth",
        "externalAuth": {
            "protocol": "HTTP",
            "backendRef": service_ref("authz"),
            "http": {"path": "/check", "allowedHeaders": ["x-token", "x-user"]},
            "forwardBody": {"maxSize": 8},
        },
    }]);
    let open = rule(vec![], vec![service_ref("app")]);
    documents.push(http_route("app", &[], vec![guarded, open]));
    let gateway = TestGateway::start(&documents).await?;

    let allowed = gateway
        .get(
            HOST,
            "/guarded/x",
            &[("x-token", "good"), ("x-user", "ana")],
        )
        .await?;
    ensure!(
        allowed.status == 200,
        "{} {}",
        allowed.status,
        allowed.text()
    );
    let echo = allowed.echo()?;
    ensure!(
        echo.header("x-tenant").as_deref() == Some("acme"),
        "{:?}",
        echo.headers
    );
    ensure!(
        echo.header("x-not-listed").as_deref() == Some("dropped"),
        "without allowedResponseHeaders every answer header is copied: {:?}",
        echo.headers
    );
    let denied = gateway
        .get(HOST, "/guarded/x", &[("x-token", "bad")])
        .await?;
    ensure!(denied.status == 401, "{}", denied.status);
    let large = gateway
        .request(
            http::Method::POST,
            HOST,
            "/guarded/upload",
            &[("x-token", "good")],
            Bytes::from_static(b"more than eight bytes"),
        )
        .await?;
    ensure!(large.status == 413, "a body over maxSize: {}", large.status);
    let before = checks.load(Ordering::Relaxed);
    ensure!(
        gateway.get(HOST, "/open", &[]).await?.status == 200,
        "other rules are not checked"
    );
    ensure!(
        checks.load(Ordering::Relaxed) == before,
        "no check for the open rule"
    );
    Ok(())
}
