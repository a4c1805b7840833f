//! External authorization over Envoy's gRPC protocol through the binary: a real tonic
//! `envoy.service.auth.v3.Authorization/Check` server, reached over the gateway's own h2c
//! pool, allows (adding headers), denies (its status, headers and body reach the client), and
//! when it is gone the policy's `failOpen` decides.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::ensure;
use policy::ext_auth::proto::envoy::config::core::v3::{HeaderValue, HeaderValueOption};
use policy::ext_auth::proto::envoy::service::auth::v3::check_response::HttpResponse;
use policy::ext_auth::proto::envoy::service::auth::v3::{
    CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse,
};
use policy::ext_auth::proto::envoy::r#type::v3::HttpStatus;
use policy::ext_auth::proto::google::rpc::Status;
use serde_json::{Value, json};
use testkit::{EchoConfig, EchoServer};
use tonic::codegen::{BoxFuture, Service};

use super::policy;
use crate::fixture::manifest::{NS, http_route, rule, service, service_backend, service_ref};
use crate::fixture::running::{HOST, TestGateway};

/// Decides on the client's `x-token` header: `good` is allowed with `x-tenant: acme`, `bad`
/// gets 401 with a body; counts the checks.
#[derive(Clone)]
struct Checker {
    checks: Arc<AtomicUsize>,
}

impl Service<tonic::Request<CheckRequest>> for Checker {
    type Response = tonic::Response<CheckResponse>;
    type Error = tonic::Status;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: tonic::Request<CheckRequest>) -> Self::Future {
        self.checks.fetch_add(1, Ordering::Relaxed);
        let token = request
            .into_inner()
            .attributes
            .and_then(|attributes| attributes.request)
            .and_then(|request| request.http)
            .and_then(|http| http.headers.get("x-token").cloned())
            .unwrap_or_default();
        let header = |key: &str, value: &str| HeaderValueOption {
            header: Some(HeaderValue {
                key: key.to_owned(),
                value: value.to_owned(),
                raw_value: Vec::new(),
            }),
            ..Default::default()
        };
        let answer = if token == "good" {
            CheckResponse {
                status: Some(Status::default()),
                http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
                    headers: vec![header("x-tenant", "acme")],
                    headers_to_remove: vec!["x-token".to_owned()],
                })),
            }
        } else {
            CheckResponse {
                status: Some(Status {
                    code: 7,
                    message: "no".to_owned(),
                }),
                http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
                    status: Some(HttpStatus { code: 401 }),
                    headers: vec![header("www-authenticate", "Bearer realm=\"grpc\"")],
                    body: "token rejected".to_owned(),
                })),
            }
        };
        Box::pin(async move { Ok(tonic::Response::new(answer)) })
    }
}

/// Routes `Authorization/Check` to the checker, as tonic's generated server would.
#[derive(Clone)]
struct AuthorizationServer(Checker);

impl Service<http::Request<tonic::body::Body>> for AuthorizationServer {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let checker = self.0.clone();
        Box::pin(async move {
            if request.uri().path() != policy::ext_auth::CHECK_PATH {
                return Ok(tonic::Status::unimplemented("no such method").into_http());
            }
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(checker, request).await)
        })
    }
}

async fn start_server() -> anyhow::Result<(SocketAddr, Arc<AtomicUsize>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let checks = Arc::new(AtomicUsize::new(0));
    let server = AuthorizationServer(Checker {
        checks: Arc::clone(&checks),
    });
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(tonic::transport::Server::builder().serve_with_incoming(server, incoming));
    Ok((address, checks))
}

async fn start(server: SocketAddr, fail_open: bool) -> anyhow::Result<(TestGateway, EchoServer)> {
    let pod = EchoServer::start(EchoConfig::new("app", NS)).await?;
    let mut documents = service_backend(NS, "app", &[pod.addr()]);
    // The authorization Service speaks h2c.
    let mut authz: Vec<Value> = service_backend(NS, "authz", &[server]);
    authz[0] = service(NS, "authz", Some("kubernetes.io/h2c"));
    documents.extend(authz);
    documents.push(http_route(
        "app",
        &[],
        vec![rule(vec![], vec![service_ref("app")])],
    ));
    documents.push(policy(
        "SecurityPolicy",
        "authz",
        Some("app"),
        json!({"extAuth": {"grpc": {"backendRefs": [service_ref("authz")]}, "failOpen": fail_open}}),
    ));
    Ok((TestGateway::start(&documents).await?, pod))
}

#[tokio::test]
async fn a_grpc_authorization_service_decides() -> anyhow::Result<()> {
    let (server, checks) = start_server().await?;
    let (gateway, _pod) = start(server, false).await?;
    let allowed = gateway
        .get(
            HOST,
            "/orders",
            &[("x-token", "good"), ("x-tenant", "forged")],
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
        echo.header("x-token").is_none(),
        "removed by the service: {:?}",
        echo.headers
    );

    let denied = gateway.get(HOST, "/orders", &[("x-token", "bad")]).await?;
    ensure!(denied.status == 401, "{}", denied.status);
    ensure!(denied.text() == "token rejected", "{:?}", denied.text());
    ensure!(
        denied.header("www-authenticate") == Some("Bearer realm=\"grpc\""),
        "{:?}",
        denied.headers
    );
    ensure!(checks.load(Ordering::Relaxed) == 2, "one check per request");
    Ok(())
}

#[tokio::test]
async fn a_missing_grpc_service_applies_the_failure_mode() -> anyhow::Result<()> {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await?
        .local_addr()?;
    let (closed_gateway, _pod) = start(closed, false).await?;
    let refused = closed_gateway
        .get(HOST, "/", &[("x-token", "good")])
        .await?;
    ensure!(refused.status == 403, "fail closed: {}", refused.status);
    let (open_gateway, _pod) = start(closed, true).await?;
    let through = open_gateway.get(HOST, "/", &[("x-token", "bad")]).await?;
    ensure!(through.status == 200, "fail open: {}", through.status);
    Ok(())
}
