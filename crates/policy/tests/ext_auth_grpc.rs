//! ext_authz over gRPC against a real tonic `Authorization/Check` server on 127.0.0.1: the
//! check built by `check_request` travels over a real HTTP/2 (h2c) connection, and the server's
//! real answer (head, message frame, trailers) is what `judge` reads.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use policy::ext_auth::proto::envoy::config::core::v3::{HeaderValue, HeaderValueOption, address};
use policy::ext_auth::proto::envoy::service::auth::v3::{
    CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse, check_response::HttpResponse,
};
use policy::ext_auth::proto::envoy::r#type::v3::HttpStatus;
use policy::ext_auth::proto::google::rpc::Status;
use policy::ext_auth::{Verdict, check_request, failure_verdict, judge};
use snapshot::security::{BodyForwarding, ExtAuth, ExtAuthProtocol};
use tonic::codegen::{BoxFuture, Service};

type Received = Arc<Mutex<Vec<CheckRequest>>>;

/// The authorization logic of the test server, keyed on the client's `authorization` header.
#[derive(Clone)]
struct Checker {
    received: Received,
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
        let check = request.into_inner();
        let authorization = check
            .attributes
            .as_ref()
            .and_then(|attributes| attributes.request.as_ref())
            .and_then(|request| request.http.as_ref())
            .and_then(|http| http.headers.get("authorization").cloned())
            .unwrap_or_default();
        if let Ok(mut received) = self.received.lock() {
            received.push(check);
        }
        Box::pin(async move {
            match authorization.as_str() {
                "Bearer good" => Ok(tonic::Response::new(allow())),
                "Bearer bad" => Ok(tonic::Response::new(deny())),
                _ => Err(tonic::Status::unavailable("policy store down")),
            }
        })
    }
}

fn header(key: &str, value: &str, append: Option<bool>) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            value: value.to_owned(),
            raw_value: Vec::new(),
        }),
        append,
        ..Default::default()
    }
}

fn allow() -> CheckResponse {
    CheckResponse {
        status: Some(Status::default()),
        http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
            headers: vec![
                header("x-user", "ana", None),
                header("x-roles", "admin", Some(true)),
            ],
            headers_to_remove: vec!["authorization".to_owned()],
        })),
    }
}

fn deny() -> CheckResponse {
    CheckResponse {
        status: Some(Status {
            code: 7,
            message: "permission denied".to_owned(),
        }),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus { code: 401 }),
            headers: vec![header("www-authenticate", "Bearer realm=\"shop\"", None)],
            body: "token rejected".to_owned(),
        })),
    }
}

/// The tonic service: `Authorization/Check` only, as tonic's generated code would route it.
#[derive(Clone)]
struct AuthorizationServer {
    checker: Checker,
}

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
        let checker = self.checker.clone();
        Box::pin(async move {
            if request.uri().path() != policy::ext_auth::CHECK_PATH {
                return Ok(tonic::Status::unimplemented("no such method").into_http());
            }
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(checker, request).await)
        })
    }
}

/// Starts the server; returns its address and what it received.
async fn start_server() -> anyhow::Result<(SocketAddr, Received)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let received = Received::default();
    let service = AuthorizationServer {
        checker: Checker {
            received: received.clone(),
        },
    };
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(tonic::transport::Server::builder().serve_with_incoming(service, incoming));
    Ok((address, received))
}

fn settings() -> ExtAuth {
    ExtAuth {
        backend: 0,
        protocol: ExtAuthProtocol::Grpc,
        headers_to_backend: Vec::new(),
        headers_to_upstream: Vec::new(),
        all_headers_to_upstream: false,
        body: Some(BodyForwarding {
            max_bytes: 8,
            refuse_larger: false,
        }),
        fail_open: false,
        timeout: Duration::from_secs(2),
    }
}

fn client_request(authorization: &str) -> anyhow::Result<http::request::Parts> {
    Ok(Request::post("/orders?id=7")
        .header("host", "shop.example")
        .header("authorization", authorization)
        .body(())?
        .into_parts()
        .0)
}

/// Sends the check over a new h2c connection, as the proxy's HTTP/2 pool would (with the
/// backend's authority), and judges the answer.
async fn check(server: SocketAddr, authorization: &str) -> anyhow::Result<Verdict> {
    let settings = settings();
    let client = SocketAddr::from(([198, 51, 100, 4], 50_123));
    let body = Bytes::from_static(b"{\"qty\":12, \"note\":\"long\"}");
    let check = check_request(
        &settings,
        &client_request(authorization)?,
        client,
        "https",
        Some((&body, false)),
    );
    let (mut head, frame) = check.into_parts();
    head.uri = format!("http://{server}{}", head.uri).parse()?;
    let stream = tokio::net::TcpStream::connect(server).await?;
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let response = sender
        .send_request(Request::from_parts(head, Full::new(frame)))
        .await?;
    let (head, body) = response.into_parts();
    let collected = body.collect().await?;
    let trailers = collected.trailers().cloned();
    Ok(judge(
        &settings,
        head,
        collected.to_bytes(),
        trailers.as_ref(),
    ))
}

#[tokio::test]
async fn an_allowing_server_injects_and_removes_upstream_headers() -> anyhow::Result<()> {
    let (server, received) = start_server().await?;
    let Verdict::Allow(changes) = check(server, "Bearer good").await? else {
        anyhow::bail!("the server allowed");
    };
    let mut upstream = http::HeaderMap::new();
    upstream.insert("authorization", "Bearer good".parse()?);
    upstream.insert("x-user", "forged".parse()?);
    upstream.insert("x-roles", "reader".parse()?);
    changes.apply(&mut upstream);
    assert_eq!(
        upstream.get("x-user").map(|v| v.as_bytes()),
        Some(&b"ana"[..])
    );
    let roles: Vec<&[u8]> = upstream
        .get_all("x-roles")
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    assert_eq!(roles, [&b"reader"[..], &b"admin"[..]]);
    assert!(!upstream.contains_key("authorization"));

    // What the server decoded is what Envoy would have sent.
    let received = received.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let attributes = received
        .first()
        .and_then(|check| check.attributes.as_ref())
        .ok_or_else(|| anyhow::anyhow!("no check received"))?;
    let source = attributes
        .source
        .as_ref()
        .and_then(|peer| peer.address.as_ref());
    let Some(address::Address::SocketAddress(socket)) = source.and_then(|a| a.address.as_ref())
    else {
        anyhow::bail!("no source address");
    };
    assert_eq!(socket.address, "198.51.100.4");
    let http = attributes
        .request
        .as_ref()
        .and_then(|request| request.http.as_ref())
        .ok_or_else(|| anyhow::anyhow!("no request.http"))?;
    assert_eq!(
        (http.method.as_str(), http.path.as_str()),
        ("POST", "/orders?id=7")
    );
    assert_eq!(
        (http.host.as_str(), http.scheme.as_str()),
        ("shop.example", "https")
    );
    assert_eq!(http.raw_body, b"{\"qty\":1");
    assert_eq!(
        http.headers
            .get("x-envoy-auth-partial-body")
            .map(String::as_str),
        Some("true")
    );
    Ok(())
}

#[tokio::test]
async fn a_denying_server_answers_the_client_with_its_status_headers_and_body() -> anyhow::Result<()>
{
    let (server, _) = start_server().await?;
    let Verdict::Deny(denial) = check(server, "Bearer bad").await? else {
        anyhow::bail!("the server denied");
    };
    assert_eq!(denial.status, StatusCode::UNAUTHORIZED);
    assert_eq!(denial.body.as_ref(), b"token rejected");
    assert_eq!(
        denial.headers.get("www-authenticate").map(|v| v.as_bytes()),
        Some(&b"Bearer realm=\"shop\""[..])
    );
    Ok(())
}

#[tokio::test]
async fn a_server_failing_the_call_is_an_error_and_fail_closed_refuses() -> anyhow::Result<()> {
    let (server, _) = start_server().await?;
    // tonic answers a failed call Trailers-Only: grpc-status 14 in the head, no message.
    let verdict = check(server, "Bearer unknown").await?;
    assert!(
        matches!(verdict, Verdict::Error("grpc-error")),
        "{verdict:?}"
    );
    let Verdict::Deny(denial) = failure_verdict(&settings()) else {
        anyhow::bail!("fail closed refuses");
    };
    assert_eq!(denial.status, StatusCode::FORBIDDEN);
    Ok(())
}

#[tokio::test]
async fn a_server_that_is_down_never_reaches_judge() -> anyhow::Result<()> {
    let free = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = free.local_addr()?;
    drop(free);
    let result = check(address, "Bearer good").await;
    assert!(
        result.is_err(),
        "connecting to a closed port must fail: {result:?}"
    );
    // The proxy's path for a service that cannot be reached: the policy's fail_open decides.
    let mut open = settings();
    open.fail_open = true;
    assert!(matches!(failure_verdict(&open), Verdict::Allow(ref changes) if changes.is_empty()));
    assert!(matches!(failure_verdict(&settings()), Verdict::Deny(_)));
    Ok(())
}
